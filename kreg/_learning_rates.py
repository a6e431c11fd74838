"""lr_0 and lr_max of DecoupledWeightDecay's ``follow`` rules: given, read off a schedule, or met.

``follow="schedule"`` divides by lr_0, the inner learning rate at the first step;
``follow="corrected"`` by lr_max, its largest. Each is the value given to the wrapper;
else, for lr_max, a learning-rate schedule's peak; else the value met at the steps,
recorded in an optimizer variable ([lr_0, lr_max], 0 until a step has a positive learning
rate): a callback that sets the learning rate before training starts sets them too, and
a loaded optimizer's state keeps them.
"""

import keras
from keras import ops

from kreg import _keras_compat as compat
from kreg import _schedules
from kreg._validate import check_positive_learning_rate, invalid

__all__ = []  # private


class LearningRates:
    """The reference learning rates of one wrapper; ``recorded`` is its [lr_0, lr_max] variable."""

    def __init__(self, initial, peak, follow, core):
        self.given = (
            check_positive_learning_rate(
                initial, "initial_learning_rate", 'lr_0, the divisor of follow="schedule"'
            ),
            check_positive_learning_rate(
                peak, "peak_learning_rate", 'lr_max, the divisor of follow="corrected"'
            ),
        )
        self.recorded = None  # set by the wrapper once its variable exists
        self._profiled = None  # (schedule, its peak): profiling calls it several times
        schedule = compat.learning_rate_schedule(core)
        if self.given[0] is None and follow == "schedule" and schedule is not None:
            start = _schedules.as_float(schedule(0))
            if not (start and start > 0):
                raise invalid(
                    "initial_learning_rate",
                    'a positive finite float (lr_0, the divisor of follow="schedule"), as '
                    "the inner learning-rate schedule starts at 0 (a warm-up): set it to "
                    "the schedule's peak",
                    initial,
                )

    def initial(self, core):
        """lr_0 as a Python float: given; else met at the first step; else what it would read now."""
        if self.given[0] is not None:
            return self.given[0]
        return self._met(0, core, step=0)

    def peak(self, core):
        """lr_max as a Python float: given; else the schedule's peak; else the largest met."""
        if self.given[1] is not None:
            return self.given[1]
        peak = self._schedule_peak(core)
        return peak if peak is not None else self._met(1, core)

    def _met(self, index, core, step=None):
        recorded = float(keras.ops.convert_to_numpy(self.recorded)[index])
        return recorded if recorded > 0 else _schedules.learning_rate_at(core, step)

    def in_step(self, follow, core):
        """``(lr_0, lr_max)`` inside a step, recording what the step meets.

        Written at every step (the same values once recorded), which a compiled step does
        without a branch: lr_0 is the first positive learning rate, lr_max the largest.
        """
        if follow not in ("schedule", "corrected"):
            return None, None
        initial, peak = self.given
        if peak is None and follow == "corrected":
            peak = self._schedule_peak(core)
        if (initial if follow == "schedule" else peak) is not None:
            return initial, peak
        lr = ops.cast(core.learning_rate, "float32")
        recorded = ops.convert_to_tensor(self.recorded)
        initial = ops.where(recorded[0] > 0, recorded[0], lr)
        peak = ops.maximum(recorded[1], lr)
        self.recorded.assign(ops.stack([initial, peak]))
        return initial, peak

    def _schedule_peak(self, core):
        """The peak of the inner learning-rate schedule (None without one), profiled once
        per schedule: an eager step (torch) asks at every step."""
        schedule = compat.learning_rate_schedule(core)
        if schedule is None:
            return None
        if self._profiled is None or self._profiled[0] is not schedule:
            profile = _schedules.schedule_profile(schedule)
            self._profiled = (schedule, None if profile is None else profile[1])
        return self._profiled[1]
