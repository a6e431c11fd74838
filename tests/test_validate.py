"""kreg/_validate.py: one rule per kind of value, and the public entry points that use it."""

import keras
import numpy as np
import pytest

import kreg
from kreg import _validate as V

BIG = 1e39  # a finite double that float32 cannot hold


@pytest.mark.parametrize(
    "make",
    [
        lambda: kreg.regularizers.L2(BIG),
        lambda: kreg.regularizers.L1(BIG),
        lambda: kreg.regularizers.L1L2(l1=BIG),
        lambda: kreg.regularizers.L2SP(BIG),
        lambda: kreg.layers.GaussianNoise(BIG),
        lambda: kreg.layers.RandomAffine(0.1, fill_value=BIG),
        lambda: kreg.layers.RandomAffine((0.0, BIG)),
        lambda: kreg.layers.augmentation(noise=BIG),
    ],
)
def test_beyond_float32_is_refused_with_the_limit(make):
    with pytest.raises(ValueError, match=r"float32 can hold .*3\.4028235e\+38.*Received: .*1e\+39"):
        make()


def test_assign_beyond_float32_is_refused():
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(1, kernel_regularizer=kreg.regularizers.L2(0.1), name="d"),
        ]
    )
    handle = kreg.strengths(model)["d.kernel_regularizer.l2"]
    with pytest.raises(
        ValueError, match=r"`d.kernel_regularizer.l2`: expected a float that float32"
    ):
        handle.assign(BIG)
    assert float(handle) == pytest.approx(0.1)
    handle.assign(3.0e38)  # the largest values float32 holds are fine
    assert float(handle) == pytest.approx(3.0e38)


@pytest.mark.parametrize("seed", [-3, 2**32, 2**70, 1.5, "1", True])
def test_bad_seeds_are_refused_before_keras_sees_them(seed):
    with pytest.raises(
        ValueError, match=r"argument `seed`: expected None or an integer in \[0, 2\*\*32"
    ):
        kreg.layers.Dropout(0.5, seed=seed)


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    layer = kreg.layers.Dropout(np.float32(0.25), noise_shape=(None, np.int64(1)), seed=np.int64(3))
    assert layer.seed == 3 and type(layer.seed) is int
    assert layer.noise_shape == (None, 1) and type(layer.noise_shape[1]) is int
    assert V.check_range(np.float32(0.5), "rotation") == (-0.5, 0.5)
    assert all(type(v) is float for v in V.check_range((np.float32(-0.25), np.int64(1)), "zoom"))
    assert V.check_bool(np.bool_(True), "mc") is True


@pytest.mark.parametrize("value", ["no", "False", 0, 1, None])
def test_early_stopping_bool_arguments_must_be_bools(value):
    with pytest.raises(ValueError, match=r"argument `restore_best_weights`: expected a bool"):
        kreg.callbacks.EarlyStopping(restore_best_weights=value)
