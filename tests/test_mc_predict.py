"""kreg.mc_predict: mean and std over stochastic passes, inference mode elsewhere."""

import keras
import numpy as np
import pytest

import kreg


def test_mean_and_std_of_dropout_on_ones():
    # Output = 2 * Bernoulli(0.5) per element: mean 1, std 1.
    model = keras.Sequential([keras.Input((6,)), kreg.layers.Dropout(0.5, seed=0)])
    x = np.ones((5, 6), "float32")
    mean, std = kreg.mc_predict(model, x, samples=400, batch_size=2)
    assert mean.shape == std.shape == (5, 6) and mean.dtype == np.float32
    # 400 passes: the standard error of each mean is 0.05, of each std about 0.035.
    assert np.all(np.abs(mean - 1.0) < 0.25)
    assert np.all(np.abs(std - 1.0) < 0.2)
    # The passes are independent across examples too: not all rows equal.
    assert not np.allclose(mean, mean[0])
    # Exact: every pass is 0 or 2, so the mean is 2k/400 and the population std over the
    # passes is 2·√(p(1 − p)) with p = mean/2 (NumPy's ddof=0 reference).
    k = mean.astype("float64") * 200
    np.testing.assert_allclose(k, np.round(k), atol=1e-4)
    p = np.round(k) / 400
    np.testing.assert_allclose(std, 2 * np.sqrt(p * (1 - p)), rtol=1e-6)


def test_exact_reference_when_nothing_is_dropped_and_batch_norm_stays_in_inference():
    inputs = keras.Input((4,))
    h = keras.layers.BatchNormalization(name="bn")(inputs)
    h = kreg.layers.Dropout(0.0, name="drop")(h)
    outputs = keras.layers.Dense(3)(h)
    model = keras.Model(inputs, outputs)
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.array([1.0, -2.0, 0.5, 3.0], "float32"))
    bn.moving_variance.assign(np.array([4.0, 0.25, 1.0, 9.0], "float32"))
    x = np.random.RandomState(0).randn(7, 4).astype("float32")
    mean, std = kreg.mc_predict(model, x, samples=5, batch_size=3)
    np.testing.assert_allclose(mean, model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(std, np.zeros((7, 3), "float32"))


def test_noise_layer_without_mc_is_sampled_and_predict_is_untouched_afterwards():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            kreg.layers.GaussianNoise(2.0, seed=1),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="ones"),
        ]
    )
    x = np.zeros((4, 3), "float32")
    before = model.predict(x, verbose=0)
    mean, std = kreg.mc_predict(model, x, samples=300)
    # Output ~ N(0, 3 * 4): std √12 = 3.46; 300 draws: standard errors 3.46/√600 = 0.14
    # (std) and 3.46/√300 = 0.2 (mean); bounds of about 4-5 of them.
    assert np.all(np.abs(std - np.sqrt(12.0)) < 0.6)
    assert np.all(np.abs(mean) < 1.0)
    assert not np.allclose(std, std[0])  # each row has its own draws
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)  # back to identity
    np.testing.assert_array_equal(before, np.zeros((4, 1), "float32"))


def test_noise_shared_across_the_batch_uses_one_call_per_sample():
    model = keras.Sequential(
        [keras.Input((8,)), kreg.layers.Dropout(0.5, noise_shape=(1, 8), seed=3)]
    )
    x = np.ones((3, 8), "float32")
    mean, std = kreg.mc_predict(model, x, samples=200)
    assert np.all(std > 0.7)  # vectorising would give every sample the same mask
    np.testing.assert_array_equal(mean, np.broadcast_to(mean[0], mean.shape))  # one mask per pass
    # Each pass is 0 or 2: mean 2k/200, population std 2·√(p(1 − p)), p = mean/2; 200
    # passes: the mean is within 5 standard errors (0.07) of 1.
    p = mean.astype("float64") / 2
    np.testing.assert_allclose(p * 200, np.round(p * 200), atol=1e-4)
    np.testing.assert_allclose(std, 2 * np.sqrt(p * (1 - p)), rtol=1e-6)
    assert np.all(np.abs(mean - 1.0) < 0.35)


def test_noise_shape_with_a_fixed_batch_size():
    # noise_shape=(5, None) works under predict with 5 rows; tiled 8 times, the rows
    # would not broadcast against the mask, so each sample gets a call of its own.
    model = keras.Sequential(
        [keras.Input((4,)), kreg.layers.Dropout(0.5, noise_shape=(5, None), seed=1)]
    )
    mean, std = kreg.mc_predict(model, np.ones((5, 4), "float32"), samples=400)
    assert mean.shape == (5, 4) and np.all(std > 0.8)  # each pass is 0 or 2
    np.testing.assert_allclose(mean, 1.0, atol=0.35)


def test_chunks_are_full_so_batch_statistics_do_not_depend_on_where_they_end():
    # GaussianNoise(relative=True) scales its noise by the batch's std per feature: a last
    # chunk of one row (33 = 32 + 1) would have std 0 and get no noise at all.
    model = keras.Sequential([keras.Input((3,)), kreg.layers.GaussianNoise(0.5, relative=True)])
    x = np.random.RandomState(0).normal(size=(33, 3)).astype("float32")
    mean, std = kreg.mc_predict(model, x, samples=400, batch_size=32)
    assert np.all(std[-1] > 0.3)
    # The last row sits in the chunk of rows 1-32: its noise has that chunk's scale.
    scale = 0.5 * x[1:].std(axis=0)
    np.testing.assert_allclose(std[-1], scale, rtol=0.2)
    # The overlapping rows are counted once.
    assert mean.shape == (33, 3)
    np.testing.assert_allclose(mean, x, atol=5 * scale.max() / np.sqrt(400))


def test_multi_output_model():
    inputs = keras.Input((4,))
    h = kreg.layers.Dropout(0.5, seed=0)(inputs)
    a = keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="ones")(h)
    b = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(-3.0))(h)
    model = keras.Model(inputs, {"a": a, "b": b})
    mean, std = kreg.mc_predict(model, np.ones((3, 4), "float32"), samples=400)
    assert mean["a"].shape == std["a"].shape == (3, 2) and std["b"].shape == (3, 1)
    # Per pass, s = Σ h = 2·Binomial(4, 1/2); a = s + 1 (twice), b = -3 s: both heads see
    # the same mask, so their statistics are exact functions of each other.
    s_mean, s_std = mean["a"][:, :1].astype("float64") - 1, std["a"][:, :1]
    np.testing.assert_allclose(mean["a"][:, 1:], mean["a"][:, :1], rtol=0)
    np.testing.assert_allclose(std["a"][:, 1:], std["a"][:, :1], rtol=0)
    np.testing.assert_allclose(mean["b"], -3 * s_mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std["b"], 3 * s_std, rtol=1e-5)
    # E s = 4, std s = 2; 400 passes: standard errors 0.1 and about 0.07.
    assert np.all(np.abs(s_mean - 4.0) < 0.5) and np.all(np.abs(s_std - 2.0) < 0.35)


def test_clear_error_without_a_kreg_stochastic_layer():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.5), keras.layers.Dense(1)])
    with pytest.raises(
        ValueError,
        match=r"argument `model`: expected a model containing at least one kreg stochastic layer",
    ):
        kreg.mc_predict(model, np.ones((2, 4), "float32"))


def test_rejects_bad_arguments():
    model = keras.Sequential([keras.Input((4,)), kreg.layers.Dropout(0.5)])
    with pytest.raises(
        ValueError, match=r"argument `samples`: expected a positive integer. Received: samples=0"
    ):
        kreg.mc_predict(model, np.ones((2, 4), "float32"), samples=0)
    with pytest.raises(ValueError, match=r"argument `batch_size`: .*Received: batch_size=-1"):
        kreg.mc_predict(model, np.ones((2, 4), "float32"), batch_size=-1)
    with pytest.raises(ValueError, match=r"argument `model`: expected a Keras model"):
        kreg.mc_predict("model", np.ones((2, 4), "float32"))
