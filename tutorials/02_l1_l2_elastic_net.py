"""Tutorial 2: L1, L2 and the elastic net — which weights go to zero, and why only a proximal step zeroes them.

Claim: L2's pull on a weight, 2λw, vanishes as w → 0, so L2 shrinks weights but leaves
them small and non-zero. L1's pull, λ·sign(w), is constant, so it drives weights toward
exactly 0 (sparsity) — *but* a gradient step on the L1 penalty uses the subgradient: a
weight near 0 is pushed past 0 and back, oscillating around it, and almost never lands
on exactly 0.0. A proximal step (soft-thresholding, FOBOS) does land there:
w ← sign(w)·max(|w| − lr·λ, 0). kreg gives both: ``kreg.regularizers.L1`` (a penalty in
the loss, as Keras) and ``kreg.optimizers.DecoupledWeightDecay(optimizer, 0.0, l1=λ)``
(the proximal step after each update).

To compare like with like, every model here is trained with plain SGD (the same learning
rate, seed and initial weights) and the proximal step uses ``follow="learning_rate"``, so
both L1 variants shrink a weight by lr·λ per step; only *how* differs.

Run: ``python tutorials/02_l1_l2_elastic_net.py --quick``
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

SLUG = "02_l1_l2_elastic_net"
TITLE = "2. L1, L2 and the elastic net: sparsity needs a proximal step"

LR = 0.1


def kernels(model):
    """All kernels (the regularized weights) as one flat NumPy vector."""
    return np.concatenate([
        keras.ops.convert_to_numpy(v).ravel() for v in model.trainable_weights
        if v.path.endswith("kernel")
    ])


def configs(l1, l2):
    """name -> (kernel_regularizer factory or None, optimizer factory)."""
    sgd = lambda: keras.optimizers.SGD(LR)  # noqa: E731
    out = {
        "none": (None, sgd),
        f"L2 penalty (l2={l2:g})": (lambda: kreg.regularizers.L2(l2), sgd),
        f"L1 penalty (l1={l1:g})": (lambda: kreg.regularizers.L1(l1), sgd),
        f"elastic-net penalty (l1={l1:g}, l2={l2:g})": (
            lambda: kreg.regularizers.L1L2(l1=l1, l2=l2), sgd),
    }
    dwd = kreg.optimizers.DecoupledWeightDecay
    # L2(l2) has gradient 2·l2·w, so the matching decoupled weight decay is 2·l2.
    out[f"proximal L1 (l1={l1:g})"] = (
        None, lambda: dwd(keras.optimizers.SGD(LR), 0.0, l1=l1, follow="learning_rate"))
    out[f"proximal elastic net (l1={l1:g}, wd={2 * l2:g})"] = (
        None, lambda: dwd(keras.optimizers.SGD(LR), 2 * l2, l1=l1, follow="learning_rate"))
    return out


def run(args, report):
    plt = _report.plt
    ds = _data.from_args(args, "mnist1d")
    report.say(f"Data: {ds}. Model: MLP 100-100, SGD(lr={LR}), batch 100.")
    epochs = _report.pick(args, 1, 15, 100)
    l1, l2 = 1e-3, 1e-3
    runs = configs(l1, l2)

    rows, weights = [], {}
    for name, (reg, opt) in runs.items():
        keras.utils.set_random_seed(args.seed)
        model = _train.mlp(ds, kernel_regularizer=reg)
        _train.compile(model, opt())
        model.fit(ds.x_train, ds.y_train, batch_size=100, epochs=epochs, verbose=0)
        acc, nll = _train.scores(model, ds.x_test, ds.y_test)
        w = kernels(model)
        weights[name] = w
        rows.append([name, acc, float(np.mean(w == 0.0)), float(np.mean(np.abs(w) < 1e-3)),
                     float(np.mean(np.abs(w)))])
        print(f"  {name}: test acc {acc:.3f}, exact zeros {rows[-1][2]:.1%}", flush=True)
    report.table(
        "sparsity",
        ["regularization", "test accuracy", "exactly 0", "|w| < 1e-3", "mean |w|"],
        rows,
        caption=f"Kernels of an MLP after {epochs} epochs of SGD: the fraction of weights "
        "that are exactly zero.",
    )

    # Histograms of log10|w| (all kernels): a weight *near* zero shows up on the left of
    # the blue bulk; a weight *at* zero cannot be put on a log scale and gets the red bar.
    n = len(weights)
    cols = 3
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(10, 2.6 * nrows), squeeze=False)
    bins = np.linspace(-7, 0, 57)
    for ax, (name, w) in zip(axes.ravel(), weights.items()):
        nonzero = np.abs(w[w != 0])
        ax.hist(np.clip(np.log10(nonzero), bins[0], bins[-1]), bins=bins, color="tab:blue")
        zeros = int(np.sum(w == 0))
        ax.bar([-7.6], [max(zeros, 0)], width=0.5, color="tab:red")
        ax.set_yscale("log")
        ax.set_xticks([-7.6, -6, -4, -2, 0], ["=0", "1e-6", "1e-4", "1e-2", "1"], fontsize=7)
        ax.set_title(f"{name}\nexactly 0: {np.mean(w == 0):.1%}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    report.figure(fig, "weight_histograms", "|w| of the kernels after training (log scale; red: "
                  "weights exactly 0). The L1 penalty leaves a tail of tiny non-zero weights; the "
                  "proximal step puts them at exactly 0.")

    by = {r[0]: r for r in rows}
    pen = by[f"L1 penalty (l1={l1:g})"]
    text = (f"The L1 penalty leaves {pen[2]:.2%} of the weights exactly at zero "
            f"({pen[3]:.1%} within 1e-3 of it)")
    prox = by[f"proximal L1 (l1={l1:g})"]
    text += (f"; the proximal step with the same strength zeroes {prox[2]:.1%} "
             f"(test accuracy {prox[1]:.3f} vs {pen[1]:.3f}). Both shrink the weights "
             f"alike (mean |w| {prox[4]:.4f} vs {pen[4]:.4f}); only the proximal step lands "
             "them on 0.0: the L1 penalty's weights that 'should' be zero oscillate around "
             "it with "
             f"an amplitude of about lr·l1 = {LR * l1:g} (the second mode of its histogram). "
             "A weight stays at zero only while its data gradient is below "
             "l1 in magnitude, so a stronger l1 gives more zeros.")
    reproduced = prox[2] > 10 * max(pen[2], 1e-4)
    report.say(("Reproduced. " if reproduced else "NOT reproduced on this data. ") + text)
    l2row = by[f"L2 penalty (l2={l2:g})"]
    report.say(f"L2 shrinks the weights (mean |w| {l2row[4]:.3g} vs {by['none'][4]:.3g} "
               f"without regularization) but leaves {l2row[2]:.2%} exactly at zero.")
    return {"zeros_l1_penalty": pen[2], "zeros_proximal": prox[2],
            "reproduced": reproduced}


def main(argv=None):
    return _report.main(run, SLUG, TITLE, __doc__, argv)


if __name__ == "__main__":
    main()
