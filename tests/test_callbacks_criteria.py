"""kreg.callbacks._criteria: Prechelt's stopping criteria as pure functions."""

import math

import pytest

from kreg.callbacks._criteria import (
    generalization_loss,
    prechelt_check,
    successive_rises,
    training_progress,
)


def test_criteria_pure_functions():
    assert generalization_loss(0.72, 0.7) == pytest.approx(100 * (0.72 / 0.7 - 1))
    assert generalization_loss(0.0, 0.0) == 0.0 and generalization_loss(1.0, 0.0) == math.inf
    assert math.isnan(generalization_loss(float("nan"), 0.5))
    assert training_progress([1.0, 0.9, 0.8, 0.7, 0.6]) == pytest.approx(1000 * (0.8 / 0.6 - 1))
    assert successive_rises([1.0, 0.8, 0.9, 0.85], 2) == 1  # E(4)=0.85 > E(2)=0.8
    assert successive_rises([1.0, 0.8, 0.9, 0.85, 0.9], 2) == 0  # t=5 is no strip end
    assert successive_rises([5, 1, 5, 2, 5, 3], 2) == 2
    with pytest.raises(ValueError, match="non-negative error"):
        generalization_loss(-1.0, -2.0)


def test_criteria_ties_do_not_stop():
    # Prechelt's inequalities are strict; the numbers below are exact in binary.
    assert generalization_loss(0.625, 0.5) == 25.0
    assert prechelt_check("GL", [0.5, 0.625], alpha=25.0) == (False, "")
    assert prechelt_check("GL", [0.5, 0.625], alpha=24.9)[0]
    # GL = 25, P_2 = 1000 (0.75 / 0.5 - 1) = 500: PQ = 0.05 exactly.
    pq = ("PQ", [0.5, 0.625], [1.0, 0.5])  # criterion, E_va, E_tr
    assert prechelt_check(*pq, alpha=0.05, strip_length=2) == (False, "")
    assert prechelt_check(*pq, alpha=0.049, strip_length=2)[0]
    assert successive_rises([1.0, 0.8, 0.9, 0.8], 2) == 0  # a plateau is no rise
    assert successive_rises([0.2, 0.5, 0.4, 0.5], 2, direction="max") == 0  # nor a fall
    assert prechelt_check("UP", [1.0, 0.8, 0.9, 0.8], strips=1, strip_length=2) == (False, "")
