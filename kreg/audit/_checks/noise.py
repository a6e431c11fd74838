"""Gaussian noise: on integer inputs, on unscaled images, or out of scale with its input."""

import math

import keras
import numpy as np

import kreg.layers
from kreg.audit import _facts as facts
from kreg.audit import _graph as graphs
from kreg.audit._codes import finding

_NOISE_LAYERS = (keras.layers.GaussianNoise, kreg.layers.GaussianNoise)


def _input_dtype(layer, value):
    """The dtype of the layer's input: the sample's where it is an integer array."""
    tensor = graphs.input_tensor(layer)
    dtype = str(getattr(tensor, "dtype", "")) if tensor is not None else ""
    if value is not None and np.issubdtype(value.dtype, np.integer):
        dtype = str(value.dtype)
    return dtype


def check_noise(ctx):
    """GaussianNoise on integer inputs, on unscaled images, or out of scale with the input."""
    found = []
    layers = [(p, layer) for p, layer in ctx.paths if isinstance(layer, _NOISE_LAYERS)]
    values = graphs.sample_at_inputs(ctx.model, ctx.paths, ctx.sample, layers)
    for path, layer in layers:
        stddev = facts.live_value(layer, "stddev")
        if not stddev:
            continue
        about = dict(layer=layer, layer_class=type(layer).__name__, stddev=stddev, layer_path=path)
        x = values.get(id(layer))
        dtype = _input_dtype(layer, x)
        if "int" in dtype:
            found.append(finding("noise-on-integer-input", path, dtype=dtype, **about))
            continue
        if x is None or getattr(layer, "relative", False) or x.size < 2:
            continue
        x = x.astype("float64")
        spread = float(np.std(x))
        if not math.isfinite(spread) or spread == 0:
            continue
        ratio = stddev / spread
        unscaled = x.ndim >= 4 and float(np.max(x)) > 1.5 and np.all(x == np.round(x))
        if unscaled and ratio < 0.05:  # kreg.layers.GaussianNoise(10.0) on 0-255 is fine
            found.append(
                finding(
                    "noise-on-unscaled-input",
                    path,
                    largest=float(np.max(x)),
                    spread=spread,
                    ratio=ratio,
                    **about,
                )
            )
            continue
        if not 0.01 <= ratio <= 1.0:
            found.append(finding("noise-out-of-scale", path, spread=spread, ratio=ratio, **about))
    return found
