"""Penalties: what regularizer-not-attached, penalty-on-*, l2-and-weight-decay and
l2-with-adaptive-optimizer say."""

import math

from kreg.audit._explain import class_code, describe, optimizer_code, plain, why
from kreg.audit._facts import as_float


def regularizer_not_attached(*, layer_path, attribute, regularizer, variable_path):
    return (
        f"layer '{layer_path}' has {attribute}={describe(regularizer)}, "
        f"but its weight '{variable_path}' has no regularizer: no penalty reaches the loss",
        f"Keras attaches a layer's regularizers to its weights when the layer is "
        f"built, so setting `{attribute}` afterwards changes nothing.",
        f"kreg.regularizers.apply(model, {_regularizer_code(regularizer)},\n"
        f"                        exclude=lambda v: v.path != {variable_path!r})"
        "  # attaches to the built weight\n"
        f"# or pass {attribute}= when the layer is created, before it is built",
    )


def _without_regularizer(layer, attribute, variable_path):
    """``keras.layers.Dense(..., bias_regularizer=None)``, where the class and its argument
    can be named; else a comment."""
    name = class_code(layer)
    if attribute is None or name is None:
        return f"# remove the regularizer of '{variable_path}'"
    return f"{name}(..., {attribute}=None)"


def penalty_on(*, kind, regularizer, variable_path, layer, attribute):
    """penalty-on-bias, -normalization, -embedding; ``attribute`` None: not a layer argument."""
    what = "token embedding" if kind == "embedding" else kind
    return (
        f"{describe(regularizer)} penalty on {what} '{variable_path}'",
        why(kind, "penalizing"),
        _without_regularizer(layer, attribute, variable_path),
    )


def l2_and_weight_decay(
    *, regularizer, variable_path, weight_decay, optimizer_name, layer, attribute
):
    return (
        f"'{variable_path}' has an {describe(regularizer)} penalty and weight decay "
        f"{weight_decay:g} from {optimizer_name}",
        "The weight is shrunk twice, by the penalty's gradient and by the "
        "decay, so its regularization is neither value and tuning one silently "
        "retunes the other.",
        _without_regularizer(layer, attribute, variable_path)
        + "  # keep the optimizer's weight decay",
    )


def l2_with_adaptive_optimizer(
    *,
    regularizer,
    l2,
    variable,
    layer_path,
    attribute,
    label,
    optimizer_name,
    learning_rate,
    at_step_0,
):
    """``learning_rate`` is lr_0, or (``at_step_0`` False) the peak of a warm-up from 0."""
    return (
        f"{describe(regularizer)} penalty on '{variable.path}' trained with {label}",
        f"{optimizer_name} divides every gradient, the penalty's included, by a "
        "per-weight running scale, so weights with large gradients are barely "
        "regularized: for adaptive optimizers an L2 penalty is not weight decay "
        "(Loshchilov & Hutter, 2019).",
        f"# drop {attribute or 'the regularizer'} from layer '{layer_path}' and decay in "
        "the optimizer:\n"
        + _decay_for_penalty(optimizer_name, regularizer, variable, l2, learning_rate, at_step_0),
    )


def _decay_for_penalty(optimizer_name, regularizer, variable, l2, learning_rate, at_step_0):
    """DecoupledWeightDecay code whose per-step decay equals the penalty's under plain SGD.

    Under SGD, ``l2·Σw²`` shrinks w by ``2·lr_t·l2`` per step and ``l1·Σ|w|`` by
    ``lr_t·l1``; the wrapper's decay (``follow="schedule"``) is ``wd·lr_t/lr_0``, its
    proximal L1 ``l1·lr_t/lr_0``. So ``wd = 2·lr_0·l2`` and ``l1 = lr_0·l1``, with
    ``normalize="mean"`` dividing both by the weight's size. A schedule that starts at
    0 (a warm-up) gets ``initial_learning_rate`` = its peak, as the wrapper needs lr_0 > 0.
    """
    lr0, extra = learning_rate, ""
    if not at_step_0:
        lr0 = learning_rate or 1e-3
        extra = f", initial_learning_rate={lr0:.3g}"
    size = math.prod(variable.shape) if getattr(regularizer, "normalize", "sum") == "mean" else 1
    l1 = as_float(getattr(regularizer, "l1", None)) or 0.0
    if l1:
        extra += f", l1={lr0 * l1 / size:.3g}"
    if hasattr(regularizer, "reference"):
        extra += ", anchor='initial'"
    inner = optimizer_code(plain(optimizer_name))
    return (
        f"optimizer = kreg.optimizers.DecoupledWeightDecay({inner}(...), "
        f'weight_decay={2 * lr0 * l2 / size:.3g}, follow="schedule"{extra})'
        "  # the per-step decay the penalty gives under plain SGD"
    )


def _regularizer_code(regularizer):
    """``keras.regularizers.L2(l2=0.0001)``: code that rebuilds a regularizer."""
    module = "kreg" if type(regularizer).__module__.startswith("kreg") else "keras"
    try:
        config = regularizer.get_config()
    except Exception:
        config = {}
    args = ", ".join(f"{k}={v!r}" for k, v in config.items() if isinstance(v, (int, float, str)))
    return f"{module}.regularizers.{type(regularizer).__name__}({args})"
