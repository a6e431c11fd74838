"""Inputs at the edges: each gives the right answer or a ValueError naming the argument.

One test per case a user met: a mask shape of another rank, a scalar where a batch is
expected, a nested list where arrays are expected, a strategy that splits the batch, a
multiplier naming a weight the defaults leave out, a schedule that returns NaN, and the
gradient of relative noise.
"""

import re

import keras
import numpy as np
import pytest
from conftest import BACKEND

import kreg
from kreg.optimizers import DecoupledWeightDecay


def _grad_of_sum(fn, x):
    """d sum(fn(x)) / dx as a NumPy array, on the current backend."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(fn(x))
        return tape.gradient(total, x).numpy()
    if BACKEND == "jax":
        import jax

        def total(x):
            with keras.StatelessScope():  # the seed generator's update stays inside the trace
                return keras.ops.sum(fn(x))

        return np.asarray(jax.grad(total)(x))
    import torch

    x = torch.tensor(x, requires_grad=True)
    fn(x).sum().backward()
    return x.grad.numpy()


def test_dropout_noise_shape_of_another_rank_is_refused():
    layer = kreg.layers.Dropout(0.5, noise_shape=(None, 1, 1), seed=1)
    with pytest.raises(
        ValueError,
        match=r"argument `noise_shape`: expected one entry per input "
        r"axis.*inputs of shape \(2, 3\)\). Received: noise_shape=\(None, 1, 1\)",
    ):
        layer(np.ones((2, 3), "float32"), training=True)
    with pytest.raises(ValueError, match=r"`noise_shape`.*Received: noise_shape=\(None, 2\)"):
        kreg.layers.Dropout(0.5, noise_shape=(None, 2))(np.ones((2, 3), "float32"), training=True)
    # A fitting one still broadcasts: each row is all kept (×2) or all dropped.
    y = keras.ops.convert_to_numpy(
        kreg.layers.Dropout(0.5, noise_shape=(None, 1), seed=3)(
            np.ones((64, 3), "float32"), training=True
        )
    )
    assert set(np.unique(y)) <= {0.0, 2.0} and all(len(set(row)) == 1 for row in y)
    assert 0 < (y[:, 0] == 0).sum() < 64


def test_drop_path_on_a_scalar_is_refused():
    with pytest.raises(
        ValueError,
        match=r"argument `inputs`: expected a tensor with a batch axis "
        r"\(rank >= 1\). Received: inputs of shape \(\)",
    ):
        kreg.layers.DropPath(0.5)(np.float32(1.0), training=True)


def test_mc_predict_refuses_a_nested_list_of_numbers_naming_x():
    model = keras.Sequential(
        [keras.Input((3,)), kreg.layers.Dropout(0.5, seed=1), keras.layers.Dense(2)]
    )
    with pytest.raises(ValueError, match=r"argument `x`: expected an array .*np.asarray\(x\)"):
        kreg.mc_predict(model, [[1.0, 2.0, 3.0]], samples=3)
    mean, _ = kreg.mc_predict(model, np.asarray([[1.0, 2.0, 3.0]]), samples=3)
    assert mean.shape == (1, 2)


def test_mc_predict_under_mirrored_strategy_samples_each_row_once(mirrored):
    # Dropout before a linear layer is unbiased: the mean over many passes tends to the
    # inference output. On two replicas predict_on_batch would return every row twice,
    # and replica threads would not see the sampling switch.
    with mirrored.scope():
        model = keras.Sequential(
            [
                keras.Input((8,)),
                kreg.layers.Dropout(0.5, seed=1),
                keras.layers.Dense(2, use_bias=False),
            ]
        )
    x = np.random.RandomState(0).uniform(-1, 1, (5, 8)).astype("float32")
    mean, std = kreg.mc_predict(model, x, samples=2000, batch_size=5)
    assert mean.shape == std.shape == (5, 2)
    exact = x @ keras.ops.convert_to_numpy(model.layers[-1].kernel)
    # std of one pass <= 2·max|x·w| summed; over 2000 passes the mean is within 0.1 of it.
    np.testing.assert_allclose(mean, exact, atol=0.1)
    assert np.all(std > 0.05) and len({tuple(np.round(r, 6)) for r in mean}) == 5


def test_explicit_multiplier_decays_a_weight_the_defaults_leave_out():
    dense = keras.layers.Dense(2, bias_initializer="ones", name="dense")
    dense.build((None, 3))
    kernel, bias = dense.kernel, dense.bias
    before = keras.ops.convert_to_numpy(kernel)
    # lr·λ = 0.5 per step.
    opt = DecoupledWeightDecay(keras.optimizers.SGD(0.1), 5.0, multipliers={"bias": 0.4})
    assert opt.weight_decay_multiplier(bias) == 0.4 and opt.weight_decay_multiplier(kernel) == 1.0
    opt.apply([keras.ops.zeros((3, 2)), keras.ops.zeros((2,))], [kernel, bias])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bias), np.float32(1) - np.float32(0.2))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(kernel), np.float32(0.5) * before)
    # `exclude` still wins over a multiplier; without one the bias keeps its default.
    excluded = DecoupledWeightDecay(
        keras.optimizers.SGD(0.1), 0.5, exclude="bias", multipliers={"bias": 1.0}
    )
    assert excluded.weight_decay_multiplier(bias) == 0.0
    assert DecoupledWeightDecay(keras.optimizers.SGD(0.1), 0.5).weight_decay_multiplier(bias) == 0.0


def test_weight_decay_schedule_returning_nan():
    dense = keras.layers.Dense(2, name="dense")
    dense.build((None, 3))
    zeros = [keras.ops.zeros((3, 2)), keras.ops.zeros((2,))]
    # A Python number is checked where it is produced.
    opt = DecoupledWeightDecay(keras.optimizers.SGD(0.1), lambda step: float("nan"))
    with pytest.raises(
        ValueError,
        match=r"argument `weight_decay`: expected a schedule returning "
        r"finite floats >= 0. Received: nan from weight_decay=<function",
    ):
        opt.apply(zeros, dense.trainable_variables)
    # A tensor (what a compiled step holds) that is not finite decays nothing that step;
    # the next finite value decays again.
    before = keras.ops.convert_to_numpy(dense.kernel)

    def schedule(step):  # inf at step 0, then 0.5
        return keras.ops.where(keras.ops.equal(step, 0), float("inf"), 0.5)

    opt = DecoupledWeightDecay(keras.optimizers.SGD(0.1), schedule, follow="none")
    opt.apply(zeros, dense.trainable_variables)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(dense.kernel), before)
    opt.apply(zeros, dense.trainable_variables)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(dense.kernel), np.float32(0.5) * before
    )


def test_relative_gaussian_noise_holds_the_batch_spread_constant_for_the_gradient():
    layer = kreg.layers.GaussianNoise(0.7, seed=3, relative=True)
    x = np.random.RandomState(0).uniform(-2, 2, (6, 4)).astype("float32")
    grad = _grad_of_sum(lambda t: layer(t, training=True), x)
    np.testing.assert_array_equal(grad, np.ones_like(x))


@pytest.mark.parametrize(
    "masks, images",
    [
        ((2, 4, 4), (2, 8, 8, 1)),
        ((2, 8, 4, 1), (2, 8, 8, 1)),
        ((3, 8, 8), (2, 8, 8, 1)),
        ((4, 4), (8, 8, 1)),
        ((2, 8), (2, 8, 8, 1)),
    ],
)
def test_segmentation_masks_of_another_size_are_refused_naming_both_shapes(masks, images):
    layer = kreg.layers.RandomAffine(0.1, seed=1)
    data = {"images": np.zeros(images, "float32"), "segmentation_masks": np.zeros(masks, "float32")}
    with pytest.raises(
        ValueError,
        match=rf"argument `segmentation_masks`: .* Received: "
        rf"segmentation_masks of shape {re.escape(str(masks))} for images of "
        rf"shape {re.escape(str(images))}",
    ):
        layer(data, training=True)


def test_segmentation_masks_of_the_images_size_move_with_them():
    layer = kreg.layers.RandomAffine(translation=(0.25, 0.25), seed=1, fill_mode="constant")
    images = np.arange(2 * 8 * 8, dtype="float32").reshape(2, 8, 8, 1)
    out = layer({"images": images, "segmentation_masks": images[..., 0]}, training=True)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(out["segmentation_masks"]),
        keras.ops.convert_to_numpy(out["images"])[..., 0],
    )
