"""Pins for kreg/_keras_compat.py: one test per private Keras name kreg relies on."""

import keras
import numpy as np
import pytest

from kreg import _keras_compat as compat

# -- optimizers (kreg.audit)


def _dense(name):
    layer = keras.layers.Dense(2, name=name)
    layer.build((None, 3))
    return layer


def _decayed(optimizer, variables):
    """Which variables a step with zero gradients shrinks: the optimizer's own decay."""
    for variable in variables:
        variable.assign(np.ones(variable.shape))
    optimizer.apply([keras.ops.zeros(v.shape) for v in variables], variables)
    return [float(keras.ops.convert_to_numpy(v).ravel()[0]) for v in variables]


def test_learning_rate_schedule_is_the_schedule_the_optimizer_was_given():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    assert compat.learning_rate_schedule(keras.optimizers.SGD(schedule)) is schedule

    class NoConfig(keras.optimizers.schedules.LearningRateSchedule):  # get_config is optional
        def __call__(self, step):
            return 0.1

    custom = NoConfig()
    assert compat.learning_rate_schedule(keras.optimizers.Adam(custom)) is custom
    assert compat.learning_rate_schedule(keras.optimizers.SGD(0.1)) is None
    assert compat.learning_rate_schedule(keras.optimizers.SGD(lambda: 0.1)) is None


def test_muon_steps_with_adam_where_it_decays_by_adam_weight_decay():
    d, head = _dense("d"), _dense("head")
    variables = [d.kernel, d.bias, head.kernel]
    muon = keras.optimizers.Muon(learning_rate=0.1, weight_decay=0.5, exclude_layers=["head"])
    assert [compat.muon_steps_with_adam(muon, v) for v in variables] == [False, True, True]
    assert compat.muon_steps_with_adam(keras.optimizers.Adam(), d.kernel) is None
    if not hasattr(muon, "adam_weight_decay"):
        return  # an older Keras: Muon decays every weight by weight_decay
    # What kreg relies on: Adam-stepped weights lose lr·adam_weight_decay, the others lr·wd.
    muon = keras.optimizers.Muon(
        learning_rate=0.1, weight_decay=0.5, adam_weight_decay=0.2, exclude_layers=["head"]
    )
    assert _decayed(muon, variables) == pytest.approx([1 - 0.1 * 0.5, 1 - 0.1 * 0.2, 1 - 0.1 * 0.2])


def test_weight_decay_exclusion_pattern_is_the_compiled_var_names():
    optimizer = keras.optimizers.AdamW()
    assert compat.weight_decay_exclusion_pattern(optimizer) is None
    optimizer.exclude_from_weight_decay(var_names=["bias$", "gamma$"])
    pattern = compat.weight_decay_exclusion_pattern(optimizer)
    assert pattern.search("bias") and pattern.search("gamma") and not pattern.search("kernel")
    assert sorted(pattern.pattern.split("|")) == ["bias$", "gamma$"]


@pytest.mark.parametrize("var_names", [["bias$"], ["^d/"], ["bias"]])
def test_excluded_from_builtin_decay_is_what_keras_decays(var_names):
    d, head = _dense("d"), _dense("head")
    variables = [d.kernel, d.bias, head.kernel, head.bias]
    optimizer = keras.optimizers.SGD(1.0, weight_decay=0.5)
    optimizer.exclude_from_weight_decay(var_list=[head.kernel], var_names=var_names)
    predicted = [compat.excluded_from_builtin_decay(optimizer, v) for v in variables]
    assert _decayed(optimizer, variables) == [1.0 if p else 0.5 for p in predicted]
    # The backends differ: TensorFlow matches "d/bias:0", JAX and torch "bias".
    on = {
        b: compat.excluded_from_builtin_decay(optimizer, d.bias, b) for b in ("tensorflow", "jax")
    }
    assert (
        on
        == {
            "bias$": {"tensorflow": False, "jax": True},
            "^d/": {"tensorflow": True, "jax": False},
            "bias": {"tensorflow": True, "jax": True},
        }[var_names[0]]
    )
    assert predicted[2] is True  # var_list, on every backend


# -- layer graph (kreg.audit)


def test_call_input_tensors_lists_every_call_of_a_layer():
    layer = keras.layers.Dense(2)
    a, b = keras.Input((3,)), keras.Input((3,))
    layer(a)
    layer(b)
    calls = compat.call_input_tensors(layer)
    assert len(calls) == 2
    assert calls[0][0] is a and calls[1][0] is b and len(calls[0]) == len(calls[1]) == 1
    assert layer.input is a  # the public attribute knows the first call only
    assert compat.call_input_tensors(keras.layers.Dense(2)) == []


# -- layers (kreg._live)


def test_unlocked_tracker_lets_a_built_layer_track_a_new_sublayer():
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    child = keras.layers.Dense(1)
    with pytest.raises(ValueError):
        layer.extra = child  # Keras locks the tracker after build()
    with compat.unlocked_tracker(layer):
        layer.extra = child
    assert child in compat.sublayers(layer)
    with pytest.raises(ValueError):
        layer.another = keras.layers.Dense(1)  # locked again


def test_sublayers_lists_direct_children_only():
    inner = keras.Sequential([keras.layers.Dense(2, name="a")], name="inner")
    outer = keras.Sequential([keras.Input((3,)), inner, keras.layers.Dense(1, name="b")])
    names = [layer.name for layer in compat.sublayers(outer)]
    assert names[-2:] == ["inner", "b"] and "a" not in names  # (+ Sequential's InputLayer)


def test_own_trainable_variables_survive_freezing():
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    layer.trainable = False
    assert layer.trainable_weights == []
    assert [v.path for v in compat.own_trainable_variables(layer)] == [
        v.path for v in (layer.kernel, layer.bias)
    ]


# -- optimizers (kreg.optimizers)


def test_scale_for_replicas_is_the_identity_outside_a_strategy():
    value = keras.ops.convert_to_tensor([1.0, 3.0])
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(compat.scale_for_replicas(value)), [1.0, 3.0]
    )


def test_scale_for_replicas_undoes_the_sum_of_the_replicas_gradients(mirrored):
    import tensorflow as tf

    with mirrored.scope():
        variable = keras.Variable(np.zeros(2, "float32"))
        optimizer = keras.optimizers.SGD(1.0)
        optimizer.build([variable])
        halved = compat.scale_for_replicas(keras.ops.convert_to_tensor([1.0, 3.0]))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(halved), [0.5, 1.5])

    @tf.function
    def step(scaled):
        def replica_step():
            grad = keras.ops.convert_to_tensor([1.0, 3.0])
            optimizer.apply([compat.scale_for_replicas(grad) if scaled else grad], [variable])

        mirrored.run(replica_step)

    # What kreg relies on: Keras sums the replicas' gradients before update_step ...
    step(False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), [-2.0, -6.0])
    # ... so each replica passing its share writes the value once.
    step(True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), [-3.0, -9.0])


def test_micro_step_counts_every_apply_under_gradient_accumulation():
    variable = keras.Variable(np.ones(2, "float32"))
    optimizer = keras.optimizers.SGD(1.0, gradient_accumulation_steps=3)
    for count in range(1, 5):
        # Keras updates the weights on the call where (micro_step + 1) % n == 0.
        updates = (int(compat.micro_step(optimizer)) + 1) % 3 == 0
        optimizer.apply([keras.ops.ones((2,))], [variable])
        assert int(compat.micro_step(optimizer)) == count
        assert int(optimizer.iterations) == count // 3  # public: update steps only
        assert float(keras.ops.convert_to_numpy(variable)[0]) == (0.0 if count >= 3 else 1.0)
        assert updates == (count == 3)


def test_build_at_init_builds_stateless_layers_but_not_ones_with_a_build():
    class Stateless(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            compat.build_at_init(self)

    class WithBuild(Stateless):
        def build(self, input_shape):
            pass

    assert Stateless().built
    assert not WithBuild().built


# -- tf.data on other backends (kreg.layers._tf_graph)


def test_tensorflow_backend_is_the_module_of_keras_tensorflow_ops():
    tf = pytest.importorskip("tensorflow")
    backend = compat.tensorflow_backend()
    assert backend.__name__ == "keras.src.backend.tensorflow"
    # What kreg's op set reads from it: keras.ops names, computed by TensorFlow.
    x = tf.constant([[1.0, 2.0, 3.0]])
    taken = backend.numpy.take(x, np.array([2, 0]), axis=1)
    assert isinstance(taken, tf.Tensor) and taken.numpy().tolist() == [[3.0, 1.0]]
    assert backend.core.shape(x) == (1, 3)
    images = tf.reshape(tf.range(16.0), (1, 4, 4, 1))
    shift = tf.constant([[1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]])  # read at (x + 1, y)
    moved = backend.image.affine_transform(
        images, shift, "bilinear", "nearest", 0.0, data_format="channels_last"
    )
    assert moved.numpy()[0, 0, :, 0].tolist() == [1.0, 2.0, 3.0, 3.0]


def test_tensorflow_seed_generator_draws_tensorflow_numbers_with_its_seed():
    tf = pytest.importorskip("tensorflow")
    generator = compat.tensorflow_seed_generator(5)
    assert isinstance(generator.state.value, tf.Variable | tf.Tensor)
    backend = compat.tensorflow_backend()
    first = backend.random.uniform((3,), seed=generator).numpy()
    second = backend.random.uniform((3,), seed=generator).numpy()
    assert not np.array_equal(first, second)  # the state advances
    again = backend.random.uniform((3,), seed=compat.tensorflow_seed_generator(5)).numpy()
    np.testing.assert_array_equal(first, again)


def test_inputs_unconverted_lets_a_layer_take_tensorflow_graph_tensors():
    tf = pytest.importorskip("tensorflow")

    class Shape(keras.layers.Layer):
        def call(self, x):
            return tf.shape(x)

    layer = Shape()

    def traced(spec):
        call = tf.function(lambda v: keras.layers.Layer.__call__(layer, v))
        return call.get_concrete_function(spec)

    if keras.backend.backend() != "tensorflow":  # what the context is for
        with pytest.raises((ValueError, NotImplementedError)):  # refused, or converted
            traced(tf.TensorSpec((2, 3)))
    with compat.inputs_unconverted(layer):
        assert traced(tf.TensorSpec((2, 3))).graph is not None
    assert layer._convert_input_args is True  # restored
    assert layer._allow_non_tensor_positional_args is False


# -- layer graph, keyword arguments (kreg.audit)


def test_call_keyword_arguments_lists_each_calls_keywords():
    class Tied(keras.layers.Layer):  # as ReversibleEmbedding: one layer, two uses
        def call(self, x, reverse=False):
            return -x if reverse else x

    layer = Tied()
    x = keras.Input((3,))
    layer(layer(x), reverse=True)
    assert compat.call_keyword_arguments(layer) == [{}, {"reverse": True}]
    assert compat.call_keyword_arguments(Tied()) == []


# -- callbacks (kreg.callbacks.RegularizationMonitor)


def test_calling_callback_list_is_the_list_fit_calls_the_hooks_of():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    order = []

    class Mark(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            order.append("mark")
            logs["mark"] = 1.0

    class Find(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.found = compat.calling_callback_list(self)
            # What the monitor relies on: the later hooks iterate the list assigned here.
            self.found.callbacks = [Mark(), *self.found.callbacks]

        def on_epoch_end(self, epoch, logs=None):
            order.append(logs.get("mark"))

    first, find = keras.callbacks.Callback(), Find()
    history = model.fit(
        np.zeros((2, 1)), np.zeros((2, 1)), epochs=2, verbose=0, callbacks=[first, find]
    )
    assert isinstance(find.found, keras.callbacks.CallbackList)
    assert find.found.callbacks[1:] == [first, find, history]
    assert order == ["mark", 1.0, "mark", 1.0]
    assert history.history["mark"] == [1.0, 1.0]
    assert compat.calling_callback_list(find) is None  # not inside a hook of its list


# -- saving (kreg.regularizers.apply)


def test_serializes_its_layers_tells_keras_graph_models_from_those_that_rebuild_their_own():
    inputs = keras.Input((3,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    class OwnConfig(keras.Model):  # rebuilds its layers from its arguments
        def __init__(self, **kwargs):
            inputs = keras.Input((3,))
            super().__init__(inputs, keras.layers.Dense(2)(inputs), **kwargs)

        def get_config(self):
            return {"name": self.name}

    assert compat.serializes_its_layers(functional) and compat.serializes_its_layers(sequential)
    assert not compat.serializes_its_layers(OwnConfig())
    assert not compat.serializes_its_layers(keras.layers.Dense(2))


# -- live strengths (kreg._live)


def test_tracing_is_true_in_a_traced_step_only():
    seen = []

    class Probe(keras.layers.Layer):
        def call(self, x):
            seen.append(compat.tracing())
            return x

    model = keras.Sequential([keras.Input((2,)), Probe()])  # symbolic shape inference
    model(np.ones((1, 2), "float32"))  # eager
    assert seen and not any(seen)
    model.compile(loss="mse")
    model.predict(np.ones((1, 2), "float32"), verbose=0)
    # A traced predict step (tf.function, jax.jit); torch runs it eagerly by default.
    assert seen[-1] is (keras.backend.backend() != "torch")


# -- torch (kreg._write)


def test_no_gradient_records_no_graph_on_torch():
    variable = keras.Variable(np.ones((2,), "float32"))
    with compat.no_gradient():
        value = variable.value * 2.0
    if keras.backend.backend() == "torch":
        assert variable.value.requires_grad and not value.requires_grad
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(value), [2.0, 2.0])


# -- metrics and torch modules (kreg.callbacks, kreg.layers)


def test_metric_direction_reads_which_way_a_keras_metric_improves():
    assert compat.metric_direction(keras.metrics.AUC()) == "max"
    assert compat.metric_direction(keras.metrics.MeanSquaredError()) == "min"
    assert compat.metric_direction(object()) is None


def test_own_sublayer_finds_a_sublayer_attribute_on_every_backend():
    class Holder(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.inner = keras.layers.Dense(2)

    holder = Holder()
    assert compat.own_sublayer(holder, "inner") is holder.inner
    assert compat.own_sublayer(holder, "missing") is None


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="a torch call")
def test_multiply_in_place_scales_every_tensor_in_place():
    variables = [
        keras.Variable(np.full((2,), 2.0, "float32")),
        keras.Variable(np.ones((1, 2), "float32")),
    ]
    values = [v.value for v in variables]
    with compat.no_gradient():
        compat.multiply_in_place(values, keras.ops.convert_to_tensor(0.25))
    assert [keras.ops.convert_to_numpy(v).tolist() for v in variables] == [
        [0.5, 0.5],
        [[0.25, 0.25]],
    ]
    assert all(v.value is value for v, value in zip(variables, values))  # the same storage


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="a torch call")
def test_subtract_in_place_subtracts_each_other_tensor_in_place():
    variables = [
        keras.Variable(np.full((2,), 2.0, "float32")),
        keras.Variable(np.ones((1, 2), "float32")),
    ]
    values = [v.value for v in variables]
    with compat.no_gradient():
        compat.subtract_in_place(values, [keras.ops.ones((2,)), keras.ops.full((1, 2), 0.5)])
    assert [keras.ops.convert_to_numpy(v).tolist() for v in variables] == [[1.0, 1.0], [[0.5, 0.5]]]
    assert all(v.value is value for v, value in zip(variables, values))


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="a torch call")
def test_add_scaled_in_place_adds_a_multiple_of_each_other_tensor():
    grads = [keras.ops.ones((2,)), keras.ops.zeros((1, 2))]
    with compat.no_gradient():
        compat.add_scaled_in_place(grads, [keras.ops.full((2,), 2.0), keras.ops.ones((1, 2))], 0.25)
    assert [keras.ops.convert_to_numpy(g).tolist() for g in grads] == [[1.5, 1.5], [[0.25, 0.25]]]
