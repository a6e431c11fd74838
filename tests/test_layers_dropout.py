"""kreg.layers.Dropout, DropPath, DropBlock2D: Keras parity, statistics, mc, live rate."""

import keras
import numpy as np
import pytest

import kreg


def _x(shape=(64, 16), seed=0):
    return np.random.RandomState(seed).rand(*shape).astype("float32") + 0.5


def _np(t):
    return keras.ops.convert_to_numpy(keras.ops.cast(t, "float32"))


def _uniform(shape, seed):
    """The uniform draw a layer with ``seed`` makes first (float32, as the layers draw it)."""
    return _np(keras.random.uniform(shape, dtype="float32", seed=keras.random.SeedGenerator(seed)))


def _kept(u, rate):
    """The dropout mask from a uniform draw, compared as each backend's Keras dropout does.

    TensorFlow's stateless_dropout keeps ``u >= rate``; JAX's bernoulli and torch's (on
    CPU) keep ``u < p`` with p = 1 - rate computed in Python and rounded once to float32.
    """
    if keras.backend.backend() == "tensorflow":
        return u >= np.float32(rate)
    return u < np.float32(1.0 - rate)


def _assert_survivors_scaled(x, y, rate):
    """Kept units are x / (1 - rate): pins the rate actually used, not only the drop count."""
    kept = y != 0
    assert kept.any() and not kept.all()
    np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-6)


@pytest.mark.parametrize(
    "rate, noise_shape",
    [
        (0.0, None),
        (0.3, None),
        (0.1, (None, 1, 4)),
        pytest.param(
            1.0,
            None,
            marks=pytest.mark.skipif(
                tuple(map(int, keras.__version__.split(".")[:2])) < (3, 14),
                reason="Keras' Dropout takes rate=1.0 from Keras 3.14",
            ),
        ),
    ],
)
def test_same_outputs_as_keras_for_the_same_seed(rate, noise_shape):
    x = _x((8, 5, 4))
    ours = kreg.layers.Dropout(rate, noise_shape=noise_shape, seed=7)
    theirs = keras.layers.Dropout(rate, noise_shape=noise_shape, seed=7)
    for _ in range(2):
        np.testing.assert_array_equal(_np(ours(x, training=True)), _np(theirs(x, training=True)))


def _on_cuda_torch():
    return keras.backend.backend() == "torch" and "cuda" in str(keras.ops.zeros(()).device)


@pytest.mark.parametrize("rate, noise_shape", [(0.3, None), (0.1, (None, 1, 4))])
def test_live_rate_still_gives_keras_outputs_for_the_same_seed(rate, noise_shape):
    """Once live the rate is a float32 tensor, which Keras' dropout does not take: kreg
    then draws the mask itself, and must draw Keras' (on CPU, for every backend)."""
    if _on_cuda_torch():
        pytest.skip("torch's CUDA Bernoulli kernel draws differently from its uniform one")
    x = _x((8, 5, 4))
    layer = kreg.layers.Dropout(rate, noise_shape=noise_shape, seed=7, name="drop")
    kreg.strengths(keras.Sequential([keras.Input((5, 4)), layer]))  # makes the rate live
    assert layer._live.live
    theirs = keras.layers.Dropout(rate, noise_shape=noise_shape, seed=7)
    for _ in range(2):
        np.testing.assert_array_equal(_np(layer(x, training=True)), _np(theirs(x, training=True)))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_dtype_preserved_and_matches_keras_under_mixed_precision(policy):
    x = _x((16, 8))
    ours = kreg.layers.Dropout(0.25, seed=3, dtype=policy)
    theirs = keras.layers.Dropout(0.25, seed=3, dtype=policy)
    y = ours(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == policy.split("_")[1]
    np.testing.assert_array_equal(_np(y), _np(theirs(x, training=True)))


@pytest.mark.parametrize("layer", [kreg.layers.Dropout, kreg.layers.DropPath])
def test_rate_one_drops_everything_with_finite_zero_gradients(layer):
    """Keras accepts rate=1 (all zeros); the gradient through the dropped units is 0, not NaN."""
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="first")(inputs)
    outputs = keras.layers.Dense(1, name="last")(layer(0.5, seed=0, name="drop")(hidden))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    kreg.strengths(model)["drop.rate"].assign(1.0)  # live, as a callback would
    first = model.get_layer("first").get_weights()
    x, y = _x((16, 4)), np.ones((16, 1), "float32")
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for before, after in zip(first, model.get_layer("first").get_weights()):
        np.testing.assert_array_equal(after, before)  # no gradient reaches it
    kernel, bias = model.get_layer("last").get_weights()
    assert np.isfinite(kernel).all() and bias[0] > 0  # the bias alone learned
    np.testing.assert_array_equal(_np(layer(1.0, seed=1)(x, training=True)), np.zeros_like(x))


def test_drop_rate_and_scaling():
    x = np.ones((200, 100), "float32")
    y = _np(kreg.layers.Dropout(0.3, seed=0)(x, training=True))
    values = np.unique(y)
    assert len(values) == 2 and values[0] == 0.0
    np.testing.assert_allclose(values[1], 1 / 0.7, rtol=1e-6)
    # 20 000 Bernoulli(0.3) draws: standard error 0.0032.
    assert abs((y == 0).mean() - 0.3) < 0.015


def test_identity_at_inference_and_under_predict():
    x = _x()
    layer = kreg.layers.Dropout(0.5, seed=1)
    np.testing.assert_array_equal(_np(layer(x)), x)
    model = keras.Sequential([keras.Input((16,)), layer])
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)


def _mc_model(rate=0.5):
    inputs = keras.Input((16,))
    outputs = kreg.layers.Dropout(rate, seed=2, mc=True, name="drop")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(loss="mse")
    return model


def test_mc_dropout_is_stochastic_under_predict_evaluate_and_direct_calls():
    model = _mc_model()
    x = _x()
    first, second = model.predict(x, verbose=0), model.predict(x, verbose=0)
    assert not np.array_equal(first, second)
    assert 0.4 < (first == 0).mean() < 0.6
    _assert_survivors_scaled(x, first, 0.5)
    zeros = np.zeros_like(x)  # (rate 0.5: the error against x itself would not vary)
    losses = [model.evaluate(x, zeros, verbose=0) for _ in range(2)]
    assert losses[0] > 0 and losses[0] != losses[1]
    y = _np(model(x))  # direct call, training not given
    assert 0.4 < (y == 0).mean() < 0.6
    _assert_survivors_scaled(x, y, 0.5)
    y = _np(model.get_layer("drop")(x, training=False))  # explicit training=False ignored
    assert 0.4 < (y == 0).mean() < 0.6
    _assert_survivors_scaled(x, y, 0.5)


def test_rate_is_live_without_recompiling():
    model = _mc_model(rate=0.0)
    x = _x()
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    handle = kreg.strengths(model)["drop.rate"]
    assert handle.kind == "dropout"
    predict_function = model.predict_function
    handle.assign(0.5)
    y = model.predict(x, verbose=0)
    assert model.predict_function is predict_function
    assert 0.4 < (y == 0).mean() < 0.6
    _assert_survivors_scaled(x, y, 0.5)
    assert model.get_layer("drop").rate == 0.5
    assert model.get_layer("drop").get_config()["rate"] == 0.0  # config keeps the base


def test_rejects_bad_arguments():
    with pytest.raises(
        ValueError, match=r"argument `rate`: expected a float in \[0, 1\]. Received: rate=1.01"
    ):
        kreg.layers.Dropout(1.01)
    with pytest.raises(ValueError, match=r"argument `rate`: .*Received: rate=-0.2"):
        kreg.layers.DropPath(-0.2)
    with pytest.raises(ValueError, match=r"argument `rate`: .*\[0, 1\). Received: rate=1.0"):
        kreg.layers.DropBlock2D(1.0, block_size=3)
    with pytest.raises(ValueError, match=r"argument `noise_shape`: .*Received: noise_shape='ab'"):
        kreg.layers.Dropout(0.1, noise_shape="ab")
    with pytest.raises(ValueError, match=r"argument `mc`: expected a bool. Received: mc=1"):
        kreg.layers.Dropout(0.1, mc=1)
    with pytest.raises(
        ValueError,
        match=r"argument `block_size`: expected a positive integer. Received: block_size=0",
    ):
        kreg.layers.DropBlock2D(0.1, block_size=0)
    with pytest.raises(ValueError, match=r"argument `data_format`: .*Received: data_format='nhwc'"):
        kreg.layers.DropBlock2D(0.1, block_size=3, data_format="nhwc")
    ints = np.ones((2, 4, 4, 1), "int32")  # 1 / (1 - rate) would truncate (JAX gave inf)
    for layer in (kreg.layers.Dropout(0.3), kreg.layers.DropPath(0.3)):
        np.testing.assert_array_equal(_np(layer(ints)), ints)  # identity: fine
        with pytest.raises(ValueError, match=r"expected floating-point inputs.*dtype int32"):
            layer(ints, training=True)
    with pytest.raises(ValueError, match=r"expected floating-point inputs.*dtype int32"):
        kreg.layers.DropBlock2D(0.3, block_size=2)(ints, training=True)


def test_drop_path_drops_whole_samples_at_the_rate():
    x = np.ones((2000, 3, 4), "float32")
    y = _np(kreg.layers.DropPath(0.25, seed=0)(x, training=True))
    per_sample = y.reshape(2000, -1)
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))  # all or nothing
    dropped = (per_sample[:, 0] == 0).mean()
    assert abs(dropped - 0.25) < 0.04  # standard error 0.0097
    np.testing.assert_allclose(per_sample[per_sample[:, 0] > 0, 0], 1 / 0.75, rtol=1e-6)
    # Exactly the samples the same draw drops: one uniform per sample, shape (2000, 1, 1).
    kept = _kept(_uniform((2000, 1, 1), 0), 0.25)
    expected = np.broadcast_to(np.where(kept, np.float32(1 / 0.75), np.float32(0)), x.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(_np(kreg.layers.DropPath(0.25)(x)), x)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_drop_block_drops_blocks_at_the_rate_and_keeps_the_sum(data_format):
    shape = (8, 24, 24, 8) if data_format == "channels_last" else (8, 8, 24, 24)
    x = np.ones(shape, "float32")
    layer = kreg.layers.DropBlock2D(0.2, block_size=5, seed=0, data_format=data_format)
    y = _np(layer(x, training=True))
    np.testing.assert_allclose(y.sum(), x.size, rtol=1e-4)  # rescaled by the fraction kept
    # Exactly the blocks the same draw gives: centres u < gamma where a block fits, a
    # 5x5 square around each, kept units scaled by size / number kept.
    u = _uniform(shape, 0)
    u = u if data_format == "channels_last" else np.moveaxis(u, 1, -1)  # to NHWC
    gamma = np.float32(0.2) * np.float32(24 * 24) / np.float32(25 * 20 * 20)
    valid = np.zeros((24, 24), bool)
    valid[2:22, 2:22] = True
    centres = np.pad((u < gamma) & valid[None, :, :, None], ((0, 0), (2, 2), (2, 2), (0, 0)))
    blocks = np.lib.stride_tricks.sliding_window_view(centres, (5, 5), axis=(1, 2))
    keep = ~blocks.any(axis=(-2, -1))
    expected = keep * (keep.size / keep.sum())
    expected = expected if data_format == "channels_last" else np.moveaxis(expected, -1, 1)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=0)
    maps = y if data_format == "channels_first" else np.moveaxis(y, -1, 1)
    maps = maps.reshape(-1, 24, 24)
    # Every dropped unit lies in a fully dropped 5x5 square: the zero set is a union of blocks.
    zero = maps == 0
    windows = np.lib.stride_tricks.sliding_window_view(zero, (5, 5), axis=(1, 2))
    full = windows.all(axis=(-2, -1))  # (n, 20, 20): the 5x5 squares that are all zero
    covered = np.zeros_like(zero)
    for i in range(5):
        for j in range(5):
            covered[:, i : i + 20, j : j + 20] |= full
    assert np.array_equal(covered, zero)
    np.testing.assert_array_equal(_np(layer(x)), x)


def test_drop_block_zero_rate_is_identity():
    x = _x((2, 6, 6, 3))
    y = kreg.layers.DropBlock2D(0.0, block_size=3, seed=0)(x, training=True)
    np.testing.assert_array_equal(_np(y), x)


def test_strength_names_and_kinds():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            kreg.layers.DropBlock2D(0.1, 3, name="block"),
            kreg.layers.DropPath(0.2, name="path"),
            keras.layers.Flatten(),
            kreg.layers.Dropout(0.3, name="drop"),
        ]
    )
    assert all(len(layer.weights) == 0 for layer in model.layers)  # as Keras' Dropout
    found = kreg.strengths(model)
    assert {k: (v.kind, v.base) for k, v in found.items()} == {
        "block.rate": ("dropout", 0.1),
        "path.rate": ("dropout", 0.2),
        "drop.rate": ("dropout", 0.3),
    }
    # Live: one non-trainable weight each, kept by the strength state (its own entry in
    # weight files), never trained.
    assert [len(layer.non_trainable_weights) for layer in model.layers] == [1, 1, 0, 1]
    assert not model.trainable_weights


def test_save_load_round_trip(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            kreg.layers.DropBlock2D(0.1, 3, seed=4, name="block"),
            kreg.layers.DropPath(0.2, seed=5, name="path"),
            keras.layers.Flatten(),
            kreg.layers.Dropout(0.3, noise_shape=(None, 1), seed=6, mc=True, name="drop"),
        ]
    )
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    for name in ("block", "path", "drop"):
        assert type(loaded.get_layer(name)) is type(model.get_layer(name))
        assert loaded.get_layer(name).get_config() == model.get_layer(name).get_config()
    assert loaded.get_layer("drop").mc is True
    assert loaded.get_layer("drop").noise_shape == (None, 1)
    # Same seeds, fresh generators: the first stochastic predict is identical.
    x = _x((4, 6, 6, 2))
    fresh = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_trains_in_a_compiled_fit(regression_data):
    x, y = regression_data
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(16),
            kreg.layers.Dropout(0.2, seed=1),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse")
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
