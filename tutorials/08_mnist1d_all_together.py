"""Tutorial 8: everything together on MNIST-1D — one regularizer at a time.

MNIST-1D (Greydanus 2020, "Scaling down deep learning") is a 40-sample, 10-class 1-D
version of MNIST, generated offline by the ``mnist1d`` package, on which model choices
show: the paper reports 32% test accuracy for logistic regression, 68% for an MLP, 91%
for a GRU and 94% for a CNN (human ~96%). The MLP (40-100-100-10, ReLU, Adam 1e-2,
batch 100) overfits badly, which makes it a good bench for regularization.

We start from that MLP without regularization and add kreg's tools one at a time, each
step keeping the previous ones:

1. decoupled weight decay — ``kreg.optimizers.DecoupledWeightDecay(Adam, λ)``;
2. dropout — ``kreg.layers.Dropout`` after each hidden layer;
3. input noise — ``kreg.layers.GaussianNoise(σ)``;
4. 1-D shift augmentation — ``kreg.layers.RandomShift1D``;
5. early stopping — ``kreg.callbacks.EarlyStopping(monitor="val_accuracy", patience=p,
   restore_best_weights=True)`` on a validation split (tutorial 3 shows why accuracy,
   not the cross-entropy, is the quantity to watch on this data), with the common
   patience 10 and with patience 40. With dropout, noise and shifts the validation
   accuracy climbs slowly and noisily (500 validation examples: a standard error of ~2
   points), so a short patience stops on a noisy plateau long before the model is done;
   the run measures this and shows what a patience matched to the noise keeps.

Each step is trained with several seeds and reported as mean ± std of test accuracy.
To keep this cheap on a CPU, steps 0–4 train their seeds side by side in one Keras model
(disjoint weights, added losses: each seed trains exactly as alone; the seeds share the
batch order but differ in initialization and noise). Step 5 trains one model per seed,
because each must stop on its own. The hyperparameters are reasonable defaults, not tuned
on the test set (nor much at all): the point is the method, and the numbers are what they are.

Run: ``python tutorials/08_mnist1d_all_together.py --quick``
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _data  # noqa: E402
import _report  # noqa: E402
import _train  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import kreg  # noqa: E402

SLUG = "08_mnist1d_all_together"
TITLE = "8. Everything together on MNIST-1D"

PAPER = {"logistic regression": 0.32, "MLP": 0.68, "GRU": 0.91, "CNN": 0.94, "human": 0.96}
WEIGHT_DECAY = 2e-2  # λ: a decay of lr·λ = 2e-4 per step with Adam(1e-2), as AdamW
DROPOUT = 0.2
SIGMA = 0.2
SHIFT = 0.1  # fraction of the sequence length
PATIENCES = (10, 40)


def shift_factories(ds):
    """Front layers for a random 1-D shift, or None when ``ds`` is not a 1-D signal."""
    if ds.kind != "sequence":
        return None
    return [lambda: kreg.layers.RandomShift1D(shift=SHIFT)]


def steps_for(ds):
    """[(label, front factories, dropout?, weight decay?, patience or None)], cumulative.

    The early-stopping steps (two patiences) both build on the last step before them.
    """
    noise = [lambda: kreg.layers.GaussianNoise(SIGMA)]
    shift = shift_factories(ds)
    steps = [
        ("MLP, no regularization", [], False, False, None),
        (f"+ weight decay (λ={WEIGHT_DECAY:g})", [], False, True, None),
        (f"+ dropout ({DROPOUT:g})", [], True, True, None),
        (f"+ input noise (σ={SIGMA:g})", noise, True, True, None),
    ]
    front = noise
    if shift is not None:
        front = shift + noise
        steps.append((f"+ 1-D shift (±{SHIFT:.0%})", front, True, True, None))
    for patience in PATIENCES:
        steps.append((f"+ early stopping (val_accuracy, patience {patience}, best weights)",
                      front, True, True, patience))
    return steps, shift is not None


def optimizer(weight_decay):
    adam = keras.optimizers.Adam(1e-2)
    if weight_decay:
        return kreg.optimizers.DecoupledWeightDecay(adam, WEIGHT_DECAY)
    return adam


def run(args, report):
    plt = _report.plt
    ds = _data.from_args(args, "mnist1d")
    seeds = _report.pick(args, 2, 2, 5)
    epochs = _report.pick(args, 1, 25, 150)
    report.say(f"Data: {ds}. MLP 100-100, Adam 1e-2, batch 100, up to {epochs} epochs "
               f"(the paper: 6000 steps ≈ 150 epochs), {seeds} seeds per step.")
    steps, have_shift = steps_for(ds)
    if not have_shift:
        report.skip("the 1-D shift step", f"{ds.name} is not a 1-D signal. The early-stopping "
                    "step builds on the noise step instead.")

    rows, accs, stops = [], {}, {}
    for label, front, dropout, wd, early in steps:
        drop = (lambda: kreg.layers.Dropout(DROPOUT)) if dropout else None
        if early is None:
            keras.utils.set_random_seed(args.seed)
            towers = [_train.mlp_tower(ds, front=front, dropout=drop) for _ in range(seeds)]
            model = _train.packed(ds, towers)
            _train.compile_packed(model, optimizer(wd))
            _train.fit_packed(model, ds.x_train, ds.y_train, batch_size=100, epochs=epochs,
                              verbose=0)
            acc = [a for a, _ in _train.packed_scores(model, ds.x_test, ds.y_test)]
            trained = [epochs] * seeds
        else:
            acc, trained, stops[early] = [], [], []
            for s in range(seeds):
                keras.utils.set_random_seed(args.seed + s)
                model = _train.packed(ds, [_train.mlp_tower(ds, front=front, dropout=drop)])
                _train.compile(model, optimizer(wd))  # one output, with an accuracy metric
                stop = kreg.callbacks.EarlyStopping(monitor="val_accuracy", patience=early,
                                                    restore_best_weights=True)
                hist = _train.fit_packed(model, ds.x_train, ds.y_train, batch_size=100,
                                         epochs=epochs, verbose=0, callbacks=[stop],
                                         validation_data=(ds.x_val, ds.y_val))
                acc.append(_train.packed_scores(model, ds.x_test, ds.y_test)[0][0])
                trained.append(len(hist.history["loss"]))
                stops[early].append(np.asarray(hist.history["val_accuracy"]))
        mean, std = _train.mean_std(acc)
        accs[label] = acc
        rows.append([label, mean, std, float(np.mean(trained))])
        print(f"  {label}: {mean:.3f} ± {std:.3f}", flush=True)
    report.table("steps", ["step (cumulative)", "test accuracy (mean)", "± std", "epochs trained"],
                 rows, caption=f"MNIST-1D test accuracy, {seeds} seeds per step.")

    fig = plt.figure(figsize=(7.5, 3.6))
    labels = [r[0] for r in rows]
    plt.bar(range(len(rows)), [r[1] for r in rows], yerr=[r[2] for r in rows], capsize=4,
            color="tab:blue")
    for k, acc in enumerate(accs.values()):
        plt.plot([k] * len(acc), acc, "k.", ms=4)
        plt.text(k, rows[k][1] + rows[k][2] + 0.01, f"{rows[k][1]:.3f}", ha="center", fontsize=8)
    for name, value, style in (("paper MLP 68%", PAPER["MLP"], "--"),
                               ("paper CNN 94%", PAPER["CNN"], ":")):
        plt.axhline(value, color="tab:red", ls=style, lw=1, label=name)
    plt.xticks(range(len(rows)), labels, rotation=25, ha="right", fontsize=7)
    plt.ylabel("test accuracy")
    plt.ylim(0.3, 1)
    plt.legend(fontsize=7, loc="upper left")
    plt.title("MNIST-1D MLP: adding kreg's regularizers one at a time")
    report.figure(fig, "steps", "Test accuracy (mean ± std over seeds; dots: single seeds) as "
                  "each regularizer is added.")
    base = rows[0][1]
    labels = list(accs)
    pre = [lab for lab, st in zip(labels, steps) if st[4] is None][-1]
    best = max(rows, key=lambda r: r[1])
    # Each step against the one it builds on, paired by seed: the packed steps give tower k
    # the same initial weights and batches in every step, and the early-stopping runs of one
    # seed share their initial weights and batch order across patiences.
    verdicts = []
    for lab, st in zip(labels[1:], steps[1:]):
        prev = pre if st[4] is not None else labels[labels.index(lab) - 1]
        test = _report.paired_test(accs[lab], accs[prev])
        verdicts.append(f"'{lab}' vs '{prev}': {test['text']} — "
                        + ("helps" if test["significant"] and test["diff"] > 0 else
                           "hurts" if test["significant"] else "no significant change"))
    report.say(
        f"Unregularized MLP: {base:.3f} (the paper reports {PAPER['MLP']:.0%} for its MLP); "
        f"the best step is '{best[0]}' with {best[1]:.3f}. Each step against the one it "
        "builds on: " + "; ".join(verdicts) + ". (The early-stopping runs train each seed as "
        "its own model, with its own batch order, so their difference to the packed steps "
        "also contains that.)"
    )
    if len(stops) >= 2:
        short, long_ = min(stops), max(stops)
        stop_short = np.array([len(h) for h in stops[short]])
        best_short = np.array([int(np.argmax(h)) + 1 for h in stops[short]])
        best_long = np.array([int(np.argmax(h)) + 1 for h in stops[long_]])
        # The val accuracy the longer runs reached after the epoch the short ones stopped at
        # (same seed, same trajectory up to that epoch).
        gain = [float(hl.max() - hs.max()) for hs, hl in zip(stops[short], stops[long_])]
        # Epoch-to-epoch noise of the validation accuracy near the short runs' stop.
        wobble = [float(np.std(np.diff(h[max(0, len(h) - 2 * short):]))) if len(h) > 2 else 0.0
                  for h in stops[short]]
        n_val = len(ds.y_val)
        p = float(np.mean([h.max() for h in stops[short]]))
        stopped_early = stop_short.mean() < epochs and np.mean(gain) > 0
        report.say(
            (f"Why patience {short} costs accuracy here: its" if stopped_early else
             f"Patience {short} against {long_}: its")
            + f" runs stopped after {stop_short.mean():.0f} epochs on average (best validation "
            f"epoch {best_short.mean():.0f}), while the same seeds with patience {long_} found "
            f"their best validation accuracy at epoch {best_long.mean():.0f} on average, "
            f"{np.mean(gain):+.3f} higher (per seed: {', '.join(f'{g:+.3f}' for g in gain)}). "
            f"The validation accuracy jumps from epoch to epoch by {np.mean(wobble):.3f} (std of "
            f"the epoch-to-epoch change near the stop); with {n_val} validation examples one "
            f"accuracy value has a standard error of √(p(1−p)/n) ≈ "
            f"{np.sqrt(p * (1 - p) / n_val):.3f}. "
            + ("With dropout, input noise and shifts the validation accuracy climbs slowly "
               f"under that noise, so a lucky epoch sets a record the next {short} epochs do "
               "not beat: training stops on a noisy plateau long before the regularized model "
               "has converged, and restore_best_weights keeps that early epoch. A patience "
               "matched to the noise (or a larger validation set) gives the honest picture: "
               if stopped_early else "On this run the short patience did not stop early: ")
            + f"patience {long_} test accuracy {_report.pm(accs[labels[-1]])}, patience "
            f"{short} {_report.pm(accs[labels[-2]])}."
        )
    return {"baseline": base, "all": rows[-1][1], "best_step": best[0], "best": best[1]}


def main(argv=None):
    return _report.main(run, SLUG, TITLE, __doc__, argv)


if __name__ == "__main__":
    main()
