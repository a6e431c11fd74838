"""Resampling by gathers: one read per neighbour, written in keras.ops (XLA-compatible).

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


def fix_index(index, size, fill_mode):
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


def _gather(flat, index, inside, weights, fill_mode, fill_value):
    """``sum_k weights[k] * flat[index[k]]`` (outside reads count as ``fill_value``).

    ``index``, ``inside`` and ``weights`` are stacked over the neighbours (axis 0): one
    gather reads them all.
    """
    values = ops.take(flat, index, axis=0)  # (K, ..., C)
    if fill_mode == "constant":
        weights = weights * ops.cast(inside, weights.dtype)
    out = ops.sum(values * weights[..., None], axis=0)
    if fill_mode == "constant" and fill_value != 0:
        out = out + ops.cast(fill_value, out.dtype) * (1 - ops.sum(weights, axis=0))[..., None]
    return out


def _neighbours(src, size, fill_mode, interpolation, dtype):
    """Indices (K, ...), inside flags and weights of the K = 1 or 2 neighbours along one axis."""
    if interpolation == "nearest":
        index, inside = fix_index(ops.cast(ops.floor(src + 0.5), "int32"), size, fill_mode)
        return index[None], inside[None], ops.ones_like(ops.cast(src, dtype))[None]
    low = ops.floor(src)
    frac = ops.cast(src - low, dtype)
    low = ops.cast(low, "int32")
    index, inside = fix_index(ops.stack([low, low + 1]), size, fill_mode)
    return index, inside, ops.stack([1 - frac, frac])


def fold_coordinate(src, size, fill_mode):
    """Map real coordinates into [-1, size] by ``fill_mode`` without changing what they read.

    Reflection and wrapping map the pixel lattice onto itself, so interpolating at the
    folded coordinate between neighbours of the 1-pixel padded image gives what reading
    every neighbour through :func:`fix_index` gives. Returns the lower neighbour's index
    in [-1, size - 1] (int32) and the weight of the upper one.
    """
    size = float(size)
    if fill_mode == "reflect":  # a triangle wave of period 2 * size
        t = src + 0.5
        t = t - ops.floor(t * (0.5 / size)) * (2.0 * size)
        src = (size - 0.5) - ops.abs(t - size)
        low = ops.floor(src)
    elif fill_mode == "wrap":
        t = src + 0.5
        src = t - ops.floor(t * (1.0 / size)) * size - 0.5
        low = ops.floor(src)  # in [-1, size - 1]: -0.5 <= src <= size - 0.5
    else:  # "nearest" (the padding repeats the edge) and "constant" (the padding is the fill)
        src = ops.minimum(ops.maximum(src, -1.0), size)
        low = ops.minimum(ops.floor(src), size - 1.0)
    return ops.cast(low, "int32"), src - low


def _pad_one(images, axis, fill_mode, fill_value):
    """Pad one pixel on both sides of ``axis`` as ``fill_mode`` reads there."""
    size = ops.shape(images)[axis]

    def take(start, stop):
        index = [slice(None)] * 4
        index[axis] = slice(start, stop)
        return images[tuple(index)]

    if fill_mode == "wrap":
        before, after = take(size - 1, size), take(0, 1)
    elif fill_mode == "constant":
        before = ops.full_like(take(0, 1), fill_value)
        after = before
    else:  # reflect about the pixel edge and nearest agree on a 1-pixel border
        before, after = take(0, 1), take(size - 1, size)
    return ops.concatenate([before, images, after], axis=axis)


def resample_2d(images, coords, interpolation="bilinear", fill_mode="reflect", fill_value=0.0):
    """Read channels-last ``images`` (B, H, W, C) at ``coords = (src_x, src_y)`` (each (B, H, W)).

    Returns a (B, H, W, C) tensor of ``images``' dtype. ``interpolation`` is "bilinear" or
    "nearest" (the nearest pixel centre, halves rounded up). Bilinear folds the
    coordinates by the fill mode and reads the four neighbours from the 1-pixel padded
    image, where they always lie.
    """
    src_x, src_y = coords
    batch = ops.shape(images)[0]
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    if interpolation == "nearest":
        flat = ops.reshape(images, (-1, channels))
        rows, rows_in = fix_index(ops.cast(ops.floor(src_y + 0.5), "int32"), height, fill_mode)
        cols, cols_in = fix_index(ops.cast(ops.floor(src_x + 0.5), "int32"), width, fill_mode)
        base = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1, 1))
        values = ops.take(flat, base + rows * width + cols, axis=0)
        if fill_mode == "constant":
            inside = ops.logical_and(rows_in, cols_in)[..., None]
            values = ops.where(inside, values, ops.cast(fill_value, values.dtype))
        return values
    padded = _pad_one(_pad_one(images, 1, fill_mode, fill_value), 2, fill_mode, fill_value)
    flat = ops.reshape(padded, (-1, channels))
    y0, wy = fold_coordinate(src_y, height, fill_mode)
    x0, wx = fold_coordinate(src_x, width, fill_mode)
    # Row-major index of (y0, x0) in the padded image (offset 1); the other three
    # neighbours are 1, a row and a row + 1 further.
    row = width + 2
    base = ops.arange(batch, dtype="int32") * ((height + 2) * row) + (row + 1)
    i00 = ops.reshape(base, (-1, 1, 1)) + y0 * row + x0
    index = [i00, i00 + 1, i00 + row, i00 + (row + 1)]
    if keras.backend.backend() == "tensorflow":
        # Four gathers: in graph mode (tf.data, fit without XLA) about 12 % faster than one.
        v00, v01, v10, v11 = (ops.take(flat, i, axis=0) for i in index)
    else:
        # One gather of the four neighbours: under XLA about 1.2x faster than four.
        values = ops.take(flat, ops.stack(index), axis=0)
        v00, v01, v10, v11 = values[0], values[1], values[2], values[3]
    wx = ops.cast(wx, images.dtype)[..., None]
    wy = ops.cast(wy, images.dtype)[..., None]
    top = v00 + (v01 - v00) * wx
    bottom = v10 + (v11 - v10) * wx
    return top + (bottom - top) * wy


def resample_1d(signals, src, interpolation="linear", fill_mode="reflect", fill_value=0.0):
    """Read channels-last ``signals`` (B, L, C) at positions ``src`` ((B, L), float32)."""
    shape = ops.shape(signals)
    batch, length, channels = shape[0], shape[1], shape[2]
    flat = ops.reshape(signals, (-1, channels))
    base = ops.reshape(ops.arange(batch, dtype="int32") * length, (-1, 1))
    index, inside, weights = _neighbours(src, length, fill_mode, interpolation, signals.dtype)
    return _gather(flat, base + index, inside, weights, fill_mode, fill_value)
