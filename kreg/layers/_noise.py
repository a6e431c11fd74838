"""Additive Gaussian noise with a live standard deviation."""

import keras

from kreg import _keras_compat as compat
from kreg._live import StrengthState
from kreg._registry import export
from kreg._validate import check_bool, check_seed
from kreg.layers import _tf_graph
from kreg.layers._resample import KERAS_OPS
from kreg.layers._stochastic import StochasticLayer


def gaussian_noise(x, stddev, seed=None, relative=False, ops=KERAS_OPS):
    """``x + N(0, stddev**2)``, or ``x + N(0, (stddev * s)**2)`` with ``relative=True``.

    The draw is Keras' ``GaussianNoise`` draw (``keras.random.normal`` in ``x``'s dtype with
    the same seed). A Python σ goes to that call as Keras passes it, so seeded outputs are
    Keras' on every backend; a tensor σ (a live one, or a relative scale), which torch's
    ``normal`` does not take, multiplies a standard normal draw instead: the same numbers
    on TensorFlow and JAX, whose ``normal`` computes ``z * stddev + mean`` itself. With
    ``relative=True``, ``s`` is each feature's standard deviation over the batch (axis 0;
    a feature is one position of the other axes), held constant for the gradient.

    Args:
        x: float tensor.
        stddev: float or scalar tensor, >= 0.
        seed: a ``keras.random.SeedGenerator`` or an integer.
        relative: bool.
        ops: the op set (``keras.ops`` and ``keras.random``, or TensorFlow's inside
            ``tf.data`` under another backend: :mod:`kreg.layers._tf_graph`).
    """
    x = ops.convert_to_tensor(x)
    dtype = x.dtype
    if isinstance(stddev, (int, float)) and not relative:
        return x + ops.random.normal(ops.shape(x), stddev=float(stddev), dtype=dtype, seed=seed)
    scale = ops.cast(stddev, dtype)
    if relative:
        spread = ops.std(ops.cast(x, "float32"), axis=0, keepdims=True)
        scale = scale * ops.cast(ops.stop_gradient(spread), dtype)
    return x + ops.random.normal(ops.shape(x), dtype=dtype, seed=seed) * scale


@export
class GaussianNoise(StochasticLayer):
    """Additive zero-mean Gaussian noise with a live σ; a drop-in for ``keras.layers.GaussianNoise``.

    Same arguments, same outputs for the same seed, identity at inference, no weights.
    Differences: any σ >= 0 is accepted (Keras refuses σ > 1, which rules out inputs in
    0-255); σ is live (``kreg.strengths(model)`` lists it as ``"<layer name>.stddev"``,
    kind "noise"); and ``relative=True`` scales σ by each feature's standard deviation in
    the batch, so one σ suits features of any scale. For a squared-error loss, training
    with input noise of small variance σ² is equivalent to a Tikhonov penalty on the
    model's derivatives (Bishop 1995).

    Args:
        stddev: float >= 0, the standard deviation of the noise (relative to each
            feature's batch standard deviation when ``relative=True``).
        seed: integer seed, or None.
        relative: bool. The spread is measured over the batch, so a batch of one
            sample (or a feature constant across the batch) gets no noise.

    Call arguments:
        inputs: input tensor of any rank.
        training: bool; add noise only when True.

    Example:

    >>> import keras, numpy as np, kreg
    >>> layer = kreg.layers.GaussianNoise(10.0, seed=0)     # pixel values in 0-255
    >>> x = np.full((1000, 4), 128.0, "float32")
    >>> y = keras.ops.convert_to_numpy(layer(x, training=True))
    >>> round(float(np.std(y)))
    10
    >>> bool((keras.ops.convert_to_numpy(layer(x)) == x).all())
    True

    References:
        Bishop, "Training with noise is equivalent to Tikhonov regularization",
        Neural Computation 1995.
    """

    _runs_in_tf_data = True

    def __init__(self, stddev, seed=None, relative=False, **kwargs):
        super().__init__(**kwargs)
        self._live = StrengthState({"stddev": stddev}, kind="noise", label="")
        self.seed = check_seed(seed)
        self.relative = check_bool(relative, "relative")
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        compat.build_at_init(self)  # stateless, as Keras' GaussianNoise: built once made
        self.supports_masking = True

    @property
    def stddev(self):
        """The current σ (a float); change it through ``kreg.strengths(model)``."""
        return self._live.current("stddev")

    def call(self, inputs, training=False):
        if not self.active(training):
            return inputs
        ops = _tf_graph.ops_for(inputs)
        stddev = self._live.get("stddev")
        if ops is not KERAS_OPS:
            # The backend's variable cannot enter a TensorFlow graph: tf.data reads the
            # σ of the moment it traces the pipeline.
            stddev = self.stddev
        return gaussian_noise(
            ops.cast(inputs, self.compute_dtype),
            stddev,
            _tf_graph.seed_generator_for(self, ops),
            self.relative,
            ops,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "stddev": self._live.strength_base("stddev"),
            "seed": self.seed,
            "relative": self.relative,
        }
