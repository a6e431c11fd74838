"""RandomShift1D: random shift (and optional stretch) of sequences in one resampling."""

import keras

from kreg._registry import export
from kreg._validate import check_choice, check_range, check_seed
from kreg.layers import _tf_graph
from kreg.layers._affine import as_tuple, check_fill_value
from kreg.layers._resample import FILL_MODES, KERAS_OPS, resample_1d
from kreg.layers._stochastic import StochasticLayer


def shift_positions(u, length, shift, scale, ops=KERAS_OPS):
    """Source positions (B, L) for per-sequence draws ``u`` (B, 2) in [0, 1).

    ``p_in = z (p_out - c - s L) + c`` with ``c = (L - 1) / 2``, the shift ``s`` (a
    fraction of the length, positive moves the signal to later steps) and the grid scale
    ``z = 1 + scale`` (z > 1 compresses the signal, z < 1 stretches it).
    """
    s = shift[0] + (shift[1] - shift[0]) * u[:, 0:1]
    z = 1.0 + scale[0] + (scale[1] - scale[0]) * u[:, 1:2]
    centre = (length - 1) / 2.0
    steps = ops.cast(ops.arange(length), "float32")[None, :]
    return z * (steps - centre - s * float(length)) + centre


@export
class RandomShift1D(StochasticLayer):
    """Random shift, and optional stretch, of 1-D signals (sequences, time series, MNIST-1D).

    Each sequence gets its own shift (and scale); the signal is read once at the moved
    positions (linear or nearest interpolation), with the fill modes of
    :class:`RandomAffine`. Written in ``keras.ops`` (XLA-compatible, every backend); in a
    ``tf.data`` pipeline on every backend (there with Keras' TensorFlow ops).
    Like Keras' augmentation layers it transforms when called directly (``training=True``
    by default) and is the identity in ``predict``/``evaluate``.

    Args:
        shift: fraction of the length; a float ``f`` draws uniformly in ``[-f, f]``, a
            pair ``(low, high)`` in it. Positive moves the signal to later steps.
        scale: None (no stretch), or ``z`` as for ``RandomAffine(zoom=...)``: the sampling
            grid is scaled by ``1 + z`` (positive compresses the signal, negative
            stretches it); the lower bound must be > -1.
        fill_mode: "reflect", "wrap", "constant" or "nearest".
        fill_value: the value read outside the signal when ``fill_mode="constant"``.
        interpolation: "linear" or "nearest".
        seed: integer seed, or None.

    Call arguments:
        inputs: (batch, steps) or (batch, steps, channels), channels last.
        training: bool, default True; False returns the inputs unchanged.

    Example:

    >>> import keras, numpy as np, kreg
    >>> layer = kreg.layers.RandomShift1D(shift=(0.25, 0.25), fill_mode="wrap")
    >>> keras.ops.convert_to_numpy(layer(np.arange(8, dtype="float32")[None]))[0].tolist()
    [6.0, 7.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    """

    _runs_in_tf_data = True

    def __init__(
        self,
        shift,
        scale=None,
        fill_mode="reflect",
        fill_value=0.0,
        interpolation="linear",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._shift = check_range(shift, "shift", -1.0, 1.0, True)
        self._scale = (0.0, 0.0) if scale is None else check_range(scale, "scale", -1.0)
        self.shift = as_tuple(shift)
        self.scale = as_tuple(scale)
        self.fill_mode = check_choice(fill_mode, "fill_mode", FILL_MODES)
        self.fill_value = check_fill_value(fill_value)
        self.interpolation = check_choice(interpolation, "interpolation", ("linear", "nearest"))
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def call(self, inputs, training=True):
        if not self.active(training):
            return inputs
        ops = _tf_graph.ops_for(inputs)
        x = ops.cast(inputs, self.compute_dtype)
        rank = len(x.shape)
        if rank not in (2, 3):
            raise ValueError(
                "Invalid value for argument `inputs`: expected (batch, steps) or "
                f"(batch, steps, channels). Received: inputs of shape {x.shape}"
            )
        if rank == 2:
            x = x[..., None]
        length = x.shape[1]
        if length is None:
            raise ValueError(
                "Invalid value for argument `inputs`: RandomShift1D needs a known number "
                f"of steps. Received: inputs of shape {x.shape}"
            )
        seed = _tf_graph.seed_generator_for(self, ops)
        u = ops.random.uniform((ops.shape(x)[0], 2), dtype="float32", seed=seed)
        src = shift_positions(u, length, self._shift, self._scale, ops)
        out = resample_1d(x, src, self.interpolation, self.fill_mode, self.fill_value, ops)
        return out[..., 0] if rank == 2 else out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "shift": self.shift,
            "scale": self.scale,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "interpolation": self.interpolation,
            "seed": self.seed,
        }
