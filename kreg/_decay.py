"""The maths of decoupled weight decay, proximal L1 and coupled L2, as pure functions.

Every function takes tensors (or Keras variables) and scalars and returns a new tensor;
nothing is assigned. The write transforms share one signature, ``(θ, amount, reference,
before)`` (``before``: the weight before the inner step, read by the cautious decay only). :class:`kreg.optimizers.DecoupledWeightDecay` is a thin shell that
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
>>> before = np.array([1.0, 1.0], "float32")  # the inner step moved it to 0.9 and 1.1
>>> show(cautious_decay(np.array([0.9, 1.1], "float32"), 0.1, before=before))
[0.8, 1.1]
"""

from keras import ops

#: What the decay is multiplied by at each step (``follow``): the rule's factor
#: ``f(lr_t, lr_0, lr_max)``, with lr_t the inner learning rate at this step, lr_0 the one
#: at the first step and lr_max the largest.
FOLLOW = ("learning_rate", "schedule", "corrected", "none")


def follow_factor(follow, learning_rate, initial_learning_rate=None, peak_learning_rate=None):
    """The factor the decay is multiplied by at this step.

    Args:
        follow: "learning_rate" (lr_t: Keras, PyTorch, optax), "schedule" (η_t =
            lr_t / lr_0, Loshchilov & Hutter 2019), "corrected" (lr_t² / lr_max, Defazio et
            al. 2025: timm's ``corrected_weight_decay``) or "none" (1: tensorflow-addons).
        learning_rate: lr_t, a scalar tensor or float.
        initial_learning_rate: lr_0 (read for "schedule" only; a factor of 0 while it is 0).
        peak_learning_rate: lr_max (read for "corrected" only; a factor of 0 while it is 0).

    Returns:
        A float32 scalar tensor (or 1.0 for "none").

    >>> float(follow_factor("corrected", 0.5, peak_learning_rate=2.0))
    0.125
    """
    if follow == "none":
        return 1.0
    lr = ops.cast(learning_rate, "float32")
    if follow == "learning_rate":
        return lr
    if follow == "schedule":
        return _ratio(lr, initial_learning_rate)
    return _ratio(lr * lr, peak_learning_rate)


def _ratio(numerator, denominator):
    """numerator / denominator, 0 where the denominator is not positive."""
    denominator = ops.cast(denominator, "float32")
    positive = denominator > 0
    return ops.where(positive, numerator / ops.where(positive, denominator, 1.0), 0.0)


def decay(theta, amount, reference=None, before=None):
    """One decoupled decay step: ``(1 − amount)·θ`` (or ``θ − amount·(θ − θ₀)``)."""
    theta = ops.convert_to_tensor(theta)
    amount = ops.cast(amount, theta.dtype)
    if reference is None:
        return theta * (1.0 - amount)  # bitwise (1 - decay)·θ
    return theta - amount * (theta - ops.cast(reference, theta.dtype))


def soft_threshold(theta, threshold, reference=None, before=None):
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


def cautious_decay(theta, amount, reference=None, before=None):
    """The cautious decay step after the inner update: ``θ − amount·𝕀(u·x ≥ 0)·x``.

    ``before`` is the weight before the inner update (θ_t), ``theta`` the weight after it
    (θ_t − η_t·u_t), and x = θ_t − θ₀ (θ_t without ``reference``): the decay acts only on
    the coordinates where the inner update moves the weight the way the decay would
    (toward zero, or toward θ₀), with Chen et al.'s ``≥`` (a coordinate the update leaves
    alone is decayed). η_t·u_t = θ_t − θ has the sign of u_t, so any inner optimizer's
    update serves, with no knowledge of its rule.

    References:
        Chen, Li, Liang, Su, Xie, Pierse, Liang, Lao & Liu, "Cautious Weight Decay",
        arXiv 2510.12402, 2025.
    """
    theta = ops.convert_to_tensor(theta)
    before = ops.cast(ops.convert_to_tensor(before), theta.dtype)
    x = before if reference is None else before - ops.cast(reference, theta.dtype)
    aligned = ops.cast((before - theta) * x >= 0, theta.dtype)
    return theta - ops.cast(amount, theta.dtype) * aligned * x


def l2_gradient(gradient, theta, strength, reference=None):
    """``gradient + λ·θ`` (or ``+ λ·(θ − θ₀)``): λ·θ is the gradient of (λ/2)·‖θ‖²."""
    theta = ops.convert_to_tensor(theta)
    diff = theta if reference is None else theta - ops.cast(reference, theta.dtype)
    gradient = ops.convert_to_tensor(gradient)
    return gradient + ops.cast(strength, gradient.dtype) * ops.cast(diff, gradient.dtype)
