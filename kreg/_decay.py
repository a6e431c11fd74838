"""The maths of decoupled weight decay, proximal L1 and coupled L2, as pure functions.

Every function takes tensors (or Keras variables) and scalars and returns a new tensor;
nothing is assigned. :class:`kreg.optimizers.DecoupledWeightDecay` is a thin shell that
composes them around the inner optimizer's step (decay or L2 gradient before it, the L1
step after it) and writes the results. ``reference`` is the anchor θ₀ (None means zero:
plain decay toward the origin).

>>> import numpy as np
>>> def show(x):
...     return np.round(ops.convert_to_numpy(x).astype("float64"), 6).tolist()
>>> show(decay(np.array([1.0, -2.0], "float32"), 0.1))
[0.9, -1.8]
>>> show(soft_threshold(np.array([0.3, -0.05], "float32"), 0.1))
[0.2, 0.0]
"""

from keras import ops

FOLLOW = ("learning_rate", "schedule", "none")


def follow_factor(follow, learning_rate, initial_learning_rate):
    """The factor the decay is multiplied by at this step.

    Args:
        follow: "learning_rate" (lr_t, as Keras, PyTorch and optax), "schedule"
            (η_t = lr_t / lr_0, Loshchilov & Hutter 2019) or "none" (1, as
            tensorflow-addons).
        learning_rate: lr_t, a scalar tensor.
        initial_learning_rate: lr_0, a Python float or a scalar tensor (only read for
            "schedule"; a factor of 0 while it is 0).

    Returns:
        A float32 scalar tensor (or 1.0 for "none").
    """
    if follow == "none":
        return 1.0
    lr = ops.cast(learning_rate, "float32")
    if follow == "learning_rate":
        return lr
    initial = ops.cast(initial_learning_rate, "float32")
    positive = initial > 0
    return ops.where(positive, lr / ops.where(positive, initial, 1.0), 0.0)


def decay(theta, amount, reference=None):
    """One decoupled decay step: ``(1 − amount)·θ`` (or ``θ − amount·(θ − θ₀)``)."""
    theta = ops.convert_to_tensor(theta)
    amount = ops.cast(amount, theta.dtype)
    if reference is None:
        return theta * (1.0 - amount)  # bitwise (1 - decay)·θ
    return theta - amount * (theta - ops.cast(reference, theta.dtype))


def soft_threshold(theta, threshold, reference=None):
    """The L1 proximal step ``sign(θ)·max(|θ| − threshold, 0)`` (around θ₀ when given).

    It is the exact minimizer of ``threshold·|x| + ½(x − θ)²``, so weights whose
    magnitude is below the threshold become exactly zero (FOBOS, Duchi & Singer 2009).
    Computed as ``θ − clip(θ, −threshold, threshold)``: the same floats (θ − θ is exactly
    0, and θ ∓ threshold rounds as sign(θ)·(|θ| − threshold) does) in two elementwise
    ops instead of five.
    """
    theta = ops.convert_to_tensor(theta)
    threshold = ops.cast(threshold, theta.dtype)
    if reference is None:
        return theta - ops.clip(theta, -threshold, threshold)
    reference = ops.cast(reference, theta.dtype)
    diff = theta - reference
    return reference + (diff - ops.clip(diff, -threshold, threshold))


def l2_gradient(gradient, theta, strength, reference=None):
    """``gradient + λ·θ`` (or ``+ λ·(θ − θ₀)``): λ·θ is the gradient of (λ/2)·‖θ‖²."""
    theta = ops.convert_to_tensor(theta)
    diff = theta if reference is None else theta - ops.cast(reference, theta.dtype)
    gradient = ops.convert_to_tensor(gradient)
    return gradient + ops.cast(strength, gradient.dtype) * ops.cast(diff, gradient.dtype)
