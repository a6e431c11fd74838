"""kreg._masking: selection by variable.path, multipliers, saved selections."""

import keras
import pytest

from kreg._masking import (
    check_multipliers,
    exclude_config,
    is_default_excluded,
    multiplier_fn,
    path_tail,
    resolve_selection,
    selector,
)


def _layers():
    dense = keras.layers.Dense(2, name="dense")
    dense.build((None, 3))
    norm = keras.layers.LayerNormalization(name="norm")
    norm.build((None, 2))
    return dense, norm


def test_default_exclusions_biases_norms_and_rank_one():
    dense, norm = _layers()
    assert not is_default_excluded(dense.kernel)
    assert is_default_excluded(dense.bias) and is_default_excluded(norm.gamma, norm)
    assert selector()(dense.kernel) and not selector(r"dense/")(dense.kernel)
    assert selector(default_exclude=False)(dense.bias)


def test_multipliers_override_defaults_not_exclude():
    dense, _ = _layers()
    factor = multiplier_fn(selector(), {"bias": 0.5})
    assert (factor(dense.kernel), factor(dense.bias)) == (1.0, 0.5)
    excluded = multiplier_fn(selector(), {"bias": 0.5}, lambda v: "bias" in v.path)
    assert excluded(dense.bias) == 0.0
    with pytest.raises(ValueError, match=r"argument `multipliers`: .*Received: 'k': -1"):
        check_multipliers({"k": -1})


def test_saved_selections_and_exclude_configs_follow_the_path_tail():
    dense, _ = _layers()
    assert path_tail("net/encoder/proj/kernel") == "proj/kernel"
    assert exclude_config([dense.kernel]) == [r"(?:^|/)dense/kernel$"]
    selection = resolve_selection([dense.kernel, dense.bias], lambda v: 1.0)
    assert selection == (("dense/kernel", 1.0), ("dense/bias", 1.0))
    saved = (("dense/kernel", 0.0), ("dense/bias", 1.0))
    with pytest.warns(UserWarning, match=r"select other weights.*dense/kernel"):
        assert resolve_selection([dense.kernel, dense.bias], lambda v: 1.0, saved) == saved
    other = (("x/kernel", 0.0), ("x/bias", 0.0))  # saved for other weights: ignored
    assert resolve_selection([dense.kernel, dense.bias], lambda v: 1.0, other) == selection
