"""
Title: Dropout: weight scaling or Monte-Carlo averaging
Author: kreg contributors
Date created: 2026/12/07
Last modified: 2026/12/07
Description: Dropout with kreg.layers.Dropout; predict by weight scaling or kreg.mc_predict.
Accelerator: None
"""

"""
## Introduction

Dropout (Srivastava et al. 2014) switches off each unit with probability `rate` at every
training step; the usual choice keeps 0.8 of the inputs and 0.5 of the hidden units. Each
mask is a different sub-network, so training with dropout trains an ensemble of 2^N
sub-networks that share their weights. At prediction there are two ways to use it:

- **weight scaling**: switch dropout off and scale the weights so that each unit receives
  what it received on average in training. Keras' inverted dropout scales by 1/keep during
  training instead, so `model.predict` *is* the weight-scaling rule. One pass, cheap, and
  an approximation of the ensemble's average.
- **Monte-Carlo averaging** (Gal & Ghahramani 2016): keep sampling masks at prediction and
  average the predicted probabilities. Many passes, the ensemble's real average, and a
  spread that may say how sure the ensemble is.
"""

"""
## Setup
"""

import _lesson  # noqa: I001  (first: puts the repository on sys.path)

import _data
import keras
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score

import kreg

options = _lesson.options("05_dropout")
dataset = _data.from_args(options, "mnist1d")

"""
## Dropout at prediction time

Monte-Carlo averaging needs dropout to stay on at inference, and the usual Keras recipe
for that does nothing:
"""

inputs = keras.Input(shape=(8,))
keras_recipe = keras.Model(inputs, keras.layers.Dropout(0.5)(inputs, training=True))
kreg_recipe = keras.Model(inputs, kreg.layers.Dropout(0.5, mc=True)(inputs))
ones = np.ones((1, 8), "float32")
print("keras.layers.Dropout(0.5)(x, training=True):", keras_recipe.predict(ones, verbose=0))
print("kreg.layers.Dropout(0.5, mc=True):          ", kreg_recipe.predict(ones, verbose=0))

"""
`model.predict` overrides the `training=True` given to Keras' layer, so the first model
returns its input untouched; kreg's `Dropout(mc=True)` keeps dropping. Below we keep
`mc=False` (the default: Keras' behaviour) and let `kreg.mc_predict(model, x, samples)`
sample the dropout layers of an ordinary model when we ask it to. It returns the mean and
the standard deviation of the outputs over the passes, so the model ends in a softmax:
we want the average of probabilities, not of logits.

## Three MLPs on MNIST-1D

One without dropout, one with dropout on the inputs (keep 0.8) and the hidden units
(keep 0.5), one with dropout on the hidden units only.
"""


def make_mlp(input_rate, hidden_rate):
    layers = [keras.Input(shape=dataset.input_shape)]
    if input_rate:
        layers.append(kreg.layers.Dropout(input_rate))
    for _ in range(2):
        layers.append(keras.layers.Dense(256, activation="relu"))
        if hidden_rate:
            layers.append(kreg.layers.Dropout(hidden_rate))
    layers.append(keras.layers.Dense(dataset.num_classes, activation="softmax"))
    return keras.Sequential(layers)


epochs = _lesson.pick(options, smoke=1, quick=20, full=100)
models = {}
for name, input_rate, hidden_rate in (
    ("no dropout", 0.0, 0.0),
    ("input 0.2 + hidden 0.5", 0.2, 0.5),
    ("hidden 0.5 only", 0.0, 0.5),
):
    keras.utils.set_random_seed(options.seed)
    model = make_mlp(input_rate, hidden_rate)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    model.fit(dataset.x_train, dataset.y_train, batch_size=100, epochs=epochs, verbose=0)
    models[name] = model

"""
## Weight scaling against the Monte-Carlo average

`model.predict` gives the weight-scaling prediction. `kreg.mc_predict` gives the average
over `samples` masks of the very same weights; we reseed before each call, so every
number of samples starts from the same masks.
"""


def accuracy_and_nll(probabilities, labels):
    picked = probabilities[np.arange(len(labels)), labels]
    accuracy = np.mean(probabilities.argmax(-1) == labels)
    return float(accuracy), float(-np.mean(np.log(picked + 1e-12)))


def mc_average(model, samples):
    keras.utils.set_random_seed(options.seed + 7)
    return kreg.mc_predict(model, dataset.x_test, samples=samples, batch_size=250)


dropout_model = models["input 0.2 + hidden 0.5"]
sample_counts = _lesson.pick(
    options, smoke=[1, 2], quick=[1, 2, 5, 10, 30, 100], full=[1, 2, 5, 10, 30, 100]
)
rows = [
    [name, "-", *accuracy_and_nll(models[name].predict(dataset.x_test, verbose=0), dataset.y_test)]
    for name in ("no dropout", "input 0.2 + hidden 0.5")
]
mc_accuracy = []
for samples in sample_counts:
    mean, std = mc_average(dropout_model, samples)
    rows.append(
        [
            "input 0.2 + hidden 0.5, MC average",
            samples,
            *accuracy_and_nll(keras.ops.convert_to_numpy(mean), dataset.y_test),
        ]
    )
    mc_accuracy.append(rows[-1][2])
_lesson.table(
    options,
    "dropout",
    ["model, prediction", "samples", "test accuracy", "test NLL"],
    rows,
    caption=f"One seed, {epochs} epochs; without a sample count: model.predict.",
)

figure, axis = plt.subplots(figsize=(5, 3.2))
axis.semilogx(sample_counts, mc_accuracy, "o-", label="MC average (kreg.mc_predict)")
axis.axhline(rows[1][2], color="tab:red", ls="--", label="weight scaling (model.predict)")
axis.axhline(rows[0][2], color="gray", ls=":", label="no dropout")
axis.set(xlabel="MC samples", ylabel="test accuracy")
axis.legend(fontsize=7)
_lesson.figure(options, figure, "mc_samples")

"""
One sampled mask is a poor predictor: a single sub-network, a fraction of the units. The
average climbs as samples are added and flattens out after a few dozen. Where it ends
relative to the weight-scaling line is the question: scaling the weights is exact for a
linear network, but E[f(masked x)] ≠ f(E[masked x]) once ReLUs sit between the masks.
Whatever the accuracies, weight scaling keeps the lower NLL: here, and in the study's
five-seed means below (1.055 against 1.138 with 100 samples).

## What the spread says

The standard deviation that `mc_predict` returns is the disagreement of the ensemble. A
natural hope: wrong predictions are the ones the sub-networks disagree on. We score each
test example by the spread of its predicted class's probability, and, for comparison, by
the entropy of the averaged prediction, and ask how well each score ranks the wrong
predictions above the right ones (AUROC: 0.5 is no signal, 1 a perfect ranking).
"""

mean, std = (keras.ops.convert_to_numpy(a) for a in mc_average(dropout_model, sample_counts[-1]))
predicted = mean.argmax(-1)
wrong = predicted != dataset.y_test
spread = std[np.arange(len(predicted)), predicted]
entropy = -(mean * np.log(np.clip(mean, 1e-12, None))).sum(-1)
_lesson.table(
    options,
    "uncertainty",
    ["score", "AUROC for wrong predictions"],
    [
        ["std of p(predicted class)", roc_auc_score(wrong, spread)],
        ["entropy of the MC mean", roc_auc_score(wrong, entropy)],
    ],
    caption=f"{sample_counts[-1]} samples, one seed.",
)

figure, axis = plt.subplots(figsize=(5, 3.2))
bins = np.linspace(0, max(spread.max(), 1e-6), 30)
axis.hist(spread[~wrong], bins=bins, alpha=0.6, density=True, label="correct")
axis.hist(spread[wrong], bins=bins, alpha=0.6, density=True, label="wrong")
axis.set(xlabel="std of p(predicted class)", ylabel="density")
axis.legend(fontsize=7)
_lesson.figure(options, figure, "spread")

"""
The spread is largest where a prediction is confident on average but unstable across
masks; a wrong prediction is more often one where every sub-network spreads its
probability thinly, and there the standard deviation is *small*. The entropy of the
average sees that case and is the better error signal here.

## Dropout on the hidden units only

MNIST-1D's signals have 40 points, each carrying a part of the digit its neighbours do
not repeat; MNIST's 784 pixels, where keep 0.8 on the inputs comes from, are highly
redundant. A mask on 40 inputs moves the first layer far from the average that weight
scaling assumes. Without input dropout, the two predictions should agree more closely.
"""

hidden_only = models["hidden 0.5 only"]
scaling_accuracy, _ = accuracy_and_nll(
    hidden_only.predict(dataset.x_test, verbose=0), dataset.y_test
)
mean, _ = mc_average(hidden_only, sample_counts[-1])
mc_only_accuracy, _ = accuracy_and_nll(keras.ops.convert_to_numpy(mean), dataset.y_test)
_lesson.table(
    options,
    "hidden_only",
    ["prediction", "test accuracy"],
    [
        ["weight scaling (model.predict)", scaling_accuracy],
        [f"MC average of {sample_counts[-1]} samples", mc_only_accuracy],
    ],
    caption="Dropout 0.5 on the hidden units only, one seed.",
)

"""
## What the full study shows

One seed cannot tell a difference of 0.01 from chance. `studies/05_dropout.py` trains
five seeds of each model (256-256, 100 epochs), compares the predictions with paired
t-tests, and judges "weight scaling equals the MC average" with an equivalence test: the
95% interval of the difference must lie inside ±0.02 accuracy. Its committed verdict
table and figure:
"""

_lesson.study(options, "05_dropout")

"""
Five seeds settle what one seed cannot. Averaging masks helps: 100 samples beat a single
one by 0.19 accuracy (reproduced). With dropout on the inputs and the hidden units, the MC
average is above weight scaling by 0.021 ± 0.017; the interval of that difference,
[0.000, 0.043], straddles the +0.02 margin, so "weight scaling matches the average" is
inconclusive at this size (Srivastava et al. found the two within one standard deviation
from about 50 samples on MNIST). With dropout on the hidden units only, the two agree
within the margin (−0.008, interval [−0.015, −0.001]: reproduced), and dropping a fifth of
MNIST-1D's 40 inputs costs 0.068 accuracy. The spread is not an error signal here: its
AUROC is 0.25, below chance, while the entropy of the averaged prediction reaches 0.76.

What to take away: `model.predict` is one cheap pass and usually the lower NLL;
`kreg.mc_predict` gives the ensemble's accuracy, which matters most when the inputs are
dropped too; and to flag doubtful predictions, rank them by the entropy of the MC mean, not
by its standard deviation.
"""
