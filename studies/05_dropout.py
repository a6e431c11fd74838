"""Study 5: dropout — weight scaling vs Monte-Carlo averaging — the evidence behind lesson 5.

Claims (Srivastava et al. 2014; Gal & Ghahramani 2016): one dropout sample is a poor
predictor and averaging sampled masks (Monte-Carlo dropout) helps; the weight-scaling rule
(``model.predict`` with Keras' inverted dropout) approximates that average; the spread of
the samples flags uncertain predictions.

Method (the tutorial's as of commit 9d4377c, moved unchanged): MLPs 256-256 on MNIST-1D,
Adam 2e-3, batch 100, 100 epochs, five seeds (initial weights and masks) trained side by
side in one Keras model (``_train.packed``: each trains exactly as alone), without dropout,
with ``kreg.layers.Dropout(0.2)`` on the inputs and ``Dropout(0.5)`` on the hidden units,
and with ``Dropout(0.5)`` on the hidden units only. The MC average is
``kreg.mc_predict`` of the same weights with 1 to 100 samples, every call from one fixed
seed. Verdicts: a paired t-test over seeds (two-sided, 5%) for "averaging helps"; an
equivalence test for "weight scaling matches the MC average" — reproduced if the 95%
interval of MC − weight scaling lies inside ±0.02 accuracy, not reproduced if it lies
outside, inconclusive if it straddles a bound. The AUROC rows (new as verdicts: the
tutorial reported the AUROCs without a test) use a t-test of the per-seed AUROC against
0.5, no signal.

Run: ``python studies/05_dropout.py`` (full; ``--quick``, ``--smoke``).
"""

import _study  # noqa: I001  (first: puts tutorials/ on sys.path)

import _data
import _report
import _train
import keras
import matplotlib.pyplot as plt
import numpy as np

import kreg

NAME = "05_dropout"
MARGIN = 0.02


def auroc(score, positive):
    """Area under the ROC curve of ``score`` for the boolean ``positive`` (rank formula)."""
    positive = np.asarray(positive, bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = np.empty(len(score))
    ranks[np.argsort(score, kind="mergesort")] = np.arange(1, len(score) + 1)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def train_towers(args, dataset, hidden, epochs, seeds, dropout, input_rate=0.2):
    """``seeds`` independent MLPs trained side by side -> (logits model, probabilities model).

    With ``dropout`` the hidden units keep 0.5 and the inputs ``1 - input_rate``.
    mc_predict averages probabilities, hence the softmax model.
    """
    keras.utils.set_random_seed(args.seed + (1 if dropout else 0))
    tower = _train.mlp_tower(
        dataset,
        hidden=hidden,
        input_dropout=(lambda: kreg.layers.Dropout(input_rate)) if dropout and input_rate else None,
        dropout=(lambda: kreg.layers.Dropout(0.5)) if dropout else None,
    )
    model = _train.packed(dataset, [tower for _ in range(seeds)])
    _train.compile_packed(model, keras.optimizers.Adam(2e-3))
    _train.fit_packed(
        model, dataset.x_train, dataset.y_train, batch_size=100, epochs=epochs, verbose=0
    )
    probabilities = keras.Model(model.inputs, [keras.layers.Softmax()(o) for o in model.outputs])
    return model, probabilities


def mc_average(args, probabilities, x, samples, seeds):
    """``kreg.mc_predict`` of every tower from one fixed seed -> ([mean], [std]) per tower."""
    keras.utils.set_random_seed(args.seed + 7)
    mean, std = kreg.mc_predict(probabilities, x, samples=samples, batch_size=250)
    return (list(mean), list(std)) if seeds > 1 else ([mean], [std])


def t_text(test):
    if test["n"] < 2:
        return "paired t-test needs 2 seeds"
    return f"paired t, |t| = {abs(test['t']):.2f} vs {test['t_crit']:.2f}"


def interval_text(test):
    low, high = _report.interval(test)
    if not np.isfinite(high - low):
        return "interval needs 2 seeds"
    return f"95% interval [{low:+.3f}, {high:+.3f}] vs ±{MARGIN}"


def main():
    args = _study.options(NAME)
    dataset = _data.from_args(args, "mnist1d")
    hidden = _study.pick(args, (16, 16), (256, 256), (256, 256))
    epochs = _study.pick(args, 1, 40, 100)
    seeds = _study.pick(args, 1, 2, 5)
    samples_grid = _study.pick(args, [1, 2], [1, 2, 5, 10, 30, 100], [1, 2, 5, 10, 30, 100])
    print(
        f"MLP {hidden[0]}-{hidden[1]} on {dataset.name}, Adam 2e-3, batch 100, {epochs} epochs, "
        f"{seeds} seed(s).",
        flush=True,
    )

    plain, _ = train_towers(args, dataset, hidden, epochs, seeds, dropout=False)
    # [seed, (accuracy, NLL)]
    base = np.array(_train.packed_scores(plain, dataset.x_test, dataset.y_test))
    model, probabilities = train_towers(args, dataset, hidden, epochs, seeds, dropout=True)
    scaling = np.array(_train.packed_scores(model, dataset.x_test, dataset.y_test))
    mc, mc_out = {}, {}
    for samples in samples_grid:
        mean, std = mc_average(args, probabilities, dataset.x_test, samples, seeds)
        mc[samples] = np.array([_train.scores_from_probs(m, dataset.y_test) for m in mean])
        mc_out[samples] = (mean, std)
    most, fewest = samples_grid[-1], samples_grid[0]

    rows = [
        ["no dropout", "-", _report.pm(base[:, 0]), _report.pm(base[:, 1])],
        [
            "dropout, weight scaling (model.predict)",
            "-",
            _report.pm(scaling[:, 0]),
            _report.pm(scaling[:, 1]),
        ],
    ]
    rows += [
        ["dropout, Monte-Carlo average", t, _report.pm(mc[t][:, 0]), _report.pm(mc[t][:, 1])]
        for t in samples_grid
    ]
    _study.table(
        args,
        "dropout",
        ["prediction", "samples", "test accuracy", "test NLL"],
        rows,
        caption="Input 0.2 + hidden 0.5 dropout: weight scaling vs the MC average of the "
        f"same weights, mean ± std over {seeds} seed(s).",
    )

    # Hidden units only: the inputs kept whole.
    hidden_model, hidden_probabilities = train_towers(
        args, dataset, hidden, epochs, seeds, dropout=True, input_rate=0.0
    )
    hidden_scaling = np.array(_train.packed_scores(hidden_model, dataset.x_test, dataset.y_test))[
        :, 0
    ]
    mean, _ = mc_average(args, hidden_probabilities, dataset.x_test, most, seeds)
    hidden_mc = np.array([_train.scores_from_probs(m, dataset.y_test)[0] for m in mean])

    # Does the spread flag the mistakes? AUROC of a score for "this prediction is wrong".
    scores = {"mc_predict std of p(predicted class)": [], "entropy of the MC mean": []}
    kept = {name: [] for name in scores}
    for mean, std in zip(*mc_out[most]):
        predicted = mean.argmax(-1)
        right = predicted == dataset.y_test
        entropy = -(mean * np.log(np.clip(mean, 1e-12, None))).sum(-1)
        for name, score in zip(scores, (std[np.arange(len(predicted)), predicted], entropy)):
            scores[name].append(auroc(score, ~right))
            order = np.argsort(score)
            kept[name].append(
                [
                    float(np.mean(right[order[: max(1, int(k * len(order)))]]))
                    for k in (1.0, 0.8, 0.5, 0.2)
                ]
            )
    _study.table(
        args,
        "uncertainty",
        [
            "score",
            "AUROC for wrong predictions",
            "acc (all)",
            "acc (most certain 80%)",
            "acc (50%)",
            "acc (20%)",
        ],
        [
            [name, _report.pm(scores[name], 2)] + list(np.mean(kept[name], axis=0))
            for name in scores
        ],
        caption=f"Keeping the test examples with the lowest score ({most} samples; "
        f"accuracies: mean over {seeds} seed(s)).",
    )

    one = _report.paired_test(mc[most][:, 0], mc[fewest][:, 0])
    gap = _report.paired_test(mc[most][:, 0], scaling[:, 0])
    hidden_gap = _report.paired_test(hidden_mc, hidden_scaling)
    dropped = _report.paired_test(hidden_scaling, scaling[:, 0])
    auroc_std = _report.paired_test(scores["mc_predict std of p(predicted class)"], [0.5] * seeds)
    auroc_entropy = _report.paired_test(scores["entropy of the MC mean"], [0.5] * seeds)

    def estimate(test):
        return f"{test['diff']:+.3f} ± {test['std']:.3f}"

    verdict_rows = [
        [
            "averaging dropout samples beats one sample (Srivastava et al. 2014)",
            f"accuracy, MC {most} − MC {fewest} sample(s), input 0.2 + hidden 0.5",
            seeds,
            estimate(one),
            t_text(one),
            _report.verdict(one),
        ],
        [
            "weight scaling matches the MC average",
            f"accuracy, MC {most} − weight scaling, input 0.2 + hidden 0.5",
            seeds,
            estimate(gap),
            interval_text(gap) + f"; {t_text(gap)}",
            _report.equivalence(gap, MARGIN),
        ],
        [
            "weight scaling matches the MC average",
            f"accuracy, MC {most} − weight scaling, hidden 0.5 only",
            seeds,
            estimate(hidden_gap),
            interval_text(hidden_gap) + f"; {t_text(hidden_gap)}",
            _report.equivalence(hidden_gap, MARGIN),
        ],
        [
            "input dropout costs accuracy on MNIST-1D's 40-point signals",
            (
                "weight-scaling accuracy, hidden only − input + hidden (independent runs, "
                "seeds matched by index)"
            ),
            seeds,
            estimate(dropped),
            t_text(dropped),
            _report.verdict(dropped),
        ],
        [
            "the MC spread flags wrong predictions (Gal & Ghahramani 2016)",
            f"AUROC of the std of p(predicted class) for wrong predictions ({most} samples) − 0.5",
            seeds,
            estimate(auroc_std),
            t_text(auroc_std),
            _report.verdict(auroc_std),
        ],
        [
            "the MC mean's entropy flags wrong predictions",
            "AUROC of the entropy of the MC mean for wrong predictions − 0.5",
            seeds,
            estimate(auroc_entropy),
            t_text(auroc_entropy),
            _report.verdict(auroc_entropy),
        ],
    ]

    figure, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    counts = list(mc)
    for axis, k, label in ((axes[0], 0, "test accuracy"), (axes[1], 1, "test NLL")):
        means = np.array([mc[t][:, k].mean() for t in counts])
        spreads = np.array([_report.mean_std(mc[t][:, k])[1] for t in counts])
        axis.semilogx(counts, means, "o-", label="MC average")
        axis.fill_between(counts, means - spreads, means + spreads, alpha=0.25)
        for values, style, name in (
            (scaling, {"color": "tab:red", "ls": "--"}, "weight scaling"),
            (base, {"color": "gray", "ls": ":"}, "no dropout"),
        ):
            mu, sd = _report.mean_std(values[:, k])
            axis.axhline(mu, label=name, **style)
            axis.axhspan(mu - sd, mu + sd, alpha=0.12, color=style["color"])
        axis.set(xlabel="MC samples", ylabel=label)
        axis.legend(fontsize=7)
    mean, std = mc_out[most][0][0], mc_out[most][1][0]
    predicted = mean.argmax(-1)
    spread = std[np.arange(len(predicted)), predicted]
    right = predicted == dataset.y_test
    bins = np.linspace(0, max(spread.max(), 1e-6), 30)
    axes[2].hist(spread[right], bins=bins, alpha=0.6, label="correct", density=True)
    axes[2].hist(spread[~right], bins=bins, alpha=0.6, label="wrong", density=True)
    axes[2].set(
        xlabel="std of p(predicted class)",
        ylabel="density",
        title=f"mc_predict spread ({most} samples, seed 0)",
    )
    axes[2].legend(fontsize=7)
    _study.figure(args, figure)
    _study.verdicts(
        args,
        verdict_rows,
        title="Study 5: dropout, weight scaling vs Monte-Carlo averaging",
        note=f"Weight scaling is `model.predict` (kreg's Dropout with mc=False); the "
        f"MC average is `kreg.mc_predict` of the same weights. Equivalence margin "
        f"±{MARGIN} accuracy. MLP {hidden[0]}-{hidden[1]}, {epochs} epochs, "
        f"MNIST-1D's 1000 test examples.",
    )


if __name__ == "__main__":
    main()
