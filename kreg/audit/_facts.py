"""Facts the checks read: which optimizer steps and decays each weight, by how much, and what
penalizes it.

Public Keras attributes where Keras has them; the few facts Keras keeps private (an
optimizer's schedule, its ``exclude_from_weight_decay`` choices, Muon's split between its
two update rules) through ``kreg._keras_compat``.
"""

import math

import keras
import numpy as np

from kreg import _keras_compat as compat
from kreg._live import layer_strength, live_optimizer_strengths, optimizer_chain, walk_layers
from kreg._masking import NORMALIZATION_LAYERS
from kreg.optimizers import DecoupledWeightDecay

# ---------------------------------------------------------------------------- optimizers

_ADAPTIVE_NAMES = (
    "Adam",
    "AdamW",
    "Adamax",
    "Nadam",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adafactor",
    "Ftrl",
    "Lamb",
    "Lion",
    "Muon",
    "ScheduleFreeAdamW",
)
ADAPTIVE_OPTIMIZERS = tuple(
    getattr(keras.optimizers, n) for n in _ADAPTIVE_NAMES if hasattr(keras.optimizers, n)
)


def is_kreg_decay(optimizer):
    """True for kreg.optimizers.DecoupledWeightDecay."""
    return isinstance(optimizer, DecoupledWeightDecay)


def is_multi_optimizer(optimizer):
    """True for a MultiOptimizer, whose inner optimizers the audit does not read."""
    multi = getattr(keras.optimizers, "MultiOptimizer", None)
    return multi is not None and isinstance(optimizer, multi)


def stepper(chain):
    """The optimizer that computes the update direction: the innermost of the chain."""
    return chain[-1] if chain else None


def is_adaptive(optimizer):
    return isinstance(optimizer, ADAPTIVE_OPTIMIZERS)


def as_float(value):
    """``value`` as a finite Python float, or None (a bool, a symbolic or missing value)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(keras.ops.convert_to_numpy(value))
    except Exception:
        return None
    return value if math.isfinite(value) else None


def schedule_of(optimizer):
    """The optimizer's LearningRateSchedule, or None for a constant learning rate."""
    return compat.learning_rate_schedule(optimizer)


def learning_rate(optimizer, step=0):
    """The learning rate at ``step`` as a float (None if it cannot be read)."""
    schedule = schedule_of(optimizer)
    if schedule is not None:
        try:
            return as_float(schedule(step))
        except Exception:
            return None
    try:
        return as_float(getattr(optimizer, "learning_rate", None))
    except Exception:
        return None


def _config(schedule):
    """A schedule's config, or {} (a custom schedule need not implement get_config)."""
    try:
        return dict(schedule.get_config())
    except Exception:
        return {}


def schedule_end(schedule):
    """``(step, exact)``: the step where ``schedule`` ends, or a horizon to show it at."""
    config = _config(schedule)
    name = type(schedule).__name__
    if not config:
        return 10000, False
    if name == "CosineDecay":
        return int(config["decay_steps"]) + int(config.get("warmup_steps") or 0), True
    if name == "CosineDecayRestarts":
        return int(config["first_decay_steps"]), True
    if name == "PolynomialDecay" and not config.get("cycle"):
        return int(config["decay_steps"]), True
    if name == "PiecewiseConstantDecay":
        return int(config["boundaries"][-1]) + 1, True
    if "decay_steps" in config:
        return 10 * int(config["decay_steps"]), False
    return 10000, False


def schedule_profile(schedule):
    """``(lr at step 0, peak lr, lr at the end, end step, end is exact)`` of a schedule."""
    end, exact = schedule_end(schedule)
    config = _config(schedule)
    # A few steps only: on JAX each call of a schedule with a branch is traced anew.
    steps = set(np.linspace(0, end, 6).astype(int).tolist())
    steps.add(int(config.get("warmup_steps") or 0))  # the peak of a warm-up
    steps.update(int(b) + 1 for b in config.get("boundaries") or ())
    steps = sorted(s for s in steps if 0 <= s <= end)
    values = [as_float(schedule(int(s))) for s in steps]
    values = [v for v in values if v is not None]
    if not values:
        return None
    return values[0], max(values), values[-1], end, exact


def peak_learning_rate(optimizer):
    """The largest learning rate of ``optimizer``'s schedule (a warm-up's peak, not step 0's).

    Its plain learning rate when it has no schedule to profile; None when unknown.
    """
    schedule = schedule_of(optimizer)
    profile = schedule_profile(schedule) if schedule is not None else None
    return profile[1] if profile is not None else learning_rate(optimizer)


def initial_or_peak_learning_rate(optimizer):
    """``(lr_0, True)``; for a schedule that starts at 0 (a warm-up) ``(its peak, False)``."""
    lr0 = learning_rate(optimizer)
    if lr0:
        return lr0, True
    return peak_learning_rate(optimizer), False


def keras_weight_decay(optimizer, variable=None):
    """A Keras optimizer's own built-in ``weight_decay`` as a float (0.0 when unset).

    With ``variable``: the decay that acts on it. Muon decays the weights its Adam step
    updates (not matrices, embeddings, ``exclude_layers``) by ``adam_weight_decay``.
    """
    if is_kreg_decay(optimizer):
        return 0.0
    value = getattr(optimizer, "weight_decay", None)
    if variable is not None and hasattr(optimizer, "adam_weight_decay"):
        try:
            if compat.muon_steps_with_adam(optimizer, variable):
                value = optimizer.adam_weight_decay
        except Exception:
            pass
    return as_float(value) or 0.0


def keras_excludes(optimizer, variable, backend=None):
    """True when ``optimizer.exclude_from_weight_decay`` excludes ``variable`` on ``backend``."""
    try:
        return compat.excluded_from_builtin_decay(optimizer, variable, backend)
    except Exception:
        return False


def exclusion_differs(optimizer, variable):
    """True when Keras' var_names exclusion decides ``variable`` differently per backend."""
    return keras_excludes(optimizer, variable, "tensorflow") != keras_excludes(
        optimizer, variable, "jax"
    )


def exclusion_pattern(optimizer):
    """The text of the ``var_names`` pattern of Keras' exclude_from_weight_decay."""
    pattern = compat.weight_decay_exclusion_pattern(optimizer)
    return getattr(pattern, "pattern", str(pattern))


def kreg_weight_decay(optimizer):
    """The live weight decay of a kreg DecoupledWeightDecay as a float (0.0 if unknown)."""
    try:
        handle = live_optimizer_strengths(optimizer).get("weight_decay")
        value = 0.0 if handle is None else float(handle)
    except Exception:
        return 0.0
    given = getattr(optimizer, "weight_decay", None)
    if callable(given):  # a schedule: the live strength is a scale on it; λ at step 0
        value *= as_float(given(0)) or 0.0
    return value


def decays(chain, variable):
    """The weight decays that act on ``variable``: a list of ``(optimizer, per-weight λ)``."""
    found = []
    for optimizer in chain:
        if is_kreg_decay(optimizer):
            wd = kreg_weight_decay(optimizer)
            try:
                multiplier = float(optimizer.weight_decay_multiplier(variable))
            except Exception:
                multiplier = 0.0
            if wd > 0 and multiplier > 0:
                found.append((optimizer, wd * multiplier))
        else:
            wd = keras_weight_decay(optimizer, variable)
            if wd > 0 and not keras_excludes(optimizer, variable):
                found.append((optimizer, wd))
    return found


def optimizer_label(optimizer):
    """``"Adam"``, or ``"DecoupledWeightDecay(Adam)"`` for wrappers."""
    chain = optimizer_chain(optimizer)
    names = [type(o).__name__ for o in chain]
    return "(".join(names) + ")" * (len(names) - 1)


# ------------------------------------------------------------------------ regularizers


def l2_of(regularizer):
    """The L2 strength of a Keras or kreg regularizer (L2, L1L2, L2SP), else None."""
    if regularizer is None:
        return None
    return as_float(getattr(regularizer, "l2", None))


def category(variable, owner):
    """"normalization", "embedding", "bias" or "weight"."""
    short = variable.path.rsplit("/", 1)[-1]
    if owner is not None and isinstance(owner, NORMALIZATION_LAYERS):
        return "normalization"
    if isinstance(owner, keras.layers.Embedding) or short == "embeddings":
        return "embedding"
    if short == "bias":
        return "bias"
    return "weight"


# ------------------------------------------------------------------------------ layers


def layer_paths(model):
    """``[(path, layer)]`` for every layer of ``model``, parents first."""
    return list(walk_layers(model))


def live_value(layer, key):
    """A layer's strength ``key``: its live value for kreg layers, else the attribute."""
    value = layer_strength(layer, key)
    return value if value is not None else as_float(getattr(layer, key, None))


def is_linear(activation):
    return activation is None or getattr(activation, "__name__", "") == "linear"
