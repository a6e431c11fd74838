"""kreg.mc_predict: mean and std over stochastic passes, inference mode elsewhere."""

import _hub_models  # tests/: tiny keras-hub models (None without keras-hub)
import keras
import numpy as np
import pytest

import kreg
from kreg._walk import walk_layers


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


# -- Keras' own random layers: keras_dropout


class _Block(keras.layers.Layer):
    """Like keras-hub's transformer layers: a Keras Dropout called with the block's own
    ``training``, which ``predict`` sets to False explicitly."""

    def __init__(self, rate=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(rate, seed=seed, name="block_dropout")

    def call(self, inputs, training=None):
        return self.dropout(inputs, training=training)


def _assert_zero_or_two(mean, std, samples):
    """Each pass is 0 or 2 (dropout 0.5 on ones): the mean is 2k/samples and the population
    std over the passes 2·√(q(1 − q)), q = mean/2 (NumPy's ddof=0 reference)."""
    q = mean.astype("float64") / 2
    np.testing.assert_allclose(q * samples, np.round(q * samples), atol=1e-3)
    np.testing.assert_allclose(std, 2 * np.sqrt(q * (1 - q)), rtol=1e-5, atol=1e-6)


def test_keras_dropout_before_a_dense_averages_to_the_output_without_dropout():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dropout(0.5, seed=0), keras.layers.Dense(1)]
    )
    w = np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
    model.layers[-1].set_weights([w, np.array([0.25], "float32")])
    x = np.random.RandomState(0).randn(5, 4).astype("float32")
    x[4] = x[3]  # the same example twice: its passes are drawn independently
    samples = 4000
    mean, std = kreg.mc_predict(model, x, samples=samples, keras_dropout=True)
    # Per pass y = b + Σ w_i x_i m_i / (1 - p), m_i ~ Bernoulli(1 - p), p = 0.5: E y is the
    # output without dropout, Var y = Σ (w_i x_i)² p / (1 - p).
    expected_mean = x.astype("float64") @ w + 0.25
    expected_std = np.sqrt(((x * w[:, 0]) ** 2).sum(axis=1, keepdims=True))
    # 4000 passes: the mean within 5 standard errors (σ/√4000), the std within 10 %
    # (its relative standard error is under 2 % for a sum of four two-valued terms).
    assert np.all(np.abs(mean - expected_mean) < 5 * expected_std / np.sqrt(samples))
    np.testing.assert_allclose(std, expected_std, rtol=0.1)
    assert not (np.array_equal(mean[3], mean[4]) and np.array_equal(std[3], std[4]))
    # Afterwards predict is Keras' own again: no dropout.
    np.testing.assert_allclose(model.predict(x, verbose=0), expected_mean, rtol=1e-5, atol=1e-5)


def test_keras_dropout_nested_in_a_layer_that_passes_training_and_in_a_nested_model():
    inner = keras.Sequential([keras.Input((6,)), _Block(seed=1, name="block")], name="inner")
    inputs = keras.Input((6,))
    model = keras.Model(inputs, inner(inputs))
    x = np.ones((4, 6), "float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)  # predict: training=False
    mean, std = kreg.mc_predict(model, x, samples=400, batch_size=3, keras_dropout=True)
    _assert_zero_or_two(mean, std, 400)
    assert np.all(std > 0.7) and np.all(np.abs(mean - 1.0) < 0.3)  # 6 standard errors
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    assert "call" not in vars(inner.layers[0].dropout)  # the wrapper is gone


@pytest.mark.parametrize("kind", ["spatial", "gaussian_dropout", "alpha", "gaussian_noise"])
def test_each_keras_random_layer_samples_with_its_own_law(kind):
    samples = 800
    if kind == "spatial":
        layer, x = keras.layers.SpatialDropout1D(0.5, seed=2), np.ones((3, 5, 4), "float32")
    elif kind == "gaussian_dropout":
        layer, x = keras.layers.GaussianDropout(0.5, seed=2), np.ones((3, 6), "float32")
    elif kind == "alpha":
        layer, x = keras.layers.AlphaDropout(0.5, seed=2), np.ones((3, 6), "float32")
    else:
        layer, x = keras.layers.GaussianNoise(0.5, seed=2), np.zeros((3, 6), "float32")
    model = keras.Sequential([keras.Input(x.shape[1:]), layer])
    mean, std = kreg.mc_predict(model, x, samples=samples, keras_dropout=True)
    assert mean.shape == x.shape and np.all(std > 0)
    if kind == "spatial":
        # One coin per example and channel: every step of a channel has the same passes.
        np.testing.assert_array_equal(mean, np.broadcast_to(mean[:, :1], mean.shape))
        _assert_zero_or_two(mean, std, samples)
        assert np.all(np.abs(mean - 1.0) < 0.2)  # standard error 1/√800 = 0.035
    elif kind == "gaussian_dropout":
        # x · N(1, p / (1 - p)) = N(1, 1); standard errors 0.035 (mean), 0.025 (std).
        assert np.all(np.abs(mean - 1.0) < 0.2) and np.all(np.abs(std - 1.0) < 0.15)
    elif kind == "alpha":
        # Kept: a·x + b; dropped: a·α' + b (Klambauer et al. 2017, as Keras computes them).
        alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
        a = ((1 - 0.5) * (1 + 0.5 * alpha_p**2)) ** -0.5
        b = -a * alpha_p * 0.5
        kept, dropped = a + b, a * alpha_p + b
        q = (mean.astype("float64") - dropped) / (kept - dropped)
        np.testing.assert_allclose(q * samples, np.round(q * samples), atol=1e-2)
        np.testing.assert_allclose(std, (kept - dropped) * np.sqrt(q * (1 - q)), rtol=1e-4)
        assert np.all(np.abs(q - 0.5) < 0.1)  # 5.6 standard errors
    else:
        assert np.all(np.abs(mean) < 0.1) and np.all(np.abs(std - 0.5) < 0.075)


@pytest.mark.parametrize("kind", ["lstm", "gru_recurrent", "bidirectional", "attention", "mha"])
def test_recurrent_and_attention_dropout_sample_with_true_and_stay_off_with_false(kind):
    inputs = keras.Input((4, 3))
    if kind == "lstm":
        h = keras.layers.LSTM(3, dropout=0.5, seed=0)(inputs)
    elif kind == "gru_recurrent":
        h = keras.layers.GRU(3, recurrent_dropout=0.5, seed=0)(inputs)
    elif kind == "bidirectional":
        h = keras.layers.Bidirectional(keras.layers.SimpleRNN(2, dropout=0.5, seed=0))(inputs)
    elif kind == "attention":
        h = keras.layers.Attention(dropout=0.5, seed=0)([inputs, inputs])
    else:
        h = keras.layers.MultiHeadAttention(1, 2, dropout=0.5, seed=0)(inputs, inputs)
    # A kreg layer that drops nothing, so that keras_dropout=False has something to sample.
    model = keras.Model(inputs, kreg.layers.Dropout(0.0)(h))
    x = np.tile(np.random.RandomState(0).randn(1, 4, 3).astype("float32"), (3, 1, 1))
    mean, std = kreg.mc_predict(model, x, samples=50, keras_dropout=False)
    # Off: the passes agree up to float rounding (TensorFlow's CPU kernels may round a row
    # differently by its place in the tiled batch: ~1e-8 here).
    assert np.all(std < 1e-6)
    np.testing.assert_allclose(mean, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    mean, std = kreg.mc_predict(model, x, samples=50, keras_dropout=True)
    assert np.all(std.max(axis=tuple(range(1, std.ndim))) > 1e-3)
    assert not np.allclose(std[0], std[1], atol=1e-4)  # the same example, drawn row by row


def test_keras_noise_shape_with_a_fixed_batch_axis_uses_one_call_per_sample():
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dropout(0.5, noise_shape=(1, 8), seed=3)]
    )
    x = np.ones((3, 8), "float32")
    mean, std = kreg.mc_predict(model, x, samples=200, keras_dropout=True)
    np.testing.assert_array_equal(mean, np.broadcast_to(mean[0], mean.shape))  # one mask per pass
    _assert_zero_or_two(mean, std, 200)
    assert np.all(std > 0.7) and np.all(np.abs(mean - 1.0) < 0.35)


def _kreg_and_keras_dropout():
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dropout(0.5, seed=4, name="keras_drop")], name="inner"
    )
    inputs = keras.Input((4,))
    outputs = kreg.layers.Dropout(0.0, name="head")(inner(inputs))
    return keras.Model(inputs, outputs, name="mixed")


def test_a_model_that_would_be_sampled_in_part_is_refused_naming_the_argument():
    model = _kreg_and_keras_dropout()
    x = np.ones((3, 4), "float32")
    with pytest.raises(
        ValueError,
        match=r"argument `keras_dropout`: expected True \(sample the model's Keras layers .*"
        r"Received: keras_dropout=None, for model 'mixed' with 1 kreg stochastic layer and "
        r"1 Keras random layer that would not be sampled: 'inner/keras_drop' "
        r"\(Dropout, rate=0.5\)$",
    ):
        kreg.mc_predict(model, x)
    # False: only the kreg layer (rate 0) samples, Keras' Dropout stays off.
    mean, std = kreg.mc_predict(model, x, samples=50, keras_dropout=False)
    np.testing.assert_array_equal(mean, x)
    np.testing.assert_array_equal(std, np.zeros_like(x))
    mean, std = kreg.mc_predict(model, x, samples=400, keras_dropout=True)
    _assert_zero_or_two(mean, std, 400)
    assert np.all(std > 0.7)


def test_clone_model_swap_that_misses_dropouts_inside_a_layer_is_refused():
    # clone_model rebuilds the functional graph, not the inside of a layer: the block's
    # Dropout stays Keras' own (as in keras-hub's backbones: 1 of 7 converted).
    inputs = keras.Input((6,))
    h = keras.layers.Dropout(0.5, name="top_dropout")(inputs)
    model = keras.Model(inputs, _Block(name="block")(h), name="net")

    def to_kreg(layer):
        if type(layer) is keras.layers.Dropout:
            return kreg.layers.Dropout(layer.rate, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    clone = keras.models.clone_model(model, clone_function=to_kreg)
    assert isinstance(clone.get_layer("top_dropout"), kreg.layers.Dropout)
    with pytest.raises(
        ValueError,
        match=r"Received: keras_dropout=None, for model 'net' with 1 kreg stochastic layer "
        r"and 1 Keras random layer that would not be sampled: 'block/block_dropout' "
        r"\(Dropout, rate=0.5\)$",
    ):
        kreg.mc_predict(clone, np.ones((2, 6), "float32"))
    mean, std = kreg.mc_predict(clone, np.ones((2, 6), "float32"), samples=300, keras_dropout=True)
    # Two dropouts of 0.5 in a row: each pass is 0 or 4, kept with probability 1/4.
    q = mean.astype("float64") / 4
    np.testing.assert_allclose(std, 4 * np.sqrt(q * (1 - q)), rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(q - 0.25) < 0.15)  # 6 standard errors (0.025)


def test_keras_layers_at_rate_zero_never_cause_a_refusal():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dropout(0.0),
            keras.layers.GaussianNoise(0.0),
            keras.layers.Dense(4, kernel_initializer="identity"),
            kreg.layers.Dropout(0.5, seed=5),
        ]
    )
    x = np.ones((3, 4), "float32")
    for keras_dropout in (None, True, False):
        mean, std = kreg.mc_predict(model, x, samples=200, keras_dropout=keras_dropout)
        _assert_zero_or_two(mean, std, 200)
    # Without a kreg layer, Keras layers at rate 0 leave nothing to sample, and the error says so.
    idle = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0, name="idle")])
    with pytest.raises(
        ValueError,
        match=r"argument `model`: expected a model containing at least one kreg stochastic "
        r"layer .* Received: model='.*' with no kreg stochastic layer, and its Keras random "
        r"layers have rate 0 \(they never draw\): 'idle' \(Dropout, rate=0\)$",
    ):
        kreg.mc_predict(idle, x, keras_dropout=True)


def test_a_model_with_only_keras_dropout_is_told_to_pass_keras_dropout_true():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dropout(0.5, name="drop"), keras.layers.Dense(1)]
    )
    for keras_dropout in (None, False):
        with pytest.raises(
            ValueError,
            match=r"argument `model`: expected a model containing at least one kreg stochastic "
            rf"layer .* Received: model='.*' with no kreg stochastic layer, and "
            rf"keras_dropout={keras_dropout} leaves 1 Keras random layer in inference mode: "
            r"'drop' \(Dropout, rate=0.5\) \(pass keras_dropout=True to sample them\)$",
        ):
            kreg.mc_predict(model, np.ones((2, 4), "float32"), keras_dropout=keras_dropout)


def test_rejects_a_keras_dropout_that_is_not_a_bool_or_none():
    model = keras.Sequential([keras.Input((4,)), kreg.layers.Dropout(0.5)])
    with pytest.raises(
        ValueError,
        match=r"argument `keras_dropout`: expected True, False or None. Received: "
        r"keras_dropout='yes'",
    ):
        kreg.mc_predict(model, np.ones((2, 4), "float32"), keras_dropout="yes")


# -- keras-hub models: their dropout is Keras' own, inside layers the backbone builds


def _hub_model(name):
    pytest.importorskip("keras_hub")
    return _hub_models.BUILDERS[name]()


def _keras_dropouts(model):
    """The model's Keras Dropout layers that draw (rate > 0), nested ones included."""
    return [
        layer
        for _, layer in walk_layers(model)
        if isinstance(layer, keras.layers.Dropout) and layer.rate > 0
    ]


def _seed_states(layers):
    return [np.array(keras.ops.convert_to_numpy(layer.seed_generator.state)) for layer in layers]


def _assert_every_dropout_drew(layers, before):
    # On torch an unseeded Dropout draws from torch's global generator and leaves its own
    # state alone; on TensorFlow and JAX each layer's state moves when, and only when, it draws.
    if keras.backend.backend() != "torch":
        after = _seed_states(layers)
        assert all(not np.array_equal(a, b) for a, b in zip(after, before))


@pytest.mark.parametrize("name", ["bert", "gpt2", "vit", "bert_classifier"])
def test_keras_hub_models_sample_their_own_dropout_when_asked(name):
    model, inputs, _ = _hub_model(name)
    with pytest.raises(ValueError, match=r"\(pass keras_dropout=True to sample them\)$"):
        kreg.mc_predict(model, inputs, samples=2)
    before_predict = model.predict(inputs, verbose=0)
    dropouts = _keras_dropouts(model)
    # BERT and GPT-2: embeddings + 3 per transformer layer; ViT: 2 per block + 1 (its
    # attention dropout is 0); the classifier adds its head's.
    assert len(dropouts) == {"bert": 7, "gpt2": 7, "vit": 5, "bert_classifier": 8}[name]
    before = _seed_states(dropouts)
    mean, std = kreg.mc_predict(model, inputs, samples=4, keras_dropout=True)
    for m, s, p in zip(*map(keras.tree.flatten, (mean, std, before_predict))):
        assert m.shape == s.shape == p.shape and np.all(np.isfinite(m))
        assert np.all(s.max(axis=-1) > 0)
    _assert_every_dropout_drew(dropouts, before)
    after_predict = model.predict(inputs, verbose=0)  # deterministic again
    keras.tree.map_structure(np.testing.assert_array_equal, after_predict, before_predict)


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_keras_hub_clone_model_swap_converting_1_of_7_dropouts_is_refused(name):
    model, inputs, _ = _hub_model(name)

    def to_kreg(layer):
        if type(layer) is keras.layers.Dropout:
            return kreg.layers.Dropout(layer.rate, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    clone = keras.models.clone_model(model, clone_function=to_kreg)
    with pytest.raises(
        ValueError,
        match=r"Received: keras_dropout=None, for model '.*' with 1 kreg stochastic layer and "
        r"6 Keras random layers that would not be sampled: .*\(Dropout, rate=0.1\), "
        r"\.\.\. \(6 in all\)$",
    ):
        kreg.mc_predict(clone, inputs, samples=2)
    dropouts = _keras_dropouts(clone)
    before = _seed_states(dropouts)
    mean, std = kreg.mc_predict(clone, inputs, samples=4, keras_dropout=True)
    assert all(np.all(s.max(axis=-1) > 0) for s in keras.tree.flatten(std))
    _assert_every_dropout_drew(dropouts, before)


def test_keras_hub_llama_dropout_zero_is_never_refused():
    backbone, inputs, _ = _hub_model("llama")
    # Llama's four Keras Dropout layers have rate 0: a kreg head alone decides.
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    h = backbone({"token_ids": token_ids, "padding_mask": padding_mask})
    outputs = kreg.layers.Dropout(0.5, seed=6)(h)
    model = keras.Model({"token_ids": token_ids, "padding_mask": padding_mask}, outputs)
    for keras_dropout in (None, True, False):
        mean, std = kreg.mc_predict(model, inputs, samples=4, keras_dropout=keras_dropout)
        assert np.all(std.max(axis=-1) > 0)
    with pytest.raises(ValueError, match=r"its Keras random layers have rate 0"):
        kreg.mc_predict(backbone, inputs, samples=2, keras_dropout=True)
