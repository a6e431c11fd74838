"""
Title: Scaling λ with the batch size and the layer width
Author: kreg contributors
Date created: 2026/12/07
Last modified: 2026/12/07
Description: Share a penalty out over minibatch steps with RegularizationScaler, and keep λ a per-weight strength with normalize="sum".
Accelerator: None
"""

"""
## Introduction

A penalty strength λ means something only next to the loss it is added to. Bengio (2012,
"Practical recommendations for gradient-based training of deep architectures") writes the
objective for the whole training set, J = Σᵢ ℓᵢ + λ·R(w), and shares λ out over the
minibatch steps: a step that sees b of the N examples gets λ·b/N when its loss *sums* over
the batch, and λ/N when it *averages* (Keras' default, `"sum_over_batch_size"`). One epoch
then applies exactly one full-batch λ, whatever the batch size. Without that, changing the
batch size changes the balance between data and penalty, and the λ tuned at one batch size
is wrong at another.

`kreg.callbacks.RegularizationScaler("minibatch")` sets every penalty strength to that share
before each batch. The second question of this lesson is the layer width: is λ a strength
per weight (Keras' convention, `normalize="sum"`), or per layer (`normalize="mean"`)?
"""

"""
## Setup
"""

import _lesson  # noqa: I001  (first: puts the repository on sys.path)

import _data
import _train
import keras
import matplotlib.pyplot as plt
import numpy as np

import kreg

options = _lesson.options("07_scaling_lambda")
dataset = _data.from_args(options, "mnist1d")
num_examples = len(dataset.y_train)
print(dataset)

"""
## The scaler

A model whose penalties are `kreg.regularizers.L2(λ)` with λ = 1 for the full-batch
objective, and a loss that sums over the batch. The scaler needs the batch size and the
number of training examples, because `fit` reports neither; a small callback records the
strength each step actually used.
"""


def make_model(l2):
    model = _train.mlp(dataset, kernel_regularizer=lambda: kreg.regularizers.L2(l2))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=loss)
    return model


class RecordStrength(keras.callbacks.Callback):
    def __init__(self, strength):
        super().__init__()
        self.strength, self.values = strength, []

    def on_train_batch_begin(self, batch, logs=None):
        self.values.append(float(self.strength))


rows = []
shown_batch_sizes = _lesson.pick(options, smoke=[32], quick=[32, 128, 512], full=[32, 128, 512])
for batch_size in shown_batch_sizes:
    model = make_model(l2=1.0)
    scaler = kreg.callbacks.RegularizationScaler(
        "minibatch", batch_size=batch_size, num_examples=num_examples
    )
    strength = kreg.strengths(model)["dense_0.kernel_regularizer.l2"]
    record = RecordStrength(strength)
    model.fit(
        dataset.x_train,
        dataset.y_train,
        batch_size=batch_size,
        epochs=1,
        verbose=0,
        callbacks=[scaler, record],
    )  # the scaler first: it sets, the recorder reads
    values = record.values
    rows.append([batch_size, len(values), values[0], values[-1], sum(values)])
_lesson.table(
    options,
    "per_step",
    [
        "batch size",
        "steps",
        "λ per full step",
        "λ at the last (partial) step",
        "sum over the epoch",
    ],
    rows,
)

"""
Each full step gets λ·b/N, the last, partial step its own share, and the epoch adds up to
exactly λ = 1 at every batch size. With Keras' default mean-reduced loss the rule gives
λ/N at every step instead: a constant, so there a fixed λ already is right.

## What happens without it

With a summed loss and a fixed λ, each step's data term grows with b while its penalty
does not. Below, a grid of λ at a small and a large batch size, one MLP per (λ, batch
size), all of one batch size trained side by side in one Keras model (`_train.packed`:
disjoint weights and added losses, so each trains exactly as alone).
"""

lambdas = _lesson.pick(
    options, smoke=[0.03, 3.0], quick=[0.03, 0.3, 3.0], full=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
)
batch_sizes = _lesson.pick(options, smoke=[32, 64], quick=[32, 512], full=[32, 128, 512])
epochs = _lesson.pick(options, smoke=1, quick=20, full=50)
errors = {}
for batch_size in batch_sizes:
    keras.utils.set_random_seed(options.seed)
    towers = _train.packed(dataset, [_train.mlp_tower(dataset) for _ in lambdas])
    for index, l2 in enumerate(lambdas):
        kreg.regularizers.apply(
            towers,
            kreg.regularizers.L2(l2),
            exclude=lambda variable, i=index: not variable.path.startswith(f"net{i}_"),
        )
    towers.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=[
            keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
            for _ in lambdas
        ],
    )
    _train.fit_packed(
        towers, dataset.x_train, dataset.y_train, batch_size=batch_size, epochs=epochs, verbose=0
    )
    scores = _train.packed_scores(towers, dataset.x_test, dataset.y_test)
    errors[batch_size] = [1 - accuracy for accuracy, _ in scores]
_lesson.table(
    options,
    "lambda_grid",
    ["λ"] + [f"test error, batch {b}" for b in batch_sizes],
    [[l2] + [errors[b][i] for b in batch_sizes] for i, l2 in enumerate(lambdas)],
    caption=f"One seed, {epochs} epochs, summed loss.",
)

"""
Read the table by columns. At the small batch size a large λ outweighs the summed loss of
the few examples a step sees, and the error climbs with λ; at the large batch size each
step's data term is 16 times larger and the same λ costs far less. The balance between data
and penalty, and with it the best λ, moves with the batch size. One seed and the paper's
1000 test examples cannot say by how much: that is the study's job (below).

## λ and the layer width: `normalize="sum"` or `"mean"`

An L2 penalty summed over a kernel's n weights, λ·Σw², pulls each weight by 2λw, whatever
n is. `normalize="mean"` divides the penalty, and so each weight's pull, by n: the same λ
then regularizes a wide layer less than a narrow one. One hidden layer of growing width,
both ways, trained side by side:
"""

widths = _lesson.pick(
    options, smoke=[16, 64], quick=[32, 512, 2048], full=[32, 128, 512, 2048, 4096]
)
width_epochs = _lesson.pick(options, smoke=1, quick=10, full=60)
l2 = 1e-3
variants = [(normalize, width) for normalize in ("sum", "mean") for width in widths]
keras.utils.set_random_seed(options.seed)
towers = _train.packed(dataset, [_train.mlp_tower(dataset, hidden=(w,)) for _, w in variants])
for index, (normalize, _width) in enumerate(variants):
    kreg.regularizers.apply(
        towers,
        kreg.regularizers.L2(l2, normalize=normalize),
        exclude=lambda variable, i=index: not variable.path.startswith(f"net{i}_"),
    )
_train.compile_packed(towers, keras.optimizers.Adam(1e-3))
_train.fit_packed(
    towers, dataset.x_train, dataset.y_train, batch_size=100, epochs=width_epochs, verbose=0
)
scores = _train.packed_scores(towers, dataset.x_test, dataset.y_test)
rows, rms = [], {}
for index, (normalize, width) in enumerate(variants):
    kernel = keras.ops.convert_to_numpy(towers.get_layer(f"net{index}_dense_0").kernel)
    pull = 2 * l2 / (1 if normalize == "sum" else kernel.size)  # per unit weight
    rms[normalize, width] = float(np.sqrt(np.mean(kernel**2)))
    rows.append([normalize, width, kernel.size, pull, rms[normalize, width], scores[index][0]])
_lesson.table(
    options,
    "width",
    [
        "normalize",
        "width",
        "weights",
        "pull per unit weight",
        "RMS of the trained weights",
        "test accuracy",
    ],
    rows,
)

figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for normalize, style in (("sum", "o-"), ("mean", "s--")):
    axes[0].semilogx(widths, [rms[normalize, w] for w in widths], style, label=normalize)
axes[0].set(
    xlabel="width",
    ylabel="RMS of the trained weights",
    title=f"L2({l2:g}) on the hidden kernel, {width_epochs} epochs",
)
axes[0].legend()
axes[1].semilogx(widths, [rms["mean", w] / rms["sum", w] for w in widths], "o-")
axes[1].set(
    xlabel="width", ylabel="RMS 'mean' / RMS 'sum'", title="How much less 'mean' regularizes"
)
_lesson.figure(options, figure, "sum_vs_mean")

"""
With `"sum"` the pull per weight is the same at every width; with `"mean"` it shrinks as
1/n, and the trained weights end larger than under `"sum"`, the more so the wider the layer
(the right panel: the ratio of the two grows with the width). Glorot initialization keeps
the penalty's value at init nearly flat across widths (each weight's variance shrinks as
1/fan-in), so `"sum"` does not blow up on wide layers either. Use `"sum"`, a per-weight λ,
to keep λ's meaning when the architecture changes.

## What the study shows

`studies/07_scaling_lambda.py` runs the grid properly: six λ, six batch sizes from 32 to
1024, three seeds, 50 epochs, test errors on 20000 fresh MNIST-1D examples. The best λ of a
summed loss grows with the batch size, and faster than the rule says: the slope of
log(best λ) against log(b) is 1.43 ± 0.05, not 1, so the scaler's λ·b/b_ref is too small
at large batch sizes. (The study trains every batch size for the same number of epochs, so
a larger batch also takes fewer steps; that may be part of the reason.) Reusing the best λ
of b = 128 through the scaler rather than as is makes no difference that three seeds can
see: near its best, the test error barely moves with λ.
"""

_lesson.study(options, "07_scaling_lambda")
