"""Property-based checks: every public entry point gives a right answer or a clear error.

Each test drives a constructor or a call with generated arguments — NaN, ±inf, values
float32 cannot hold, negative numbers, zero, huge integers, wrong types, NumPy scalars,
bools, empty and size-1 batches, several dtypes — and accepts exactly two outcomes:

* a result, checked against NumPy or Keras (a strength is stored as a finite float32
  value, a layer returns its input's shape and dtype, a penalty equals NumPy's), or
* a ``ValueError`` / ``TypeError`` whose message names the argument (```name```).

Anything else — another exception, a silent inf or NaN, a message that does not say what
was wrong — fails. Example counts are bounded so that CI stays fast.
"""

import json
import math

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kreg
from kreg._live import live_optimizer_strengths
from kreg._validate import FLOAT32_MAX

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Anything a user might pass where a number is expected.
ANY_VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([1e39, -1e39, 3.0e38, 0.0, -0.0, 1.0, 0.5, 2.0, -1.0]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.sampled_from([np.float32(0.25), np.float64(0.5), np.int64(1), np.int32(0), np.bool_(True)]),
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=2),
)


#: For entry points that cost microseconds (constructors): many more examples.
MANY = settings(SETTINGS, max_examples=400)

REFUSED = object()


def _outcome(build, argument):
    """``build()``'s result, or REFUSED when it raised a clear error naming ``argument``."""
    try:
        return build()
    except (ValueError, TypeError) as err:
        assert f"`{argument}`" in str(err), f"unclear error for `{argument}`: {err!r}"
        return REFUSED


def _stored_float(value):
    assert isinstance(value, float) and math.isfinite(value) and abs(value) <= FLOAT32_MAX
    return value


def _json_config(obj):
    config = obj.get_config()
    json.dumps(config)  # JSON-able: floats and ints, never NumPy scalars or variables
    return config


def _assert_round_trip(obj):
    """``obj``'s config is JSON and rebuilds an object of the same config."""
    config = _json_config(obj)
    # A copy goes to from_config: Keras 3.10's Pipeline deserializes its config in place.
    again = type(obj).from_config(json.loads(json.dumps(config)))
    assert json.dumps(_json_config(again)) == json.dumps(config)


# ------------------------------------------------------------------- regularizers
@SETTINGS
@given(value=ANY_VALUE, which=st.sampled_from(["L1", "L2", "L2SP"]))
def test_regularizer_strengths(value, which):
    cls = getattr(kreg.regularizers, which)
    argument = "l1" if which == "L1" else "l2"
    reg = _outcome(lambda: cls(value), argument)
    if reg is REFUSED:
        return
    strength = _stored_float(getattr(reg, argument))
    assert strength >= 0
    _json_config(reg)
    if which != "L2SP":
        w = np.linspace(-2, 2, 12, dtype="float32").reshape(3, 4)
        with np.errstate(over="ignore"):  # a penalty beyond float32 is inf in NumPy too
            expected = strength * (np.abs(w).sum() if which == "L1" else np.square(w).sum())
        np.testing.assert_allclose(float(reg(w)), expected, rtol=1e-5)


_REGULARIZER_ARGUMENTS = {
    "L1L2.l1": ("l1", lambda v: kreg.regularizers.L1L2(l1=v)),
    "L1L2.l2": ("l2", lambda v: kreg.regularizers.L1L2(l2=v)),
    "L2.normalize": ("normalize", lambda v: kreg.regularizers.L2(0.1, normalize=v)),
    "L2SP.normalize": ("normalize", lambda v: kreg.regularizers.L2SP(0.1, normalize=v)),
    "L2SP.reference": ("reference", lambda v: kreg.regularizers.L2SP(0.1, reference=v)),
}


@MANY
@given(
    value=st.one_of(ANY_VALUE, st.sampled_from(["sum", "mean", "SUM", "initial"])),
    which=st.sampled_from(sorted(_REGULARIZER_ARGUMENTS)),
)
def test_regularizer_arguments(value, which):
    argument, build = _REGULARIZER_ARGUMENTS[which]
    reg = _outcome(lambda: build(value), argument)
    if reg is REFUSED:
        return
    _assert_round_trip(reg)
    w = np.linspace(-2, 2, 12, dtype="float32").reshape(3, 4)
    if which.startswith("L1L2"):
        with np.errstate(over="ignore"):
            expected = reg.l1 * np.abs(w).sum() + reg.l2 * np.square(w).sum()
        # Subnormal results flush to zero on CPUs: hence the absolute tolerance.
        np.testing.assert_allclose(float(reg(w)), expected, rtol=1e-5, atol=1e-37)
    elif which == "L2.normalize":
        reduce = np.mean if value == "mean" else np.sum
        np.testing.assert_allclose(float(reg(w)), 0.1 * reduce(np.square(w)), rtol=1e-6)


@SETTINGS
@given(
    exclude=st.one_of(ANY_VALUE, st.sampled_from(["bias", "(", "dense", ["kernel", 3]])),
    default_exclude=ANY_VALUE,
)
def test_regularizers_apply_arguments(exclude, default_exclude):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    try:
        kreg.regularizers.apply(
            model, kreg.regularizers.L2(0.1), exclude=exclude, default_exclude=default_exclude
        )
    except (ValueError, TypeError) as err:
        assert "`exclude`" in str(err) or "`default_exclude`" in str(err), repr(err)
        return
    kernel, bias = (keras.ops.convert_to_numpy(v) for v in model.layers[0].weights)
    everything = isinstance(exclude, str) and exclude in ("dense", "")  # "" matches every path
    expected = 0.0 if everything else 0.1 * np.square(kernel).sum()
    if not default_exclude and not everything and exclude != "bias":
        expected += 0.1 * np.square(bias).sum()
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-5, atol=1e-7)


@SETTINGS
@given(value=ANY_VALUE)
def test_strength_assign(value):
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(1, kernel_regularizer=kreg.regularizers.L2(0.1), name="d"),
        ]
    )
    handle = kreg.strengths(model)["d.kernel_regularizer.l2"]
    if _outcome(lambda: handle.assign(value), "d.kernel_regularizer.l2") is REFUSED:
        assert float(handle) == pytest.approx(0.1)  # a refused value changes nothing
        return
    assert float(handle) == pytest.approx(float(value), rel=1e-6)
    assert math.isfinite(float(np.float32(float(handle))))


# ------------------------------------------------------------------------- layers
#: A name -> (the argument it sets, a builder from the value). Strings a user may pass
#: are in CHOICES, so that valid and invalid spellings are both generated.
_LAYER_ARGUMENTS = {
    "GaussianNoise": ("stddev", lambda v: kreg.layers.GaussianNoise(v)),
    "GaussianNoise.seed": ("seed", lambda v: kreg.layers.GaussianNoise(0.1, seed=v)),
    "GaussianNoise.relative": ("relative", lambda v: kreg.layers.GaussianNoise(0.1, relative=v)),
    "Dropout": ("rate", lambda v: kreg.layers.Dropout(v)),
    "Dropout.seed": ("seed", lambda v: kreg.layers.Dropout(0.5, seed=v)),
    "Dropout.mc": ("mc", lambda v: kreg.layers.Dropout(0.5, mc=v)),
    "Dropout.noise_shape": (
        "noise_shape",
        lambda v: kreg.layers.Dropout(0.5, noise_shape=(None, v)),
    ),
    "DropPath": ("rate", lambda v: kreg.layers.DropPath(v)),
    "DropBlock2D.rate": ("rate", lambda v: kreg.layers.DropBlock2D(v, 3)),
    "DropBlock2D.block_size": ("block_size", lambda v: kreg.layers.DropBlock2D(0.1, v)),
    "DropBlock2D.data_format": (
        "data_format",
        lambda v: kreg.layers.DropBlock2D(0.1, 3, data_format=v),
    ),
    "RandomAffine.rotation": ("rotation", lambda v: kreg.layers.RandomAffine(rotation=v)),
    "RandomAffine.translation": ("translation", lambda v: kreg.layers.RandomAffine(translation=v)),
    "RandomAffine.zoom": ("zoom", lambda v: kreg.layers.RandomAffine(zoom=v)),
    "RandomAffine.shear": ("shear", lambda v: kreg.layers.RandomAffine(shear=v)),
    "RandomAffine.flip": ("flip", lambda v: kreg.layers.RandomAffine(flip=v)),
    "RandomAffine.fill_mode": ("fill_mode", lambda v: kreg.layers.RandomAffine(0.1, fill_mode=v)),
    "RandomAffine.fill_value": (
        "fill_value",
        lambda v: kreg.layers.RandomAffine(0.1, fill_value=v),
    ),
    "RandomAffine.interpolation": (
        "interpolation",
        lambda v: kreg.layers.RandomAffine(0.1, interpolation=v),
    ),
    "RandomAffine.range": ("rotation", lambda v: kreg.layers.RandomAffine(rotation=(-0.1, v))),
    "RandomShift1D.shift": ("shift", lambda v: kreg.layers.RandomShift1D(v)),
    "RandomShift1D.scale": ("scale", lambda v: kreg.layers.RandomShift1D(0.1, scale=v)),
    "RandomShift1D.fill_mode": ("fill_mode", lambda v: kreg.layers.RandomShift1D(0.1, fill_mode=v)),
    "RandomShift1D.interpolation": (
        "interpolation",
        lambda v: kreg.layers.RandomShift1D(0.1, interpolation=v),
    ),
    "augmentation.noise": ("noise", lambda v: kreg.layers.augmentation(noise=v)),
    "augmentation.color": ("color", lambda v: kreg.layers.augmentation(color=v)),
    "augmentation.seed": ("seed", lambda v: kreg.layers.augmentation(noise=0.1, seed=v)),
    "augmentation.translation": ("translation", lambda v: kreg.layers.augmentation(translation=v)),
    "augmentation.value_range": (
        "value_range",
        lambda v: kreg.layers.augmentation(noise=0.1, value_range=(0, v)),
    ),
}

CHOICES = st.sampled_from(
    [
        "horizontal",
        "vertical",
        "horizontal_and_vertical",
        "reflect",
        "wrap",
        "constant",
        "nearest",
        "bilinear",
        "linear",
        "channels_last",
        "channels_first",
        "HORIZONTAL",
        "",
    ]
)


@MANY
@given(value=st.one_of(ANY_VALUE, CHOICES), which=st.sampled_from(sorted(_LAYER_ARGUMENTS)))
def test_layer_constructors(value, which):
    argument, build = _LAYER_ARGUMENTS[which]
    layer = _outcome(lambda: build(value), argument)
    if layer is REFUSED:
        return
    if argument in ("stddev", "rate"):
        _stored_float(getattr(layer, argument))
    _assert_round_trip(layer)


_INPUTS = {
    "GaussianNoise": ((4,), lambda: kreg.layers.GaussianNoise(0.5, seed=1)),
    "Dropout": ((4,), lambda: kreg.layers.Dropout(0.5, seed=1)),
    "DropPath": ((4,), lambda: kreg.layers.DropPath(0.5, seed=1)),
    "DropBlock2D": ((6, 6, 2), lambda: kreg.layers.DropBlock2D(0.2, 3, seed=1)),
    "RandomAffine": ((6, 6, 2), lambda: kreg.layers.RandomAffine(0.2, 0.1, seed=1)),
    "RandomShift1D": ((8, 2), lambda: kreg.layers.RandomShift1D(0.2, seed=1)),
    "RandomAffine.nearest": (
        (6, 6, 2),
        lambda: kreg.layers.RandomAffine(0.2, 0.1, interpolation="nearest", seed=1),
    ),
    "RandomShift1D.nearest": (
        (8, 2),
        lambda: kreg.layers.RandomShift1D(0.2, interpolation="nearest", seed=1),
    ),
    "GaussianNoise.relative": ((4,), lambda: kreg.layers.GaussianNoise(0.5, relative=True, seed=1)),
}


@SETTINGS
@given(
    which=st.sampled_from(sorted(_INPUTS)),
    batch=st.sampled_from([0, 1, 3]),
    dtype=st.sampled_from(["float32", "float16", "bfloat16", "float64"]),
    training=st.booleans(),
)
def test_layer_calls_keep_shape_dtype_and_finiteness(which, batch, dtype, training):
    shape, build = _INPUTS[which]
    layer = build()
    x = np.random.RandomState(0).uniform(0, 1, (batch, *shape)).astype("float32")
    x = keras.ops.cast(x, dtype)
    y = layer(x, training=training)
    assert tuple(y.shape) == (batch, *shape)
    # Keras casts floating inputs to the layer's compute dtype (float32 here), as for
    # its own Dropout and GaussianNoise.
    assert keras.backend.standardize_dtype(y.dtype) == layer.compute_dtype
    values = keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))
    assert np.all(np.isfinite(values))
    if not training:
        np.testing.assert_array_equal(
            values, keras.ops.convert_to_numpy(keras.ops.cast(x, "float32"))
        )


# --------------------------------------------------------------------- optimizers
@SETTINGS
@given(
    value=st.one_of(
        ANY_VALUE,
        st.sampled_from(
            [
                "schedule",
                "learning_rate",
                "timescale",
                "none",
                "decoupled",
                "l2",
                "initial",
                "bias",
                "(",
            ]
        ),
    ),
    argument=st.sampled_from(
        [
            "weight_decay",
            "l1",
            "initial_learning_rate",
            "multipliers",
            "follow",
            "mode",
            "anchor",
            "exclude",
        ]
    ),
)
def test_decoupled_weight_decay_arguments(value, argument):
    kwargs = {"weight_decay": 0.01}
    kwargs[argument] = {"kernel": value} if argument == "multipliers" else value
    opt = _outcome(
        lambda: kreg.optimizers.DecoupledWeightDecay(keras.optimizers.SGD(0.1), **kwargs),
        argument,
    )
    if opt is REFUSED:
        return
    config = opt.get_config()
    json.dumps({k: v for k, v in config.items() if k != "optimizer"})
    for handle in live_optimizer_strengths(opt).values():
        _stored_float(float(handle))
    # One zero-gradient step leaves every weight finite (anchors and schedules included).
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    step = _outcome(
        lambda: opt.apply(
            [keras.ops.zeros((3, 2)), keras.ops.zeros((2,))], dense.trainable_variables
        ),
        argument,
    )
    if step is not REFUSED:
        assert all(np.isfinite(keras.ops.convert_to_numpy(v)).all() for v in dense.weights)


def _optimizer_classes():
    names = [
        "SGD",
        "Adam",
        "AdamW",
        "Adamax",
        "Nadam",
        "RMSprop",
        "Adagrad",
        "Adadelta",
        "Adafactor",
        "Ftrl",
        "Lamb",
        "Lion",
        "Muon",
        "ScheduleFreeAdamW",
    ]
    return [n for n in names if hasattr(keras.optimizers, n)]


def _own_decay(optimizer):
    return max(
        float(getattr(optimizer, a, None) or 0.0) for a in ("weight_decay", "adam_weight_decay")
    )


@pytest.mark.parametrize("name", _optimizer_classes())
@pytest.mark.parametrize("own", ["default", "zero"])
def test_every_keras_optimizer_is_wrapped_with_one_decay_or_refused(name, own):
    """Each inner optimizer is either refused (naming `optimizer`) or decays exactly once.

    The reference is the bare inner optimizer stepping from (1 - λ)·θ: the decoupled decay
    is written first, then the inner step follows from the decayed weights.
    """
    cls = getattr(keras.optimizers, name)
    kwargs = {"learning_rate": 0.01}
    if own == "zero":
        for attr in ("weight_decay", "adam_weight_decay"):
            if attr in cls.__init__.__code__.co_varnames:
                kwargs[attr] = 0.0
    inner = cls(**kwargs)
    if (
        name == "Muon"
        and keras.backend.backend() == "tensorflow"
        and not hasattr(inner, "adam_weight_decay")
    ):
        pytest.skip("Keras 3.10's Muon.apply fails on TensorFlow by itself")
    opt = _outcome(
        lambda: kreg.optimizers.DecoupledWeightDecay(inner, 0.1, follow="none"), "optimizer"
    )
    if opt is REFUSED:
        assert _own_decay(inner) > 0 or name == "ScheduleFreeAdamW"
        return
    assert _own_decay(inner) == 0, "accepted an optimizer that decays by itself: twice"
    theta = np.random.RandomState(0).uniform(-1, 1, (4, 3)).astype("float32")
    grad = np.random.RandomState(1).uniform(-1, 1, (4, 3)).astype("float32")
    wrapped = keras.Variable(theta, name="kernel")
    opt.apply([keras.ops.convert_to_tensor(grad)], [wrapped])
    reference = keras.Variable(np.float32(0.9) * theta, name="kernel")
    cls(**kwargs).apply([keras.ops.convert_to_tensor(grad)], [reference])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(wrapped),
        keras.ops.convert_to_numpy(reference),
        rtol=1e-6,
        atol=1e-7,
    )


# ---------------------------------------------------------------------- callbacks
@SETTINGS
@given(
    value=ANY_VALUE,
    argument=st.sampled_from(
        [
            "patience",
            "min_delta",
            "baseline",
            "restore_best_weights",
            "verbose",
            "start_from_epoch",
            "mode",
            "criterion",
            "alpha",
            "strips",
            "strip_length",
            "min_delta_mode",
            "stop_on_nonfinite",
            "divergence_threshold",
            "strict",
            "monitor",
        ]
    ),
)
def test_early_stopping_arguments(value, argument):
    stopper = _outcome(lambda: kreg.callbacks.EarlyStopping(**{argument: value}), argument)
    if stopper is REFUSED:
        return
    json.dumps(stopper.get_config())


@SETTINGS
@given(
    value=st.one_of(
        ANY_VALUE,
        st.sampled_from(
            [
                "minibatch",
                "dataset",
                "sqrt",
                "linear",
                "mean",
                "sum",
                "l2",
                "weight_decay",
                "dropout",
            ]
        ),
    ),
    argument=st.sampled_from(
        [
            "rule",
            "targets",
            "reduction",
            "schedule",
            "batch_size",
            "num_examples",
            "epochs",
            "verbose",
        ]
    ),
)
def test_regularization_scaler_arguments(value, argument):
    kwargs = {"rule": "minibatch", argument: value}
    scaler = _outcome(lambda: kreg.callbacks.RegularizationScaler(**kwargs), argument)
    if scaler is REFUSED:
        return
    if argument in ("batch_size", "num_examples", "epochs") and value is not None:
        assert isinstance(getattr(scaler, argument), int)


@SETTINGS
@given(value=ANY_VALUE, argument=st.sampled_from(["per_layer", "zero_tol"]))
def test_regularization_monitor_arguments(value, argument):
    monitor = _outcome(lambda: kreg.callbacks.RegularizationMonitor(**{argument: value}), argument)
    if monitor is not REFUSED and argument == "zero_tol":
        _stored_float(monitor.zero_tol)


@SETTINGS
@given(value=ANY_VALUE, argument=st.sampled_from(["samples", "batch_size"]))
def test_mc_predict_arguments(value, argument):
    model = keras.Sequential(
        [keras.Input((3,)), kreg.layers.Dropout(0.5, seed=1), keras.layers.Dense(2)]
    )
    x = np.ones((4, 3), "float32")
    kwargs = {"samples": 3, argument: value}
    result = _outcome(lambda: kreg.mc_predict(model, x, **kwargs), argument)
    if result is not REFUSED:
        mean, std = result
        assert mean.shape == std.shape == (4, 2)
        assert np.all(np.isfinite(mean)) and np.all(std >= 0)


# ------------------------------------------------------------- fit, then persistence
def _fit_model():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            kreg.layers.GaussianNoise(0.1, seed=1, name="noise"),
            keras.layers.Dense(3, kernel_regularizer=kreg.regularizers.L2(0.01), name="d"),
            kreg.layers.Dropout(0.3, seed=2, name="drop"),
            keras.layers.Dense(1, name="o"),
        ]
    )
    model.compile(
        optimizer=kreg.optimizers.DecoupledWeightDecay(keras.optimizers.SGD(0.05), 1e-3), loss="mse"
    )
    return model


# Subnormal float32 strengths flush to zero in TensorFlow's CPU kernels: not generated.
_UNIT = st.floats(0, 1, width=32, allow_subnormal=False)


@settings(SETTINGS, max_examples=6)
@given(
    batch_size=st.sampled_from([1, 3, 8]),
    values=st.fixed_dictionaries(
        {
            "noise.stddev": _UNIT,
            "d.kernel_regularizer.l2": _UNIT,
            "drop.rate": st.floats(0, 0.875, width=32, allow_subnormal=False),
            "optimizer.weight_decay": st.floats(0, 0.5, width=32, allow_subnormal=False),
        }
    ),
    route=st.sampled_from(["weights", "keras", "state_tree"]),
)
def test_fit_then_every_persistence_route_keeps_what_a_callback_assigned(
    tmp_path_factory, batch_size, values, route
):
    x = np.random.RandomState(0).uniform(-1, 1, (8, 4)).astype("float32")
    y = np.random.RandomState(1).uniform(-1, 1, (8, 1)).astype("float32")
    keras.backend.clear_session(free_memory=False)

    class Assign(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            handles = kreg.strengths(self.model)
            for name, value in values.items():
                handles[name].assign(value)

    model = _fit_model()
    history = model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, callbacks=[Assign()])
    assert np.isfinite(history.history["loss"]).all()
    assert all(np.isfinite(w).all() for w in model.get_weights())
    folder = tmp_path_factory.mktemp("saved")
    if route == "weights":
        model.save_weights(str(folder / "m.weights.h5"))
        loaded = _fit_model()
        loaded.load_weights(str(folder / "m.weights.h5"))
    elif route == "keras":
        model.save(str(folder / "m.keras"))
        loaded = keras.saving.load_model(str(folder / "m.keras"), safe_mode=True)
    else:
        # A state tree matches variables by path: the resumed run builds the same names
        # (a new process would), with its optimizer built and its strengths live.
        tree = model.get_state_tree(value_format="numpy_array")
        keras.backend.clear_session(free_memory=False)
        loaded = _fit_model()
        loaded.optimizer.build(loaded.trainable_variables)
        kreg.strengths(loaded)
        loaded.set_state_tree(tree)
    got = {name: float(h) for name, h in kreg.strengths(loaded).items() if name in values}
    assert got == {name: float(np.float32(v)) for name, v in values.items()}
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
