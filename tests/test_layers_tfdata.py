"""kreg's augmentation layers inside tf.data on every backend (kreg/layers/_tf_graph.py).

On JAX and torch a layer mapped over a dataset computes with Keras' TensorFlow ops and
TensorFlow random numbers; these tests check it gives the in-model result for pinned
transforms, the same parameter distributions for random ones, the native kernel by
default, and that model.fit trains on such a dataset. A subprocess checks that kreg
imports and runs without TensorFlow.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import BACKEND

import kreg
from kreg.layers import _tf_graph
from kreg.layers._affine import sample_parameters

tf = pytest.importorskip("tensorflow")


def _np(t):
    return keras.ops.convert_to_numpy(keras.ops.cast(t, "float32"))


def _in_model(layers, x):
    """``{key: layer(x, training=True)}`` for a dict of layers, on this backend (on JAX in
    one jitted call, as model.fit runs them: JAX's eager dispatch compiles every primitive)."""
    if BACKEND != "jax":
        return {
            k: keras.tree.map_structure(_np, lay(x, training=True)) for k, lay in layers.items()
        }
    import jax

    for layer in layers.values():
        if not layer.built:
            layer.build(keras.tree.map_structure(np.shape, x))
    states = {k: [v.value for v in lay.non_trainable_variables] for k, lay in layers.items()}

    def run(states, x):
        return {
            k: lay.stateless_call([], states[k], x, training=True)[0] for k, lay in layers.items()
        }

    return keras.tree.map_structure(_np, jax.jit(run)(states, x))


def _in_tf_data(layer, x, batch=4):
    """The layer mapped over a tf.data dataset of ``x`` (batched by ``batch``, or unbatched
    for ``batch=None``), its outputs stacked back."""
    dataset = tf.data.Dataset.from_tensor_slices(x)
    dataset = dataset if batch is None else dataset.batch(batch)
    # Without AutoGraph's conversion (it runs kreg's Python once per trace, either way):
    # it triples the trace time of the many layers some tests map at once.
    dataset = dataset.map(tf.autograph.experimental.do_not_convert(layer))
    outs = [keras.tree.map_structure(lambda t: t.numpy(), o) for o in dataset]
    stack = np.stack if batch is None else np.concatenate
    return keras.tree.map_structure(lambda *parts: stack(parts), *outs)


def _images(shape=(8, 12, 16, 3), seed=0):
    return np.random.RandomState(seed).rand(*shape).astype("float32")


# ------------------------------------------------- pinned transforms: the in-model result

PINNED = {
    "rotation and shear": dict(rotation=(0.07, 0.07), shear=(0.2, 0.2)),
    "zoom in, translation": dict(zoom=(-0.25, -0.25), translation=(0.15, 0.15)),
    "everything, zoom out": dict(
        rotation=(0.1, 0.1), shear=(-0.1, -0.1), zoom=(0.2, 0.2), translation=(-0.3, -0.3)
    ),
}
#: Every transform with two (fill mode, interpolation) pairs; every pair with all at once.
CASES = [
    (name, fill, interpolation)
    for name in PINNED
    for fill, interpolation in (("reflect", "bilinear"), ("constant", "nearest"))
]
CASES += [
    ("everything, zoom out", fill, interpolation)
    for fill in ("wrap", "nearest", "reflect", "constant")
    for interpolation in ("bilinear", "nearest")
    if (fill, interpolation) not in (("reflect", "bilinear"), ("constant", "nearest"))
]


def test_pinned_transforms_in_tf_data_give_the_in_model_result():
    x = _images()

    def layer(case, **kwargs):
        name, fill_mode, interpolation = case
        return kreg.layers.RandomAffine(
            **PINNED[name],
            fill_mode=fill_mode,
            fill_value=0.7,
            interpolation=interpolation,
            **kwargs,
        )

    # The default (TensorFlow's kernel in tf.data where it reads as the gathers do) and the
    # gathers on TensorFlow ops (TensorFlow's result for the in-model path), in one map.
    mapped = {(case, r): layer(case, resampler=r) for case in CASES for r in ("auto", "gather")}
    got = _in_tf_data(lambda v: {key: m(v) for key, m in mapped.items()}, x)
    expected = _in_model({case: layer(case) for case in CASES}, x)
    for (case, resampler), out in got.items():
        assert np.abs(expected[case] - x).max() > 0.3, case  # the images moved
        np.testing.assert_allclose(
            out, expected[case], rtol=0, atol=1e-5, err_msg=f"{case}, resampler={resampler}"
        )


def test_masks_channels_first_and_single_images_in_tf_data():
    x = _images((4, 8, 8, 3))
    masks = np.random.RandomState(1).randint(0, 5, (4, 8, 8)).astype("int32")
    kwargs = dict(rotation=(0.1, 0.1), zoom=(0.2, 0.2), interpolation="nearest")
    data = {"images": x, "segmentation_masks": masks, "labels": np.arange(4)}
    got = _in_tf_data(kreg.layers.RandomAffine(**kwargs), data)
    expected = _in_model({0: kreg.layers.RandomAffine(**kwargs)}, data)[0]
    np.testing.assert_allclose(got["images"], expected["images"], atol=1e-5)
    np.testing.assert_array_equal(got["segmentation_masks"], expected["segmentation_masks"])
    assert got["segmentation_masks"].dtype == np.int32
    np.testing.assert_array_equal(got["labels"], np.arange(4))
    first = kreg.layers.RandomAffine(**kwargs, data_format="channels_first")
    got = _in_tf_data(first, np.transpose(x, (0, 3, 1, 2)))
    np.testing.assert_allclose(np.transpose(got, (0, 2, 3, 1)), expected["images"], atol=1e-5)
    single = _in_tf_data(kreg.layers.RandomAffine(**kwargs), x, batch=None)  # unbatched
    np.testing.assert_allclose(single, expected["images"], atol=1e-5)


def test_shift_1d_pinned_in_tf_data_is_the_in_model_result():
    x = np.random.RandomState(0).rand(6, 20, 2).astype("float32")
    configs = {
        (fill_mode, interpolation): dict(
            shift=(0.13, 0.13),
            scale=(0.2, 0.2),
            fill_mode=fill_mode,
            fill_value=-1.0,
            interpolation=interpolation,
        )
        for fill_mode in ("reflect", "wrap", "nearest", "constant")
        for interpolation in ("linear", "nearest")
    }
    layers = {key: kreg.layers.RandomShift1D(**kwargs) for key, kwargs in configs.items()}
    got = _in_tf_data(lambda v: {key: layer(v) for key, layer in layers.items()}, x)
    expected = _in_model({k: kreg.layers.RandomShift1D(**kw) for k, kw in configs.items()}, x)
    for key in configs:
        np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-5, err_msg=str(key))
    ramp = np.arange(8, dtype="float32")[None]  # rank 2, the docstring's example
    got = _in_tf_data(kreg.layers.RandomShift1D((0.25, 0.25), fill_mode="wrap"), ramp, 1)
    np.testing.assert_array_equal(got, [[6, 7, 0, 1, 2, 3, 4, 5]])


# ------------------------------------------------- random ranges: the same distributions

RANGES = {
    "rotation": (-0.1, 0.1),
    "translation": (-0.2, 0.3),
    "zoom": (-0.1, 0.2),
    "shear": (0.0, 0.1),
}


def test_parameter_draws_in_tf_data_have_the_in_model_distribution():
    from scipy import stats

    n, flip = 4000, "horizontal_and_vertical"
    ops = _tf_graph.tf_ops()
    generator = keras.random.SeedGenerator(3)
    ours = _np(sample_parameters(n, RANGES, flip, generator))
    tf_generator = _tf_graph.seed_generator_for(kreg.layers.RandomAffine(seed=3), ops)
    theirs = next(
        iter(
            tf.data.Dataset.from_tensors(0).map(
                lambda _: sample_parameters(n, RANGES, flip, tf_generator, ops)
            )
        )
    ).numpy()
    assert theirs.shape == ours.shape == (n, 8)
    for column in range(8):
        # Same law: a two-sample KS test (seeded draws, so the p-value is fixed).
        assert stats.ks_2samp(ours[:, column], theirs[:, column]).pvalue > 0.01, column
    low = np.array([-0.2 * np.pi, -0.2, -0.2, 0.9, 0.0, 0.0])
    high = np.array([0.2 * np.pi, 0.3, 0.3, 1.2, 0.1, 0.1])
    for draws in (ours, theirs):  # uniform on [low, high]: mean and sd to 3 % of the width
        np.testing.assert_allclose(
            draws[:, :6].mean(0), (low + high) / 2, atol=0.03 * (high - low).max()
        )
        np.testing.assert_allclose(draws[:, :6].std(0), (high - low) / np.sqrt(12), rtol=0.05)
        assert set(np.unique(draws[:, 6:])) == {-1.0, 1.0}
        np.testing.assert_allclose((draws[:, 6:] < 0).mean(0), 0.5, atol=0.03)


def test_shift_1d_shifts_in_tf_data_are_uniform_and_seeded():
    n, length = 1000, 50
    x = np.zeros((n, length), "float32")
    x[:, 25] = 1.0  # an impulse: where it lands measures the draw

    def layer():
        return kreg.layers.RandomShift1D(0.2, fill_mode="constant", interpolation="nearest", seed=0)

    got = _in_tf_data(layer(), x, batch=250)
    moved = got.argmax(axis=1) - 25
    assert moved.min() >= -10 and moved.max() <= 10
    assert abs(moved.mean()) < 0.5  # uniform on [-10, 10]: sd of the mean 0.19
    assert abs(moved.std() - np.sqrt((21**2 - 1) / 12)) < 0.5
    np.testing.assert_array_equal(_in_tf_data(layer(), x, batch=250), got)  # seeded
    # Each batch draws anew.
    assert len({tuple(moved[i : i + 250][:20]) for i in range(0, n, 250)}) == 4


def test_flips_in_tf_data_are_exact_independent_coins():
    n = 400
    x = np.broadcast_to(np.arange(16, dtype="float32").reshape(1, 4, 4, 1), (n, 4, 4, 1))
    got = _in_tf_data(
        kreg.layers.RandomAffine(flip="horizontal_and_vertical", seed=3), x, batch=100
    )
    outcomes = [x[0], x[0][:, ::-1], x[0][::-1], x[0][::-1, ::-1]]
    which = np.array([[np.array_equal(img, o) for o in outcomes] for img in got])
    assert np.all(which.sum(axis=1) == 1)
    np.testing.assert_allclose(which.mean(axis=0), 0.25, atol=0.08)  # binomial sd 0.022


# ------------------------------------------------- the resampler chosen by default


def _traced_ops(layer, x):
    """The TensorFlow op types of the graph tf.data traces for ``layer``."""
    types = []

    def traced(images):
        out = layer(images)
        types.extend(op.type for op in tf.compat.v1.get_default_graph().get_operations())
        return out

    next(iter(tf.data.Dataset.from_tensor_slices(x).batch(2).map(traced)))
    return set(types)


def test_default_resampler_is_the_native_kernel_in_tf_data_and_gathers_elsewhere():
    x = _images((2, 8, 8, 3))
    kernel = "ImageProjectiveTransformV3"
    assert kernel in _traced_ops(kreg.layers.RandomAffine(rotation=0.1), x)
    assert kernel not in _traced_ops(kreg.layers.RandomAffine(rotation=0.1, resampler="gather"), x)
    # "wrap" keeps the gathers (the kernel reads it differently across the seam).
    assert kernel not in _traced_ops(kreg.layers.RandomAffine(rotation=0.1, fill_mode="wrap"), x)
    layer = kreg.layers.RandomAffine(rotation=0.1)
    assert layer.resampler == "auto" and layer.supports_jit is True  # XLA stays on in a model
    assert layer.get_config()["resampler"] == "auto"
    old = kreg.layers.RandomAffine.from_config({**layer.get_config(), "resampler": "gather"})
    assert old.resampler == "gather"  # configs written before "auto" load unchanged
    if BACKEND == "tensorflow":  # in a tf.function (perhaps XLA-compiled): the gathers
        graph = (
            tf.function(lambda v: layer(v)).get_concrete_function(tf.TensorSpec((2, 8, 8, 3))).graph
        )
        assert kernel not in {op.type for op in graph.get_operations()}
    assert not _tf_graph.in_tf_data()


def test_seeded_tf_data_is_reproducible_and_keeps_the_layer_state_native():
    x = _images((4, 8, 8, 3))
    kwargs = dict(rotation=0.1, translation=0.1, zoom=0.1, shear=0.1, flip="horizontal", seed=7)
    first = _in_tf_data(kreg.layers.RandomAffine(**kwargs), x)
    layer = kreg.layers.RandomAffine(**kwargs)
    np.testing.assert_array_equal(_in_tf_data(layer, x), first)
    # The TensorFlow-side generator is kept outside the layer: its variables stay native.
    assert all(
        not isinstance(v.value, tf.Variable) or BACKEND == "tensorflow" for v in layer.variables
    )


# ------------------------------------------------- model.fit on the mapped dataset


def test_model_fit_trains_on_a_dataset_augmented_by_every_layer():
    rs = np.random.RandomState(0)
    images = rs.uniform(0, 255, (16, 8, 8, 3)).astype("float32")
    masks = rs.randint(0, 3, (16, 8, 8)).astype("int32")
    signals = rs.rand(16, 12).astype("float32")
    affine = kreg.layers.RandomAffine(
        rotation=0.1,
        translation=0.1,
        zoom=(-0.1, 0.2),
        shear=0.1,
        flip="horizontal_and_vertical",
        fill_mode="constant",
        fill_value=0.5,
        interpolation="nearest",
        seed=0,
    )
    augment = kreg.layers.augmentation(
        rotation=0.05, translation=0.1, flip="horizontal", color=0.2, seed=1
    )
    shift = kreg.layers.RandomShift1D(0.1, scale=0.1, seed=2)

    def augmented(example):
        moved = affine({"images": example["images"], "segmentation_masks": example["masks"]})
        images = augment(moved["images"])
        return (images, shift(example["signals"])), moved["segmentation_masks"][:, :1, :1]

    dataset = tf.data.Dataset.from_tensor_slices(
        {"images": images, "masks": masks, "signals": signals}
    ).batch(8)
    dataset = dataset.map(augmented, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
    image_in, signal_in = keras.Input((8, 8, 3)), keras.Input((12,))
    pooled = keras.layers.GlobalAveragePooling2D()(image_in)
    joined = keras.layers.Concatenate()([pooled, signal_in])
    output = keras.layers.Reshape((1, 1, 1))(keras.layers.Dense(1)(joined))
    model = keras.Model([image_in, signal_in], output)
    model.compile("adam", "mse")
    history = model.fit(dataset, epochs=2, verbose=0).history["loss"]
    assert len(history) == 2 and np.all(np.isfinite(history))


# ------------------------------------------------- kreg without TensorFlow


def _installed(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_kreg_imports_and_augments_without_tensorflow():
    # On the TensorFlow leg, torch or JAX (whichever is installed) stands in.
    candidates = [BACKEND] if BACKEND != "tensorflow" else ["torch", "jax"]
    backend = next((b for b in candidates if _installed(b)), None)
    if backend is None:
        pytest.skip("needs JAX or torch to run Keras without TensorFlow")
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys

        # As if TensorFlow were not installed: `import tensorflow` raises ImportError and
        # importlib.util.find_spec("tensorflow") is None (torch probes it so).
        sys.modules["tensorflow"] = None
        import numpy as np, keras, kreg
        for module in pkgutil.walk_packages(kreg.__path__, "kreg."):
            importlib.import_module(module.name)
        x = np.random.rand(2, 8, 8, 3).astype("float32")
        y = kreg.layers.RandomAffine(rotation=0.1, flip="horizontal", seed=0)(x)
        z = kreg.layers.RandomShift1D(0.1, seed=0)(x[:, :, 0, :])
        w = kreg.layers.augmentation(translation=0.1, noise=1.0, seed=0)(x)
        assert tuple(y.shape) == tuple(w.shape) == (2, 8, 8, 3) and tuple(z.shape) == (2, 8, 3)
        assert sys.modules["tensorflow"] is None
        try:
            import tensorflow
        except ImportError:
            print("ok")
        """
    )
    env = dict(os.environ, KERAS_BACKEND=backend)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_gaussian_noise_in_tf_data_adds_the_noise_on_every_backend():
    x = np.random.RandomState(0).uniform(0, 255, (64, 8, 8, 3)).astype("float32")
    augment = kreg.layers.augmentation(rotation=0.1, noise=1.0, seed=0)
    assert _in_tf_data(augment, x).shape == x.shape
    noise = kreg.layers.GaussianNoise(3.0, seed=0)
    added = _in_tf_data(lambda t: noise(t, training=True), x, batch=16) - x
    assert abs(float(added.std()) - 3.0) < 0.05 and abs(float(added.mean())) < 0.05
    relative = kreg.layers.GaussianNoise(0.5, seed=0, relative=True)
    added = _in_tf_data(lambda t: relative(t, training=True), x, batch=64) - x
    np.testing.assert_allclose(added.std(), 0.5 * x.std(axis=0).mean(), rtol=0.05)
    # At inference the layer is the identity there too.
    np.testing.assert_array_equal(_in_tf_data(noise, x, batch=16), x)


def test_dropout_in_tf_data_on_another_backend_says_to_put_it_in_the_model():
    if BACKEND == "tensorflow":
        pytest.skip("on TensorFlow every kreg layer takes tf.data's tensors")
    x = np.ones((4, 3), "float32")
    with pytest.raises(ValueError, match=r"`inputs` of Dropout: .*put Dropout in the model"):
        _in_tf_data(lambda t: kreg.layers.Dropout(0.5, seed=0)(t, training=True), x)
