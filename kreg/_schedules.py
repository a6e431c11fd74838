"""Reading a learning rate off an optimizer: its schedule, its value at a step, its peak.

The audit profiles schedules to report a decay at its peak and its end; the optimizer
reads the peak as lr_max of ``follow="corrected"``.
"""

import math

import keras
import numpy as np

from kreg import _keras_compat as compat

__all__ = []  # private


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


def learning_rate_at(optimizer, step=0):
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
    return profile[1] if profile is not None else learning_rate_at(optimizer)
