"""Study 2: L1 as a penalty vs L1 as a proximal step — exact zeros, shrinkage, accuracy.

Claims: L2 leaves no weight at exactly zero. An L1 penalty's subgradient step drives weights
toward zero but leaves them oscillating around it (almost none at exactly 0.0); the proximal
step of ``kreg.optimizers.DecoupledWeightDecay(SGD, 0.0, l1=λ)`` (soft-thresholding by lr·λ
per step, the same amount as the penalty's subgradient step) puts them exactly at zero,
while shrinking the weights as much as the penalty does and costing no accuracy beyond it.

Method: lesson 2's MLP 100-100, plain SGD (lr 0.1, batch 100, 100 epochs) on MNIST-1D, 5
seeds (one network per seed, all of a setting side by side in one Keras model,
``_train.packed_mlp``: disjoint weights, added losses, so each trains exactly as alone;
tower k starts from the same weights in every setting), l1 ∈ {1e-4, 1e-3, 1e-2}. Per seed:
the fraction of kernel weights at exactly 0.0, the mean |w|, the test accuracy (20000 fresh
MNIST-1D test examples). Tests, paired over seeds: proximal − penalty exact-zero fraction
(t-test, and lesson 2's rule that every seed has 10× more exact zeros with the proximal
step); the ratio of mean |w| within ±5% (equivalence: the 95% interval inside the margin);
test accuracy within ±0.01 (equivalence).

Run: ``python studies/02_l1_l2_elastic_net.py`` (full, a few minutes), ``--quick``, ``--smoke``.
"""

import _study  # noqa: I001  (first: puts tutorials/ on sys.path)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import _data  # noqa: E402
import _report  # noqa: E402
import _train  # noqa: E402
import kreg  # noqa: E402

NAME = "02_l1_l2_elastic_net"
TITLE = "Study 2. L1, L2 and the elastic net: exact zeros need a proximal step"
LEARNING_RATE = 0.1


def kernels(model, k):
    """Tower k's kernel weights as one flat array."""
    return np.concatenate(
        [
            keras.ops.convert_to_numpy(v).ravel()
            for v in model.trainable_weights
            if v.path.startswith(f"net{k}_") and v.path.endswith("kernel")
        ]
    )


def train(ds, seeds, epochs, seed, penalty=None, optimizer=None):
    """[(exact-zero fraction, mean |w|, test accuracy)] of ``seeds`` networks of one setting,
    and the first network's kernel weights."""
    keras.utils.set_random_seed(seed)  # tower k: the same initial weights in every setting
    model = _train.packed_mlp(ds, [penalty] * seeds)
    _train.compile_packed(model, optimizer() if optimizer else keras.optimizers.SGD(LEARNING_RATE))
    _train.fit_packed(model, ds.x_train, ds.y_train, batch_size=100, epochs=epochs, verbose=0)
    scores = _train.packed_scores(model, ds.x_test, ds.y_test)
    out = []
    for k in range(seeds):
        w = kernels(model, k)
        out.append((float(np.mean(w == 0.0)), float(np.mean(np.abs(w))), scores[k][0]))
    return np.asarray(out), kernels(model, 0)  # [seed, measure], weights


def t_cell(test):
    if test["n"] < 2:
        return "paired t-test: needs 2 seeds or more"
    return f"paired t-test, |t| = {abs(test['t']):.2f} vs {test['t_crit']:.2f}"


def interval_cell(test, margin):
    lo, hi = _report.interval(test)
    return f"95% interval [{lo:+.4f}, {hi:+.4f}] vs margin ±{margin:g}"


def main(argv=None):
    args = _study.options(NAME, argv)
    ds = _data.from_args(args, "mnist1d", mnist1d_test_size=20000)
    seeds = _study.pick(args, 1, 2, 5)
    epochs = _study.pick(args, 1, 10, 100)
    strengths = _study.pick(args, [1e-3], [1e-3], [1e-4, 1e-3, 1e-2])
    print(f"{ds}; {seeds} seed(s), {epochs} epochs, l1 in {strengths}", flush=True)
    dwd = kreg.optimizers.DecoupledWeightDecay
    runs = {
        "none": train(ds, seeds, epochs, args.seed),
        "L2 penalty (1e-3)": train(
            ds, seeds, epochs, args.seed, lambda: kreg.regularizers.L2(1e-3)
        ),
    }
    for l1 in strengths:
        runs[f"L1 penalty ({l1:g})"] = train(
            ds, seeds, epochs, args.seed, lambda l1=l1: kreg.regularizers.L1(l1)
        )
        runs[f"proximal L1 ({l1:g})"] = train(
            ds,
            seeds,
            epochs,
            args.seed,
            optimizer=lambda l1=l1: dwd(keras.optimizers.SGD(LEARNING_RATE), 0.0, l1=l1),
        )
        print(f"  l1={l1:g} done", flush=True)
    # The elastic net: L1L2(l1, l2) in the loss vs the proximal step with a decay of 2·l2
    # (L2(l2) has the gradient 2·l2·w).
    runs["elastic-net penalty (1e-3, 1e-3)"] = train(
        ds, seeds, epochs, args.seed, lambda: kreg.regularizers.L1L2(l1=1e-3, l2=1e-3)
    )
    runs["proximal elastic net (1e-3, 2e-3)"] = train(
        ds,
        seeds,
        epochs,
        args.seed,
        optimizer=lambda: dwd(keras.optimizers.SGD(LEARNING_RATE), 2e-3, l1=1e-3),
    )
    results = {name: summary for name, (summary, _) in runs.items()}
    _study.table(
        args,
        "settings",
        ["setting", "exactly 0 (mean)", "mean abs(w)", "test accuracy (mean)", "± std"],
        [
            [name, float(r[:, 0].mean()), float(r[:, 1].mean()), *_report.mean_std(r[:, 2])]
            for name, r in results.items()
        ],
        caption=f"MLP 100-100, SGD {LEARNING_RATE}, {epochs} epochs, {seeds} seed(s).",
    )

    l2 = results["L2 penalty (1e-3)"][:, 0]
    rows = [
        [
            "L2 leaves no weight exactly at zero",
            "fraction of kernel weights = 0.0 (largest over seeds)",
            seeds,
            f"{l2.max():.2e}",
            "threshold < 1e-4",
            "reproduced" if l2.max() < 1e-4 else "not reproduced",
        ]
    ]
    pairs = [
        (f"l1={l1:g}", results[f"L1 penalty ({l1:g})"], results[f"proximal L1 ({l1:g})"])
        for l1 in strengths
    ]
    pairs.append(
        (
            "elastic net l1=l2=1e-3",
            results["elastic-net penalty (1e-3, 1e-3)"],
            results["proximal elastic net (1e-3, 2e-3)"],
        )
    )
    for setting, penalty, proximal in pairs:
        zeros = _report.paired_test(proximal[:, 0], penalty[:, 0])
        tenfold = bool(np.all(proximal[:, 0] > 10 * np.maximum(penalty[:, 0], 1e-4)))
        verdict = _report.verdict(zeros)
        if verdict == "Reproduced" and not tenfold:
            verdict = "Inconclusive at this size"
        rows.append(
            [
                f"{setting}: only the proximal step puts weights exactly at zero",
                "fraction = 0.0, proximal − penalty (every seed ≥ 10× the penalty's: "
                f"{'yes' if tenfold else 'no'})",
                seeds,
                f"{zeros['diff']:+.4f} ({proximal[:, 0].mean():.4f} vs {penalty[:, 0].mean():.4f})",
                t_cell(zeros),
                verdict,
            ]
        )
        shrink = _report.paired_test(proximal[:, 1] / penalty[:, 1] - 1, np.zeros(seeds))
        rows.append(
            [
                f"{setting}: the proximal step shrinks the weights as much as the penalty",
                "mean abs(w), proximal / penalty − 1",
                seeds,
                f"{shrink['diff']:+.4f}",
                interval_cell(shrink, 0.05),
                _report.equivalence(shrink, 0.05),
            ]
        )
        accuracy = _report.paired_test(proximal[:, 2], penalty[:, 2])
        rows.append(
            [
                f"{setting}: the proximal step costs no accuracy beyond the penalty's",
                "test accuracy, proximal − penalty",
                seeds,
                f"{accuracy['diff']:+.4f} ± {accuracy['std']:.4f}",
                interval_cell(accuracy, 0.01),
                _report.equivalence(accuracy, 0.01),
            ]
        )

    plt = _report.plt
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    bins = np.linspace(-7, 0, 57)
    for axis, kind in zip(axes[:2], ("L1 penalty", "proximal L1")):
        w = runs[f"{kind} (0.001)" if 1e-3 in strengths else f"{kind} ({strengths[0]:g})"][1]
        axis.hist(
            np.clip(np.log10(np.abs(w[w != 0])), bins[0], bins[-1]), bins=bins, color="tab:blue"
        )
        axis.bar([-7.6], [int(np.sum(w == 0))], width=0.5, color="tab:red")
        axis.set_yscale("log")
        axis.set_xticks([-7.6, -6, -4, -2, 0], ["=0", "1e-6", "1e-4", "1e-2", "1"])
        axis.set(
            xlabel="abs(w) (red: exactly 0)",
            ylabel="weights",
            title=f"{kind}, l1=1e-3, seed 0: {np.mean(w == 0):.1%} exactly 0",
        )
    for kind, marker in (("L1 penalty", "s"), ("proximal L1", "o")):
        r = np.asarray([results[f"{kind} ({l1:g})"] for l1 in strengths])  # [l1, seed, m]
        axes[2].errorbar(
            strengths,
            r[:, :, 0].mean(1),
            yerr=r[:, :, 0].std(1),
            fmt=marker + "-",
            capsize=3,
            label=kind,
        )
    axes[2].set(
        xscale="log",
        xlabel="l1",
        ylabel="fraction of weights exactly 0",
        title=f"Exact zeros ({seeds} seeds)",
    )
    axes[2].legend(fontsize=7)
    _study.figure(args, figure)
    _study.verdicts(args, rows, title=TITLE)


if __name__ == "__main__":
    main()
