"""Tutorial 3: early stopping — when does each criterion stop, what does it cost, what does it keep?

Claim: stop training when the validation cost starts rising, and keep the best weights.
"Starts rising" needs a rule. Keras' EarlyStopping waits ``patience`` epochs without
improvement. Prechelt (1998, "Early Stopping — But When?") defines three families:

* GL_α — generalization loss: stop when GL(t) = 100·(E_va(t)/E_opt(t) − 1) > α, where
  E_opt(t) is the best validation error so far;
* PQ_α — progress quotient: at the end of each training strip of k = 5 epochs, stop when
  GL(t)/P_k(t) > α, with P_k(t) = 1000·(Σ_strip E_tr / (k·min_strip E_tr) − 1) the training
  progress (while training still makes progress, a loss of generalization is tolerated);
* UP_s — s successive strips in which the validation error rose.

His finding: slower criteria buy a few percent of generalization for several times the
training time. ``kreg.callbacks.EarlyStopping(criterion="GL"|"PQ"|"UP", ...)`` implements
them (with Keras' arguments and behaviour otherwise).

Method: one long run of an MLP that overfits MNIST-1D, logging the training loss, the
validation loss and — for the plot only — the test accuracy at every epoch. Each
criterion is then *replayed* on that history: the callback sees exactly the logs it would
see during ``fit`` (the run is the same up to the stopping epoch), so we get the epoch at
which it stops and the epoch whose weights ``restore_best_weights=True`` would keep,
without training once per criterion. One criterion is also run for real in ``fit`` to
check the replay.

Run: ``python tutorials/03_early_stopping.py --quick``
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

SLUG = "03_early_stopping"
TITLE = "3. Early stopping: patience vs Prechelt's GL, PQ and UP"

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


def replay(model, history, monitor="val_loss", **kwargs):
    """Feed a recorded history to a fresh kreg EarlyStopping; (stop epoch or None, best epoch)."""
    cb = kreg.callbacks.EarlyStopping(monitor=monitor, mode="min", **kwargs)
    cb.set_model(model)
    model.stop_training = False
    cb.on_train_begin()
    train_key = monitor.removeprefix("val_")
    n = len(history[monitor])
    for epoch in range(n):
        cb.on_epoch_end(epoch, {k: history[k][epoch] for k in (train_key, monitor)})
        if model.stop_training:
            model.stop_training = False
            return epoch, cb.best_epoch
    cb.on_train_end()
    return None, cb.best_epoch


def build(ds, seed):
    keras.utils.set_random_seed(seed)
    model = _train.mlp(ds, hidden=(256, 256))
    return _train.compile(model, keras.optimizers.Adam(3e-3))


def run(args, report):
    plt = _report.plt
    ds = _data.from_args(args, "mnist1d")
    epochs = _report.pick(args, 2, 50, 300)
    report.say(f"Data: {ds}. Model: MLP 256-256, Adam 3e-3, batch 128, {epochs} epochs, "
               "monitor val_loss (cross-entropy).")

    model = build(ds, args.seed)
    fit = model.fit(ds.x_train, ds.y_train, validation_data=(ds.x_val, ds.y_val), batch_size=128,
                    epochs=epochs, verbose=0, callbacks=[_train.TestScore(ds.x_test, ds.y_test)])
    h = {k: np.asarray(v, dtype="float64") for k, v in fit.history.items()}
    # Prechelt monitors an error, not a log-likelihood: also replay on the classification
    # error (1 − accuracy), training ("error") and validation ("val_error").
    h["error"], h["val_error"] = 1 - h["accuracy"], 1 - h["val_accuracy"]
    oracle = int(np.argmax(h["test_accuracy"]))
    rows, marks = [], {}
    for name, kwargs in CRITERIA.items():
        stop, best = replay(model, h, **kwargs)
        cost = epochs if stop is None else stop + 1
        marks[name] = (stop, best)
        rows.append([name, "never (ran out of epochs)" if stop is None else stop + 1, cost,
                     best + 1, h["val_loss"][best], h["test_accuracy"][best]])
    err_rows = []
    for name, kwargs in CRITERIA.items():
        stop, best = replay(model, h, monitor="val_error", **kwargs)
        err_rows.append([name + " on val_error",
                         "never (ran out of epochs)" if stop is None else stop + 1,
                         epochs if stop is None else stop + 1, best + 1, h["val_loss"][best],
                         h["test_accuracy"][best]])
    rows.append(["(no stopping: last epoch)", "-", epochs, epochs, h["val_loss"][-1],
                 h["test_accuracy"][-1]])
    rows.append(["(oracle: best test epoch)", "-", "-", oracle + 1, h["val_loss"][oracle],
                 h["test_accuracy"][oracle]])
    report.table(
        "criteria",
        ["criterion", "stops after epoch", "epochs trained", "weights kept (epoch)",
         "val loss kept", "test accuracy kept"],
        rows,
        caption="What each criterion costs and keeps (restore_best_weights=True keeps the "
        "epoch with the lowest val_loss seen before stopping).",
    )

    val_best = int(np.argmin(h["val_loss"]))
    report.say(
        f"The validation loss is lowest at epoch {val_best + 1}; the test accuracy peaks at "
        f"epoch {oracle + 1} ({h['test_accuracy'][oracle]:.3f}). "
        + ("The cross-entropy starts rising (over-confident predictions) while the accuracy "
           "still improves, so stopping on val_loss stops early for accuracy; the next "
           "table monitors the validation error instead, as Prechelt did."
           if oracle > val_best + 3 else "")
    )
    report.table(
        "criteria_val_error",
        ["criterion", "stops after epoch", "epochs trained", "weights kept (epoch)",
         "val loss kept", "test accuracy kept"],
        err_rows,
        caption="The same criteria monitoring val_error = 1 − val_accuracy (replayed).",
    )

    # One criterion for real, in fit, with restore_best_weights=True.
    check = "GL_5"
    model2 = build(ds, args.seed)
    cb = kreg.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True,
                                      **CRITERIA[check])
    fit2 = model2.fit(ds.x_train, ds.y_train, validation_data=(ds.x_val, ds.y_val),
                      batch_size=128, epochs=epochs, verbose=0, callbacks=[cb])
    trained = len(fit2.history["loss"])
    acc_real = _train.scores(model2, ds.x_test, ds.y_test)[0]
    stop, best = marks[check]
    report.say(
        f"Check: {check} run for real in fit trained {trained} epochs (replay: "
        f"{epochs if stop is None else stop + 1}), kept epoch {cb.best_epoch + 1} (replay: "
        f"{best + 1}), test accuracy {acc_real:.3f} (replay: {h['test_accuracy'][best]:.3f})"
        + (". The replay matches." if trained == (epochs if stop is None else stop + 1)
           and cb.best_epoch == best else
           "; the difference comes from non-deterministic CPU reductions between the runs.")
    )

    # Learning curves with each criterion's stopping point.
    x = np.arange(1, epochs + 1)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    ax.plot(x, h["loss"], label="training loss", color="tab:blue")
    ax.plot(x, h["val_loss"], label="validation loss", color="tab:orange")
    ax2.plot(x, h["test_accuracy"], color="tab:green", label="test accuracy")
    colors = plt.cm.tab10(np.linspace(0, 1, len(marks)))
    for (name, (stop, best)), c in zip(marks.items(), colors):
        if stop is not None:
            ax.axvline(stop + 1, color=c, ls="--", lw=1, label=f"{name} stops")
        ax2.plot(best + 1, h["test_accuracy"][best], "o", color=c, ms=5)
    ax.set(ylabel="cross-entropy", title="Where each criterion stops (dashed)")
    ax.set_ylim(0, min(max(h["val_loss"].max(), 1.0), 4 * h["val_loss"].min() + 0.5))
    ax.legend(fontsize=6, ncol=3)
    ax2.set(xlabel="epoch", ylabel="test accuracy",
            title="Test accuracy of the weights each criterion keeps (dots)")
    report.figure(fig, "learning_curves", "Learning curves with each criterion's stopping epoch "
                  "(dashed) and the weights it keeps (dots).")

    stopped = [r for r in rows[: len(CRITERIA)] if r[1] != "never (ran out of epochs)"]
    fast = min(stopped, key=lambda r: r[2]) if stopped else None
    slow = max(stopped, key=lambda r: r[2]) if stopped else None
    if fast and slow:
        report.say(
            f"The quickest criterion ({fast[0]}) trains {fast[2]} epochs and keeps test accuracy "
            f"{fast[5]:.3f}; the slowest that stops ({slow[0]}) trains {slow[2]} epochs and keeps "
            f"{slow[5]:.3f}; training to the end keeps {h['test_accuracy'][-1]:.3f}. Prechelt's "
            "finding (slower criteria: a little better for much longer) "
            + ("holds here." if slow[5] >= fast[5] and slow[2] > fast[2]
               else "does not hold on this run.")
        )
    return {name: (r[2], r[5]) for name, r in zip(CRITERIA, rows)}


def main(argv=None):
    return _report.main(run, SLUG, TITLE, __doc__, argv)


if __name__ == "__main__":
    main()
