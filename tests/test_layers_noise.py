"""kreg.layers.GaussianNoise: Keras parity, live σ, relative noise, serialization."""

import keras
import numpy as np
import pytest

import kreg


def _x(shape=(64, 8), seed=0):
    return np.random.RandomState(seed).randn(*shape).astype("float32")


@pytest.mark.parametrize("stddev", [0.0, 0.3, 1.0])
def test_same_outputs_as_keras_for_the_same_seed(stddev):
    x = _x()
    ours = kreg.layers.GaussianNoise(stddev, seed=7)
    theirs = keras.layers.GaussianNoise(stddev, seed=7)
    for _ in range(2):  # the second call checks the seed generators advance alike
        np.testing.assert_array_equal(ours(x, training=True), theirs(x, training=True))


def test_live_stddev_gives_the_same_noise_as_a_python_stddev():
    """Once live σ is a float32 tensor, which torch's normal does not take: kreg then
    scales a standard normal draw, the same seeded numbers up to rounding (exactly the
    same on TensorFlow and JAX, whose normal computes z * stddev itself)."""
    x = _x()
    layer = kreg.layers.GaussianNoise(0.3, seed=7, name="noise")
    kreg.strengths(keras.Sequential([keras.Input((8,)), layer]))  # makes σ live
    assert layer._live.live
    theirs = keras.layers.GaussianNoise(0.3, seed=7)
    for _ in range(2):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer(x, training=True)),
            keras.ops.convert_to_numpy(theirs(x, training=True)),
            rtol=0,
            atol=1e-6,
        )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_dtype_preserved_and_matches_keras_under_mixed_precision(policy):
    x = _x((16, 4))
    ours = kreg.layers.GaussianNoise(0.2, seed=3, dtype=policy)
    theirs = keras.layers.GaussianNoise(0.2, seed=3, dtype=policy)
    y = ours(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == policy.split("_")[1]
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")),
        keras.ops.convert_to_numpy(keras.ops.cast(theirs(x, training=True), "float32")),
    )
    assert keras.backend.standardize_dtype(ours(x).dtype) == policy.split("_")[1]


def test_identity_at_inference():
    x = _x()
    layer = kreg.layers.GaussianNoise(5.0, seed=1)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    model = keras.Sequential([keras.Input((8,)), layer])
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)


def _draw(shape, seed):
    """The standard normal draw a layer seeded with ``seed`` makes first (Keras' draw)."""
    z = keras.random.normal(shape, seed=keras.random.SeedGenerator(seed), dtype="float32")
    return keras.ops.convert_to_numpy(z).astype("float64")


def test_large_stddev_accepted_and_noise_has_that_spread():
    x = np.zeros((400, 50), "float32")
    layer = kreg.layers.GaussianNoise(20.0, seed=0)  # 0-255 pixel scale: Keras refuses σ > 1
    noise = np.asarray(layer(x, training=True), "float64")
    np.testing.assert_allclose(noise, 20.0 * _draw(x.shape, 0), rtol=1e-6, atol=1e-5)
    # 20 000 draws: standard errors 20/√40000 = 0.1 (std) and 0.14 (mean); 4-5 of them.
    assert abs(noise.std() - 20.0) < 0.45
    assert abs(noise.mean()) < 0.6
    x = np.full((400, 50), 128.0, "float32")  # a fresh layer, same seed: the same draw
    shifted = kreg.layers.GaussianNoise(20.0, seed=0)(x, training=True)
    np.testing.assert_allclose(np.asarray(shifted), x + noise, atol=1e-3)


def test_relative_noise_scales_with_each_feature_spread():
    rng = np.random.RandomState(0)
    scales = np.array([0.01, 1.0, 100.0], "float32")
    x = (rng.randn(2000, 3) * scales).astype("float32")
    noise = (
        np.asarray(
            kreg.layers.GaussianNoise(0.5, seed=0, relative=True)(x, training=True), "float64"
        )
        - x
    )
    # NumPy reference: the same draw times σ·(population std of each feature over the batch).
    spread = x.astype("float64").std(axis=0, ddof=0)
    # (noise = output - x loses digits on the wide feature: compare in units of its spread)
    np.testing.assert_allclose(noise / spread, 0.5 * _draw(x.shape, 0), rtol=1e-4, atol=1e-4)
    ratio = noise.std(axis=0) / (0.5 * spread)
    np.testing.assert_allclose(ratio, 1.0, atol=0.08)  # 2000 draws: s.e. 0.016, 5 of them


def test_rejects_bad_arguments():
    with pytest.raises(
        ValueError, match=r"Invalid value for argument `stddev`: .*Received: stddev=-0.1"
    ):
        kreg.layers.GaussianNoise(-0.1)
    with pytest.raises(
        ValueError, match=r"argument `relative`: expected a bool. Received: relative='yes'"
    ):
        kreg.layers.GaussianNoise(0.1, relative="yes")
    with pytest.raises(ValueError, match=r"argument `seed`: expected None or an integer"):
        kreg.layers.GaussianNoise(0.1, seed=1.5)


def test_stddev_is_live_in_a_compiled_train_step():
    """σ assigned between fits reaches the already-compiled train step (lr 0: weights fixed)."""
    model = keras.Sequential(
        [
            keras.Input((1,)),
            kreg.layers.GaussianNoise(0.0, seed=0, name="noise"),
            keras.layers.Dense(1, kernel_initializer="ones", use_bias=False),
        ]
    )
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x = np.zeros((512, 1), "float32")
    first = model.fit(x, x, batch_size=512, epochs=1, verbose=0).history["loss"][0]
    handle = kreg.strengths(model)["noise.stddev"]
    assert handle.kind == "noise" and handle.base == 0.0
    handle.assign(2.0)
    second = model.fit(x, x, batch_size=512, epochs=1, verbose=0).history["loss"][0]
    assert first == 0.0
    assert 3.4 < second < 4.6  # E[(σ z)^2] = 4, 512 draws
    # Exactly: the loss is mean((σ z)^2) over the layer's second draw (the first fit drew too).
    generator = keras.random.SeedGenerator(0)
    keras.random.normal((512, 1), seed=generator)
    z = keras.ops.convert_to_numpy(keras.random.normal((512, 1), seed=generator))
    np.testing.assert_allclose(second, np.mean((2.0 * z.astype("float64")) ** 2), rtol=1e-5)
    assert model.layers[0].stddev == 2.0


def test_save_load_round_trip(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((8,)),
            kreg.layers.GaussianNoise(3.0, seed=5, relative=True, name="noise"),
            keras.layers.Dense(2),
        ]
    )
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    layer = loaded.get_layer("noise")
    assert isinstance(layer, kreg.layers.GaussianNoise)
    assert layer.get_config()["stddev"] == 3.0 and layer.get_config()["relative"] is True
    assert layer.get_config()["seed"] == 5
    x = _x()
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert len(layer.weights) == 0
