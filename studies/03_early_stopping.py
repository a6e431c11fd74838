"""Study 3: early stopping — Prechelt's finding over seeds, and loss vs error as the monitor.

Claims (Prechelt 1998, "Early Stopping — But When?"): slower stopping criteria (a larger α
for GL and PQ, more strips for UP, more patience) keep a network that generalizes a little
better, for several times the training. And the lesson's observation: on a network that
overfits, the validation cross-entropy starts rising while the accuracy still improves, so
stopping on the validation *error* (as Prechelt did) keeps a better network for accuracy
than stopping on the loss.

Method: lesson 3's MLP 256-256 (Adam 3e-3, batch 128) on MNIST-1D, trained without stopping
for 300 epochs from 10 seeds; every criterion is replayed on each seed's logs (the callback
sees exactly the logs it would see in ``fit``, see lesson 3) and keeps its epoch's test
accuracy (on 20000 fresh MNIST-1D test examples; the test set never chooses anything). The
10 networks train side by side in one Keras model (``_train.packed``: disjoint weights,
added losses, so each trains exactly as alone). Tests, paired over seeds: a two-sided
t-test of the test accuracy kept (slow − fast, and error − loss) and the ratio of epochs
trained; where both criteria keep the same epoch on every seed (the same weights restored),
the gain is "not reproduced", whatever the number of seeds. A check runs GL_5 for real in ``fit`` on one seed and compares it with the replay.

Run: ``python studies/03_early_stopping.py`` (full, a few minutes), ``--quick``, ``--smoke``.
"""

import _study  # noqa: I001  (first: puts tutorials/ on sys.path)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import _data  # noqa: E402
import _report  # noqa: E402
import _train  # noqa: E402
import kreg  # noqa: E402

NAME = "03_early_stopping"
TITLE = "Study 3. Early stopping: Prechelt's criteria over seeds"

CRITERIA = {
    "patience 5": dict(criterion="patience", patience=5),
    "patience 20": dict(criterion="patience", patience=20),
    "GL_1": dict(criterion="GL", alpha=1.0),
    "GL_5": dict(criterion="GL", alpha=5.0),
    "PQ_0.5": dict(criterion="PQ", alpha=0.5),
    "PQ_2": dict(criterion="PQ", alpha=2.0),
    "UP_2": dict(criterion="UP", strips=2),
    "UP_3": dict(criterion="UP", strips=3),
}
# (fast, slow) pairs of the same family: Prechelt's finding compares them.
PAIRS = [("GL_1", "GL_5"), ("PQ_0.5", "PQ_2"), ("UP_2", "UP_3"), ("patience 5", "patience 20")]


def replay(model, logs, monitor="val_loss", **kwargs):
    """Feed recorded logs to a fresh kreg EarlyStopping -> (stop epoch or None, best epoch)."""
    callback = kreg.callbacks.EarlyStopping(monitor=monitor, mode="min", **kwargs)
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    train_key = monitor.removeprefix("val_")
    for epoch in range(len(logs[monitor])):
        callback.on_epoch_end(epoch, {k: logs[k][epoch] for k in (train_key, monitor)})
        if model.stop_training:
            model.stop_training = False
            return epoch, callback.best_epoch
    return None, callback.best_epoch


class PackedTestScore(keras.callbacks.Callback):
    """Each tower's test accuracy at every epoch (for the table only: nothing is chosen)."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.accuracy = x, y, []

    def on_epoch_end(self, epoch, logs=None):
        self.accuracy.append([a for a, _ in _train.packed_scores(self.model, self.x, self.y)])


def build(ds, towers):
    return _train.packed(ds, [_train.mlp_tower(ds, hidden=(256, 256)) for _ in range(towers)])


def train(ds, seeds, epochs, seed):
    """Per seed, the logs of a run without stopping: {key: array over epochs}."""
    keras.utils.set_random_seed(seed)
    model = build(ds, seeds)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=[_train.loss() for _ in range(seeds)],
        metrics=[["accuracy"] for _ in range(seeds)],
    )
    score = PackedTestScore(ds.x_test, ds.y_test)
    y_val = ds.y_val if seeds == 1 else tuple(ds.y_val for _ in range(seeds))
    history = _train.fit_packed(
        model,
        ds.x_train,
        ds.y_train,
        batch_size=128,
        epochs=epochs,
        validation_data=(ds.x_val, y_val),
        callbacks=[score],
        verbose=0,
    ).history
    test = np.asarray(score.accuracy)  # [epoch, seed]
    runs = []
    for k in range(seeds):
        key = "" if seeds == 1 else f"net{k}_logits_"
        logs = {
            "loss": history[f"{key}loss"],
            "val_loss": history[f"val_{key}loss"],
            "accuracy": history[f"{key}accuracy"],
            "val_accuracy": history[f"val_{key}accuracy"],
        }
        logs = {name: np.asarray(v, "float64") for name, v in logs.items()}
        logs["error"], logs["val_error"] = 1 - logs["accuracy"], 1 - logs["val_accuracy"]
        logs["test_accuracy"] = test[:, k]
        runs.append(logs)
    return model, runs


def kept(model, runs, monitor, epochs):
    """{criterion: (test accuracy kept [seed], epochs trained [seed])}."""
    out = {}
    for name, kwargs in CRITERIA.items():
        accuracy, trained = [], []
        for logs in runs:
            stop, best = replay(model, logs, monitor, **kwargs)
            accuracy.append(logs["test_accuracy"][best])
            trained.append(epochs if stop is None else stop + 1)
        out[name] = (np.asarray(accuracy), np.asarray(trained, "float64"))
    return out


def check_replay(ds, epochs, seed):
    """GL_5 in fit with restore_best_weights vs its replay, one single-network run each."""

    def single():
        keras.utils.set_random_seed(seed)
        model = _train.mlp(ds, hidden=(256, 256))
        return _train.compile(model, keras.optimizers.Adam(3e-3))

    data = dict(
        x=ds.x_train, y=ds.y_train, validation_data=(ds.x_val, ds.y_val), batch_size=128, verbose=0
    )
    logs = single().fit(epochs=epochs, **data).history
    replayed = replay(single(), {k: np.asarray(v) for k, v in logs.items()}, **CRITERIA["GL_5"])
    callback = kreg.callbacks.EarlyStopping(
        monitor="val_loss", restore_best_weights=True, **CRITERIA["GL_5"]
    )
    trained = len(single().fit(epochs=epochs, callbacks=[callback], **data).history["loss"])
    stop = epochs if replayed[0] is None else replayed[0] + 1
    return (trained, callback.best_epoch + 1), (stop, replayed[1] + 1)


def t_cell(test):
    if test["n"] < 2:
        return "paired t-test: needs 2 seeds or more"
    return f"paired t-test, |t| = {abs(test['t']):.2f} vs {test['t_crit']:.2f}"


def main(argv=None):
    args = _study.options(NAME, argv)
    ds = _data.from_args(args, "mnist1d", mnist1d_test_size=20000)
    seeds = _study.pick(args, 1, 3, 10)
    epochs = _study.pick(args, 3, 60, 300)
    print(f"{ds}; {seeds} seed(s), {epochs} epochs", flush=True)
    model, runs = train(ds, seeds, epochs, args.seed)
    on_loss = kept(model, runs, "val_loss", epochs)
    on_error = kept(model, runs, "val_error", epochs)
    _study.table(
        args,
        "criteria",
        ["criterion", "monitor", "epochs trained (mean)", "test accuracy kept (mean)", "± std"],
        [
            [name, monitor, float(trained.mean()), *_report.mean_std(accuracy)]
            for monitor, table in (("val_loss", on_loss), ("val_error", on_error))
            for name, (accuracy, trained) in table.items()
        ],
        caption=f"Each criterion replayed on {seeds} seed(s) of {epochs} epochs.",
    )
    rows = []
    for monitor, table in (("val_error", on_error), ("val_loss", on_loss)):
        for fast, slow in PAIRS:
            test = _report.paired_test(table[slow][0], table[fast][0])
            ratio = float(table[slow][1].mean() / table[fast][1].mean())
            same = seeds > 1 and np.array_equal(table[slow][0], table[fast][0])
            rows.append(
                [
                    f"{slow} keeps a better network than {fast} (on {monitor})",
                    "test accuracy kept, slow − fast; epochs trained, slow / fast",
                    seeds,
                    f"{test['diff']:+.4f} ± {test['std']:.4f}; {ratio:.1f}× the epochs",
                    # Both keep the same epoch on every seed: no gain, whatever the size.
                    "the same weights kept on every seed" if same else t_cell(test),
                    "not reproduced" if same else _report.verdict(test),
                ]
            )
    test = _report.paired_test(on_error["patience 20"][0], on_loss["patience 20"][0])
    rows.append(
        [
            "monitoring val_error keeps a better network than val_loss (patience 20)",
            "test accuracy kept, error − loss",
            seeds,
            f"{test['diff']:+.4f} ± {test['std']:.4f}",
            t_cell(test),
            _report.verdict(test),
        ]
    )
    (trained, best), (stop, replayed) = check_replay(ds, _study.pick(args, 3, 30, 60), args.seed)
    rows.append(
        [
            "a replayed criterion stops where it stops in fit (GL_5)",
            "epochs trained and epoch kept: fit vs replay",
            1,
            f"{trained}, {best} vs {stop}, {replayed}",
            "equal",
            "reproduced" if (trained, best) == (stop, replayed) else "not reproduced",
        ]
    )

    plt = _report.plt
    figure, axis = plt.subplots(figsize=(7, 4))
    colors = plt.cm.tab10(np.linspace(0, 1, len(CRITERIA)))
    for monitor, table, fill in (("val_error", on_error, "full"), ("val_loss", on_loss, "none")):
        for (name, (accuracy, trained)), color in zip(table.items(), colors):
            axis.errorbar(
                trained.mean(),
                accuracy.mean(),
                yerr=accuracy.std(ddof=1) if seeds > 1 else 0,
                fmt="o",
                color=color,
                fillstyle=fill,
                capsize=3,
                label=name if monitor == "val_error" else None,
            )
    axis.set(
        xscale="log",
        xlabel="epochs trained (mean over seeds)",
        ylabel="test accuracy kept (mean ± std)",
        title=f"Each criterion on val_error (filled) and val_loss (open), {seeds} seeds",
    )
    axis.legend(fontsize=7, ncol=2)
    _study.figure(args, figure)
    _study.verdicts(args, rows, title=TITLE)


if __name__ == "__main__":
    main()
