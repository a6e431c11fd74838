"""
Title: More regularizers, more hyperparameters
Author: kreg contributors
Date created: 2026/12/07
Last modified: 2026/12/07
Description: Search λ, dropout rate and noise σ with keras-tuner, then run the same trials on one compiled model through kreg.strengths, and change strengths during training.
Accelerator: None
"""

"""
## Introduction

Every regularizer adds a hyperparameter: an L2 strength λ, a dropout rate, a noise σ. The
search space grows with each, and an ordinary search pays for every trial in full. With
keras-tuner each trial builds and compiles a new model, so each trial also traces a new
train step: on JAX and TensorFlow that is seconds per trial before the first batch runs.

In Keras a float hyperparameter is frozen into the step when the step is traced: setting
`layer.rate` afterwards does nothing. `kreg.strengths(model)` turns every kreg strength of a
model into a variable and returns a handle for each; `handle.assign(value)` then reaches
the compiled step on every backend. So one compiled model can run every trial, and a
callback can change a strength in the middle of `fit`.
"""

"""
## Setup
"""

import _lesson  # noqa: I001  (first: puts the repository on sys.path)

import tempfile
import time

import _data
import _train
import keras
import keras_tuner
import matplotlib.pyplot as plt
import numpy as np

import kreg

options = _lesson.options("09_more_hyperparameters")
dataset = _data.from_args(options, "mnist1d")


def make_model(l2, rate, stddev):
    inputs = keras.Input(dataset.input_shape)
    x = keras.layers.Flatten()(inputs)
    x = kreg.layers.GaussianNoise(stddev, name="noise")(x)
    for index in range(2):
        x = keras.layers.Dense(
            100,
            activation="relu",
            name=f"dense_{index}",
            kernel_regularizer=kreg.regularizers.L2(l2),
        )(x)
        x = kreg.layers.Dropout(rate, name=f"dropout_{index}")(x)
    outputs = keras.layers.Dense(
        dataset.num_classes, name="logits", kernel_regularizer=kreg.regularizers.L2(l2)
    )(x)
    return _train.compile(keras.Model(inputs, outputs), keras.optimizers.Adam(2e-3))


keras.utils.set_random_seed(options.seed)
model = make_model(l2=1e-4, rate=0.2, stddev=0.1)
handles = kreg.strengths(model)
for name, handle in handles.items():
    print(f"{name}: {float(handle):g}")

"""
Call `kreg.strengths` before the first `fit`: it adds one non-trainable variable per kreg
object, and a model already traced would trace its step once more.

## A search with keras-tuner

A random search over the three strengths, one new model per trial. A small callback
clocks each epoch; the first epoch's extra time over the others is the trace and
compile.
"""


class EpochClock(keras.callbacks.Callback):
    def __init__(self, record):
        super().__init__()
        self.record = record  # shared by keras-tuner's copies of the callback

    def __deepcopy__(self, memo):
        return EpochClock(self.record)

    def on_train_begin(self, logs=None):
        self.record.append([])

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.record[-1].append(time.perf_counter() - self.start)


def first_epoch_extra(epoch_seconds):
    return epoch_seconds[0] - np.median(epoch_seconds[1:])


def hypermodel(hp):
    return make_model(
        hp.Float("l2", 1e-6, 1e-2, sampling="log"),
        hp.Float("rate", 0.0, 0.5),
        hp.Float("stddev", 0.0, 0.5),
    )


trials = _lesson.pick(options, smoke=2, quick=3, full=10)
epochs = _lesson.pick(options, smoke=2, quick=4, full=25)
fit_arguments = dict(
    x=dataset.x_train,
    y=dataset.y_train,
    batch_size=100,
    epochs=epochs,
    validation_data=(dataset.x_val, dataset.y_val),
    verbose=0,
)
tuner_clock = []
with tempfile.TemporaryDirectory() as directory:
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective="val_accuracy",
        max_trials=trials,
        seed=options.seed,
        directory=directory,
    )
    tuner.search(**fit_arguments, callbacks=[EpochClock(tuner_clock)])
    done = sorted(tuner.oracle.trials.values(), key=lambda trial: trial.trial_id)
searched = [dict(trial.hyperparameters.values) for trial in done]

"""
## The same trials on one compiled model

Before each trial: the initial weights back, Adam's state zeroed, the trial's strengths
assigned. The weights include the strengths' variables, so assign after restoring them.
"""


def reset_optimizer(model):
    for variable in model.optimizer.variables:
        if variable.name != "learning_rate":
            variable.assign(keras.ops.zeros(variable.shape, variable.dtype))


SEARCHED_NAME = {"regularizer": "l2", "dropout": "rate", "noise": "stddev"}  # by handle.kind


def assign(handles, strengths):
    for handle in handles.values():
        handle.assign(strengths[SEARCHED_NAME[handle.kind]])


keras.utils.set_random_seed(options.seed)
initial_weights = model.get_weights()
live_clock = []
for strengths in searched:
    model.set_weights(initial_weights)
    reset_optimizer(model)
    assign(handles, strengths)
    model.fit(**fit_arguments, callbacks=[EpochClock(live_clock)])
rows = [
    [
        index,
        trial["l2"],
        trial["rate"],
        trial["stddev"],
        first_epoch_extra(tuner_seconds),
        first_epoch_extra(live_seconds),
    ]
    for index, (trial, tuner_seconds, live_seconds) in enumerate(
        zip(searched, tuner_clock, live_clock)
    )
]
_lesson.table(
    options,
    "trials",
    [
        "trial",
        "λ",
        "dropout rate",
        "noise σ",
        "first-epoch extra s, keras-tuner",
        "first-epoch extra s, live strengths",
    ],
    rows,
    caption=f"Backend {keras.backend.backend()}, {epochs} epochs per trial.",
)

"""
With keras-tuner every trial pays the trace; with live strengths only the first does (on
the torch backend Keras runs the step eagerly, so there is nothing to save). The saving is
a fixed cost per trial: large for quick trials like these, small against hours of
training.

## Changing strengths during training

Handles can also be assigned by a callback, between steps of one `fit`. Below, the best
trial's strengths are annealed to zero along a cosine, against keeping them constant.
"""

best = searched[int(np.argmax([trial.score for trial in done]))]
anneal_epochs = _lesson.pick(options, smoke=2, quick=10, full=25)


def anneal(epoch, logs=None):
    factor = 0.5 * (1 + np.cos(np.pi * epoch / max(anneal_epochs - 1, 1)))
    assign(handles, {key: value * factor for key, value in best.items()})


annealing = keras.callbacks.LambdaCallback(on_epoch_begin=anneal)
rows, figure = [], plt.figure(figsize=(5.5, 3.2))
for name, callbacks in (("constant", []), ("annealed", [annealing])):
    keras.utils.set_random_seed(options.seed)
    model.set_weights(initial_weights)
    reset_optimizer(model)
    assign(handles, best)
    history = model.fit(**{**fit_arguments, "epochs": anneal_epochs}, callbacks=callbacks)
    plt.plot(history.history["val_accuracy"], label=name)
    rows.append(
        [
            name,
            history.history["val_accuracy"][-1],
            _train.scores(model, dataset.x_test, dataset.y_test)[0],
        ]
    )
plt.gca().set(xlabel="epoch", ylabel="validation accuracy", title="Strengths annealed live")
plt.legend()
_lesson.figure(options, figure, "anneal")
_lesson.table(options, "anneal", ["strengths", "final val accuracy", "test accuracy"], rows)

"""
One seed shows the mechanism, not whether annealing helps. No new trace happens here
either: both runs use the model compiled at the start.

## Fewer trials: transferring λ instead of searching again

A search on a quarter of the data is four times cheaper. With Keras' mean-reduced loss,
the λ found per step on N_s examples is λ·N_s for the full-batch objective Σᵢℓᵢ + λ·R(w).
Build the full-size model with that strength and `RegularizationScaler("minibatch")` gives
each step its share, λ·N_s/N on all N examples (only the penalties: rates and σ stay):

```python
model = make_model(l2=best_l2 * N_s, rate=best_rate, stddev=best_stddev)
scaler = kreg.callbacks.RegularizationScaler("minibatch", num_examples=N)
model.fit(x, y, callbacks=[scaler])
```

## What the study shows

`studies/09_more_hyperparameters.py` runs 10 keras-tuner trials of 25 epochs and the same
trials with live strengths: on JAX (2-core CPU) each later trial's trace costs about 4 s
with keras-tuner and 0.01 s with live strengths. It then measures the transfer over 5
seeds: how many trials a new random search on all the data needs before its pick reaches
the transferred λ's test accuracy (within 0.01). The saving, 2.4 ± 3.2 of 12 trials, is
inconclusive at this size: in four seeds of five a new search gets there within three
trials, in one it takes nine. This MLP's accuracy is flat in λ over a wide range; the
scaled λ and λ reused as is give the same test accuracy.
"""

_lesson.study(options, "09_more_hyperparameters")
