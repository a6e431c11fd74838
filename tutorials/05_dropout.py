"""Tutorial 5: dropout — weight scaling vs Monte-Carlo averaging, and what the spread says.

Claim (Srivastava et al. 2014): dropout trains an ensemble of 2^N weight-sharing
sub-networks; keep probabilities of 0.8 for inputs and 0.5 for hidden units are typical.
At prediction the original method scales the outgoing weights by p (Keras' inverted
dropout scales by 1/p during training instead — equivalent), a cheap approximation of
the ensemble's average. The ensemble can also be averaged for real, by sampling masks at
prediction time (Monte-Carlo dropout, Gal & Ghahramani 2016); the spread of the samples
is a measure of uncertainty.

In Keras 3 the usual MC recipe, ``Dropout(...)(x, training=True)`` in a functional model,
silently does nothing under ``model.predict``. kreg's ``Dropout(rate, mc=True)`` stays
stochastic at inference, and ``kreg.mc_predict(model, x, samples)`` samples every kreg
stochastic layer (whatever its ``mc`` setting) and returns the mean and the standard
deviation over the passes. Here the model's dropout layers have ``mc=False``, so
``model.predict`` *is* the weight-scaling rule and ``mc_predict`` the MC average of the
very same weights.

Run: ``python tutorials/05_dropout.py --quick``
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

SLUG = "05_dropout"
TITLE = "5. Dropout: weight scaling vs Monte-Carlo averaging"


def auroc(score, positive):
    """Area under the ROC curve of ``score`` for the boolean ``positive`` (rank formula)."""
    positive = np.asarray(positive, bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = np.empty(len(score))
    ranks[np.argsort(score, kind="mergesort")] = np.arange(1, len(score) + 1)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def run(args, report):
    plt = _report.plt
    ds = _data.from_args(args, "mnist1d")
    hidden = _report.pick(args, (16, 16), (256, 256), (512, 512))
    epochs = _report.pick(args, 1, 40, 200)
    samples_grid = _report.pick(args, [1, 2], [1, 2, 5, 10, 30, 100], [1, 2, 5, 10, 30, 100, 300])
    report.say(f"Data: {ds}. MLP {hidden[0]}-{hidden[1]}, Adam 2e-3, batch 100, {epochs} epochs; "
               "dropout keeps 0.8 of the inputs and 0.5 of the hidden units "
               "(kreg.layers.Dropout(0.2) and Dropout(0.5)).")

    def build(dropout):
        keras.utils.set_random_seed(args.seed)
        model = _train.mlp(
            ds, hidden=hidden,
            input_dropout=(lambda: kreg.layers.Dropout(0.2)) if dropout else None,
            dropout=(lambda: kreg.layers.Dropout(0.5)) if dropout else None)
        _train.compile(model, keras.optimizers.Adam(2e-3))
        model.fit(ds.x_train, ds.y_train, batch_size=100, epochs=epochs, verbose=0)
        # The same layers with a softmax on top: mc_predict averages probabilities, not logits.
        return model, keras.Model(model.inputs, keras.layers.Softmax()(model.outputs[0]))

    plain, _ = build(dropout=False)
    base_acc, base_nll = _train.scores(plain, ds.x_test, ds.y_test)
    model, probs_model = build(dropout=True)
    ws_acc, ws_nll = _train.scores(model, ds.x_test, ds.y_test)

    rows = [["no dropout", "-", base_acc, base_nll],
            ["dropout, weight scaling (model.predict)", "-", ws_acc, ws_nll]]
    mc = {}
    for t in samples_grid:
        keras.utils.set_random_seed(args.seed + 7)
        mean, std = kreg.mc_predict(probs_model, ds.x_test, samples=t, batch_size=250)
        acc, nll = _train.scores_from_probs(mean, ds.y_test)
        mc[t] = (acc, nll, mean, std)
        rows.append(["dropout, Monte-Carlo average", t, acc, nll])
    report.table("dropout", ["prediction", "samples", "test accuracy", "test NLL"], rows,
                 caption="Weight-scaling inference vs Monte-Carlo averaging of the same weights.")

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    ts = list(mc)
    for ax, k, label in ((axes[0], 0, "test accuracy"), (axes[1], 1, "test NLL")):
        ax.semilogx(ts, [mc[t][k] for t in ts], "o-", label="MC average")
        ax.axhline((ws_acc, ws_nll)[k], color="tab:red", ls="--", label="weight scaling")
        ax.axhline((base_acc, base_nll)[k], color="gray", ls=":", label="no dropout")
        ax.set(xlabel="MC samples", ylabel=label)
        ax.legend(fontsize=7)
    t_max = ts[-1]
    mean, std = mc[t_max][2], mc[t_max][3]
    pred = mean.argmax(-1)
    spread = std[np.arange(len(pred)), pred]
    right = pred == ds.y_test
    bins = np.linspace(0, max(spread.max(), 1e-6), 30)
    axes[2].hist(spread[right], bins=bins, alpha=0.6, label="correct", density=True)
    axes[2].hist(spread[~right], bins=bins, alpha=0.6, label="wrong", density=True)
    axes[2].set(xlabel="std of p(predicted class)", ylabel="density",
                title=f"mc_predict spread ({t_max} samples)")
    axes[2].legend(fontsize=7)
    report.figure(fig, "mc_dropout", "Left, centre: MC averaging approaches (and here passes) "
                  "the weight-scaling rule as samples grow. Right: the predictive standard "
                  "deviation of the predicted class's probability, on right and wrong predictions.")

    # Does the spread flag the mistakes? The AUROC of a score for "this prediction is
    # wrong" (0.5 = no signal, 1 = perfect). The entropy of the MC mean is shown alongside.
    entropy = -(mean * np.log(np.clip(mean, 1e-12, None))).sum(-1)
    unc_rows = []
    for label, score in (("mc_predict std of p(predicted class)", spread),
                         ("entropy of the MC mean", entropy)):
        order = np.argsort(score)
        kept = [float(np.mean(right[order[: max(1, int(k * len(order)))]]))
                for k in (1.0, 0.8, 0.5, 0.2)]
        unc_rows.append([label, auroc(score, ~right)] + kept)
    report.table("uncertainty", ["score", "AUROC for wrong predictions", "acc (all)",
                                 "acc (most certain 80%)", "acc (50%)", "acc (20%)"],
                 unc_rows, caption="Keeping only the test examples with the lowest score.")

    best_t = max(mc, key=lambda t: mc[t][0])
    report.say(
        f"Weight scaling: accuracy {ws_acc:.3f}, NLL {ws_nll:.3f}. MC with {t_max} samples: "
        f"{mc[t_max][0]:.3f}, NLL {mc[t_max][1]:.3f}; with 1 sample {mc[ts[0]][0]:.3f} "
        f"(NLL {mc[ts[0]][1]:.3f}). No dropout: {base_acc:.3f} (NLL {base_nll:.3f}). "
        f"Mean std on correct predictions {spread[right].mean():.3f} vs wrong "
        f"{spread[~right].mean() if (~right).any() else float('nan'):.3f}."
    )
    close = abs(mc[t_max][0] - ws_acc) <= 0.02
    report.say(
        ("Reproduced" if close and mc[ts[0]][0] < mc[t_max][0] else "Not reproduced on this run")
        + f": one dropout sample is a poor predictor ({mc[ts[0]][0]:.3f}); the MC average "
        f"improves with samples and reaches {mc[t_max][0]:.3f}, "
        f"{'within 0.02 of' if close else 'not within 0.02 of'} the one-pass weight-scaling "
        f"rule ({ws_acc:.3f}). In NLL weight scaling is "
        f"{'better' if ws_nll < mc[t_max][1] else 'worse'} ({ws_nll:.3f} vs {mc[t_max][1]:.3f}).")
    report.say(
        f"Uncertainty: the AUROC of the MC standard deviation for spotting wrong predictions "
        f"is {unc_rows[0][1]:.2f} (0.5 = no signal) and of the MC mean's entropy "
        f"{unc_rows[1][1]:.2f}. "
        + ("On this data the standard deviation is a useful error signal."
           if unc_rows[0][1] > 0.6 else
           "On this data the standard deviation of the predicted class's probability is "
           "NOT a useful error signal: it is largest for confident-but-unstable predictions "
           "and small when every sample spreads its probability thinly (mostly wrong "
           "cases); the entropy of the averaged prediction is the better score.")
    )
    return {"weight_scaling_acc": ws_acc, "mc_acc": mc[t_max][0], "no_dropout_acc": base_acc,
            "mc_best_samples": best_t}


def main(argv=None):
    return _report.main(run, SLUG, TITLE, __doc__, argv)


if __name__ == "__main__":
    main()
