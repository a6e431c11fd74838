"""Dropout with a live rate, Monte-Carlo dropout, stochastic depth and DropBlock.

The maths are pure functions over ``keras.ops``; the layers are thin shells around them.
:func:`dropout` with a Python rate is Keras' own ``keras.random.dropout`` (the same call
with the same seed generator), so ``kreg.layers.Dropout(0.3, seed=7)`` and
``keras.layers.Dropout(0.3, seed=7)`` give the same outputs on every backend; but the rate
may also be a tensor (Keras needs a Python float), which is what makes it live.
"""

import functools

import keras
from keras import ops

from kreg import _keras_compat as compat
from kreg._live import StrengthState
from kreg._registry import export
from kreg._validate import (
    check_bool,
    check_data_format,
    check_fraction,
    check_noise_shape,
    check_noise_shape_fits,
    check_seed,
    invalid,
)
from kreg.layers._stochastic import StochasticLayer


def _noise_shape(x, noise_shape):
    shape = ops.shape(x)
    if noise_shape is None:
        return tuple(shape)
    return tuple(shape[i] if dim is None else dim for i, dim in enumerate(noise_shape))


def dropout(x, rate, noise_shape=None, seed=None):
    """Inverted dropout: zero each element with probability ``rate``, scale the rest by 1/(1 - rate).

    ``rate`` may be a Python float or a scalar tensor in [0, 1]; rate 1 drops everything
    (zeros, with zero gradients, as in Keras). A Python float goes to Keras' own
    ``keras.random.dropout``, so a seeded call reproduces Keras' mask on every backend
    and device; a tensor rate (a live one), which Keras' function does not take, goes to
    :func:`tensor_rate_dropout`, which draws the same numbers on CPU.

    Args:
        x: float tensor.
        rate: drop probability, float or scalar tensor.
        noise_shape: shape of the mask, broadcast over ``x``; None entries take ``x``'s size.
        seed: a ``keras.random.SeedGenerator`` or an integer.

    Returns:
        A tensor of ``x``'s shape and dtype.
    """
    x = ops.convert_to_tensor(x)
    if not isinstance(rate, (int, float)):
        return tensor_rate_dropout(x, rate, noise_shape, seed)
    # Keras' backends treat these two rates without drawing; so does kreg, which keeps
    # the seed generator in step with a Keras layer given the same rates.
    if rate >= 1.0:
        return ops.zeros_like(x)
    if rate <= 0.0:
        return x
    return keras.random.dropout(x, float(rate), noise_shape=noise_shape, seed=seed)


def tensor_rate_dropout(x, rate, noise_shape=None, seed=None):
    """:func:`dropout` with a scalar-tensor ``rate``: the draw of Keras' backend dropout.

    Each backend's ``keras.random.dropout`` draws the mask its own way; with the same
    seed this draws the same uniform numbers and compares them the same way:

    * TensorFlow (``stateless_dropout``): keep where ``uniform(x.dtype) >= rate``, scale
      by ``1 / (1 - rate)``;
    * JAX (``bernoulli(1 - rate)``) and torch (``torch.bernoulli`` of a float32 matrix,
      which on CPU is ``torch.rand < p``): keep where ``uniform(float32) < 1 - rate``,
      divide by ``1 - rate``.

    The kept values may differ from Keras' in the last bit (Keras divides by a Python
    float, here a float32 tensor), and torch's CUDA Bernoulli kernel draws differently
    from its uniform one, so on a GPU the mask is another sample of the same law.
    """
    dtype = x.dtype
    rate = ops.cast(rate, "float32")
    shape = _noise_shape(x, noise_shape)
    keep = 1.0 - rate
    # At rate 1 nothing is kept: divide by 1 instead of 0, so that the branch ops.where
    # discards (and its gradient) stays finite.
    safe_keep = ops.where(keep > 0, keep, ops.ones_like(keep))
    if keras.backend.backend() == "tensorflow":
        mask = keras.random.uniform(shape, dtype=dtype, seed=seed) >= ops.cast(rate, dtype)
        kept = x * ops.cast(1.0 / safe_keep, dtype)
    else:
        mask = keras.random.uniform(shape, dtype="float32", seed=seed) < keep
        kept = x / ops.cast(safe_keep, dtype)
    mask = ops.broadcast_to(mask, ops.shape(x))
    return ops.where(mask, kept, ops.zeros_like(x))


def drop_path(x, rate, seed=None):
    """Stochastic depth: drop whole samples (all but the batch axis) with probability ``rate``.

    The survivors are scaled by 1/(1 - rate), as in timm's ``drop_path``; it is
    :func:`dropout` with the mask shape ``(batch, 1, ..., 1)``.
    """
    x = ops.convert_to_tensor(x)
    return dropout(x, rate, noise_shape=(None,) + (1,) * (len(x.shape) - 1), seed=seed)


def drop_block_2d(x, rate, block_size, seed=None, data_format="channels_last"):
    """DropBlock: zero ``block_size`` x ``block_size`` squares of each feature map.

    Block centres are sampled with probability
    ``gamma = rate * H * W / (b**2 * (H - b + 1) * (W - b + 1))`` among the positions where
    a whole block fits, so that about a fraction ``rate`` of the units is dropped; the
    kept units are scaled by (number of units) / (number kept), counted over the whole
    batch as in the reference TPU implementation. ``block_size`` is clipped to the
    feature map. Masks are independent per sample and per channel.

    References:
        Ghiasi, Lin and Le, "DropBlock: A regularization method for convolutional
        networks", NeurIPS 2018 (Algorithm 1).
    """
    x = ops.convert_to_tensor(x)
    dtype = x.dtype
    channels_last = data_format == "channels_last"
    height, width = (x.shape[1], x.shape[2]) if channels_last else (x.shape[2], x.shape[3])
    if height is None or width is None:
        raise ValueError(
            "Invalid value for argument `inputs`: DropBlock2D needs known spatial "
            f"dimensions. Received: inputs.shape={x.shape}"
        )
    b = int(min(block_size, height, width))
    rate = ops.cast(rate, "float32")
    gamma = rate * (height * width) / (b * b * (height - b + 1) * (width - b + 1))
    # Valid block centres (TPU reference): rows [b // 2, height - (b - 1) // 2).
    rows = ops.arange(height)
    cols = ops.arange(width)
    valid_rows = ops.logical_and(rows >= b // 2, rows < height - (b - 1) // 2)
    valid_cols = ops.logical_and(cols >= b // 2, cols < width - (b - 1) // 2)
    valid = ops.logical_and(valid_rows[:, None], valid_cols[None, :])
    valid = ops.cast(valid, "float32")
    valid = valid[None, :, :, None] if channels_last else valid[None, None, :, :]
    uniform = keras.random.uniform(ops.shape(x), dtype="float32", seed=seed)
    centres = ops.cast(ops.logical_and(uniform < gamma, valid > 0), "float32")
    # A block around every centre: max-pool (b x b, stride 1, "same") of the centre map.
    blocks = ops.max_pool(centres, pool_size=b, strides=1, padding="same", data_format=data_format)
    keep = 1.0 - blocks
    total = ops.cast(ops.size(keep), "float32")
    scale = total / ops.maximum(ops.sum(keep), 1.0)
    return x * ops.cast(keep * scale, dtype)


class _RateLayer(StochasticLayer):
    """Shared shell of the dropout layers: a live ``rate``, a ``seed`` and its generator."""

    #: Whether rate 1 (drop everything) is a valid rate.
    _rate_one = True

    def check_floating(self, inputs):
        """Dropping rescales by 1 / (1 - rate): integer inputs would be truncated."""
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        if "float" not in dtype:
            raise ValueError(
                f"Invalid value for argument `inputs` of {type(self).__name__}: expected "
                f"floating-point inputs when dropping. Received: inputs of dtype {dtype}"
            )
        return inputs

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        check = functools.partial(check_fraction, include_one=self._rate_one)
        self._live = StrengthState({"rate": rate}, kind="dropout", checks={"rate": check}, label="")
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        compat.build_at_init(self)  # stateless, as Keras' Dropout: built once made

    @property
    def rate(self):
        """The current rate (a float); change it through ``kreg.strengths(model)``."""
        return self._live.current("rate")


@export
class Dropout(_RateLayer):
    """Inverted dropout with a live rate; a drop-in for ``keras.layers.Dropout``.

    Same arguments, same outputs for the same seed, identity at inference and no
    weights, so weights saved from a model with Keras' ``Dropout`` load into the same
    model built with this one. In addition the rate is live: ``kreg.strengths(model)``
    lists it as ``"<layer name>.rate"`` (kind "dropout") and a callback can change it
    between steps without recompiling. With ``mc=True`` the layer also drops at
    inference (``predict``, ``evaluate``, direct calls), for Monte-Carlo dropout: in
    Keras 3 the usual recipe ``Dropout(...)(x, training=True)`` in a functional model is
    overridden to ``training=False`` by ``model.predict``.

    Args:
        rate: float in [0, 1], the fraction of the input units to drop.
        noise_shape: shape of the binary mask (tuple of ints or None), broadcast over the
            inputs, e.g. ``(batch, 1, features)`` to share the mask across time steps.
        seed: integer seed, or None.
        mc: bool; True keeps the layer stochastic at inference.

    Call arguments:
        inputs: input tensor of any rank.
        training: bool; drop when True (and always when ``mc=True``).

    Example:

    >>> import keras, numpy as np, kreg
    >>> layer = kreg.layers.Dropout(0.5, seed=1, mc=True)
    >>> y = layer(np.ones((2, 4), "float32"))     # stochastic without training=True
    >>> set(keras.ops.convert_to_numpy(y).ravel().tolist()) <= {0.0, 2.0}
    True

    References:
        Srivastava et al., "Dropout: A simple way to prevent neural networks from
        overfitting", JMLR 2014; Gal and Ghahramani, "Dropout as a Bayesian
        approximation", ICML 2016 (Monte-Carlo dropout).
    """

    def __init__(self, rate, noise_shape=None, seed=None, mc=False, **kwargs):
        super().__init__(rate, seed, **kwargs)
        self.noise_shape = check_noise_shape(noise_shape)
        self.mc = check_bool(mc, "mc")
        self.supports_masking = True

    def call(self, inputs, training=False):
        if not self.active(training):
            return inputs
        check_noise_shape_fits(self.noise_shape, inputs.shape)
        return dropout(
            self.check_floating(inputs),
            self._live.get("rate"),
            self.noise_shape,
            self.seed_generator,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self._live.strength_base("rate"),
            "seed": self.seed,
            "noise_shape": self.noise_shape,
            "mc": self.mc,
        }


@export
class DropPath(_RateLayer):
    """Stochastic depth: drop the whole input of a sample with probability ``rate``.

    Put it at the end of a residual branch, before the addition
    (``x + DropPath(0.1)(branch(x))``): each sample skips the branch with probability
    ``rate``; the samples that keep it are scaled by 1/(1 - rate), so the expectation is
    unchanged and inference is the identity. The rate is live (``"<layer>.rate"``, kind
    "dropout"). Keras has no equivalent.

    Args:
        rate: float in [0, 1], the probability of dropping a sample's branch.
        seed: integer seed, or None.

    Call arguments:
        inputs: tensor whose first axis is the batch.
        training: bool; drop only when True.

    Example:

    >>> import keras, numpy as np, kreg
    >>> y = kreg.layers.DropPath(0.5, seed=0)(np.ones((4, 3), "float32"), training=True)
    >>> [float(v) in (0.0, 2.0) for v in keras.ops.convert_to_numpy(y)[:, 0]]
    [True, True, True, True]

    References:
        Huang et al., "Deep networks with stochastic depth", ECCV 2016.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        self.supports_masking = True

    def call(self, inputs, training=False):
        if not self.active(training):
            return inputs
        if len(inputs.shape) == 0:
            raise invalid(
                "inputs",
                "a tensor with a batch axis (rank >= 1)",
                inputs.shape,
                f"inputs of shape {tuple(inputs.shape)}",
            )
        return drop_path(self.check_floating(inputs), self._live.get("rate"), self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self._live.strength_base("rate"),
            "seed": self.seed,
        }


@export
class DropBlock2D(_RateLayer):
    """DropBlock: drop contiguous ``block_size`` x ``block_size`` regions of feature maps.

    Dropout on convolutional features drops single pixels whose information their
    neighbours still carry; DropBlock drops squares, a fraction ``rate`` of the units on
    average, independently per sample and per channel, and rescales the rest by the
    fraction kept. Identity at inference. The rate is live (``"<layer>.rate"``, kind
    "dropout"). Keras has no equivalent.

    Args:
        rate: float in [0, 1), the expected fraction of units dropped (for small
            rates: the paper's block-centre probability makes blocks overlap, so even
            a rate near 1 keeps units).
        block_size: positive int, the side of the dropped squares (clipped to the
            feature map).
        seed: integer seed, or None.
        data_format: "channels_last" or "channels_first"; default
            ``keras.config.image_data_format()``.

    Call arguments:
        inputs: 4-D tensor (batch, height, width, channels) or channels-first.
        training: bool; drop only when True.

    Example:

    >>> import keras, numpy as np, kreg
    >>> layer = kreg.layers.DropBlock2D(0.2, block_size=3, seed=0)
    >>> y = keras.ops.convert_to_numpy(layer(np.ones((2, 8, 8, 4), "float32"), training=True))
    >>> y.shape, bool((y == 0).any())
    ((2, 8, 8, 4), True)

    References:
        Ghiasi, Lin and Le, "DropBlock: A regularization method for convolutional
        networks", NeurIPS 2018.
    """

    _rate_one = False

    def __init__(self, rate, block_size, seed=None, data_format=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(
                "Invalid value for argument `block_size`: expected a positive integer. "
                f"Received: block_size={block_size!r}"
            )
        self.block_size = block_size
        self.data_format = check_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs, training=False):
        if not self.active(training):
            return inputs
        return drop_block_2d(
            self.check_floating(inputs),
            self._live.get("rate"),
            self.block_size,
            self.seed_generator,
            self.data_format,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self._live.strength_base("rate"),
            "block_size": self.block_size,
            "seed": self.seed,
            "data_format": self.data_format,
        }
