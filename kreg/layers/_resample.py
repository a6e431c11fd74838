"""Resampling by gathers: one read per neighbour, written in keras.ops (XLA-compatible).

Every function takes ``ops``, the op set it computes with: ``keras.ops`` by default,
Keras' TensorFlow ops inside ``tf.data`` on another backend (:class:`OpSet`).

``resample_2d`` reads a batch of channels-last images at real-valued source coordinates
(one pair per output pixel), ``resample_1d`` does the same for sequences. Pixel centres
are at integer coordinates. Out-of-range neighbours are mapped by the fill mode, each
neighbour separately (Keras' conventions):

* ``"reflect"``  (d c b a | a b c d | d c b a), about the edge of the last pixel;
* ``"wrap"``     (a b c d | a b c d | a b c d), exactly periodic (TensorFlow's kernel,
  behind Keras' layers, reads differently across the seam);
* ``"nearest"``  (a a a a | a b c d | d d d d);
* ``"constant"`` (k k k k | a b c d | k k k k), k = ``fill_value``.
"""

import keras
from keras import ops

FILL_MODES = ("reflect", "wrap", "constant", "nearest")


class OpSet:
    """The ops the augmentation maths is written against: ``keras.ops`` names, ``.image``
    and ``.random``, looked up in ``modules`` (first hit wins) and kept once found.

    :data:`KERAS_OPS` is ``keras.ops`` and ``keras.random`` (the configured backend); inside
    ``tf.data`` on another backend :func:`kreg.layers._tf_graph.tf_ops` gives Keras' own
    TensorFlow implementations of the same names, so one formula serves both.
    """

    def __init__(self, modules, image, random):
        self._modules = tuple(modules)
        self.image, self.random = image, random

    def __getattr__(self, name):
        for module in self._modules:
            if hasattr(module, name):
                found = getattr(module, name)
                setattr(self, name, found)
                return found
        raise AttributeError(f"no op {name!r} in {self._modules}")


KERAS_OPS = OpSet([ops], ops.image, keras.random)


def fix_index(index, size, fill_mode, ops=KERAS_OPS):
    """Map integer ``index`` into [0, size) by ``fill_mode``; also return where it was inside."""
    inside = ops.logical_and(index >= 0, index < size)
    if fill_mode == "reflect":
        period = ops.mod(index, 2 * size)
        index = ops.where(period >= size, 2 * size - 1 - period, period)
    elif fill_mode == "wrap":
        index = ops.mod(index, size)
    else:  # "nearest" and "constant" (whose outside reads are replaced afterwards)
        index = ops.minimum(ops.maximum(index, 0), size - 1)
    return index, inside


def _gather(flat, index, inside, weights, fill_mode, fill_value, ops=KERAS_OPS):
    """``sum_k weights[k] * flat[index[k]]`` (outside reads count as ``fill_value``).

    ``index``, ``inside`` and ``weights`` are stacked over the neighbours (axis 0): one
    gather reads them all.
    """
    values = ops.take(flat, index, axis=0)  # (K, ..., C)
    if fill_mode == "constant":  # outside reads are the fill, never 0 * fill
        values = ops.where(inside[..., None], values, ops.cast(fill_value, values.dtype))
    return ops.sum(values * ops.cast(weights, values.dtype)[..., None], axis=0)


def _neighbours(src, size, fill_mode, interpolation, dtype, ops=KERAS_OPS):
    """Indices (K, ...), inside flags and weights of the K = 1 or 2 neighbours along one axis."""
    if interpolation == "nearest":
        index, inside = fix_index(ops.cast(ops.floor(src + 0.5), "int32"), size, fill_mode, ops)
        return index[None], inside[None], ops.ones_like(ops.cast(src, dtype))[None]
    low = ops.floor(src)
    frac = ops.cast(src - low, dtype)
    low = ops.cast(low, "int32")
    index, inside = fix_index(ops.stack([low, low + 1]), size, fill_mode, ops)
    return index, inside, ops.stack([1 - frac, frac])


def fold_scale(size, fill_mode):
    """``(offset, scale)``: :func:`fold_coordinate` reads ``v = (src + offset) * scale``.

    Reflection folds with period ``2 * size`` and wrapping with period ``size``, both
    about the pixel edge (``src + 0.5``); the others clamp ``src`` itself. A caller that
    computes coordinates from per-image coefficients (RandomAffine) applies the scale to
    the coefficients, which saves two passes over every pixel's coordinate.
    """
    if fill_mode == "reflect":
        return 0.5, 0.5 / size
    if fill_mode == "wrap":
        return 0.5, 1.0 / size
    return 0.0, 1.0


def fold_coordinate(v, size, fill_mode, ops=KERAS_OPS):
    """Map coordinates into [-1, size] by ``fill_mode`` without changing what they read.

    ``v`` is the coordinate as :func:`fold_scale` says (``(src + offset) * scale``).
    Reflection and wrapping map the pixel lattice onto itself, so interpolating at the
    folded coordinate between its two neighbours (read as :func:`axis_neighbours` says)
    gives what reading every neighbour through :func:`fix_index` gives. Returns the lower
    neighbour's index in [-1, size - 1] (int32) and the weight of the upper one.
    """
    v = ops.convert_to_tensor(v)  # arrays too: on torch an ndarray minus a tensor fails
    size = float(size)
    if fill_mode == "reflect":  # a triangle wave: distance to the nearest whole period
        src = ops.abs(v - ops.round(v)) * (2.0 * size) - 0.5  # in [-0.5, size - 0.5]
        low = ops.floor(src)
    elif fill_mode == "wrap":
        src = (v - ops.floor(v)) * size - 0.5  # in [-0.5, size - 0.5]
        low = ops.floor(src)  # in [-1, size - 1]
    else:  # "nearest" (the padding repeats the edge) and "constant" (the padding is the fill)
        src = ops.minimum(ops.maximum(v, -1.0), size)
        low = ops.minimum(ops.floor(src), size - 1.0)
    return ops.cast(low, "int32"), src - low


def axis_neighbours(v, size, fill_mode, ops=KERAS_OPS):
    """The two neighbours of coordinates ``v`` (scaled by :func:`fold_scale`) along one axis.

    Returns the lower and upper indices, both in [0, size) (int32), the upper one's
    weight, and for "constant" the pair of flags saying which of them lies inside (None
    otherwise). After :func:`fold_coordinate` the neighbours lie in [-1, size], one pixel
    beyond the edge at most, where "reflect" and "nearest" read the edge pixel and
    "wrap" the opposite one: a clamp or a shift by ``size``, no padded copy of the image.
    """
    low, weight = fold_coordinate(v, size, fill_mode, ops)
    high = low + 1
    if fill_mode == "wrap":
        low = ops.where(low < 0, low + size, low)
        high = ops.where(high >= size, high - size, high)
        return low, high, weight, None
    inside = (low >= 0, high <= size - 1) if fill_mode == "constant" else None
    return ops.maximum(low, 0), ops.minimum(high, size - 1), weight, inside


def scale_coordinate(src, size, fill_mode, ops=KERAS_OPS):
    """``(src + offset) * scale`` by :func:`fold_scale`."""
    offset, scale = fold_scale(size, fill_mode)
    if offset:
        src = src + offset
    return src * scale if scale != 1.0 else src


def resample_2d(
    images,
    coords,
    interpolation="bilinear",
    fill_mode="reflect",
    fill_value=0.0,
    scaled=False,
    ops=KERAS_OPS,
):
    """Read channels-last ``images`` (B, H, W, C) at ``coords = (src_x, src_y)`` (each (B, H, W)).

    Returns a (B, H, W, C) tensor of ``images``' dtype. ``interpolation`` is "bilinear" or
    "nearest" (the nearest pixel centre, halves rounded up). Bilinear folds the
    coordinates by the fill mode and reads the four neighbours of each point; with
    ``scaled=True`` (bilinear only) the coordinates come already scaled by
    :func:`fold_scale` for the width (x) and the height (y).
    """
    images = ops.convert_to_tensor(images)
    src_x, src_y = (ops.convert_to_tensor(c) for c in coords)
    batch = ops.shape(images)[0]
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    if images.shape[0] == 0:  # JAX's gather drops the trailing axes of an empty table
        return ops.zeros((0, *src_x.shape[1:], channels), images.dtype)
    if interpolation == "nearest":
        if scaled:
            raise ValueError("resample_2d: scaled coordinates need bilinear interpolation")
        flat = ops.reshape(images, (-1, channels))
        rows = ops.cast(ops.floor(src_y + 0.5), "int32")
        cols = ops.cast(ops.floor(src_x + 0.5), "int32")
        rows, rows_in = fix_index(rows, height, fill_mode, ops)
        cols, cols_in = fix_index(cols, width, fill_mode, ops)
        base = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1, 1))
        values = ops.take(flat, base + rows * width + cols, axis=0)
        if fill_mode == "constant":
            inside = ops.logical_and(rows_in, cols_in)[..., None]
            values = ops.where(inside, values, ops.cast(fill_value, values.dtype))
        return values
    if not scaled:
        src_x = scale_coordinate(src_x, width, fill_mode, ops)
        src_y = scale_coordinate(src_y, height, fill_mode, ops)
    flat = ops.reshape(images, (-1, channels))
    y0, y1, wy, y_in = axis_neighbours(src_y, height, fill_mode, ops)
    x0, x1, wx, x_in = axis_neighbours(src_x, width, fill_mode, ops)
    base = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1, 1))
    row0, row1 = base + y0 * width, base + y1 * width
    # Four gathers: as fast as one gather of the four under XLA (TF and JAX), and faster
    # in TensorFlow's graph mode (benchmarks/README.md).
    index = (row0 + x0, row0 + x1, row1 + x0, row1 + x1)
    v00, v01, v10, v11 = (ops.take(flat, i, axis=0) for i in index)
    if fill_mode == "constant":
        fill = ops.cast(fill_value, images.dtype)

        def inside(value, y, x):
            return ops.where(ops.logical_and(y_in[y], x_in[x])[..., None], value, fill)

        v00, v01 = inside(v00, 0, 0), inside(v01, 0, 1)
        v10, v11 = inside(v10, 1, 0), inside(v11, 1, 1)
    wx = ops.cast(wx, images.dtype)[..., None]
    wy = ops.cast(wy, images.dtype)[..., None]
    top = v00 + (v01 - v00) * wx
    bottom = v10 + (v11 - v10) * wx
    return top + (bottom - top) * wy


def resample_1d(
    signals, src, interpolation="linear", fill_mode="reflect", fill_value=0.0, ops=KERAS_OPS
):
    """Read channels-last ``signals`` (B, L, C) at positions ``src`` ((B, L), float32)."""
    signals, src = ops.convert_to_tensor(signals), ops.convert_to_tensor(src)
    shape = ops.shape(signals)
    batch, length, channels = shape[0], shape[1], shape[2]
    if signals.shape[0] == 0:  # JAX's gather drops the trailing axes of an empty table
        return ops.zeros((0, *src.shape[1:], channels), signals.dtype)
    flat = ops.reshape(signals, (-1, channels))
    base = ops.reshape(ops.arange(batch, dtype="int32") * length, (-1, 1))
    index, inside, weights = _neighbours(src, length, fill_mode, interpolation, signals.dtype, ops)
    return _gather(flat, base + index, inside, weights, fill_mode, fill_value, ops)
