"""Live strengths: discovery, handles, and changes mid-fit reaching the train step."""

import keras
import numpy as np
import pytest

import kreg
from kreg._live import Strength, StrengthState
from kreg._validate import check_fraction


def _linear_model(l2, name="d", module=kreg.regularizers, **compile_kwargs):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(
                1,
                use_bias=False,
                kernel_initializer=keras.initializers.Constant(0.5),
                kernel_regularizer=module.L2(l2),
                name=name,
            ),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", **compile_kwargs)
    return model


def _numpy_sgd_l2(x, y, w, lr, lams):
    """Full-batch SGD on mean((xw - y)^2) + lam * sum(w^2), one step per entry of lams."""
    for lam in lams:
        grad = 2.0 * x.T @ (x @ w - y) / (x.shape[0] * y.shape[1]) + 2.0 * lam * w
        w = w - lr * grad
    return w


class _SetAfterFirstEpoch(keras.callbacks.Callback):
    def __init__(self, name, value):
        super().__init__()
        self.name, self.value = name, value

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            kreg.strengths(self.model)[self.name].assign(self.value)


def _fit_changing_after_first_epoch(model, name, x, y, lams):
    """Three full-batch epochs, ``name`` set to 0.5 after the first; the weights must be
    NumPy's SGD with one λ per step (``lams``, the steps before this fit included)."""
    model.fit(
        x,
        y,
        batch_size=len(x),
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[_SetAfterFirstEpoch(name, 0.5)],
    )
    expected = _numpy_sgd_l2(
        x.astype("float64"), y.astype("float64"), np.full((4, 1), 0.5), 0.1, lams
    )
    np.testing.assert_allclose(model.get_weights()[0], expected, rtol=1e-5, atol=1e-6)
    return expected


@pytest.mark.parametrize("jit_compile", [False, True])
def test_callback_change_reaches_the_next_epoch_exactly(regression_data, jit_compile):
    x, y = regression_data
    model = _linear_model(0.01, jit_compile=jit_compile)
    expected = _fit_changing_after_first_epoch(
        model, "d.kernel_regularizer.l2", x, y, [0.01, 0.5, 0.5]
    )
    # and differs from what the unchanged strength gives, so the test can fail
    unchanged = _numpy_sgd_l2(
        x.astype("float64"), y.astype("float64"), np.full((4, 1), 0.5), 0.1, [0.01] * 3
    )
    assert np.abs(expected - unchanged).max() > 1e-2


class _SetFromTheLayer(keras.callbacks.Callback):
    """Takes the handle from the layer, not the model, after the first epoch."""

    def __init__(self, layer_name, key, value):
        super().__init__()
        self.layer_name, self.key, self.value = layer_name, key, value
        self.refused = None

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            try:
                kreg.strengths(self.model.get_layer(self.layer_name))[self.key].assign(self.value)
            except ValueError as error:
                self.refused = error
                self.model.stop_training = True


@pytest.mark.parametrize("live_before", [True, False])
def test_a_handle_from_a_layer_mid_fit_works_or_is_refused(regression_data, live_before):
    x, y = regression_data
    model = _linear_model(0.01)
    if live_before:  # as every kreg callback does in on_train_begin
        kreg.strengths(model)
    setter = _SetFromTheLayer("d", "d.kernel_regularizer.l2", 0.5)
    model.fit(x, y, batch_size=len(x), epochs=3, shuffle=False, verbose=0, callbacks=[setter])
    start = np.full((4, 1), 0.5)
    x64, y64 = x.astype("float64"), y.astype("float64")
    compiled = keras.backend.backend() != "torch" or model.jit_compile
    if live_before or not compiled:
        # torch runs the step eagerly: nothing holds the float, so the handle works.
        assert setter.refused is None
        expected = _numpy_sgd_l2(x64, y64, start, 0.1, [0.01, 0.5, 0.5])
    else:
        # The traced step holds λ = 0.01 as a constant: the layer cannot rebuild it.
        assert "expected the model that is trained" in str(setter.refused)
        assert "['d.kernel_regularizer']" in str(setter.refused)
        expected = _numpy_sgd_l2(x64, y64, start, 0.1, [0.01])
    np.testing.assert_allclose(model.get_weights()[0], expected, rtol=1e-5, atol=1e-6)


def test_a_layer_of_a_model_traced_only_symbolically_gives_handles():
    # Building a functional model infers shapes (Keras' symbolic scope): no step holds λ.
    model = _linear_model(0.01)
    handle = kreg.strengths(model.get_layer("d"))["d.kernel_regularizer.l2"]
    handle.assign(0.2)
    assert float(handle) == pytest.approx(0.2)


def test_change_between_batches_inside_an_epoch(regression_data):
    """A per-batch change (as RegularizationScaler does) reaches the very next step."""
    x, y = regression_data
    model = _linear_model(0.0)
    lams = [0.0, 0.3, 0.05, 1.0]

    class PerBatch(keras.callbacks.Callback):
        # The handle is fetched once: later batches do not touch `self.model` (whose
        # access alone would sync the JAX state), so the handle must sync by itself.
        def on_train_begin(self, logs=None):
            self.handle = kreg.strengths(self.model)["d.kernel_regularizer.l2"]

        def on_train_batch_begin(self, batch, logs=None):
            self.handle.assign(lams[batch])

    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[PerBatch()])
    w = np.full((4, 1), 0.5)
    for step, lam in enumerate(lams):
        xb, yb = x[8 * step : 8 * step + 8].astype("float64"), y[8 * step : 8 * step + 8]
        w = _numpy_sgd_l2(xb, yb.astype("float64"), w, 0.1, [lam])
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-5, atol=1e-6)


def test_strengths_names_kinds_and_handles():
    inner = keras.Sequential(
        [keras.layers.Dense(2, kernel_regularizer=kreg.regularizers.L1L2(0.1, 0.2), name="h")],
        name="block",
    )
    model = keras.Sequential(
        [
            keras.Input((3,)),
            inner,
            keras.layers.Dense(1, bias_regularizer=kreg.regularizers.L1(0.3), name="out"),
        ]
    )
    found = kreg.strengths(model)
    assert list(found) == [
        "block/h.kernel_regularizer.l1",
        "block/h.kernel_regularizer.l2",
        "out.bias_regularizer.l1",
    ]
    s = found["block/h.kernel_regularizer.l2"]
    assert isinstance(s, Strength) and s.kind == "regularizer" and s.base == pytest.approx(0.2)
    s.assign(0.7)
    assert float(s) == pytest.approx(0.7)
    assert float(kreg.strengths(model)["block/h.kernel_regularizer.l2"]) == pytest.approx(0.7)
    assert float(found["block/h.kernel_regularizer.l1"]) == pytest.approx(0.1)  # neighbour intact
    assert s.base == pytest.approx(0.2)
    assert "block/h.kernel_regularizer.l2=0.7" in repr(s)
    # get_config keeps the constructor's values (plain floats) under Keras' keys, as
    # Keras' classes do; the current strengths travel with the weights.
    config = inner.layers[0].kernel_regularizer.get_config()
    assert config == {"l1": 0.1, "l2": 0.2}
    assert all(type(v) is float for v in config.values())


def test_assign_validates_with_a_clear_message():
    model = _linear_model(0.01)
    s = kreg.strengths(model)["d.kernel_regularizer.l2"]
    for bad in (-1.0, float("nan"), float("inf"), "0.1", None, True):
        with pytest.raises(
            ValueError, match=r"Invalid value for argument `d.kernel_regularizer.l2`"
        ):
            s.assign(bad)
    assert float(s) == pytest.approx(0.01)


def test_strengths_rejects_non_models():
    with pytest.raises(ValueError, match="expected a Keras layer or model. Received: model="):
        kreg.strengths("not a model")


def test_strengths_are_python_floats_until_asked_for_then_a_tracked_weight():
    keras_model = _linear_model(0.01, module=keras.regularizers)
    model = _linear_model(0.01)
    # Keras' arguments alone: Keras' weights and variables, nothing more.
    assert len(model.weights) == len(keras_model.weights) == 1
    assert len(model.variables) == len(keras_model.variables)
    reg = model.layers[0].kernel_regularizer
    assert not reg.live and isinstance(reg.get("l2"), float)
    kreg.strengths(model)
    assert reg.live
    state = reg._live_variable
    assert any(v is state for v in model.non_trainable_variables)  # the JAX step carries it
    assert len(model.layers[0].trainable_weights) == 1  # the kernel only


def test_strength_state_is_no_seed_generator():
    reg = kreg.regularizers.L2(0.1)
    assert not isinstance(reg, keras.random.SeedGenerator)
    assert isinstance(reg, StrengthState)
    with pytest.raises(ValueError, match=r"argument `rate`: expected a float in \[0, 1\]"):
        StrengthState({"rate": 1.5}, kind="dropout", checks={"rate": check_fraction})


def test_mirrored_strategy_live_change_matches_one_device(mirrored, regression_data):
    x, y = regression_data
    cb = lambda: [_SetAfterFirstEpoch("d.kernel_regularizer.l2", 0.5)]  # noqa: E731
    single = _linear_model(0.01)
    single.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=cb())
    with mirrored.scope():
        multi = _linear_model(0.01)
    multi.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=cb())
    np.testing.assert_allclose(multi.get_weights()[0], single.get_weights()[0], atol=1e-5)
    # Both against NumPy: 2 steps per epoch, λ = 0.01 in epoch 0, then 0.5.
    w, x64, y64 = np.full((4, 1), 0.5), x.astype("float64"), y.astype("float64")
    for i, lam in enumerate([0.01] * 2 + [0.5] * 4):
        b = slice(16 * (i % 2), 16 * (i % 2) + 16)
        w = _numpy_sgd_l2(x64[b], y64[b], w, 0.1, [lam])
    np.testing.assert_allclose(multi.get_weights()[0], w, rtol=1e-5, atol=1e-6)


def test_drop_in_attributes_read_exact_floats_and_follow_assignments():
    reg = kreg.regularizers.L2(0.01)
    assert reg.l2 == 0.01  # not float32-rounded, as keras.regularizers.L2(0.01).l2
    layer = kreg.layers.Dropout(0.3, name="dr")
    assert layer.rate == 0.3
    model = keras.Sequential(
        [keras.Input((4,)), layer, keras.layers.Dense(1, kernel_regularizer=reg, name="d")]
    )
    kreg.strengths(model)["dr.rate"].assign(0.25)
    kreg.strengths(model)["d.kernel_regularizer.l2"].assign(0.5)
    assert layer.rate == 0.25 and reg.l2 == 0.5
    with pytest.raises(AttributeError, match=r"kreg.strengths\(model\)\['dr.rate'\]"):
        layer.rate = 0.1


def test_drop_in_attributes_readable_mid_epoch_on_every_backend(regression_data):
    x, y = regression_data
    layer = kreg.layers.Dropout(0.3, name="dr")
    model = keras.Sequential([keras.Input((4,)), layer, keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    seen = []

    class Read(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(layer.rate)  # no self.model access: no JAX state sync

    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Read()])
    assert seen == [0.3] * 4


def test_live_state_variable_paths_are_unique_so_the_state_tree_works():
    """Model.get_state_tree() (and Orbax checkpoints) need one path per variable."""
    model = keras.Sequential(
        [
            keras.Input((4,)),
            kreg.layers.GaussianNoise(0.1, name="noise"),
            keras.layers.Dense(3, kernel_regularizer=kreg.regularizers.L2(0.01), name="d1"),
            kreg.layers.Dropout(0.3, name="drop"),
            keras.layers.Dense(1, kernel_regularizer=kreg.regularizers.L1(0.01), name="d2"),
        ]
    )
    model.compile("sgd", "mse")
    kreg.strengths(model)  # live: the strengths are variables of the state tree
    paths = [v.path for v in model.variables]
    assert len(paths) == len(set(paths)), paths
    tree = model.get_state_tree(value_format="numpy_array")
    kreg.strengths(model)["drop.rate"].assign(0.5)
    model.set_state_tree(tree)  # puts the saved rate back
    assert float(kreg.strengths(model)["drop.rate"]) == pytest.approx(0.3)
    assert model.get_layer("drop").rate == pytest.approx(0.3)  # the property follows
    kreg.strengths(model)["drop.rate"].assign(0.1)
    assert model.get_layer("drop").rate == 0.1  # exactly the float assigned


def test_assigned_strengths_survive_save_and_load(tmp_path):
    # What a callback assigned is in the weight file (under the strengths' own entry),
    # so the loaded model has the assigned strengths and the same loss.
    x = np.random.RandomState(0).rand(8, 3).astype("float32")
    y = np.ones((8, 4), "float32")
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, name="d", kernel_regularizer=kreg.regularizers.L2(1.0)),
            kreg.layers.Dropout(0.3, name="drop"),
            kreg.layers.GaussianNoise(0.1, name="noise"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.0), "mse")
    untouched = {layer.name: layer.get_config() for layer in model.layers}
    assert all("current_strengths" not in c for c in untouched.values())  # Keras' keys
    handles = kreg.strengths(model)
    handles["d.kernel_regularizer.l2"].assign(2.5)
    handles["drop.rate"].assign(0.7)
    handles["noise.stddev"].assign(0.5)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert {k: float(v) for k, v in kreg.strengths(loaded).items()} == pytest.approx(
        {"d.kernel_regularizer.l2": 2.5, "drop.rate": 0.7, "noise.stddev": 0.5}
    )
    assert loaded.get_layer("drop").get_config()["rate"] == 0.3  # the constructor's value
    np.testing.assert_allclose(
        loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6
    )
    with pytest.raises(ValueError, match=r"argument `current_strengths`: expected keys"):
        kreg.layers.Dropout.from_config({"rate": 0.1, "current_strengths": {"l2": 1.0}})


class _AddWeightLayer(keras.layers.Layer):
    """A custom layer regularized the documented Keras way: add_weight(regularizer=...)."""

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], 1),
            initializer=keras.initializers.Constant(0.5),
            regularizer=kreg.regularizers.L2(0.01),
            name="w",
        )

    def call(self, x):
        return x @ self.w


@pytest.mark.parametrize("jit_compile", [False, True])
def test_add_weight_regularizer_is_listed_and_live(regression_data, jit_compile):
    """No layer attribute holds it: strengths() adopts it (JAX ignored changes before)."""
    x, y = regression_data
    model = keras.Sequential([keras.Input((4,)), _AddWeightLayer(name="lin")])
    model.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=jit_compile)
    model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)  # traced before the adoption
    assert list(kreg.strengths(model)) == ["lin.w_regularizer.l2"]
    _fit_changing_after_first_epoch(model, "lin.w_regularizer.l2", x, y, [0.01] * 2 + [0.5] * 2)


def test_strengths_rejects_a_non_optimizer():
    model = _linear_model(0.01)
    with pytest.raises(ValueError, match=r"argument `optimizer`: expected a Keras optimizer"):
        kreg.strengths(model, optimizer="adam")


def test_names_drop_the_leading_underscore_of_private_attributes():
    """MultiHeadAttention keeps its regularizer as `_kernel_regularizer`."""
    inputs = keras.Input((3, 4))
    layer = keras.layers.MultiHeadAttention(
        2, 2, kernel_regularizer=kreg.regularizers.L2(0.1), name="mha"
    )
    model = keras.Model(inputs, layer(inputs, inputs))
    assert list(kreg.strengths(model)) == ["mha.kernel_regularizer.l2"]


# -- every Keras persistence route keeps what a callback set --------------------------

_CHANGED = {
    "noise.stddev": 0.0,
    "d.kernel_regularizer.l2": 0.2,
    "drop.rate": 0.0,
    "optimizer.weight_decay": 0.05,
    "optimizer.l1": 0.0,
}


def _persistence_model(module=kreg):
    """Noise, an L2-regularized Dense and dropout; seeded, so two builds train alike."""
    layers = module.layers if module is kreg else keras.layers
    model = keras.Sequential(
        [
            keras.Input((4,)),
            layers.GaussianNoise(0.1, seed=1, name="noise"),
            keras.layers.Dense(
                3,
                kernel_initializer=keras.initializers.Constant(0.3),
                kernel_regularizer=module.regularizers.L2(0.01),
                name="d",
            ),
            layers.Dropout(0.3, seed=2, name="drop"),
            keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(0.2), name="o"),
        ]
    )
    if module is kreg:
        optimizer = kreg.optimizers.DecoupledWeightDecay(keras.optimizers.SGD(0.05), 1e-3)
    else:
        optimizer = keras.optimizers.SGD(0.05)
    model.compile(optimizer=optimizer, loss="mse")
    return model


class _SetStrengths(keras.callbacks.Callback):
    """After the first epoch: noise and dropout off, more L2, more weight decay."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            handles = kreg.strengths(self.model)
            for name, value in _CHANGED.items():
                handles[name].assign(value)


def _current(model):
    return {name: float(handle) for name, handle in kreg.strengths(model).items()}


def test_save_weights_and_load_weights_keep_changed_strengths(tmp_path, regression_data):
    x, y = regression_data
    model = _persistence_model()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[_SetStrengths()])
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    fresh = _persistence_model()
    fresh.load_weights(path)
    assert _current(fresh) == pytest.approx(_CHANGED)
    assert fresh.get_layer("drop").rate == 0.0 and fresh.get_layer("noise").stddev == 0.0
    # A strength already live when the weights load is assigned, not only its mirror.
    live = _persistence_model()
    kreg.strengths(live)
    live.load_weights(path)
    assert _current(live) == pytest.approx(_CHANGED)
    np.testing.assert_allclose(live.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0))


def test_backup_and_restore_resumes_with_the_strengths_of_the_backup(tmp_path, regression_data):
    x, y = regression_data
    fit = dict(batch_size=16, epochs=4, shuffle=False, verbose=0)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    reference = _persistence_model()
    reference.fit(x, y, callbacks=[_SetStrengths()], **fit)

    backup_dir = str(tmp_path / "backup")
    model = _persistence_model()
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(
            x,
            y,
            callbacks=[_SetStrengths(), keras.callbacks.BackupAndRestore(backup_dir), Interrupt()],
            **fit,
        )
    seen = {}

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.update(_current(self.model))

    resumed = _persistence_model()  # a new process would build it anew
    resumed.fit(x, y, callbacks=[keras.callbacks.BackupAndRestore(backup_dir), Record()], **fit)
    assert seen == pytest.approx(_CHANGED)
    # Noise and dropout are off after epoch 0, so the resumed epochs 2-3 are exactly the
    # uninterrupted run's only if every strength came back.
    for got, want in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_state_tree_round_trip_keeps_changed_strengths(regression_data):
    x, y = regression_data
    model = _persistence_model()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[_SetStrengths()])
    tree = model.get_state_tree(value_format="numpy_array")
    for handle in kreg.strengths(model).values():
        handle.assign(0.5)
    model.set_state_tree(tree)  # as a checkpoint restore would
    assert _current(model) == pytest.approx(_CHANGED)


@pytest.mark.parametrize("live", [False, True])
def test_weight_files_load_between_keras_and_kreg_layers(tmp_path, regression_data, live):
    """The Keras<->kreg weight interchange, written once: Dropout, GaussianNoise and a
    regularized Dense, live or not; either class reads the other's file."""
    x, _ = regression_data
    keras_model, kreg_model = _persistence_model(keras), _persistence_model()
    assert len(keras_model.weights) == len(kreg_model.weights)  # until strengths are live
    if live:
        handles = kreg.strengths(kreg_model)
        for name, value in _CHANGED.items():
            handles[name].assign(value)
    for layer in keras_model.layers:
        layer.set_weights([w * 1.5 for w in layer.get_weights()])
    keras_model.save_weights(tmp_path / "keras.weights.h5")
    kreg_model.load_weights(tmp_path / "keras.weights.h5")
    np.testing.assert_array_equal(
        keras_model.predict(x, verbose=0), kreg_model.predict(x, verbose=0)
    )
    if live:  # a Keras file has no strengths: the current ones stay
        assert _current(kreg_model) == pytest.approx(_CHANGED)
    other = _persistence_model(keras)
    kreg_model.save_weights(tmp_path / "kreg.weights.h5")
    other.load_weights(tmp_path / "kreg.weights.h5")
    np.testing.assert_array_equal(other.predict(x, verbose=0), kreg_model.predict(x, verbose=0))
