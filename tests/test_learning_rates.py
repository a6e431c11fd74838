"""kreg._learning_rates: lr_0 and lr_max of the follow rules."""

import keras
import numpy as np
import pytest

from kreg._learning_rates import LearningRates


def _recorded(values=(0.0, 0.0)):
    return keras.Variable(np.asarray(values, "float32"))


def test_given_values_win_and_are_checked():
    rates = LearningRates(0.04, 0.08, "schedule", keras.optimizers.SGD(0.01))
    rates.recorded = _recorded()
    core = keras.optimizers.SGD(0.01)
    assert (rates.initial(core), rates.peak(core)) == (0.04, 0.08)
    assert rates.in_step("schedule", core) == (0.04, 0.08)
    with pytest.raises(ValueError, match=r"argument `peak_learning_rate`: expected a positive"):
        LearningRates(None, -1.0, "corrected", core)


def test_met_at_the_steps_first_positive_and_largest():
    core = keras.optimizers.SGD(0.0)
    rates = LearningRates(None, None, "corrected", core)
    rates.recorded = _recorded()
    assert rates.in_step("learning_rate", core) == (None, None)  # nothing to record
    for lr in (0.0, 0.03, 0.05, 0.01):
        core.learning_rate = lr
        rates.in_step("corrected", core)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(rates.recorded), [0.03, 0.05])
    assert rates.initial(core) == pytest.approx(0.03) and rates.peak(core) == pytest.approx(0.05)


def test_a_schedule_starting_at_zero_needs_lr_0_for_the_schedule_rule():
    warm_up = keras.optimizers.schedules.PolynomialDecay(0.0, 10, end_learning_rate=0.1)
    with pytest.raises(ValueError, match=r"argument `initial_learning_rate`: .*a warm-up"):
        LearningRates(None, None, "schedule", keras.optimizers.SGD(warm_up))
    rates = LearningRates(None, None, "corrected", keras.optimizers.SGD(warm_up))
    assert rates.peak(keras.optimizers.SGD(warm_up)) == pytest.approx(0.1)


def test_a_schedule_s_peak_is_profiled_once_not_at_every_step():
    calls = []

    class Counted(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            calls.append(step)
            return 0.1 * keras.ops.minimum(keras.ops.cast(step, "float32") + 1.0, 3.0)

        def get_config(self):
            return {}

    core = keras.optimizers.SGD(Counted())
    rates = LearningRates(None, None, "corrected", core)
    rates.recorded = _recorded()
    first = rates.in_step("corrected", core)
    profiled = len(calls)
    assert profiled > 1  # profiling reads the schedule at several steps
    for _ in range(3):
        assert rates.in_step("corrected", core) == first
    assert rates.peak(core) == pytest.approx(0.3) and len(calls) == profiled
