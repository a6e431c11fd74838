"""Study 9: what live strengths save a hyperparameter search, and what transferring λ saves.

Claim 1: every regularizer adds a hyperparameter, and a search that builds a new model per
trial (keras-tuner) traces a new train step per trial; ``kreg.strengths(model)`` makes λ,
the dropout rate and the noise σ variables of one compiled model, so the same trials on
that model trace only once. Measured as the first epoch's extra time (first epoch minus
the median of the others) of each trial after the first, keras-tuner vs live strengths,
paired by trial.

Claim 2 (Bengio 2012): ``RegularizationScaler("minibatch")`` reads a strength as λ_full of
the full-batch objective Σᵢℓᵢ + λ_full·R(w) and gives each step of Keras' mean-reduced loss
λ_full/N. A λ found per step on N_s examples is λ_full = λ·N_s, so on all N examples a step
gets λ·N_s/N. Transferring it that way saves a new search at the full size:
measured, over seeds, as the trials a new random search at full size needs before its pick
(by validation accuracy) reaches the transferred run's test accuracy (within 0.01), minus
one; one-sided t-test of the mean saving > 0. Reusing λ as is (no scaler) is compared too.

Method (moved unchanged from tutorial 9's parts A, B (a) and C): MNIST-1D, an MLP 100-100,
Adam 2e-3, batch 100; keras_tuner.RandomSearch over λ log-uniform in [1e-6, 1e-2], dropout
rate and σ uniform in [0, 0.5], 10 trials of 25 epochs, scored by the best validation
accuracy; the transfer over 5 seeds, 12 trials at the full size, 14 at a quarter, 30 epochs.
Tutorial 9's part B (b), strengths annealed within one fit (one seed, no verdict), is a
demonstration: it lives in the lesson, whose full mode keeps its sizes.

    python studies/09_more_hyperparameters.py          # full run: 2.7 min, JAX, busy 2-core CPU
    python studies/09_more_hyperparameters.py --quick
"""

import _study  # noqa: I001  (first: puts tutorials/ on sys.path)

import tempfile
import time

import _data
import _report
import _train
import keras
import numpy as np

import kreg

NAME = "09_more_hyperparameters"

HIDDEN = (100, 100)
LR = 2e-3
# 100 divides MNIST-1D's 3500 training and 500 validation examples: no partial last batch,
# so each step function is traced once (a partial batch costs JAX a second trace).
BATCH = 100
#: The search space of every part: λ log-uniform, rate and σ uniform.
SPACE = {"l2": (1e-6, 1e-2), "rate": (0.0, 0.5), "stddev": (0.0, 0.5)}
#: How close (test accuracy) a new search must come to the transferred run to count as
#: "reached": about the binomial standard error of 1000 test examples at 70%.
TOLERANCE = 0.01


def build(ds, l2, rate, stddev):
    """The MNIST-1D MLP with the three strengths to search; compiled with Adam."""
    inputs = keras.Input(ds.input_shape)
    x = keras.layers.Flatten()(inputs)
    x = kreg.layers.GaussianNoise(stddev, name="noise")(x)
    for i, h in enumerate(HIDDEN):
        x = keras.layers.Dense(
            h, activation="relu", name=f"dense_{i}", kernel_regularizer=kreg.regularizers.L2(l2)
        )(x)
        x = kreg.layers.Dropout(rate, name=f"dropout_{i}")(x)
    outputs = keras.layers.Dense(
        ds.num_classes, name="logits", kernel_regularizer=kreg.regularizers.L2(l2)
    )(x)
    return _train.compile(keras.Model(inputs, outputs), keras.optimizers.Adam(LR))


class EpochClock(keras.callbacks.Callback):
    """Records each fit's epoch times in a list shared by every copy.

    keras-tuner deep-copies the callbacks of each trial, so the record lives in a list the
    copies share (``__deepcopy__`` returns a copy that points to the same list).
    """

    def __init__(self, record):
        super().__init__()
        self.record = record

    def __deepcopy__(self, memo):
        return EpochClock(self.record)

    def on_train_begin(self, logs=None):
        self.record.append([])

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.record[-1].append(time.perf_counter() - self._t)


def compile_cost(epoch_times):
    """The first epoch's time minus the median of the others: the step's trace/compile."""
    if len(epoch_times) < 2:
        return float("nan")
    return float(epoch_times[0] - np.median(epoch_times[1:]))


# ---------------------------------------------------------------- Part A: keras-tuner
def search(args, ds, workdir):
    import keras_tuner as kt

    trials = _study.pick(args, 2, 4, 10)
    epochs = _study.pick(args, 2, 6, 25)

    def hypermodel(hp):
        return build(
            ds,
            hp.Float("l2", *SPACE["l2"], sampling="log"),
            hp.Float("rate", *SPACE["rate"]),
            hp.Float("stddev", *SPACE["stddev"]),
        )

    print(
        f"Part A — keras_tuner.RandomSearch, {trials} trials of {epochs} epochs (batch "
        f"{BATCH}, Adam {LR:g}): λ log-uniform in {SPACE['l2']}, dropout rate in "
        f"{SPACE['rate']}, input noise σ in {SPACE['stddev']}.",
        flush=True,
    )
    tuner = kt.RandomSearch(
        hypermodel,
        objective="val_accuracy",
        max_trials=trials,
        seed=args.seed,
        directory=workdir,
        project_name="random_search",
        overwrite=True,
    )
    clock = []
    start = time.perf_counter()
    tuner.search(
        ds.x_train,
        ds.y_train,
        validation_data=(ds.x_val, ds.y_val),
        epochs=epochs,
        batch_size=BATCH,
        verbose=0,
        callbacks=[EpochClock(clock)],
    )
    seconds = time.perf_counter() - start
    done = sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)
    if any(t.score is None for t in done):
        # keras-tuner logs a failed trial and goes on; a study must not.
        raise RuntimeError(
            "keras-tuner trials failed (tracebacks above). On the TensorFlow "
            "backend keras-tuner imports tensorboard: pip install tensorboard."
        )
    hps = [dict(t.hyperparameters.values) for t in done]
    scores = [float(t.score) for t in done]
    return {
        "hps": hps,
        "scores": scores,
        "clock": clock,
        "epochs": epochs,
        "best": int(np.argmax(scores)),
        "search_s": seconds,
    }


# ---------------------------------------------------------- Part B: live strengths
def reset_optimizer(model):
    """Adam's step count and moments back to zero; its learning rate (a variable too) kept."""
    for v in model.optimizer.variables:
        if v.name != "learning_rate":
            v.assign(keras.ops.zeros(v.shape, v.dtype))


def set_strengths(handles, hp):
    for handle in handles.values():
        key = {"regularizer": "l2", "dropout": "rate", "noise": "stddev"}[handle.kind]
        handle.assign(hp[key])


def live_trials(args, ds, searched):
    """The same trials on one compiled model, strengths assigned through kreg.strengths."""
    hps, epochs = searched["hps"], searched["epochs"]
    keras.utils.set_random_seed(args.seed)
    model = build(ds, **hps[0])
    handles = kreg.strengths(model)  # makes the strengths live before the step is traced
    initial = model.get_weights()
    clock, scores = [], []
    start = time.perf_counter()
    for i, hp in enumerate(hps):
        model.set_weights(initial)  # the weights include the strengths: assign after
        reset_optimizer(model)
        set_strengths(handles, hp)
        history = model.fit(
            ds.x_train,
            ds.y_train,
            validation_data=(ds.x_val, ds.y_val),
            epochs=epochs,
            batch_size=BATCH,
            verbose=0,
            callbacks=[EpochClock(clock)],
        )
        scores.append(max(history.history["val_accuracy"]))
        if i == searched["best"]:
            test_acc, _ = _train.scores(model, ds.x_test, ds.y_test)
    return {
        "clock": clock,
        "scores": scores,
        "seconds": time.perf_counter() - start,
        "test_acc": test_acc,
    }


# ------------------------------------------------------------- Part C: transfer λ
def lambda_towers(ds, k):
    """One compiled packed model of ``k`` MLPs, each with its own L2 on its kernels.

    Every run of Part C (both sizes, every seed) trains on this one model: the λs are
    assigned through live strengths and the weights re-drawn, so the step is traced once.
    The last tower is the one RegularizationScaler drives; it is built with L2(1.0), the
    base that the scaler's rule reads (a strength's base is the value it was built with).
    """
    model = _train.packed(ds, [_train.mlp_tower(ds, hidden=HIDDEN) for _ in range(k)])
    for t in range(k):
        kreg.regularizers.apply(
            model,
            kreg.regularizers.L2(1.0),
            exclude=lambda v, t=t: not v.path.startswith(f"net{t}_"),
        )
    _train.compile_packed(model, keras.optimizers.Adam(LR))
    handles = kreg.strengths(model)
    towers = [[h for name, h in handles.items() if name.startswith(f"net{t}_")] for t in range(k)]
    return model, towers


def restart(model, towers, lams, rng):
    """New Glorot-uniform kernels and zero biases (Keras' Dense defaults), Adam reset, λs set."""
    for v in model.trainable_weights:
        if len(v.shape) == 2:
            limit = np.sqrt(6.0 / sum(v.shape))
            v.assign(rng.uniform(-limit, limit, v.shape).astype("float32"))
        else:
            v.assign(np.zeros(v.shape, "float32"))
    reset_optimizer(model)
    for handles, lam in zip(towers, lams):
        for h in handles:
            h.assign(lam)


def first_reach(val, test, target):
    """1-based number of trials until the pick by validation accuracy reaches ``target``
    test accuracy; None when it never does."""
    for k in range(1, len(val) + 1):
        if test[int(np.argmax(val[:k]))] >= target:
            return k
    return None


def verdict(savings, alpha=0.05):
    """One-sided one-sample t-test of mean saving > 0 trials, and a 95% upper bound."""
    from scipy import stats

    savings = np.asarray(savings, "float64")
    if len(savings) < 2 or np.std(savings) == 0:
        p = 0.0 if len(savings) >= 2 and savings.mean() > 0 else float("nan")
        upper = float(savings.mean())
    else:
        p = float(stats.ttest_1samp(savings, 0.0, alternative="greater").pvalue)
        upper = float(
            stats.t.interval(0.9, len(savings) - 1, loc=savings.mean(), scale=stats.sem(savings))[1]
        )
    if len(savings) >= 3 and p < alpha and savings.mean() >= 1:
        word = "reproduced"
    elif len(savings) >= 3 and upper < 1:
        word = "not reproduced"
    else:
        word = "inconclusive at this size"
    return word, p, upper


def transfer(args, ds):
    seeds = _study.pick(args, 1, 3, 5)
    k_tgt = _study.pick(args, 2, 5, 12)
    k_src = k_tgt + 2  # every tower of the one packed model searches at the source size
    epochs = _study.pick(args, 1, 8, 30)
    n = len(ds.y_train)
    # A multiple of the batch size where possible: no partial batch, no second trace.
    n_src = (n // 4) // BATCH * BATCH or n // 4
    print(
        f"Part C — λ transfer from N_s = {n_src} to N = {n} training examples, {seeds} "
        f"seeds, {k_src} source trials, {k_tgt} new trials, {epochs} epochs.",
        flush=True,
    )
    keras.utils.set_random_seed(args.seed)
    model, towers = lambda_towers(ds, k_tgt + 2)
    rows, curves, savings, seconds = [], [], [], []
    acc_transfer, acc_naive, censored = [], [], 0
    for s in range(seeds):
        seed = args.seed + s
        rng = np.random.RandomState(1000 + seed)
        subset = rng.permutation(n)[:n_src]
        lam_src = 10 ** rng.uniform(*np.log10(SPACE["l2"]), size=k_src)
        lam_tgt = 10 ** rng.uniform(*np.log10(SPACE["l2"]), size=k_tgt)

        restart(model, towers, lam_src, rng)
        t0 = time.perf_counter()
        _train.fit_packed(
            model,
            ds.x_train[subset],
            ds.y_train[subset],
            batch_size=BATCH,
            epochs=epochs,
            verbose=0,
        )
        src_s = time.perf_counter() - t0
        val = [a for a, _ in _train.packed_scores(model, ds.x_val, ds.y_val)]
        lam_star = float(lam_src[int(np.argmax(val))])

        # The last tower's λ is the scaler's to set; its base is 1, its schedule λ*·N_s.
        restart(model, towers, list(lam_tgt) + [lam_star], rng)
        scaler = kreg.callbacks.RegularizationScaler(
            "minibatch",
            targets=[f"net{k_tgt + 1}_*"],
            num_examples=n,
            schedule=lambda step, full=lam_star * n_src: full,
        )
        t0 = time.perf_counter()
        _train.fit_packed(
            model,
            ds.x_train,
            ds.y_train,
            batch_size=BATCH,
            epochs=epochs,
            verbose=0,
            callbacks=[scaler],
        )
        per_trial = (time.perf_counter() - t0) / (k_tgt + 2)
        val = [a for a, _ in _train.packed_scores(model, ds.x_val, ds.y_val)]
        test = [a for a, _ in _train.packed_scores(model, ds.x_test, ds.y_test)]
        a_transfer, a_naive = test[k_tgt + 1], test[k_tgt]
        reach = first_reach(val[:k_tgt], test[:k_tgt], a_transfer - TOLERANCE)
        if reach is None:
            censored += 1
            reach = k_tgt + 1  # a lower bound: the search did not get there
        savings.append(reach - 1)
        seconds.append((reach - 1) * per_trial)
        acc_transfer.append(a_transfer)
        acc_naive.append(a_naive)
        curves.append(
            ([test[int(np.argmax(val[:k]))] for k in range(1, k_tgt + 1)], a_transfer, a_naive)
        )
        rows.append(
            [
                seed,
                lam_star,
                lam_star * n_src / n,
                a_naive,
                a_transfer,
                max(test[:k_tgt]),
                reach if reach <= k_tgt else f">{k_tgt}",
                reach - 1,
                per_trial,
                src_s,
            ]
        )
    _study.table(
        args,
        "transfer",
        [
            "seed",
            "λ* (N_s)",
            "λ per step via scaler (N)",
            "test acc, λ* as is",
            "test acc, λ* via scaler",
            f"best of {k_tgt} new trials",
            "new trials to reach (−0.01)",
            "trials saved",
            "s per trial",
            "source search s (all trials)",
        ],
        rows,
        caption="Transferring λ from a quarter of the data to all of it, per seed.",
    )
    return {
        "seeds": seeds,
        "k_tgt": k_tgt,
        "savings": savings,
        "seconds": seconds,
        "censored": censored,
        "acc_transfer": acc_transfer,
        "acc_naive": acc_naive,
        "curves": curves,
        "n_src": n_src,
        "n": n,
    }


def main():
    args = _study.options(NAME)
    ds = _data.from_args(args, "mnist1d")
    print(f"Data: {ds}.", flush=True)
    with tempfile.TemporaryDirectory(prefix="kreg-tuner-") as workdir:
        searched = search(args, ds, workdir)
    live = live_trials(args, ds, searched)
    hps = searched["hps"]
    tuner_cost = [compile_cost(c) for c in searched["clock"]]
    live_cost = [compile_cost(c) for c in live["clock"]]
    _study.table(
        args,
        "live_trials",
        [
            "trial",
            "λ",
            "dropout rate",
            "noise σ",
            "val acc (keras-tuner)",
            "val acc (live)",
            "fit s (keras-tuner)",
            "fit s (live)",
            "first-epoch extra s (keras-tuner)",
            "first-epoch extra s (live)",
        ],
        [
            [i, h["l2"], h["rate"], h["stddev"], s_t, s_l, sum(c_t), sum(c_l), e_t, e_l]
            for i, (h, s_t, s_l, c_t, c_l, e_t, e_l) in enumerate(
                zip(
                    hps,
                    searched["scores"],
                    live["scores"],
                    searched["clock"],
                    live["clock"],
                    tuner_cost,
                    live_cost,
                )
            )
        ],
        caption=f"The same {len(hps)} trials: keras-tuner (a new model per trial, "
        f"{searched['search_s']:.1f} s with its checkpoints) vs one model with live strengths "
        f"({live['seconds']:.1f} s). The search's best trial, trained again on the live model: "
        f"test accuracy {live['test_acc']:.3f}.",
    )
    tr = transfer(args, ds)

    rows = []
    backend = keras.backend.backend()
    later = len(hps) - 1
    test = _report.paired_test(tuner_cost[1:], live_cost[1:])
    if backend == "torch":
        cost_verdict = "inconclusive at this size"  # torch runs the step eagerly: no trace
    else:
        cost_verdict = _report.verdict(test)
    rows.append(
        [
            f"live strengths: only the first trial traces ({backend})",
            "first-epoch extra seconds per trial after the first: keras-tuner → live",
            f"1 ({later} later trials)",
            f"{np.nanmean(tuner_cost[1:]):.2f} s → {np.nanmean(live_cost[1:]):.2f} s"
            if later
            else "no later trial",
            ("paired t over trials, " + _cell(test)) if later else "no test",
            cost_verdict,
        ]
    )
    word, p, upper = verdict(tr["savings"])
    m_s, sd_s = _report.mean_std(tr["savings"])
    rows.append(
        [
            ("λ from N/4 transferred by RegularizationScaler saves trials of a new search at N"),
            (
                f"trials saved (of {tr['k_tgt']}) until a new search's pick reaches the "
                f"transferred run − {TOLERANCE:g}"
            ),
            tr["seeds"],
            f"{m_s:.1f} ± {sd_s:.1f} trials ({np.mean(tr['seconds']):.1f} s)",
            (
                f"one-sided t, p = {p:.3g}; 90% upper bound {upper:.2f}; "
                f"{tr['censored']} search(es) never reached it"
            ),
            word,
        ]
    )
    pair = _report.paired_test(tr["acc_transfer"], tr["acc_naive"])
    rows.append(
        [
            "the scaled λ (λ*·N_s/N per step) beats λ* as is",
            "test accuracy, paired by seed",
            tr["seeds"],
            f"{np.mean(tr['acc_naive']):.3f} → {np.mean(tr['acc_transfer']):.3f}",
            _cell(pair),
            _report.verdict(pair),
        ]
    )

    plt = _report.plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    trials = np.arange(len(hps))
    axes[0].bar(
        trials - 0.2,
        [sum(c) for c in searched["clock"]],
        0.4,
        label="keras-tuner: new model per trial",
    )
    axes[0].bar(
        trials + 0.2,
        [sum(c) for c in live["clock"]],
        0.4,
        label="one model, strengths assigned live",
    )
    axes[0].set(
        xlabel="trial",
        ylabel="fit time (s)",
        title=f"{len(hps)} trials of λ, dropout rate and σ ({backend})",
    )
    axes[0].legend(fontsize=7)
    for i, (curve, a_t, a_n) in enumerate(tr["curves"]):
        color = f"C{i}"
        axes[1].plot(
            range(1, tr["k_tgt"] + 1), curve, "o-", color=color, ms=3, label=f"seed {args.seed + i}"
        )
        axes[1].axhline(a_t, color=color, ls="--", lw=1)
        axes[1].plot([1], [a_n], "x", color=color)
    axes[1].set(
        xlabel="trials of a new search at full size",
        ylabel="test accuracy of its pick",
        title="New search (solid) vs λ transferred by the scaler (dashed)",
    )
    axes[1].legend(fontsize=6, loc="lower right")
    _study.figure(args, fig)
    _study.verdicts(
        args,
        rows,
        title="9. Searching strengths: live strengths and transferring λ",
        note=(
            f"MNIST-1D (paper split), MLP {HIDDEN}, Adam {LR:g}, batch {BATCH}. Search: "
            f"keras_tuner.RandomSearch, {len(hps)} trials of {searched['epochs']} epochs "
            f"over λ (log-uniform {SPACE['l2']}), dropout rate and σ; the first-epoch extra "
            "time is the step's trace and compile, paid by every keras-tuner trial and by "
            f"the first live trial only. Transfer: N_s = {tr['n_src']} → N = {tr['n']}, "
            f"{tr['k_tgt']} new trials per seed (a search that never reaches the "
            f"transferred run counts as {tr['k_tgt']} saved, a lower bound); reproduced "
            "needs p < 0.05 and a mean saving of at least one trial, not reproduced a 90% "
            "upper bound under one trial, and 3 seeds or more."
        ),
    )


def _cell(test):
    if test["n"] < 2:
        return "1 value: no test"
    lo, hi = _report.interval(test)
    return f"95% CI [{lo:+.3f}, {hi:+.3f}]; |t| = {abs(test['t']):.2f} vs {test['t_crit']:.2f}"


if __name__ == "__main__":
    main()
