"""kreg._decay: the decay maths as pure functions, against exact NumPy numbers."""

import keras
import numpy as np
import pytest

from kreg import _decay


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


THETA = np.array([0.5, -2.0, 0.0, 1.0], "float32")


def test_decay_and_decay_toward_an_anchor():
    np.testing.assert_array_equal(_np(_decay.decay(THETA, 0.25)), THETA * np.float32(0.75))
    anchor = np.array([1.0, 1.0, 1.0, 1.0], "float32")
    np.testing.assert_allclose(
        _np(_decay.decay(THETA, 0.25, anchor)), THETA - 0.25 * (THETA - anchor), rtol=0, atol=1e-7
    )


def test_soft_threshold_is_the_proximal_step_of_l1():
    expected = THETA - np.clip(THETA, np.float32(-0.6), np.float32(0.6))  # float32, as the op
    np.testing.assert_array_equal(_np(_decay.soft_threshold(THETA, 0.6)), expected)
    assert expected.tolist() == pytest.approx([0.0, -1.4, 0.0, 0.4])
    anchor = np.full(4, 0.5, "float32")
    np.testing.assert_allclose(
        _np(_decay.soft_threshold(THETA, 0.6, anchor)), [0.5, -1.4, 0.5, 0.5], rtol=0, atol=1e-7
    )


def test_cautious_decay_decays_only_where_the_update_moves_toward_zero():
    before = np.array([1.0, 1.0, -1.0, -1.0, 2.0], "float32")
    after = np.array([0.9, 1.1, -0.9, -1.1, 2.0], "float32")  # u = before − after
    # Aligned: u·θ ≥ 0 for the 1st, 3rd and the unmoved 5th (Chen et al.'s ≥).
    np.testing.assert_allclose(
        _np(_decay.cautious_decay(after, 0.1, None, before)),
        [0.8, 1.1, -0.8, -1.1, 1.8],
        rtol=0,
        atol=1e-7,
    )
    # Toward θ₀ = 3: x = [−2, −2, −4, −4, −1], u·x = [−.2, .2, .4, −.4, 0]: the 2nd, 3rd and
    # 5th coordinates move toward θ₀ and decay toward it.
    anchor = np.full(5, 3.0, "float32")
    np.testing.assert_allclose(
        _np(_decay.cautious_decay(after, 0.1, anchor, before)),
        [0.9, 1.3, -0.5, -1.1, 2.1],
        rtol=0,
        atol=1e-6,
    )


def test_l2_gradient_adds_lambda_theta():
    gradient = np.ones(4, "float32")
    np.testing.assert_allclose(_np(_decay.l2_gradient(gradient, THETA, 0.5)), 1 + 0.5 * THETA)


@pytest.mark.parametrize(
    "follow, expected",
    [
        ("learning_rate", 0.02),
        ("schedule", 0.02 / 0.04),
        ("corrected", 0.02**2 / 0.08),
        ("none", 1.0),
    ],
)
def test_follow_factor_per_rule(follow, expected):
    got = float(
        _decay.follow_factor(follow, 0.02, initial_learning_rate=0.04, peak_learning_rate=0.08)
    )
    assert got == pytest.approx(expected, rel=1e-6)


def test_follow_factor_is_zero_while_its_reference_learning_rate_is():
    assert float(_decay.follow_factor("schedule", 0.02, initial_learning_rate=0.0)) == 0.0
    assert float(_decay.follow_factor("corrected", 0.02, peak_learning_rate=0.0)) == 0.0
