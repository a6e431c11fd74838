"""kreg._schedules: a learning rate read off an optimizer, a schedule's profile and peak."""

import keras
import pytest

from kreg import _schedules


def test_learning_rate_at_a_step_and_the_peak_of_a_warm_up():
    schedule = keras.optimizers.schedules.CosineDecay(0.0, 100, warmup_target=0.2, warmup_steps=10)
    optimizer = keras.optimizers.SGD(schedule)
    assert _schedules.learning_rate_at(optimizer, 0) == 0.0
    assert _schedules.learning_rate_at(optimizer, 5) == pytest.approx(0.1)
    start, peak, end, end_step, exact = _schedules.schedule_profile(schedule)
    assert (start, end_step, exact) == (0.0, 110, True)
    assert peak == pytest.approx(0.2) and end == pytest.approx(0.0, abs=1e-7)
    assert _schedules.peak_learning_rate(optimizer) == pytest.approx(0.2)
    assert _schedules.peak_learning_rate(keras.optimizers.SGD(0.03)) == pytest.approx(0.03)


def test_as_float_refuses_what_is_no_finite_number():
    assert _schedules.as_float(2) == 2.0
    assert _schedules.as_float(True) is None and _schedules.as_float(float("nan")) is None
