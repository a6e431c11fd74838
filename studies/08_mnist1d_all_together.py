"""Study 8: kreg's regularizers added one at a time to the MNIST-1D MLP, over seeds.

Claim: on MNIST-1D (Greydanus 2020: logistic regression 32%, MLP 68%, CNN 94%) the MLP
40-100-100-10 (ReLU, Adam 1e-2, batch 100) overfits, and each of kreg's tools, added in
turn (each step keeping the previous ones), raises its test accuracy: decoupled weight
decay, dropout, Gaussian input noise, 1-D shifts; and early stopping on the validation
accuracy keeps that gain only with a patience matched to the validation noise.

Method (moved unchanged from tutorial 8): 5 seeds per step, up to 150 epochs (the paper:
6000 steps). Steps 0–4 train their seeds side by side in one Keras model (disjoint weights,
added losses: each seed trains exactly as alone; tower k gets the same initial weights and
batches in every step), so each step is compared with the one it builds on by a paired
t-test over seeds. The early-stopping steps (patience 10 and 40, restore_best_weights)
train one model per seed, each stopping on its own; the runs of one seed share their
initial weights and batch order across patiences, so the two patiences are paired too.

    python studies/08_mnist1d_all_together.py          # full run: 5.8 min, JAX, busy 2-core CPU
    python studies/08_mnist1d_all_together.py --quick  # 2 seeds, 25 epochs
"""

import _study  # noqa: I001  (first: puts tutorials/ on sys.path)

import _data
import _report
import _train
import keras
import numpy as np

import kreg

NAME = "08_mnist1d_all_together"

PAPER = {"logistic regression": 0.32, "MLP": 0.68, "GRU": 0.91, "CNN": 0.94, "human": 0.96}
WEIGHT_DECAY = 2e-2  # λ: a decay of lr·λ = 2e-4 per step with Adam(1e-2), as AdamW
DROPOUT = 0.2
SIGMA = 0.2
SHIFT = 0.1  # fraction of the sequence length
PATIENCES = (10, 40)


def steps_for(ds):
    """[(label, front factories, dropout?, weight decay?, patience or None)], cumulative.

    The early-stopping steps (two patiences) both build on the last step before them.
    """
    noise = [lambda: kreg.layers.GaussianNoise(SIGMA)]
    front = noise
    steps = [
        ("MLP, no regularization", [], False, False, None),
        (f"+ weight decay (λ={WEIGHT_DECAY:g})", [], False, True, None),
        (f"+ dropout ({DROPOUT:g})", [], True, True, None),
        (f"+ input noise (σ={SIGMA:g})", noise, True, True, None),
    ]
    if ds.kind == "sequence":
        front = [lambda: kreg.layers.RandomShift1D(shift=SHIFT)] + noise
        steps.append((f"+ 1-D shift (±{SHIFT:.0%})", front, True, True, None))
    for patience in PATIENCES:
        steps.append(
            (
                f"+ early stopping (val_accuracy, patience {patience}, best weights)",
                front,
                True,
                True,
                patience,
            )
        )
    return steps


def optimizer(weight_decay):
    adam = keras.optimizers.Adam(1e-2)
    if weight_decay:
        return kreg.optimizers.DecoupledWeightDecay(adam, WEIGHT_DECAY)
    return adam


def train_steps(args, ds, seeds, epochs):
    """Test accuracies per step (a list per label), epochs trained, and the validation
    curves of the early-stopping runs (per patience, per seed)."""
    accs, trained, curves = {}, {}, {}
    for label, front, dropout, wd, early in steps_for(ds):
        drop = (lambda: kreg.layers.Dropout(DROPOUT)) if dropout else None
        if early is None:
            keras.utils.set_random_seed(args.seed)
            towers = [_train.mlp_tower(ds, front=front, dropout=drop) for _ in range(seeds)]
            model = _train.packed(ds, towers)
            _train.compile_packed(model, optimizer(wd))
            _train.fit_packed(
                model, ds.x_train, ds.y_train, batch_size=100, epochs=epochs, verbose=0
            )
            acc = [a for a, _ in _train.packed_scores(model, ds.x_test, ds.y_test)]
            stopped = [epochs] * seeds
        else:
            acc, stopped, curves[early] = [], [], []
            for s in range(seeds):
                keras.utils.set_random_seed(args.seed + s)
                model = _train.packed(ds, [_train.mlp_tower(ds, front=front, dropout=drop)])
                _train.compile(model, optimizer(wd))  # one output, with an accuracy metric
                stop = kreg.callbacks.EarlyStopping(
                    monitor="val_accuracy", patience=early, restore_best_weights=True
                )
                hist = _train.fit_packed(
                    model,
                    ds.x_train,
                    ds.y_train,
                    batch_size=100,
                    epochs=epochs,
                    verbose=0,
                    callbacks=[stop],
                    validation_data=(ds.x_val, ds.y_val),
                )
                acc.append(_train.packed_scores(model, ds.x_test, ds.y_test)[0][0])
                stopped.append(len(hist.history["loss"]))
                curves[early].append(np.asarray(hist.history["val_accuracy"]))
        accs[label], trained[label] = acc, stopped
        print(f"  {label}: {_report.pm(acc)}", flush=True)
    return accs, trained, curves


def test_cell(test):
    if test["n"] < 2:
        return "1 seed: no test"
    lo, hi = _report.interval(test)
    return (
        f"95% CI [{lo:+.3f}, {hi:+.3f}]; paired t, |t| = {abs(test['t']):.2f} vs "
        f"{test['t_crit']:.2f}"
    )


def estimate(a, b):
    d = np.asarray(a, "float64") - np.asarray(b, "float64")
    m, s = _report.mean_std(d)
    return f"{np.mean(b):.3f} → {np.mean(a):.3f} ({m:+.3f} ± {s:.3f})"


def patience_table(args, ds, curves, epochs):
    """Where the short patience stopped, where the long one found its best, and the noise
    of the validation accuracy near the stop (tutorial 8's explanation, as a table)."""
    short, long_ = min(curves), max(curves)
    rows = []
    for s, (hs, hl) in enumerate(zip(curves[short], curves[long_])):
        wobble = float(np.std(np.diff(hs[max(0, len(hs) - 2 * short) :]))) if len(hs) > 2 else 0.0
        rows.append(
            [
                args.seed + s,
                len(hs),
                int(np.argmax(hs)) + 1,
                len(hl),
                int(np.argmax(hl)) + 1,
                float(hl.max() - hs.max()),
                wobble,
            ]
        )
    p = float(np.mean([h.max() for h in curves[short]]))
    n_val = len(ds.y_val)
    _study.table(
        args,
        "patience",
        [
            "seed",
            f"epochs, patience {short}",
            "its best epoch",
            f"epochs, patience {long_}",
            "its best epoch",
            "best val acc: long − short",
            "epoch-to-epoch std of val acc",
        ],
        rows,
        caption=f"Early stopping on val_accuracy ({n_val} validation examples: one value has a "
        f"standard error √(p(1−p)/n) ≈ {np.sqrt(p * (1 - p) / n_val):.3f}); up to {epochs} "
        "epochs.",
    )
    return rows


def main():
    args = _study.options(NAME)
    ds = _data.from_args(args, "mnist1d")
    seeds = _study.pick(args, 1, 2, 5)
    epochs = _study.pick(args, 1, 25, 150)
    print(
        f"Data: {ds}. MLP 100-100, Adam 1e-2, batch 100, up to {epochs} epochs "
        f"(the paper: 6000 steps ≈ 150 epochs), {seeds} seeds per step.",
        flush=True,
    )
    steps = steps_for(ds)
    accs, trained, curves = train_steps(args, ds, seeds, epochs)
    labels = list(accs)
    _study.table(
        args,
        "steps",
        ["step (cumulative)", "test accuracy (mean)", "± std", "epochs trained"],
        [[lab, *_report.mean_std(accs[lab]), float(np.mean(trained[lab]))] for lab in labels],
        caption=f"MNIST-1D test accuracy, {seeds} seeds per step.",
    )

    # Each step against the one it builds on, paired by seed (see the module docstring).
    packed = [lab for lab, st in zip(labels, steps) if st[4] is None]
    rows = []
    for lab, st in zip(labels[1:], steps[1:]):
        prev = packed[-1] if st[4] is not None else labels[labels.index(lab) - 1]
        test = _report.paired_test(accs[lab], accs[prev])
        rows.append(
            [
                f"'{lab}' raises test accuracy over '{prev}'",
                "test accuracy, paired by seed",
                seeds,
                estimate(accs[lab], accs[prev]),
                test_cell(test),
                _report.verdict(test),
            ]
        )
    test = _report.paired_test(accs[packed[-1]], accs[labels[0]])
    rows.append(
        [
            f"all of them ('{packed[-1]}') raise the MLP's test accuracy",
            "test accuracy, paired by seed",
            seeds,
            estimate(accs[packed[-1]], accs[labels[0]]),
            test_cell(test),
            _report.verdict(test),
        ]
    )
    if len(curves) >= 2:
        short, long_ = min(curves), max(curves)
        by_patience = {st[4]: lab for lab, st in zip(labels, steps) if st[4] is not None}
        test = _report.paired_test(accs[by_patience[long_]], accs[by_patience[short]])
        rows.append(
            [
                f"patience {short} stops on a noisy plateau: patience {long_} keeps more",
                "test accuracy, paired by seed",
                seeds,
                estimate(accs[by_patience[long_]], accs[by_patience[short]]),
                test_cell(test),
                _report.verdict(test),
            ]
        )
        patience_table(args, ds, curves, epochs)

    plt = _report.plt
    fig = plt.figure(figsize=(7.5, 3.6))
    means = [np.mean(accs[lab]) for lab in labels]
    stds = [_report.mean_std(accs[lab])[1] for lab in labels]
    plt.bar(range(len(labels)), means, yerr=stds, capsize=4, color="tab:blue")
    for k, lab in enumerate(labels):
        plt.plot([k] * len(accs[lab]), accs[lab], "k.", ms=4)
        plt.text(k, means[k] + stds[k] + 0.01, f"{means[k]:.3f}", ha="center", fontsize=8)
    for name, value, style in (
        ("paper MLP 68%", PAPER["MLP"], "--"),
        ("paper CNN 94%", PAPER["CNN"], ":"),
    ):
        plt.axhline(value, color="tab:red", ls=style, lw=1, label=name)
    plt.xticks(range(len(labels)), labels, rotation=25, ha="right", fontsize=7)
    plt.ylabel("test accuracy")
    plt.ylim(0.3, 1)
    plt.legend(fontsize=7, loc="upper left")
    plt.title(f"MNIST-1D MLP: adding kreg's regularizers one at a time ({seeds} seeds)")
    _study.figure(args, fig)
    _study.verdicts(
        args,
        rows,
        title="8. Regularizers one at a time on the MNIST-1D MLP",
        note=(
            f"MNIST-1D (paper split, {len(ds.y_test)} test examples), MLP 100-100, Adam 1e-2, "
            f"batch 100, {epochs} epochs, {seeds} seeds (seed {args.seed} onwards); "
            f"decoupled weight decay λ = {WEIGHT_DECAY:g} (lr·λ = 2e-4 per step), dropout "
            f"{DROPOUT:g}, input noise σ = {SIGMA:g}, 1-D shifts ±{SHIFT:.0%}, "
            "EarlyStopping(monitor='val_accuracy', restore_best_weights=True). The "
            "early-stopping runs train each seed as its own model, with its own batch "
            "order, so their difference to the packed steps also contains that."
        ),
    )


if __name__ == "__main__":
    main()
