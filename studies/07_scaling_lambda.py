"""Study 7: does the best λ of a summed loss scale with the batch size?

Claim (Bengio 2012, "Practical recommendations for gradient-based training of deep
architectures"): λ given for the full-batch objective J = Σᵢ ℓᵢ + λ·R(w) must be shared
out over the minibatch steps, λ·b/N per step when the minibatch loss *sums* over its b
examples. So with a summed loss the best λ per step grows in proportion to b, and the best
λ found at one batch size, passed through ``kreg.callbacks.RegularizationScaler("minibatch")``,
stays good at the others, where reusing it as is does not.

Method (moved unchanged from tutorial 7's part A): MNIST-1D, test errors on 20000 fresh
examples (the transfer test compares excess errors of ~0.02, the binomial std of 1000
examples); an MLP 100-100, Adam 2e-3, a summed loss (Adam's steps do not depend on the
loss scale, so only the data/penalty balance matters), ``kreg.regularizers.L2(λ)`` on the
kernels, 50 epochs at each of six batch sizes, six λ, three seeds. At each batch size one
Keras model holds, per seed, one MLP per λ plus one regularized through the scaler with
the best λ of the reference batch size 128 (base λ*·N/b_ref, so both agree at b_ref).

Verdicts: the per-seed slope of log(best λ) against log(b), tested against 0 (does the best
λ grow with b?) and against the rule's 1 (paired t-tests over seeds); and the excess test
error over each batch size's best λ of the grid, λ* reused as is minus λ* through the scaler
(paired t-test over seeds), over all other batch sizes and over those ≥ 4× from b_ref.

Tutorial 7's part B (``normalize="sum"`` vs ``"mean"`` as a layer widens, one seed, no
verdict) is a demonstration: it lives in the lesson, whose full mode keeps its sizes.

    python studies/07_scaling_lambda.py            # full run: 7.7 min, JAX, busy 2-core CPU
    python studies/07_scaling_lambda.py --quick    # 2 seeds, 3 batch sizes
"""

import _study  # noqa: I001  (first: puts tutorials/ on sys.path)

import _data
import _report
import _train
import keras
import numpy as np

import kreg

NAME = "07_scaling_lambda"


def sum_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")


def grid(args, ds):
    """Test errors over batch sizes × λ, per seed, and through the scaler.

    Returns a dict: lams, batches, ref, seeds, err [seed, batch, λ], scaled [seed, batch],
    best_ref (the index of λ* in lams).
    """
    # --smoke: the smallest grid that still reaches every verdict (each inconclusive).
    lams = _study.pick(args, [0.1, 1.0], [0.01, 0.1, 1.0, 10.0], [0.01, 0.03, 0.1, 0.3, 1.0, 3.0])
    batches = _study.pick(args, [16, 32, 64], [32, 128, 512], [32, 64, 128, 256, 512, 1024])
    ref = _study.pick(args, 16, 128, 128)
    # Three seeds of 7 MLPs each at six batch sizes fit the tour's time budget at 50 epochs.
    epochs = _study.pick(args, 1, 15, 50)
    seeds = _study.pick(args, 1, 2, 3)
    n = len(ds.y_train)
    k = len(lams)
    print(
        f"{ds.name}, N = {n}: MLP 100-100, Adam 2e-3, summed loss, L2(λ) on the kernels, "
        f"{epochs} epochs at every batch size; λ ∈ {lams}; {seeds} seed(s).",
        flush=True,
    )
    err = np.zeros((seeds, len(batches), k))
    scaled = np.zeros((seeds, len(batches)))
    best_ref = None
    # The reference batch size goes first: its best λ (seed mean) is the scaler's base value.
    order = [ref] + [b for b in batches if b != ref]
    for b in order:
        i = batches.index(b)
        keras.utils.set_random_seed(args.seed)
        lam_star = lams[best_ref] if best_ref is not None else lams[0]
        model = _train.packed(ds, [_train.mlp_tower(ds) for _ in range(seeds * (k + 1))])
        # Tower t = s·(k+1) + j: seed s, λ_j for j < k, the scaled λ* for j = k.
        scaled_towers = []
        for s in range(seeds):
            for j in range(k + 1):
                t = s * (k + 1) + j
                reg = kreg.regularizers.L2(lams[j] if j < k else lam_star * n / ref)
                kreg.regularizers.apply(
                    model, reg, exclude=lambda v, t=t: not v.path.startswith(f"net{t}_")
                )
            scaled_towers.append(f"net{s * (k + 1) + k}_*")
        model.compile(
            optimizer=keras.optimizers.Adam(2e-3), loss=[sum_loss() for _ in range(seeds * (k + 1))]
        )
        scaler = kreg.callbacks.RegularizationScaler(
            "minibatch", targets=scaled_towers, batch_size=b, num_examples=n
        )
        _train.fit_packed(
            model,
            ds.x_train,
            ds.y_train,
            batch_size=b,
            epochs=epochs,
            verbose=0,
            callbacks=[scaler] if best_ref is not None else [],
        )
        accs = np.reshape(
            [a for a, _ in _train.packed_scores(model, ds.x_test, ds.y_test)], (seeds, k + 1)
        )
        err[:, i] = 1 - accs[:, :k]
        scaled[:, i] = 1 - accs[:, k]
        if best_ref is None:
            best_ref = int(err[:, i].mean(0).argmin())
            scaled[:, i] = err[:, i, best_ref]  # at b_ref the scaler gives exactly λ*
        print(f"  batch {b} done", flush=True)
    return {
        "lams": lams,
        "batches": batches,
        "ref": ref,
        "seeds": seeds,
        "err": err,
        "scaled": scaled,
        "best_ref": best_ref,
    }


def slopes_of(lams, batches, err):
    """Per seed, the least-squares slope of log(best λ of the grid) against log(b)."""
    logb = np.log(batches)
    return np.array([np.polyfit(logb, np.log(np.asarray(lams)[e.argmin(1)]), 1)[0] for e in err])


def slope_against_rule(slopes):
    """A sentence on whether the per-seed slopes of log(best λ) vs log(b) differ from 1."""
    test = _report.paired_test(np.asarray(slopes), np.ones(len(slopes)))
    if not test["significant"]:
        return f"The slope is consistent with the rule's 1 (against 1: {test['text']})."
    steep = test["diff"] > 0
    return (
        f"The slope is {'steeper' if steep else 'shallower'} than the rule's 1 (against "
        f"1: {test['text']}): over these batch sizes the best λ changes "
        f"{'faster' if steep else 'slower'} than b, so the scaler's λ*·b/b_ref is too "
        f"{'small' if steep else 'large'} above b_ref and too "
        f"{'large' if steep else 'small'} below it."
    )


def test_cell(test):
    """'95% CI [lo, hi]; |t| = … vs t_crit' of a paired test (or why there is none)."""
    if test["n"] < 2:
        return "1 seed: no test"
    lo, hi = _report.interval(test)
    return (
        f"95% CI [{lo:+.3f}, {hi:+.3f}]; paired t, |t| = {abs(test['t']):.2f} vs "
        f"{test['t_crit']:.2f}"
    )


def estimate(values, digits=3):
    m, s = _report.mean_std(values)
    return f"{m:+.{digits}f} ± {s:.{digits}f}"


def main():
    args = _study.options(NAME)
    ds = _data.from_args(args, "mnist1d", mnist1d_test_size=20000)
    print(f"Data: {ds}.", flush=True)
    g = grid(args, ds)
    lams, batches, ref, seeds = g["lams"], g["batches"], g["ref"], g["seeds"]
    err, scaled, best_ref = g["err"], g["scaled"], g["best_ref"]
    lam_star = lams[best_ref]
    best_j = err.mean(0).argmin(1)  # the best λ of the grid at each b (seed mean)
    best_err = err[:, np.arange(len(batches)), best_j]  # [seed, batch]
    sd = (lambda a: a.std(0, ddof=1)) if seeds > 1 else (lambda a: np.zeros(a.shape[1:]))
    _study.table(
        args,
        "batch_size",
        [
            "batch size",
            "best λ at this b",
            "its test error",
            f"λ*={lam_star:g} reused as is",
            "± std",
            "λ* through RegularizationScaler",
            "± std",
            "λ per step (scaler)",
        ],
        [
            [
                b,
                lams[best_j[i]],
                float(best_err[:, i].mean()),
                float(err[:, i, best_ref].mean()),
                float(sd(err[:, :, best_ref])[i]),
                float(scaled[:, i].mean()),
                float(sd(scaled)[i]),
                lam_star * b / ref,
            ]
            for i, b in enumerate(batches)
        ],
        caption=f"Test error ({len(ds.y_test)} examples), mean of {seeds} seed(s); "
        f"λ* = {lam_star:g} is the best λ at the reference batch size {ref}.",
    )

    rows = []
    slopes = None
    if len(batches) > 2:
        slopes = slopes_of(lams, batches, err)
        _study.table(
            args,
            "slopes",
            ["seed", "slope of log(best λ) vs log(b)"],
            [[seed, float(slope)] for seed, slope in enumerate(slopes)],
        )
        span = f"b = {batches[0]}…{batches[-1]}"
        zero = _report.paired_test(slopes, np.zeros(seeds))
        one = _report.paired_test(slopes, np.ones(seeds))
        rows.append(
            [
                "the best λ of a summed loss grows with the batch size",
                f"slope of log(best λ) vs log(b), {span}",
                seeds,
                estimate(slopes, 2),
                "against 0: " + test_cell(zero),
                _report.verdict(zero),
            ]
        )
        # The rule's own prediction: slope 1. A significant difference either way means the
        # scaler's λ*·b/b_ref is off away from b_ref (too small above it when steeper).
        rows.append(
            [
                ("… in proportion to b (slope 1), as RegularizationScaler('minibatch') assumes"),
                f"the same slope, {span}",
                seeds,
                estimate(slopes, 2),
                "against 1: " + test_cell(one),
                "not reproduced" if one["significant"] else "inconclusive at this size",
            ]
        )
        print(slope_against_rule(slopes), flush=True)
    # Per seed: the mean excess test error over the grid's best, over the other batch sizes;
    # and the same over the batch sizes at least 4× away from b_ref, where λ's balance with
    # the data changes most without the scaler.
    others = [i for i, b in enumerate(batches) if b != ref]
    far = [i for i, b in enumerate(batches) if max(b / ref, ref / b) >= 4]
    gaps = []
    for label, idx in (("all other batch sizes", others), ("batch sizes ≥ 4× from b_ref", far)):
        if not idx:
            continue
        g_fixed = (err[:, idx, best_ref] - best_err[:, idx]).mean(1)
        g_scaled = (scaled[:, idx] - best_err[:, idx]).mean(1)
        test = _report.paired_test(g_fixed, g_scaled)
        gaps.append([label, estimate(g_fixed), estimate(g_scaled)])
        rows.append(
            [
                f"λ* of b_ref = {ref} through the scaler beats λ* as is ({label})",
                "excess test error over the grid's best: as is − scaled",
                seeds,
                estimate(g_fixed - g_scaled),
                test_cell(test),
                _report.verdict(test),
            ]
        )
    _study.table(
        args,
        "transfer",
        ["batch sizes", "excess error, λ* as is", "excess error, λ* via scaler"],
        gaps,
        caption="Excess test error over the grid's best λ at each batch size "
        "(mean ± std over seeds).",
    )

    plt = _report.plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if slopes is not None:
        for s in range(seeds):
            axes[0].plot(
                batches,
                np.asarray(lams)[err[s].argmin(1)],
                "o-",
                alpha=0.7,
                label=f"seed {s}: slope {slopes[s]:.2f}",
            )
    axes[0].plot(
        batches,
        [lam_star * b / ref for b in batches],
        "k--",
        label="the rule: λ*·b/b_ref (slope 1)",
    )
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="batch size b",
        ylabel="best λ of the grid",
        title="Best λ of a summed loss against b",
    )
    axes[0].legend(fontsize=7)
    ax = axes[1]
    ax.errorbar(
        batches,
        err[:, :, best_ref].mean(0),
        yerr=sd(err[:, :, best_ref]),
        fmt="o-",
        capsize=3,
        label=f"λ* = {lam_star:g} fixed",
    )
    ax.errorbar(
        batches,
        scaled.mean(0),
        yerr=sd(scaled),
        fmt="s-",
        capsize=3,
        label="λ* via RegularizationScaler('minibatch')",
    )
    ax.plot(batches, best_err.mean(0), "k:", label="best λ of the grid at each b")
    ax.axvline(ref, color="gray", lw=0.8)
    ax.set(
        xscale="log",
        xlabel="batch size b",
        ylabel=f"test error ({len(ds.y_test)} examples)",
        title=f"Reusing λ* at other batch sizes ({seeds} seeds)",
    )
    ax.legend(fontsize=7)
    _study.figure(args, fig)
    _study.verdicts(
        args,
        rows,
        title="7. Scaling λ with the batch size (summed loss)",
        note=(
            "MNIST-1D, MLP 100-100, Adam 2e-3, summed loss, L2(λ) on the kernels, "
            f"λ ∈ {lams}, b ∈ {batches}, b_ref = {ref}, {seeds} seeds (towers of one packed "
            f"model, seed {args.seed}); test errors on {len(ds.y_test)} "
            + ("fresh examples. " if not args.smoke else "examples. ")
            + (slope_against_rule(slopes) if slopes is not None and seeds > 1 else "")
            + " Near its best the test error changes with λ by about the seed noise, so "
            "reusing a λ that is off by a factor of 4–8 costs little here: the transfer "
            "test is weaker than the slope test."
        ),
    )


if __name__ == "__main__":
    main()
