"""
Title: L1, L2 and the elastic net
Author: kreg contributors
Date created: 2026/12/07
Last modified: 2026/12/07
Description: L1 pulls weights toward zero, but only a proximal step puts them exactly there.
Accelerator: None
"""

"""
## Introduction

An L2 penalty λ·Σw² pulls each weight with a force 2λ·w that fades as the weight gets
small: L2 shrinks weights but leaves them non-zero. An L1 penalty λ·Σ|w| pulls with a
constant force λ·sign(w), so it drives weights toward zero: sparsity. The elastic net adds
both.

There is a catch. A gradient step on the L1 penalty uses its subgradient: a weight near
zero is pushed past zero, then back, and oscillates around it; it almost never lands on
exactly 0.0. A *proximal* step (soft-thresholding, as in FOBOS and the lasso's solvers)
does land there: first the ordinary step, then w ← sign(w)·max(|w| − lr·λ, 0).

kreg has both: `kreg.regularizers.L1` (a penalty in the loss, as Keras' own) and
`kreg.optimizers.DecoupledWeightDecay(optimizer, weight_decay, l1=λ)`, whose `l1` is the
proximal step, written after each update of the wrapped optimizer.

## Setup
"""

import _data
import _lesson  # the lessons' helper: command-line options, tables and figures
import keras
import matplotlib.pyplot as plt
import numpy as np

import kreg

options = _lesson.options("02_l1_l2_elastic_net")
dataset = _data.from_args(options, options.dataset)
print(dataset)

"""
## L1 as a penalty, L1 as a proximal step

Every model here is the same MLP trained with plain SGD from the same initial weights. With
the default `follow="learning_rate"` the proximal step shrinks each kernel weight by lr·l1
per step, the same amount as the penalty's subgradient step: only *how* differs.
"""

learning_rate = 0.1
l1 = 1e-3
l2 = 1e-3

penalties = {
    "none": None,
    "L2 penalty": kreg.regularizers.L2(l2),
    "L1 penalty": kreg.regularizers.L1(l1),
    "elastic-net penalty": kreg.regularizers.L1L2(l1=l1, l2=l2),
}
# L2(l2) has the gradient 2·l2·w, so the matching decoupled weight decay is 2·l2.
proximal_optimizers = {
    "proximal L1": lambda: kreg.optimizers.DecoupledWeightDecay(
        keras.optimizers.SGD(learning_rate), 0.0, l1=l1
    ),
    "proximal elastic net": lambda: kreg.optimizers.DecoupledWeightDecay(
        keras.optimizers.SGD(learning_rate), 2 * l2, l1=l1
    ),
}


def build_model():
    keras.utils.set_random_seed(options.seed)  # the same initial weights for every model
    return keras.Sequential(
        [
            keras.Input(dataset.input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dense(dataset.num_classes),
        ]
    )


def kernels(model):
    """Every kernel weight (the regularized ones) as one flat array."""
    return np.concatenate(
        [
            keras.ops.convert_to_numpy(v).ravel()
            for v in model.trainable_weights
            if v.path.endswith("kernel")
        ]
    )


"""
## Training

`kreg.regularizers.apply` attaches a penalty to every kernel of a built model; the
proximal models get no penalty and the wrapped optimizer instead.
"""

epochs = _lesson.pick(options, smoke=1, quick=10, full=100)
runs = {
    name: (penalty, lambda: keras.optimizers.SGD(learning_rate))
    for name, penalty in penalties.items()
}
runs.update({name: (None, make) for name, make in proximal_optimizers.items()})

weights, rows = {}, []
for name, (penalty, make_optimizer) in runs.items():
    model = build_model()
    if penalty is not None:
        kreg.regularizers.apply(model, penalty)
    model.compile(
        optimizer=make_optimizer(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(dataset.x_train, dataset.y_train, batch_size=100, epochs=epochs, verbose=0)
    accuracy = model.evaluate(dataset.x_test, dataset.y_test, verbose=0)[1]
    weights[name] = w = kernels(model)
    rows.append(
        [
            name,
            accuracy,
            float(np.mean(w == 0.0)),
            float(np.mean(np.abs(w) < 1e-3)),
            float(np.mean(np.abs(w))),
        ]
    )

_lesson.table(
    options,
    "sparsity",
    ["regularization", "test accuracy", "exactly 0", "abs(w) < 1e-3", "mean abs(w)"],
    rows,
)

"""
Read the table by pairs. The L1 penalty and the proximal L1 step shrink the weights
about alike (the last column) and put about as many of them within 1e-3 of zero, but
only the proximal rows have weights at *exactly* zero; the penalties leave none there,
and L2 neither.

## Where the weights end up

A histogram of log10|w| shows the difference: a weight near zero sits on the left of the
blue bulk; a weight at exactly zero cannot go on a log scale and gets the red bar.
"""

figure, axes = plt.subplots(2, 3, figsize=(10, 5.2))
bins = np.linspace(-7, 0, 57)
for axis, (name, w) in zip(axes.ravel(), weights.items()):
    nonzero = np.abs(w[w != 0])
    axis.hist(np.clip(np.log10(nonzero), bins[0], bins[-1]), bins=bins, color="tab:blue")
    axis.bar([-7.6], [int(np.sum(w == 0))], width=0.5, color="tab:red")
    axis.set_yscale("log")
    axis.set_xticks([-7.6, -6, -4, -2, 0], ["=0", "1e-6", "1e-4", "1e-2", "1"], fontsize=7)
    axis.set_title(f"{name}\nexactly 0: {np.mean(w == 0):.1%}", fontsize=8)
_lesson.figure(options, figure, "weight_histograms")

"""
Under the L1 penalty the weights that "should" be zero form a second mode just left of the
bulk: they oscillate around zero with an amplitude of about lr·l1 = 1e-4, never reaching
it. The proximal step moves them to the red bar.

## Why one lands and the other does not

One weight whose data gradient is small (below l1 in magnitude, so the best value is 0),
stepped 120 times both ways. The subgradient step overshoots zero by up to
lr·l1 every time; the soft-threshold stops at zero and stays there as long as the data
gradient stays below l1.
"""

rng = np.random.default_rng(options.seed)
data_gradient = 0.3 * l1 * rng.standard_normal(120)  # small and noisy
subgradient_path, proximal_path = [0.0015], [0.0015]
for g in data_gradient:
    w = subgradient_path[-1]
    subgradient_path.append(w - learning_rate * (g + l1 * np.sign(w)))
    w = proximal_path[-1] - learning_rate * g
    proximal_path.append(np.sign(w) * max(abs(w) - learning_rate * l1, 0.0))

figure = plt.figure(figsize=(6, 3))
plt.plot(subgradient_path, label="L1 penalty (subgradient step)")
plt.plot(proximal_path, label="proximal step (soft-threshold)")
plt.axhline(0, color="gray", lw=0.5)
plt.xlabel("step")
plt.ylabel("w")
plt.ylim(-0.0003, 0.0016)
plt.legend(fontsize=7)
_lesson.figure(options, figure, "one_weight")

"""
A stronger l1 zeroes more weights (a weight stays at zero while its data gradient is
below l1), at some cost in accuracy; the study measures both over seeds and strengths.

## What the full study shows

`studies/02_l1_l2_elastic_net.py` trains the same MLP for 100 epochs with 5 seeds at three
strengths of l1 and compares the penalty with the proximal step seed by seed (paired
tests over seeds): the fraction of weights at exactly zero, how much the weights shrink,
and test accuracy.
"""

_lesson.study(options, "02_l1_l2_elastic_net")

"""
At l1 = 1e-3 the proximal step holds about half of the kernel weights at exactly zero and
the penalty none, with the same shrinkage and the same accuracy; the elastic net behaves
alike. At l1 = 1e-4 few weights reach zero in 100 epochs either way. At l1 = 1e-2, too
strong for this network either way, the proximal step zeroes nearly every weight and the
penalty's mean |w| is clearly larger: the weights the proximal step holds at zero, the penalty keeps oscillating around
it, at an amplitude of about lr·l1.
"""

"""
## Takeaways

* For sparsity you can use (weights at exactly 0.0, which a sparse format or a pruning step
  can drop), use the proximal step: `DecoupledWeightDecay(optimizer, 0.0, l1=λ)`, or with
  a decay as well for the elastic net.
* `kreg.regularizers.L1` (like `keras.regularizers.L1`) shrinks weights toward zero just as
  much, but leaves them oscillating around it.
"""
