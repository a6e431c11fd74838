"""augmentation(...): a ready pipeline for the invariances a user names."""

import math

import keras

from kreg._registry import export
from kreg._validate import check_choice, check_non_negative, check_range, check_seed, is_number
from kreg.layers._affine import FLIPS, RESAMPLERS, RandomAffine
from kreg.layers._noise import GaussianNoise
from kreg.layers._resample import FILL_MODES


def _check_color(color):
    if color is None:
        return None
    if (
        isinstance(color, bool)
        or not isinstance(color, (int, float))
        or not math.isfinite(color)
        or not 0 <= color <= 1
    ):
        raise ValueError(
            "Invalid value for argument `color`: expected None or a float in [0, 1]. "
            f"Received: color={color!r}"
        )
    return float(color) or None


def augmentation(
    translation=0.0,
    rotation=0.0,
    flip=None,
    color=None,
    noise=0.0,
    zoom=0.0,
    shear=0.0,
    value_range=(0.0, 255.0),
    fill_mode="reflect",
    seed=None,
    resampler="auto",
    name="augmentation",
):
    """A data-augmentation pipeline for the invariances you name, in the model or in tf.data.

    Geometric invariances (translation, rotation, flip, zoom, shear) go through one
    :class:`kreg.layers.RandomAffine` (one resampling, XLA-compatible); ``color`` adds
    Keras' ``RandomBrightness`` and ``RandomContrast`` with that factor; ``noise`` adds
    :class:`kreg.layers.GaussianNoise` with that standard deviation (in the units of
    ``value_range``). Parts left at their defaults are left out. The result is a
    ``keras.layers.Pipeline``: put it first in a model (active in ``fit``, identity in
    ``predict``) or map it over a ``tf.data`` dataset (active, on every backend; there the
    geometric part runs TensorFlow's C++ kernel, and the noise reads σ when ``tf.data``
    traces the pipeline).
    Keras' colour layers are not XLA-compatible: with ``color`` set, a model containing
    the pipeline does not compile with ``jit_compile=True``.

    Args:
        translation: fraction of height/width, as ``RandomAffine(translation=...)``.
        rotation: fraction of a full turn, as ``RandomAffine(rotation=...)``.
        flip: None, "horizontal", "vertical" or "horizontal_and_vertical" (independent
            coins per axis).
        color: None or a float in [0, 1], the brightness and contrast factor.
        noise: standard deviation of additive Gaussian noise (0: none).
        zoom: as ``RandomAffine(zoom=...)``.
        shear: as ``RandomAffine(shear=...)``.
        value_range: (low, high) of the pixel values, for the colour layers.
        fill_mode: how RandomAffine reads outside the image.
        seed: integer seed, or None; the layers get seed, seed + 1, ...
        resampler: as ``RandomAffine(resampler=...)``: "auto" (default: TensorFlow's C++
            kernel while ``tf.data`` traces, the XLA-compatible gathers elsewhere),
            "gather" or "affine_transform".
        name: the pipeline's name.

    Returns:
        A ``keras.layers.Pipeline``.

    Example:

    >>> import numpy as np, kreg
    >>> augment = kreg.layers.augmentation(translation=0.1, rotation=0.05, flip="horizontal",
    ...                                     color=0.2, noise=2.0, seed=0)
    >>> [type(layer).__name__ for layer in augment.layers]
    ['RandomAffine', 'RandomBrightness', 'RandomContrast', 'GaussianNoise']
    >>> tuple(augment(np.random.uniform(0, 255, (4, 32, 32, 3)).astype("float32")).shape)
    (4, 32, 32, 3)
    """
    color = _check_color(color)
    noise = check_non_negative(noise, "noise")
    geometric = {"translation": translation, "rotation": rotation, "zoom": zoom, "shear": shear}
    ranges = [check_range(value, key) for key, value in geometric.items()]
    check_choice(flip, "flip", FLIPS)
    check_choice(fill_mode, "fill_mode", FILL_MODES)
    check_choice(resampler, "resampler", RESAMPLERS)
    if (
        not isinstance(value_range, (tuple, list))
        or len(value_range) != 2
        or not all(is_number(v) and math.isfinite(float(v)) for v in value_range)
        or not value_range[0] < value_range[1]
    ):
        raise ValueError(
            "Invalid value for argument `value_range`: expected a pair of finite floats "
            f"(low, high) with low < high. Received: value_range={value_range!r}"
        )
    seed = check_seed(seed)
    seeds = iter(range(seed, seed + 4)) if seed is not None else iter([None] * 4)
    layers = []
    has_geometry = flip is not None or any(low != 0 or high != 0 for low, high in ranges)
    if has_geometry:
        layers.append(
            RandomAffine(
                **geometric, flip=flip, fill_mode=fill_mode, seed=next(seeds), resampler=resampler
            )
        )
    else:
        next(seeds)
    value_range = tuple(float(v) for v in value_range)
    if color:
        layers.append(
            keras.layers.RandomBrightness(color, value_range=value_range, seed=next(seeds))
        )
        layers.append(keras.layers.RandomContrast(color, value_range=value_range, seed=next(seeds)))
    else:
        next(seeds), next(seeds)
    if noise:
        layers.append(GaussianNoise(noise, seed=next(seeds)))
    if not layers:
        raise ValueError(
            "Invalid value for argument `translation`, `rotation`, `flip`, `color`, `noise`, "
            "`zoom` or `shear`: expected at least one invariance to augment. "
            "Received: all at their defaults (no augmentation)"
        )
    return keras.layers.Pipeline(layers, name=name)


export(augmentation)
