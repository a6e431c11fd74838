"""Study 11: corrected weight decay — does AdamW's gradient norm rise at the end, and does
``follow="corrected"`` keep it flat?

Claim (Defazio et al. 2025, "Why Gradients Rapidly Increase Near the End of Training",
arXiv 2506.02285): for a weight matrix followed by a normalization layer the loss does not
depend on the matrix's scale, so its gradient is orthogonal to it and its norm goes as
1/‖w‖. Weight decay balances the updates' growth of ‖w‖ against its shrinkage: with AdamW
(a decay of lr_t·λ per step) the balance ‖w‖ ∝ √(lr_t/λ) shrinks as a cosine schedule takes
lr_t to 0, so near the end ‖w‖ falls and the gradient norm rises. The corrected decay
(``kreg.optimizers.DecoupledWeightDecay(..., follow="corrected")``: λ·lr_t²/lr_max per step,
timm's ``corrected_weight_decay``) keeps the balance at √(lr_max/λ) whatever lr_t is, so
the gradient norm stays flat — and the paper reports lower losses with it.

Design (fixed before the full run; the exploratory runs that chose the regime and λ used
3 towers of seed 0 and are described below):

* Network: an MLP 100-100 whose hidden layers are ``Dense(use_bias=False)`` →
  ``LayerNormalization(epsilon=1e-6)`` → ReLU, then a linear read-out: both hidden kernels
  are scale-invariant (LayerNorm's default epsilon, 1e-3, would break the invariance once
  ‖w‖ shrinks). Decay (λ = 1) on the two hidden kernels only: they are the weights the
  claim is about, and the paper's AdamC applies the corrected rule only to normalized
  layers (AdamW's decay on the others, e.g. the output layer). A kreg wrapper has one
  ``follow`` rule for all its weights and cannot wrap a second one, so the read-out and
  the LayerNorm parameters are decayed in neither arm: the two arms differ only in the
  rule on the normalized kernels.
* Training: Adam, lr 1e-2 with ``keras.optimizers.schedules.CosineDecay`` to 0 over 1500
  steps of batch 128; AdamW is ``follow="learning_rate"`` (decay lr_t·λ, 1e-2 per step at
  the peak: a timescale of 100 steps, 15 of them in training), corrected is
  ``follow="corrected"`` with the same λ. Each seed is one tower of a packed model
  (``_train.packed``: each trains exactly as alone); the two arms' models are built from
  the same seed, so tower k starts from the same weights in both and sees the same
  batches: the comparison is paired by seed.
* Two regimes. **Fresh data** (the paper's: LLM pre-training and ImageNet never drive the
  training loss to 0): 48000 fresh MNIST-1D training sequences from the same generator
  (seed 44), 4 passes. **MNIST-1D's 3500** training sequences (the tutorials' split), 55
  passes over the same 1500 steps, where the MLP fits its data. The exploratory runs
  showed both: with fresh data AdamW's gradient norm rose by ~1.2× and the corrected one
  stayed within ~10 %; on the 3500 examples the gradient norm *fell* at the end in both
  arms (the fit drives the training gradient toward 0), less with AdamW.
* Gradient norm: the norm of the whole network's gradient (all trainable weights) of the
  training loss (mean cross-entropy) on a minibatch of 128 training examples, the quantity
  the paper plots (the minibatch gradient the optimizer receives), averaged over 8 fixed
  minibatches drawn once, evaluated at 40 points of training (every 37–38 steps). Fixed
  batches, not the running batches of each step: the change over time then comes from the
  weights alone, not from which batches were drawn, and the same 8 serve both arms. The
  weight norm is that of the two normalized kernels.
* Measure: the rise R = mean gradient norm over the last 10 % of training (the last 4
  points) / mean over 45–55 % (points 19–22), per seed; tests on log R over seeds.
  "AdamW's gradient norm rises": log R_AdamW > 0 by a one-sample t-test (two-sided 5 %)
  and R ≥ 1.05. "The corrected rule rises less": log R_AdamW − log R_corrected > 0, paired
  t-test. "The corrected rule keeps it flat": the 95 % interval of log R_corrected inside
  ±log 1.1 (an equivalence test: a change of less than 10 %). Final test error (20000
  fresh MNIST-1D examples) and final training loss (the whole training set): AdamW −
  corrected > 0, paired t-tests (the paper: lower losses with the correction).

Run: ``KERAS_BACKEND=jax python studies/11_corrected_weight_decay.py`` (full: 12 seeds;
``--quick``: 3 seeds; ``--smoke``: seconds).
"""

import _study  # noqa: I001  (first: puts tutorials/ on sys.path)

import math

import _data
import _report
import _train
import keras
import numpy as np

import kreg

NAME = "11_corrected_weight_decay"
ARMS = {"AdamW": "learning_rate", "corrected": "corrected"}
LAMBDA = 1.0
LEARNING_RATE = 1e-2
BATCH = 128
RISE = math.log(1.05)  # the smallest rise that counts as one
FLAT = math.log(1.10)  # "flat": a change of less than 10 %


def windows(points):
    """Indices of the probe points at 45–55 % of training and in its last 10 %."""
    progress = (np.arange(points) + 1) / points
    mid = np.flatnonzero((progress > 0.45 + 1e-9) & (progress <= 0.55 + 1e-9))
    end = np.flatnonzero(progress > 0.9 + 1e-9)
    return mid, end


def tower(width):
    """A tower for ``_train.packed``: [Dense(no bias) → LayerNorm → ReLU] × 2 → logits."""

    def build(inputs, prefix):
        x = keras.layers.Flatten(name=prefix + "flatten")(inputs)
        for i in range(2):
            x = keras.layers.Dense(width, use_bias=False, name=f"{prefix}dense_{i}")(x)
            x = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}norm_{i}")(x)
            x = keras.layers.ReLU(name=f"{prefix}relu_{i}")(x)
        return keras.layers.Dense(10, name=prefix + "logits")(x)

    return build


def gradient_function(model):
    """``(x, y) -> [gradient per trainable variable]`` of the summed towers' training loss.

    Tower k's weights reach only tower k's loss, so the gradient of the sum is each
    tower's own gradient. One function per backend (the studies run on JAX; the test of
    ``--smoke`` may run on TensorFlow or torch).
    """
    loss = _train.loss()
    variables = model.trainable_variables

    def total(outputs, y):
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return sum(loss(y, output) for output in outputs)

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def objective(trainable, non_trainable, x, y):
            outputs, _ = model.stateless_call(trainable, non_trainable, x, training=True)
            return total(outputs, y)

        grad = jax.jit(jax.grad(objective))
        return lambda x, y: grad(
            [v.value for v in variables], [v.value for v in model.non_trainable_variables], x, y
        )
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def grad(x, y):
            with tf.GradientTape() as tape:
                value = total(model(x, training=True), y)
            return tape.gradient(value, variables)

        return grad
    if backend == "torch":
        import torch

        def grad(x, y):
            value = total(model(x, training=True), torch.as_tensor(y))
            return torch.autograd.grad(value, [v.value for v in variables])

        return grad
    raise ValueError(f"No gradient function for the {backend} backend.")


class Probe:
    """Per tower: the mean gradient norm over fixed minibatches; the normalized kernels' norm."""

    def __init__(self, model, towers, x, y):
        self.grad = gradient_function(model)
        self.x, self.y = x, y
        paths = [v.path for v in model.trainable_variables]
        self.groups = [
            [j for j, p in enumerate(paths) if p.startswith(f"net{k}_")] for k in range(towers)
        ]
        self.kernels = [[j for j in group if "dense_" in paths[j]] for group in self.groups]
        self.model = model

    def __call__(self):
        gradient = np.zeros(len(self.groups))
        for x, y in zip(self.x, self.y):
            squares = np.array(
                [
                    np.sum(np.square(keras.ops.convert_to_numpy(g), dtype="float64"))
                    for g in self.grad(x, y)
                ]
            )
            gradient += np.sqrt([squares[group].sum() for group in self.groups]) / len(self.x)
        weights = [keras.ops.convert_to_numpy(v.value) for v in self.model.trainable_variables]
        norm = [
            math.sqrt(sum(float(np.sum(np.square(weights[j], dtype="float64"))) for j in kernels))
            for kernels in self.kernels
        ]
        return gradient, np.array(norm)


def train_arm(args, ds, x_train, y_train, follow, seeds, width, steps, points, probe_batches):
    """One arm: ``seeds`` towers trained side by side; returns the curves and final scores."""
    keras.utils.set_random_seed(args.seed)  # the same initial weights in both arms
    model = _train.packed(ds, [tower(width) for _ in range(seeds)])
    schedule = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)
    optimizer = kreg.optimizers.DecoupledWeightDecay(
        keras.optimizers.Adam(schedule),
        LAMBDA,
        follow=follow,
        exclude=lambda v: "dense_" not in v.path,
    )  # the normalized kernels only
    _train.compile_packed(model, optimizer)
    probe = Probe(model, seeds, *probe_batches)
    # The same batches in both arms: passes of a seeded permutation, cut into `points`
    # chunks of whole batches; the probe runs after each chunk.
    n = len(y_train)
    passes = math.ceil(steps * BATCH / n)
    rng = np.random.RandomState(args.seed + 1)
    order = np.concatenate([rng.permutation(n) for _ in range(passes)])[: steps * BATCH]
    bounds = np.linspace(0, steps, points + 1).astype(int) * BATCH
    gradient, weight, lr = [], [], []
    for point in range(points):
        chunk = order[bounds[point] : bounds[point + 1]]
        _train.fit_packed(
            model,
            x_train[chunk],
            y_train[chunk],
            batch_size=BATCH,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        g, w = probe()
        gradient.append(g)
        weight.append(w)
        lr.append(float(keras.ops.convert_to_numpy(schedule(bounds[point + 1] // BATCH))))
    test = _train.packed_scores(model, ds.x_test, ds.y_test)
    train = _train.packed_scores(model, x_train, y_train)
    return {
        "gradient": np.array(gradient).T,
        "weight": np.array(weight).T,  # [seed, point]
        "lr": np.array(lr),
        "test_error": 1 - np.array([a for a, _ in test]),
        "train_loss": np.array([nll for _, nll in train]),
        "decay_late": optimizer.decay_per_step(step=int(0.9 * steps)),
    }


def rise(gradient):
    """Per seed: mean gradient norm over the last 10 % / over 45–55 % of training."""
    mid, end = windows(gradient.shape[1])
    return gradient[:, end].mean(1) / gradient[:, mid].mean(1)


def ci_text(test, transform=None, digits=3):
    if test["n"] < 2:
        return "1 seed: no test"
    lo, hi = _report.interval(test)
    t = f"t-test, |t| = {abs(test['t']):.2f} vs {test['t_crit']:.2f}"
    if transform == "ratio":
        return f"95% CI ×[{math.exp(lo):.3f}, {math.exp(hi):.3f}]; {t}"
    return f"95% CI [{lo:+.{digits}f}, {hi:+.{digits}f}]; paired {t}"


def ratio_estimate(log_values):
    m, s = _report.mean_std(log_values)
    return f"×{math.exp(m):.3f} (log {m:+.3f} ± {s:.3f})"


def difference_estimate(values, digits=4):
    m, s = _report.mean_std(values)
    return f"{m:+.{digits}f} ± {s:.{digits}f}"


def regime_rows(label, seeds, arms):
    """The verdict rows of one regime."""
    adamw, corrected = (
        np.log(rise(arms["AdamW"]["gradient"])),
        np.log(rise(arms["corrected"]["gradient"])),
    )
    zeros = np.zeros(seeds)
    rises = _report.paired_test(adamw, zeros)
    less = _report.paired_test(adamw, corrected)
    flat = _report.paired_test(corrected, zeros)
    flat_lo, flat_hi = _report.interval(flat)
    test_error = _report.paired_test(arms["AdamW"]["test_error"], arms["corrected"]["test_error"])
    train_loss = _report.paired_test(arms["AdamW"]["train_loss"], arms["corrected"]["train_loss"])
    measure = "R = grad norm, last 10 % / 45–55 % of training"
    flat_interval = (
        "1 seed: no interval"
        if seeds < 2
        else f"95% CI ×[{math.exp(flat_lo):.3f}, {math.exp(flat_hi):.3f}] vs "
        f"×[{math.exp(-FLAT):.3f}, {math.exp(FLAT):.3f}]"
    )
    return [
        [
            f"AdamW's gradient norm rises at the end ({label})",
            f"{measure}, AdamW",
            seeds,
            ratio_estimate(adamw),
            ci_text(rises, "ratio") + ", R ≥ 1.05 to count",
            _report.verdict(rises, min_effect=RISE),
        ],
        [
            f"the corrected rule's rises less ({label})",
            "R_AdamW / R_corrected, paired",
            seeds,
            ratio_estimate(adamw - corrected),
            ci_text(less, "ratio"),
            _report.verdict(less),
        ],
        [
            f"the corrected rule keeps it flat ({label})",
            f"{measure}, corrected",
            seeds,
            ratio_estimate(corrected),
            flat_interval,
            _report.equivalence(flat, FLAT),
        ],
        [
            f"the corrected rule ends with a lower training loss ({label})",
            "final training cross-entropy, AdamW − corrected",
            seeds,
            difference_estimate(arms["AdamW"]["train_loss"] - arms["corrected"]["train_loss"]),
            ci_text(train_loss, digits=4),
            _report.verdict(train_loss),
        ],
        [
            f"the corrected rule ends with a lower test error ({label})",
            "final test error, AdamW − corrected",
            seeds,
            difference_estimate(arms["AdamW"]["test_error"] - arms["corrected"]["test_error"]),
            ci_text(test_error, digits=4),
            _report.verdict(test_error),
        ],
    ]


def main():
    args = _study.options(NAME)
    ds = _data.from_args(args, "mnist1d", mnist1d_test_size=20000)
    seeds = _study.pick(args, 1, 3, 12)
    width = _study.pick(args, 16, 100, 100)
    steps = _study.pick(args, 8, 1500, 1500)
    fresh_size = _study.pick(args, None, 48000, 48000)
    points = _study.pick(args, 4, 40, 40)  # gradient-norm probes over training
    probe_count = _study.pick(args, 1, 8, 8)  # fixed minibatches per probe
    mid, end = windows(points)
    print(f"Data: {ds}.", flush=True)
    regimes = {}
    if fresh_size:  # not with --smoke: it generates nothing and runs the small split only
        # Fresh sequences from MNIST-1D's generator (another seed; standardized as the
        # paper's set): never fitted, as in the paper's runs.
        x_fresh, y_fresh = _data._mnist1d_arrays(44, fresh_size, 1.0)[:2]
        regimes[f"{fresh_size} fresh examples"] = (
            x_fresh.astype("float32"),
            y_fresh.astype("int64"),
        )
    regimes[f"MNIST-1D's {len(ds.y_train)} examples"] = (ds.x_train, ds.y_train)
    print(
        f"MLP {width}-{width} with LayerNorm after each bias-free Dense, Adam {LEARNING_RATE:g} "
        f"with cosine decay to 0 over {steps} steps of batch {BATCH}, λ = {LAMBDA:g} on the "
        f"normalized kernels; {seeds} seed(s); regimes: {', '.join(regimes)}.",
        flush=True,
    )

    results, rows, detail = {}, [], []
    for label, (x_train, y_train) in regimes.items():
        rng = np.random.RandomState(args.seed + 2)
        probe_size = probe_count * BATCH
        pick = rng.choice(len(y_train), probe_size, replace=probe_size > len(y_train))
        shape = (-1, BATCH) + x_train.shape[1:]
        probe_batches = (x_train[pick].reshape(shape), y_train[pick].reshape(-1, BATCH))
        arms = {}
        for arm, follow in ARMS.items():
            arms[arm] = train_arm(
                args, ds, x_train, y_train, follow, seeds, width, steps, points, probe_batches
            )
            print(f"  {label}, {arm}: done", flush=True)
        results[label] = arms
        rows += regime_rows(label, seeds, arms)
        for arm, r in arms.items():
            detail.append(
                [
                    label,
                    arm,
                    _report.pm(rise(r["gradient"])),
                    _report.pm(r["gradient"][:, mid].mean(1)),
                    _report.pm(r["gradient"][:, end].mean(1)),
                    _report.pm(r["weight"][:, mid].mean(1), 2),
                    _report.pm(r["weight"][:, -1], 2),
                    _report.pm(r["train_loss"], 4),
                    _report.pm(r["test_error"], 4),
                ]
            )
    _study.table(
        args,
        "curves",
        [
            "regime",
            "rule",
            "rise R",
            "grad norm, 45–55 %",
            "grad norm, last 10 %",
            "‖normalized kernels‖, 45–55 %",
            "‖…‖ at the end",
            "final train loss",
            "final test error",
        ],
        detail,
        caption=f"Mean ± std over {seeds} seed(s) (tower k: the same initial weights "
        "and batches in both rules).",
    )

    plt = _report.plt
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.5))
    labels = list(results)
    progress = (np.arange(points) + 1) / points
    colours = {"AdamW": "tab:red", "corrected": "tab:blue"}
    panels = (
        (axes[0], labels[0], "gradient", f"gradient norm ({probe_count} fixed minibatches)"),
        (axes[1], labels[0], "weight", "‖normalized kernels‖"),
        (axes[2], labels[-1], "gradient", f"gradient norm ({probe_count} fixed minibatches)"),
    )
    for ax, label, key, ylabel in panels:
        for arm, r in results[label].items():
            values = r[key]
            ax.plot(progress, values.mean(0), color=colours[arm], label=f"{arm} ({ARMS[arm]})")
            ax.fill_between(progress, values.min(0), values.max(0), color=colours[arm], alpha=0.2)
        for span in (mid, end):
            ax.axvspan(progress[span][0] - 1 / points, progress[span][-1], color="gray", alpha=0.1)
        ax.set(xlabel="fraction of training", ylabel=ylabel, title=label)
        lr_axis = ax.twinx()
        lr_axis.plot(progress, results[label]["AdamW"]["lr"], color="gray", ls=":", lw=1)
        lr_axis.set_ylim(0, 1.05 * LEARNING_RATE)
        lr_axis.set_yticks([])
        ax.legend(fontsize=7, title="lr (dotted)", title_fontsize=7)
    ax = axes[3]
    for i, label in enumerate(labels):
        for j, arm in enumerate(ARMS):
            r = rise(results[label][arm]["gradient"])
            ax.scatter(
                np.full(len(r), 2 * i + j) + np.linspace(-0.15, 0.15, len(r)),
                r,
                color=colours[arm],
                s=14,
                label=arm if i == 0 else None,
            )
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhspan(math.exp(-FLAT), math.exp(FLAT), color="gray", alpha=0.12)
    ax.set_xticks([2 * i + 0.5 for i in range(len(labels))], labels, fontsize=7)
    ax.set(
        yscale="log",
        ylabel="rise R (per seed; band: ±10 %)",
        title="grad norm: last 10 % / 45–55 %",
    )
    ax.legend(fontsize=7)
    _study.figure(args, fig)

    decay_late = {arm: results[labels[0]][arm]["decay_late"] for arm in ARMS}
    _study.verdicts(
        args,
        rows,
        title="11. Corrected weight decay (Defazio et al. 2025)",
        note=(
            f"MLP {width}-{width}, each hidden layer Dense(no bias) → LayerNormalization → "
            f"ReLU; Adam {LEARNING_RATE:g} with CosineDecay to 0 over {steps} steps of batch "
            f"{BATCH}; kreg.optimizers.DecoupledWeightDecay(adam, {LAMBDA:g}, follow=...) on "
            "the normalized kernels only (the paper's AdamC corrects the normalized layers; "
            "the read-out is decayed in neither arm): follow='learning_rate' (AdamW, "
            f"lr_t·λ per step) vs 'corrected' (λ·lr_t²/lr_max). {seeds} seed(s) (towers of "
            f"packed models from seed {args.seed}, the same initial weights and batches in "
            "both rules). Gradient norm: the whole network's, mean over "
            f"{probe_count} fixed training "
            f"minibatches of {BATCH}, at {points} points of training. Test errors on "
            f"{len(ds.y_test)} "
            + ("fresh " if not args.smoke else "")
            + "MNIST-1D examples. At 90 % of training the decay per step is "
            f"{decay_late['AdamW']:.2e} (AdamW) and {decay_late['corrected']:.2e} "
            "(corrected), against 1e-2 for both at the peak."
        ),
    )


if __name__ == "__main__":
    main()
