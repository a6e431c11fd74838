"""A small base for callbacks that watch one logged quantity, in the shape of Keras' own
``MonitorCallback``: which way it improves, what counts as an improvement, reading it."""

import math
import warnings

import keras
import numpy as np

from kreg import _keras_compat as compat

__all__ = []  # private: EarlyStopping's base


def infer_direction(model, monitor):
    """ "min" or "max" for ``monitor`` as Keras' ``mode="auto"`` infers it (None if unknown).

    "loss"/"val_loss" are minimized; otherwise the compiled metric of that name says
    whether it goes up or down.
    """
    name = monitor.removeprefix("val_")
    direction = "min" if name == "loss" else None
    for metric in getattr(model, "metrics", None) or []:
        inner = getattr(metric, "metrics", None)
        candidates = list(inner) if isinstance(inner, (list, tuple)) else [metric]
        for candidate in candidates:
            if getattr(candidate, "name", None) == name:
                direction = compat.metric_direction(candidate) or direction
    return direction


def is_improvement(current, reference, direction, min_delta, min_delta_mode="abs"):
    """Whether ``current`` beats ``reference`` by more than ``min_delta``.

    ``min_delta_mode="abs"``: current < reference − min_delta ("min") or
    current > reference + min_delta ("max"), as Keras. ``"rel"``: the margin is
    ``min_delta·|reference|``. A non-finite ``current`` never improves; a ``None``
    reference is beaten by any finite value.
    """
    if current is None or not math.isfinite(current):
        return False
    if reference is None:
        return True
    margin = min_delta * abs(reference) if min_delta_mode == "rel" else min_delta
    if direction == "min":
        return current + margin < reference
    return current - margin > reference


def scalar(value, name):
    """A logged value as a Python float; a metric of another shape is refused."""
    array = np.asarray(keras.ops.convert_to_numpy(value), dtype="float64")
    if array.size != 1:
        raise ValueError(
            f"EarlyStopping monitors a scalar, but the logs hold `{name}` with shape "
            f"{array.shape}. Monitor a scalar metric (e.g. F1Score(average='macro'))."
        )
    return float(array.reshape(()))


class MonitorCallback(keras.callbacks.Callback):
    """Watches ``monitor`` in the epoch logs: its direction, improvements, its value.

    ``mode`` is "auto", "min" or "max" (an unknown one warns and falls back to "auto", as
    Keras); the direction is settled at the first epoch end, once the model's metrics
    are built. ``strict`` makes a missing key an error (else one warning per ``fit``).
    """

    def __init__(self, monitor, mode, min_delta, min_delta_mode, strict):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(
                f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.",
                stacklevel=3,
            )
            mode = "auto"
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(
                "Invalid value for argument `monitor`: expected a metric name such as "
                f"'val_loss'. Received: monitor={monitor!r}"
            )
        if min_delta_mode not in ("abs", "rel"):
            raise ValueError(
                "Invalid value for argument `min_delta_mode`: expected 'abs' or 'rel'. "
                f"Received: min_delta_mode={min_delta_mode!r}"
            )
        self.monitor, self.mode = monitor, mode
        self.min_delta, self.min_delta_mode, self.strict = min_delta, min_delta_mode, strict
        self.direction = None
        self.monitor_op = None
        self._warned_missing = False

    def set_direction(self):
        """Settle ``direction`` ("min" or "max") from ``mode`` or the model's metric."""
        direction = (
            self.mode if self.mode in ("min", "max") else infer_direction(self.model, self.monitor)
        )
        if direction is None:
            raise ValueError(
                f"{type(self).__name__} callback received monitor={self.monitor}, but "
                "Keras isn't able to automatically determine whether that metric "
                "should be maximized or minimized. Pass `mode='max'` in order to "
                "monitor based on the highest metric value, or pass `mode='min'` in "
                "order to use the lowest value."
            )
        self.direction = direction
        self.monitor_op = keras.ops.less if direction == "min" else keras.ops.greater

    def improves(self, current, reference):
        """Whether ``current`` improves on ``reference`` (see :func:`is_improvement`)."""
        return is_improvement(
            current, reference, self.direction, self.min_delta, self.min_delta_mode
        )

    def get_monitor_value(self, logs):
        """The monitored value from ``logs`` as a float (None if missing: warns once per fit)."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            message = (
                f"Early stopping conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(list(logs.keys()))}"
            )
            if self.strict:
                raise ValueError(message)
            if not self._warned_missing:
                self._warned_missing = True
                warnings.warn(message, stacklevel=2)
            return None
        return scalar(value, self.monitor)
