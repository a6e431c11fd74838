"""kreg.callbacks._monitor_callback: direction, improvement and reading the monitored value."""

import keras
import numpy as np
import pytest

from kreg.callbacks._monitor_callback import MonitorCallback, infer_direction, is_improvement


def test_is_improvement_absolute_relative_and_non_finite():
    assert is_improvement(0.9, 1.0, "min", 0.05) and not is_improvement(0.96, 1.0, "min", 0.05)
    assert is_improvement(1.06, 1.0, "max", 0.05) and not is_improvement(1.04, 1.0, "max", 0.05)
    assert is_improvement(9.0, 10.0, "min", 0.05, "rel")  # margin 0.5
    assert not is_improvement(9.6, 10.0, "min", 0.05, "rel")
    assert is_improvement(5.0, None, "min", 0.0)
    assert not is_improvement(float("nan"), None, "min", 0.0)
    assert not is_improvement(float("-inf"), 1.0, "min", 0.0)


def test_direction_is_inferred_from_the_compiled_metrics():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", metrics=[keras.metrics.AUC(name="auc"), "mae"])
    model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)
    assert infer_direction(model, "val_auc") == "max"
    assert infer_direction(model, "val_mae") == "min"
    assert infer_direction(model, "loss") == "min"
    assert infer_direction(model, "unknown") is None


def test_monitor_callback_checks_its_arguments_and_reads_the_value():
    with pytest.raises(ValueError, match=r"argument `monitor`: expected a metric name"):
        MonitorCallback("", "auto", 0.0, "abs", False)
    with pytest.raises(ValueError, match=r"argument `min_delta_mode`: expected 'abs' or 'rel'"):
        MonitorCallback("loss", "auto", 0.0, "pct", False)
    with pytest.warns(UserWarning, match="mode 'up' is unknown"):
        assert MonitorCallback("loss", "up", 0.0, "abs", False).mode == "auto"
    watcher = MonitorCallback("val_loss", "min", 0.1, "abs", False)
    watcher.set_direction()
    assert watcher.direction == "min" and watcher.improves(0.8, 1.0)
    assert watcher.get_monitor_value({"val_loss": np.float32(0.25)}) == 0.25
    with pytest.warns(UserWarning, match="`val_loss` which is not available"):
        assert watcher.get_monitor_value({"loss": 1.0}) is None
    strict = MonitorCallback("val_loss", "min", 0.0, "abs", True)
    with pytest.raises(ValueError, match="not available"):
        strict.get_monitor_value({})
    with pytest.raises(ValueError, match=r"monitors a scalar.*shape \(2,\)"):
        watcher.get_monitor_value({"val_loss": np.ones(2)})
