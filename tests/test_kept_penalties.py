"""kreg._kept_penalties: penalties attached by apply survive .keras saving, whatever rebuilds
the layers that hold them (keras-hub's models: see test_real_models.py)."""

import warnings

import keras
import numpy as np
import pytest

import kreg
from kreg import regularizers as R

RNG = np.random.RandomState(3)


def _np(value):
    return keras.ops.convert_to_numpy(value)


@keras.saving.register_keras_serializable(package="kreg_tests")
class _Block(keras.Model):
    """Rebuilds its layers from its own arguments, as keras-hub backbones do."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, name="hidden")
        self.attention = keras.layers.MultiHeadAttention(2, 2, name="attention")
        self.out = keras.layers.Dense(1, name="out")

    def call(self, x):
        h = self.hidden(x)[:, None, :]
        return self.out(self.attention(h, h)[:, 0, :])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="kreg_tests")
class _Custom(keras.layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 2), name="w")

    def call(self, x):
        return x @ self.w


def _penalty_values(model):
    """``{layer/weight: penalty}``: loading drops a nested model's name from the paths."""
    return {
        "/".join(v.path.split("/")[-2:]): float(_np(v.regularizer(v)))
        for v in model.weights
        if v.regularizer
    }


@pytest.mark.parametrize("built", ["at_load", "when_called"])
def test_apply_penalties_survive_save_where_layers_are_rebuilt_from_arguments(tmp_path, built):
    # Neither a subclassed model's sublayers nor MultiHeadAttention's inner projections
    # are saved with their configs; the model records the penalties itself.
    x = RNG.randn(4, 3).astype("float32")
    model = _Block(name="block")
    model(x)
    if built == "at_load":
        model = keras.Sequential([keras.Input((3,)), model, _Custom(name="custom")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attached = R.apply(model, R.L2(0.1))
    assert len(attached) == len(model.losses) == (7 if built == "at_load" else 6)
    prefix = "block/" if built == "at_load" else ""
    kreg.strengths(model)[f"{prefix}hidden.kernel_regularizer.l2"].assign(0.3)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    # "when_called": from_config gives an unbuilt model; the penalties are attached when
    # Keras builds it from the saved shapes.
    assert type(loaded).__name__ == type(model).__name__
    assert isinstance(loaded, type(model).__mro__[1])
    assert _penalty_values(loaded) == pytest.approx(_penalty_values(model), rel=1e-6)
    assert {k: float(v) for k, v in kreg.strengths(loaded).items()} == pytest.approx(
        {k: float(v) for k, v in kreg.strengths(model).items()}
    )
    np.testing.assert_array_equal(_np(loaded(x)), _np(model(x)))


def test_apply_leaves_a_model_whose_config_holds_every_penalty_as_it_is(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a")])
    R.apply(model, R.L2(0.1))
    assert type(model) is keras.Sequential
    assert "penalties" not in model.get_config()


def test_apply_says_which_penalties_a_saved_model_would_lose(monkeypatch):
    from kreg import _kept_penalties

    monkeypatch.setattr(_kept_penalties, "keep", lambda model: False)
    custom = keras.Sequential([keras.Input((3,)), _Custom(name="c")])
    with pytest.warns(UserWarning, match=r"penalties on \['sequential.*/c/w'\] .* will not keep"):
        assert R.apply(custom, R.L2(0.1)) == [custom.layers[0].w.path]
    assert len(custom.losses) == 1
