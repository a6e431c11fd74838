"""kreg._steps: the transforms a DecoupledWeightDecay runs, and what a step reads off the chain."""

import keras
import numpy as np
import pytest

from kreg import _decay, _steps


def test_transforms_per_mode():
    assert [(t.stage, t.function, t.strength) for t in _steps.transforms("decoupled", False)] == [
        ("before", _decay.decay, "weight_decay"),
        ("after", _decay.soft_threshold, "l1"),
    ]
    cautious = _steps.transforms("decoupled", True)
    assert cautious[0].function is _decay.cautious_decay and cautious[0].reads_before
    l2 = _steps.transforms("l2", False)
    assert (l2[0].stage, l2[0].strength) == ("gradient", "l2")
    assert [t.name for t in _steps.stage(cautious, "after")] == ["cautious decay", "proximal L1"]
    assert _steps.stage(l2, "before") == ()


def test_gate_closes_on_micro_steps_and_non_finite_gradients():
    assert _steps.gate(keras.optimizers.SGD(0.1), [np.ones(2)]) is None
    accumulating = keras.optimizers.SGD(0.1, gradient_accumulation_steps=2)
    accumulating.build([keras.Variable(np.ones(2, "float32"))])
    assert float(_steps.gate(accumulating, [np.ones(2)])) == 0.0  # micro-step 1 of 2
    scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
    scaled.build([keras.Variable(np.ones(2, "float32"))])
    assert float(_steps.gate(scaled, [np.ones(2, "float32")])) == 1.0
    assert float(_steps.gate(scaled, [np.array([np.inf, 1.0], "float32")])) == 0.0


def test_gradient_scale_multiplies_by_the_loss_scale_inside():
    plain = keras.optimizers.SGD(0.1)
    assert float(_steps.gradient_scale(plain, 0.5)) == 0.5
    scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=8.0)
    scaled.build([keras.Variable(np.ones(2, "float32"))])
    assert float(_steps.gradient_scale(scaled, 0.5)) == 4.0
    assert (
        float(_steps.gradient_scale(keras.optimizers.SGD(0.1, loss_scale_factor=4.0), 0.5)) == 2.0
    )


def test_scheduled_checks_numbers_and_zeroes_non_finite_tensors():
    assert float(_steps.scheduled(lambda step: 0.5, 3)) == 0.5
    with pytest.raises(ValueError, match=r"argument `weight_decay`: expected a schedule returning"):
        _steps.scheduled(lambda step: -1.0, 0)
    assert float(_steps.scheduled(lambda step: keras.ops.convert_to_tensor(np.inf), 0)) == 0.0
