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
5. early stopping — ``kreg.callbacks.EarlyStopping(monitor="val_accuracy", patience=10,
   restore_best_weights=True)`` on a validation split (tutorial 3 shows why accuracy,
   not the cross-entropy, is the quantity to watch on this data).

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
WEIGHT_DECAY = 2e-4  # per step (follow="schedule", constant learning rate: η = 1)
DROPOUT = 0.2
SIGMA = 0.2
SHIFT = 0.1  # fraction of the sequence length


def shift_factories(ds):
    """Front layers for a random 1-D shift, or None when ``ds`` is not a 1-D signal."""
    if ds.kind != "sequence":
        return None
    return [lambda: kreg.layers.RandomShift1D(shift=SHIFT)]


def steps_for(ds):
    """[(label, front factories, dropout?, weight decay?, early stopping?)], cumulative."""
    noise = [lambda: kreg.layers.GaussianNoise(SIGMA)]
    shift = shift_factories(ds)
    steps = [
        ("MLP, no regularization", [], False, False, False),
        (f"+ weight decay (λ={WEIGHT_DECAY:g}/step)", [], False, True, False),
        (f"+ dropout ({DROPOUT:g})", [], True, True, False),
        (f"+ input noise (σ={SIGMA:g})", noise, True, True, False),
    ]
    front = noise
    if shift is not None:
        front = shift + noise
        steps.append((f"+ 1-D shift (±{SHIFT:.0%})", front, True, True, False))
    steps.append(("+ early stopping (val_accuracy, patience 10, best weights)", front, True, True,
                  True))
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

    rows, accs = [], {}
    for label, front, dropout, wd, early in steps:
        drop = (lambda: kreg.layers.Dropout(DROPOUT)) if dropout else None
        if not early:
            keras.utils.set_random_seed(args.seed)
            towers = [_train.mlp_tower(ds, front=front, dropout=drop) for _ in range(seeds)]
            model = _train.packed(ds, towers)
            _train.compile_packed(model, optimizer(wd))
            _train.fit_packed(model, ds.x_train, ds.y_train, batch_size=100, epochs=epochs,
                              verbose=0)
            acc = [a for a, _ in _train.packed_scores(model, ds.x_test, ds.y_test)]
            trained = [epochs] * seeds
        else:
            acc, trained = [], []
            for s in range(seeds):
                keras.utils.set_random_seed(args.seed + s)
                model = _train.packed(ds, [_train.mlp_tower(ds, front=front, dropout=drop)])
                _train.compile(model, optimizer(wd))  # one output, with an accuracy metric
                stop = kreg.callbacks.EarlyStopping(monitor="val_accuracy", patience=10,
                                                    restore_best_weights=True)
                hist = _train.fit_packed(model, ds.x_train, ds.y_train, batch_size=100,
                                         epochs=epochs, verbose=0, callbacks=[stop],
                                         validation_data=(ds.x_val, ds.y_val))
                acc.append(_train.packed_scores(model, ds.x_test, ds.y_test)[0][0])
                trained.append(len(hist.history["loss"]))
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
    base, last = rows[0][1], rows[-1][1]
    best = max(rows, key=lambda r: r[1])
    report.say(
        f"Unregularized MLP: {base:.3f} (the paper reports {PAPER['MLP']:.0%} for its MLP). "
        f"All steps together: {last:.3f}; the best step is '{best[0]}' with {best[1]:.3f}. "
        "Steps that did not help on this run: "
        + (", ".join(r[0] for r, prev in zip(rows[1:], rows[:-1]) if r[1] < prev[1] - 1e-9)
           or "none")
        + ". (The early-stopping step trains each seed as its own model, with its own batch "
        "order, so its difference to the step before also contains that"
        + ("; within this epoch budget it never stopped and only restored the weights of the "
           "best validation epoch" if rows[-1][3] >= epochs else "")
        + f".) The paper's CNN reaches {PAPER['CNN']:.0%}: a better architecture (here: one "
        "with translation built in) beats any regularizer of the MLP."
    )
    return {"baseline": base, "all": last, "best_step": best[0], "best": best[1]}


def main(argv=None):
    return _report.main(run, SLUG, TITLE, __doc__, argv)


if __name__ == "__main__":
    main()
