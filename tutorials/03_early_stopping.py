"""
Title: Early stopping: patience vs Prechelt's GL, PQ and UP
Author: kreg contributors
Date created: 2026/12/07
Last modified: 2026/12/07
Description: Where each stopping rule stops on one learning curve, what it costs and what it keeps.
Accelerator: None
"""

"""
## Introduction

Stop training when the validation cost starts rising, and keep the best weights seen. "Starts
rising" needs a rule. Keras' `EarlyStopping` waits `patience` epochs without improvement.
Prechelt ("Early Stopping — But When?", 1998) defines three families, with E_va(t) the
validation error at epoch t and E_opt(t) the best one so far:

* **GL_α**, generalization loss: stop when GL(t) = 100·(E_va(t)/E_opt(t) − 1) > α.
* **PQ_α**, progress quotient: at the end of each strip of k = 5 epochs, stop when
  GL(t)/P_k(t) > α, where P_k(t) = 1000·(mean training error over the strip / its minimum − 1)
  is the training progress: while training still improves fast, some loss of
  generalization is tolerated.
* **UP_s**: stop after s successive strips in which the validation error rose.

His finding: slower criteria buy a little generalization for several times the training.
`kreg.callbacks.EarlyStopping` takes Keras' arguments plus `criterion="GL" | "PQ" | "UP"`.

## Setup
"""

import _data
import _lesson  # the lessons' helper: command-line options, tables and figures
import _train
import keras
import matplotlib.pyplot as plt
import numpy as np

import kreg

options = _lesson.options("03_early_stopping")
dataset = _data.from_args(options, options.dataset)
print(dataset)


def build_model():
    keras.utils.set_random_seed(options.seed)  # the same initial weights every time
    model = keras.Sequential(
        [
            keras.Input(dataset.input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(dataset.num_classes),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


"""
## Early stopping with GL_5

An MLP 256-256 overfits MNIST-1D's 3500 training sequences within a few dozen epochs.
`restore_best_weights=True` gives back the weights of the epoch with the lowest validation
loss seen before the stop.
"""

max_epochs = _lesson.pick(options, smoke=2, quick=40, full=300)
stopping = kreg.callbacks.EarlyStopping(
    monitor="val_loss", criterion="GL", alpha=5.0, restore_best_weights=True
)
model = build_model()
history = model.fit(
    dataset.x_train,
    dataset.y_train,
    validation_data=(dataset.x_val, dataset.y_val),
    batch_size=128,
    epochs=max_epochs,
    callbacks=[stopping],
    verbose=0,
)
trained = len(history.history["loss"])
test_accuracy = model.evaluate(dataset.x_test, dataset.y_test, verbose=0)[1]
print(
    f"GL_5 trained {trained} epochs, kept epoch {stopping.best_epoch + 1}, "
    f"test accuracy {test_accuracy:.3f}"
)

"""
## Every criterion on one learning curve

To compare criteria we need not train once per criterion. Train once without stopping,
record the logs of every epoch, then *replay* them: hand each epoch's logs to a fresh
callback, exactly as `fit` would, and note where it stops and which epoch it keeps. The
run is the same up to the stopping epoch, so the answer is the same. The test accuracy is
recorded at every epoch (`_train.TestScore`) for the table only; nothing is chosen with it.
"""

criteria = {
    "patience 5": dict(criterion="patience", patience=5),
    "patience 20": dict(criterion="patience", patience=20),
    "GL_1": dict(criterion="GL", alpha=1.0),
    "GL_5": dict(criterion="GL", alpha=5.0),
    "PQ_0.5": dict(criterion="PQ", alpha=0.5),
    "PQ_2": dict(criterion="PQ", alpha=2.0),
    "UP_2": dict(criterion="UP", strips=2),
    "UP_3": dict(criterion="UP", strips=3),
}


def replay(logs, monitor="val_loss", **kwargs):
    """(epoch it stops after or None, epoch whose weights it keeps), 0-based."""
    callback = kreg.callbacks.EarlyStopping(monitor=monitor, mode="min", **kwargs)
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    train_key = monitor.removeprefix("val_")  # PQ reads the training error as well
    for epoch in range(len(logs[monitor])):
        callback.on_epoch_end(epoch, {key: logs[key][epoch] for key in (train_key, monitor)})
        if model.stop_training:
            model.stop_training = False
            return epoch, callback.best_epoch
    return None, callback.best_epoch


model = build_model()
logs = model.fit(
    dataset.x_train,
    dataset.y_train,
    validation_data=(dataset.x_val, dataset.y_val),
    batch_size=128,
    epochs=max_epochs,
    callbacks=[_train.TestScore(dataset.x_test, dataset.y_test)],
    verbose=0,
).history
logs = {key: np.asarray(values) for key, values in logs.items()}
logs["error"], logs["val_error"] = 1 - logs["accuracy"], 1 - logs["val_accuracy"]


def criteria_table(monitor):
    rows, stops = [], {}
    for name, kwargs in criteria.items():
        stop, kept = replay(logs, monitor, **kwargs)
        stops[name] = (stop, kept)
        rows.append(
            [name, max_epochs if stop is None else stop + 1, kept + 1, logs["test_accuracy"][kept]]
        )
    rows.append(["(no stopping)", max_epochs, max_epochs, logs["test_accuracy"][-1]])
    return rows, stops


rows, stops = criteria_table("val_loss")
_lesson.table(
    options,
    "criteria",
    ["criterion", "epochs trained", "weights kept (epoch)", "test accuracy kept"],
    rows,
)
print(
    "replay of GL_5:",
    stops["GL_5"][0] + 1 if stops["GL_5"][0] is not None else None,
    "epochs, kept",
    stops["GL_5"][1] + 1,
    "| in fit:",
    trained,
    "epochs, kept",
    stopping.best_epoch + 1,
)

"""
The replayed GL_5 trains as many epochs and keeps the same epoch as the real one above
(up to non-deterministic CPU reductions, which can move a stop by an epoch). A criterion
that never stops shows the maximum number of epochs.
"""

figure, (loss_axis, accuracy_axis) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
epochs_axis = np.arange(1, len(logs["loss"]) + 1)
loss_axis.plot(epochs_axis, logs["loss"], label="training loss")
loss_axis.plot(epochs_axis, logs["val_loss"], label="validation loss")
accuracy_axis.plot(epochs_axis, logs["test_accuracy"], color="tab:green")
colors = plt.cm.tab10(np.linspace(0, 1, len(stops)))
for (name, (stop, kept)), color in zip(stops.items(), colors):
    if stop is not None:
        loss_axis.axvline(stop + 1, color=color, ls="--", lw=1, label=f"{name} stops")
    accuracy_axis.plot(kept + 1, logs["test_accuracy"][kept], "o", color=color, ms=5)
loss_axis.set(ylabel="cross-entropy", title="Where each criterion stops (dashed)")
loss_axis.set_ylim(0, min(max(logs["val_loss"].max(), 1.0), 4 * logs["val_loss"].min() + 0.5))
loss_axis.legend(fontsize=6, ncol=3)
accuracy_axis.set(
    xlabel="epoch",
    ylabel="test accuracy",
    title="Test accuracy of the weights each criterion keeps (dots)",
)
_lesson.figure(options, figure, "learning_curves")

"""
## Loss or error?

The validation *cross-entropy* of a network that overfits starts rising while its
*accuracy* still improves: the network grows over-confident on the examples it gets wrong
before it stops getting more of them right. Stopping on `val_loss` then stops early for
accuracy. Prechelt monitored the classification error; the same criteria on
`val_error = 1 − val_accuracy` (its training counterpart for PQ, `error`):
"""

rows, _ = criteria_table("val_error")
_lesson.table(
    options,
    "criteria_val_error",
    ["criterion", "epochs trained", "weights kept (epoch)", "test accuracy kept"],
    rows,
)

"""
In `fit`, a small callback listed before `EarlyStopping` can add `error` and `val_error`
(1 − accuracy) to each epoch's logs. `patience` and UP also accept `val_accuracy` with
`mode="max"`; GL and PQ are defined on an error to minimize and refuse it with a
`ValueError`.

## What the full study shows

One run is one draw. `studies/03_early_stopping.py` trains ten seeds for 300 epochs, replays
every criterion on each, and tests Prechelt's finding pair by pair (a slow criterion
against a fast one of the same family: test accuracy kept, paired over seeds, and epochs
trained) and whether monitoring the error keeps a better network than monitoring the loss.
"""

_lesson.study(options, "03_early_stopping")

"""
Slowing GL down (GL_5 over GL_1) keeps a better network, on either monitor. For PQ, UP and
patience the slower rule mostly restores the very epoch the faster one restored: with
`restore_best_weights=True` both keep the best epoch seen, so the extra epochs buy nothing
unless a better epoch comes later. The monitor matters more than the rule: stopping on the
validation error keeps a clearly better network than stopping on the validation loss.
"""

"""
## Takeaways

* `kreg.callbacks.EarlyStopping(criterion="GL", alpha=5.0, restore_best_weights=True)` is
  Keras' callback with Prechelt's criteria; `criterion="patience"` is Keras' own rule.
* Choose what you monitor as carefully as the rule: a rising validation loss is not a
  falling validation accuracy.
* To compare stopping rules, train once and replay the logs.
"""
