"""kreg.regularizers: drop-in penalties, normalize, L2SP, apply(), serialization."""

import warnings

import keras
import numpy as np
import pytest

import kreg
from kreg import regularizers as R

RNG = np.random.RandomState(3)
W = RNG.randn(5, 7).astype("float32")


def _np(value):
    return keras.ops.convert_to_numpy(value)


# --- drop-in equality with keras.regularizers -------------------------------------


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("L1", {}),
        ("L1", {"l1": 0.3}),
        ("L2", {}),
        ("L2", {"l2": 0.25}),
        ("L1L2", {}),
        ("L1L2", {"l1": 0.1}),
        ("L1L2", {"l2": 0.2}),
        ("L1L2", {"l1": 0.1, "l2": 0.2}),
    ],
)
def test_penalty_and_config_equal_keras(name, kwargs):
    ours, theirs = getattr(R, name)(**kwargs), getattr(keras.regularizers, name)(**kwargs)
    assert _np(ours(W)) == _np(theirs(W))  # exact, same float32 arithmetic
    assert ours.get_config() == pytest.approx(theirs.get_config())
    assert set(ours.get_config()) == set(theirs.get_config())


def test_penalties_against_numpy():
    w = W.astype("float64")
    np.testing.assert_allclose(_np(R.L1(0.3)(W)), 0.3 * np.abs(w).sum(), rtol=1e-6)
    np.testing.assert_allclose(_np(R.L2(0.3)(W)), 0.3 * (w**2).sum(), rtol=1e-6)
    np.testing.assert_allclose(
        _np(R.L1L2(0.1, 0.2)(W)), 0.1 * np.abs(w).sum() + 0.2 * (w**2).sum(), rtol=1e-6
    )
    np.testing.assert_allclose(_np(R.L2(0.3, normalize="mean")(W)), 0.3 * (w**2).mean(), rtol=1e-6)
    np.testing.assert_allclose(
        _np(R.L1L2(0.1, 0.2, normalize="mean")(W)),
        0.1 * np.abs(w).mean() + 0.2 * (w**2).mean(),
        rtol=1e-6,
    )


def test_none_arguments_mean_keras_defaults():
    assert R.L2(None).get_config() == pytest.approx({"l2": 0.01})
    assert R.L1(None).get_config() == pytest.approx({"l1": 0.01})
    assert R.L1L2(None, None).get_config() == {"l1": 0.0, "l2": 0.0}


def test_normalize_mean_does_not_grow_with_width():
    small, wide = np.ones((10, 10), "float32"), np.ones((10, 1000), "float32")
    reg = R.L2(0.1, normalize="mean")
    assert _np(reg(small)) == pytest.approx(0.1, rel=1e-6)  # 0.1 · mean(1²)
    assert _np(reg(wide)) == pytest.approx(0.1, rel=1e-6)
    assert _np(R.L2(0.1)(wide)) == pytest.approx(1000.0, rel=1e-6)  # "sum" grows: 0.1 · 10⁴
    assert R.L2(0.1, normalize="mean").get_config() == pytest.approx(
        {"l2": 0.1, "normalize": "mean"}
    )


def test_l2sp_against_numpy_and_reference_checks():
    ref = RNG.randn(5, 7).astype("float32")
    reg = R.L2SP(0.4, reference=ref)
    expected = 0.4 * ((W.astype("float64") - ref) ** 2).sum()
    np.testing.assert_allclose(_np(reg(W)), expected, rtol=1e-6)
    assert _np(reg(ref)) == 0.0
    with pytest.raises(ValueError, match="L2SP has no reference weights. Attach it with"):
        R.L2SP(0.4)(W)
    with pytest.raises(
        ValueError, match=r"expected \(5, 7\). Received: a weight of shape \(7, 5\)"
    ):
        reg(W.T)
    with pytest.raises(ValueError, match="Invalid value for argument `reference`: expected finite"):
        R.L2SP(0.4, reference=[np.nan])
    with pytest.raises(ValueError, match="Invalid value for argument `reference`"):
        R.L2SP(0.4, reference=[["a"]])


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.1", True, [0.1]])
def test_bad_strengths_are_rejected(bad):
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `l2`: expected a finite float >= 0. Received: l2=",
    ):
        R.L2(bad)
    with pytest.raises(ValueError, match=r"Invalid value for argument `l1`"):
        R.L1L2(l1=bad)


def test_bad_normalize_is_rejected():
    with pytest.raises(
        ValueError,
        match=r"argument `normalize`: expected one of 'sum', 'mean'. Received: normalize='max'",
    ):
        R.L2(0.1, normalize="max")


def test_setting_a_live_attribute_says_what_to_do():
    reg = R.L2(0.1)
    with pytest.raises(AttributeError, match=r"kreg.strengths\(model\)"):
        reg.l2 = 0.5
    assert reg.l2 == pytest.approx(0.1)


def test_serialization_uses_the_kreg_package():
    reg = R.L1L2(0.1, 0.2, normalize="mean")
    config = keras.regularizers.serialize(reg)
    assert config["registered_name"] == "kreg>L1L2"
    back = keras.regularizers.deserialize(config)
    assert isinstance(back, R.L1L2) and back.get_config() == reg.get_config()
    back.strength("l2").assign(0.9)  # its own strengths
    assert reg.l2 == 0.2
    assert "L1L2(l1=0.1, l2=0.2, normalize='mean')" in repr(reg)


def test_saved_model_round_trip_keeps_outputs_and_penalties(tmp_path, regression_data):
    x, _ = regression_data
    ref = RNG.randn(4, 3).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3, kernel_regularizer=R.L2SP(0.2, reference=ref), name="a"),
            keras.layers.Dense(
                1,
                kernel_regularizer=R.L1L2(0.01, 0.02, normalize="mean"),
                bias_regularizer=R.L1(0.05),
                name="b",
            ),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    np.testing.assert_array_equal([_np(v) for v in model.losses], [_np(v) for v in loaded.losses])
    assert isinstance(loaded.get_layer("a").kernel_regularizer, R.L2SP)
    assert sorted(kreg.strengths(loaded)) == sorted(kreg.strengths(model))


# --- training: exact multi-step references ------------------------------------------


def test_fit_with_l1l2_matches_numpy_over_several_steps(regression_data):
    x, y = regression_data
    w0 = RNG.randn(4, 1).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(1, use_bias=False, kernel_regularizer=R.L1L2(0.01, 0.05), name="d"),
        ]
    )
    model.set_weights([w0])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    w, x64, y64 = w0.astype("float64"), x.astype("float64"), y.astype("float64")
    for _ in range(2):
        for s in range(4):
            xb, yb = x64[8 * s : 8 * s + 8], y64[8 * s : 8 * s + 8]
            grad = 2 * xb.T @ (xb @ w - yb) / 8 + 0.01 * np.sign(w) + 2 * 0.05 * w
            w = w - 0.05 * grad
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-5, atol=1e-6)


# --- apply() ------------------------------------------------------------------------


def _pretrained():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, name="a"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(6, name="emb_proj"),
            keras.layers.LayerNormalization(name="ln"),
            keras.layers.Dense(1, name="out"),
        ],
        name="net",
    )
    return model


def test_apply_default_exclusions_and_patterns():
    model = _pretrained()
    assert R.apply(model, R.L2(1e-3)) == ["net/a/kernel", "net/emb_proj/kernel", "net/out/kernel"]
    model = _pretrained()
    assert R.apply(model, R.L2(1e-3), exclude=r"emb_") == ["net/a/kernel", "net/out/kernel"]
    model = _pretrained()
    assert R.apply(model, R.L2(1e-3), exclude=[r"^net/a/", r"out"]) == ["net/emb_proj/kernel"]
    model = _pretrained()
    assert R.apply(model, R.L2(1e-3), exclude=lambda v: v.shape[1] == 1) == [
        "net/a/kernel",
        "net/emb_proj/kernel",
    ]
    model = _pretrained()
    assert R.apply(model, R.L2(1e-3), exclude=[model.get_layer("a").kernel]) == [
        "net/emb_proj/kernel",
        "net/out/kernel",
    ]
    model = _pretrained()
    paths = R.apply(model, R.L2(1e-3), default_exclude=False)
    assert "net/a/bias" in paths and "net/bn/gamma" in paths and "net/ln/beta" in paths


def test_apply_gives_each_weight_its_own_live_strength():
    model = _pretrained()
    R.apply(model, R.L1L2(0.0, 1e-3))
    names = sorted(kreg.strengths(model))
    assert names == sorted(
        f"{layer}.kernel_regularizer.{k}"
        for layer in ("a", "emb_proj", "out")
        for k in ("l1", "l2")
    )
    assert model.get_layer("a").kernel.regularizer is model.get_layer("a").kernel_regularizer
    assert model.get_layer("a").kernel.regularizer is not model.get_layer("out").kernel.regularizer
    assert len(model.losses) == 3


@pytest.mark.parametrize("make", [lambda: R.L1L2(0.0, 1e-3), lambda: R.L2SP(1e-3)])
def test_apply_keeps_a_strength_assigned_before_and_the_base_in_the_config(make):
    regularizer = make()
    regularizer.strength("l2").assign(0.25)
    model = _pretrained()
    R.apply(model, regularizer)
    handle = kreg.strengths(model)["a.kernel_regularizer.l2"]
    assert float(handle) == pytest.approx(0.25) and handle.base == pytest.approx(1e-3)
    attached = model.get_layer("a").kernel_regularizer
    assert attached.l2 == 0.25 and attached.get_config()["l2"] == pytest.approx(1e-3)


def test_apply_l2sp_snapshots_each_weight():
    model = _pretrained()
    R.apply(model, R.L2SP(0.5))
    np.testing.assert_array_equal([_np(v) for v in model.losses], [0.0, 0.0, 0.0])
    kernel = model.get_layer("a").kernel
    kernel.assign(kernel + 1.0)
    expected = 0.5 * np.prod(kernel.shape)
    np.testing.assert_allclose(_np(model.losses[0]), expected, rtol=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_apply_after_fit_is_included_in_the_next_fit_and_live(regression_data, jit_compile):
    x, y = regression_data
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, use_bias=False, name="d")])
    w0 = RNG.randn(4, 1).astype("float32")
    model.set_weights([w0])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit_compile)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # traces the train step first
    w1 = model.get_weights()[0].astype("float64")
    assert R.apply(model, R.L2(0.2), default_exclude=False) == [model.layers[0].kernel.path]

    class Change(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                kreg.strengths(self.model)["d.kernel_regularizer.l2"].assign(0.7)

    model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False, callbacks=[Change()])
    w, x64, y64 = w1, x.astype("float64"), y.astype("float64")
    for lam in (0.2, 0.7):
        w = w - 0.1 * (2 * x64.T @ (x64 @ w - y64) / 32 + 2 * lam * w)
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-5, atol=1e-6)


def test_apply_bad_input():
    unbuilt = keras.Sequential([keras.layers.Dense(2)], name="fresh")
    with pytest.raises(
        ValueError,
        match=r"argument `model`: expected a built model .* Received: an unbuilt Sequential 'fresh'$",
    ):
        R.apply(unbuilt, R.L2(0.1))
    with pytest.raises(ValueError, match="argument `model`: expected a Keras model or layer"):
        R.apply(object(), R.L2(0.1))
    model = _pretrained()
    with pytest.raises(ValueError, match="argument `regularizer`: expected a regularizer instance"):
        R.apply(model, R.L2)
    with pytest.raises(ValueError, match=r"argument `exclude`: expected None, a callable"):
        R.apply(model, R.L2(0.1), exclude=3)
    with pytest.raises(
        ValueError, match=r"argument `exclude`: expected regex strings or variables"
    ):
        R.apply(model, R.L2(0.1), exclude=["a", 3])
    with pytest.raises(ValueError, match=r"argument `exclude`: expected valid regular expressions"):
        R.apply(model, R.L2(0.1), exclude="(")
    # A class is callable, but it is no predicate: refused, naming the class.
    for cls in (keras.layers.BatchNormalization, str):
        with pytest.raises(ValueError, match=r"argument `exclude`: .* Received: the class"):
            R.apply(model, R.L2(0.1), exclude=cls)
    with pytest.raises(ValueError, match=r"argument `default_exclude`: expected a bool"):
        R.apply(model, R.L2(0.1), default_exclude="no")
    # One reference for every weight would pull them all toward the same array.
    with pytest.raises(ValueError, match=r"argument `regularizer`: expected an L2SP without"):
        R.apply(model, R.L2SP(0.1, reference=np.zeros((4, 6), "float32")))
    empty = keras.Sequential([keras.Input((3,)), keras.layers.Flatten()], name="flat")
    with pytest.raises(ValueError, match=r"Received: a Sequential 'flat' without weights"):
        R.apply(empty, R.L2(0.1))


def test_apply_attaches_to_frozen_layers_for_when_they_are_unfrozen():
    """Freeze, attach L2SP, unfreeze and fine-tune: the base's penalty must be there."""
    model = _pretrained()
    base = model.get_layer("a")
    base.trainable = False
    model.get_layer("bn").trainable = False
    paths = R.apply(model, R.L2SP(0.5), default_exclude=False)
    assert "net/a/kernel" in paths and "net/bn/gamma" in paths
    # never-trained state is no candidate, frozen or not
    assert not any("moving" in p for p in paths)
    assert len(model.losses) == len(paths) - 4  # a/kernel, a/bias, bn/gamma, bn/beta frozen
    base.kernel.assign(base.kernel + 1.0)
    base.trainable = True
    np.testing.assert_allclose(
        sum(_np(v) for v in model.losses), 0.5 * np.prod(base.kernel.shape), rtol=1e-6
    )


@pytest.mark.parametrize(
    "layer, keys",
    [
        (keras.layers.DepthwiseConv2D(3, name="conv"), ["depthwise_regularizer"]),
        (
            keras.layers.SeparableConv2D(4, 3, name="conv"),
            ["depthwise_regularizer", "pointwise_regularizer"],
        ),
    ],
)
def test_apply_on_depthwise_convolutions_saves_the_penalties(tmp_path, layer, keys):
    model = keras.Sequential([keras.Input((6, 6, 2)), layer])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "would not be saved" warning
        R.apply(model, R.L2(0.1))
    assert all(isinstance(layer.get_config()[k]["config"], dict) for k in keys)
    model.save(tmp_path / "conv.keras")
    loaded = keras.models.load_model(tmp_path / "conv.keras", safe_mode=True)
    np.testing.assert_allclose(
        [_np(v) for v in loaded.losses], [_np(v) for v in model.losses], rtol=1e-6
    )
    assert len(loaded.losses) == len(keys)


def test_penalty_functions_check_their_arguments():
    x = keras.ops.ones((2, 2))
    assert _np(R.l2_penalty(x, 0.5)) == 2.0 and _np(R.l2_penalty(x, 0.5, "mean")) == 0.5
    with pytest.raises(ValueError, match=r"argument `normalize`: .* Received: normalize='summ'"):
        R.l2_penalty(x, 0.5, normalize="summ")
    with pytest.raises(ValueError, match=r"argument `l1`: expected a finite float >= 0"):
        R.l1_penalty(x, -1.0)
    with pytest.raises(ValueError, match=r"argument `reference`: expected an array-like"):
        R.L2SP(0.1, reference=[True, False])


# --- runs where users train -----------------------------------------------------------


def _regularized_model():
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, kernel_regularizer=R.L2(0.05), name="a"),
            keras.layers.Dense(
                1, kernel_regularizer=R.L1L2(0.01, 0.05), bias_regularizer=R.L2(0.1), name="b"
            ),
        ]
    )


def test_mirrored_strategy_matches_one_device(mirrored, regression_data):
    x, y = regression_data
    keras.utils.set_random_seed(7)
    single = _regularized_model()
    weights = single.get_weights()
    single.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse")
    single.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    with mirrored.scope():
        multi = _regularized_model()
        multi.set_weights(weights)
        multi.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse")
    multi.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(single.get_weights(), multi.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_mixed_precision_fit(regression_data):
    x, y = regression_data
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _regularized_model()
        model.compile(optimizer="adam", loss="mse")
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        assert all(np.isfinite(history.history["loss"]))
        assert all(_np(v).dtype == np.float32 for v in model.losses)
        # The penalties are the float32 ones of the trained weights (NumPy reference).
        a, _, b, b_bias = [w.astype("float64") for w in model.get_weights()]
        expected = [
            0.05 * (a**2).sum(),
            0.01 * np.abs(b).sum() + 0.05 * (b**2).sum(),
            0.1 * (b_bias**2).sum(),
        ]
        np.testing.assert_allclose(
            sorted(_np(v) for v in model.losses), sorted(expected), rtol=1e-5
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_apply_uses_the_config_key_where_the_layer_has_one(tmp_path):
    inputs = keras.Input((5, 3))
    outputs = keras.layers.Dense(1)(keras.layers.LSTM(4, name="lstm")(inputs))
    model = keras.Model(inputs, outputs)
    R.apply(model, R.L2(0.1))
    assert isinstance(model.get_layer("lstm").cell.recurrent_regularizer, R.L2)
    model.save(tmp_path / "lstm.keras")
    loaded = keras.models.load_model(tmp_path / "lstm.keras", safe_mode=True)
    assert len(loaded.losses) == len(model.losses) == 3


def test_apply_l2sp_keeps_normalize_on_each_copy():
    """Each attached copy averages over its weight: λ·mean((w − w0)²), not the sum."""
    layer = keras.layers.Dense(4, use_bias=False, kernel_initializer="ones")
    model = keras.Sequential([keras.Input((3,)), layer])
    R.apply(model, R.L2SP(1.0, normalize="mean"))
    reg = layer.kernel_regularizer
    assert reg.normalize == "mean"
    layer.kernel.assign(np.full((3, 4), 2.0, "float32"))  # w - w0 = 1 everywhere
    assert float(reg(layer.kernel)) == pytest.approx(1.0)  # the sum would give 12.0
