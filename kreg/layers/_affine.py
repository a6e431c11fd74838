"""RandomAffine: flip, rotation, shear, zoom and translation in one resampling per image."""

import math

import keras
import numpy as np

from kreg._registry import export
from kreg._validate import check_choice, check_data_format, check_number, check_range, check_seed
from kreg.layers import _tf_graph
from kreg.layers._resample import FILL_MODES, KERAS_OPS, fold_scale, resample_2d
from kreg.layers._stochastic import StochasticLayer

FLIPS = (None, "horizontal", "vertical", "horizontal_and_vertical")
INTERPOLATIONS = ("bilinear", "nearest")
RESAMPLERS = ("auto", "gather", "affine_transform")
#: Columns of the per-image parameter draw.
_ROTATION, _TX, _TY, _ZOOM, _SHEAR_X, _SHEAR_Y, _FLIP_X, _FLIP_Y = range(8)


def check_fill_value(value):
    """``value`` as a float if it is a finite number, else ValueError."""
    return check_number(value, "fill_value")


def as_tuple(value):
    """A validated range as given (None, a number or a pair), in Python floats: configs stay JSON."""
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)
    return None if value is None else float(value)


def sample_parameters(batch, ranges, flip, seed, ops=KERAS_OPS):
    """Per-image parameters, a float32 (batch, 8) tensor from one uniform draw.

    Columns: rotation (radians), translation x and y (fractions of width and height),
    zoom (the grid scale 1 + z), shear x and y, flip signs x and y (-1 flips). Both
    translations and both shears are drawn independently, and so are the two flip coins.
    Only the columns that vary get a random number (a zero range or a disabled flip is
    a constant): random numbers are the dearest part of the layer under XLA on a CPU.
    """
    keys = ("rotation", "translation", "translation", "zoom", "shear", "shear")
    low = np.array([ranges[k][0] for k in keys], "float64")
    high = np.array([ranges[k][1] for k in keys], "float64")
    unit = np.array([2 * math.pi, 1, 1, 1, 1, 1])
    offset = np.array([0, 0, 0, 1, 0, 0])
    flips = [
        flip in ("horizontal", "horizontal_and_vertical"),
        flip in ("vertical", "horizontal_and_vertical"),
    ]
    varies = list(high > low) + flips
    drawn = [i for i, v in enumerate(varies) if v]
    # Column j of the result reads drawn column source[j] (or column 0 times 0).
    source = np.zeros(8, "int32")
    source[drawn] = np.arange(len(drawn))
    scale = np.concatenate([unit * (high - low), [0.0, 0.0]]) * np.array(varies, "float64")
    shift = np.concatenate([unit * low + offset, [0.0, 0.0]])
    # The constants become tensors before they meet ``u``: a torch tensor times a NumPy
    # array is computed by NumPy (a copy to the host, which a CUDA tensor refuses).
    scale, shift, flips = (
        ops.convert_to_tensor(np.asarray(c, "float32")) for c in (scale, shift, flips)
    )
    u = ops.random.uniform((batch, max(len(drawn), 1)), dtype="float32", seed=seed)
    u = ops.take(u, source, axis=1)
    values = u[:, :6] * scale[:6] + shift[:6]
    signs = 1.0 - 2.0 * ops.cast(u[:, 6:] < 0.5, "float32") * flips
    return ops.concatenate([values, signs], axis=1)


def affine_matrices(params, height, width, ops=KERAS_OPS):
    """(B, 3, 2) matrices ``M`` with ``[x_out, y_out, 1] @ M = [x_in, y_in]``.

    The inverse map is ``p_in = A (p_out - c - t) + c`` with ``c`` the image centre,
    ``t`` the translation in pixels and ``A = F R S Z``: flip ``F = diag(fx, fy)``,
    rotation ``R = [[cos, -sin], [sin, cos]]``, shear ``S = [[1, sx], [sy, 1]]`` and zoom
    ``Z = diag(z, z)`` (z > 1 zooms out): the matrices of Keras' RandomFlip,
    RandomRotation, RandomShear and RandomZoom, composed once.
    """
    angle, tx, ty, zoom, shx, shy, fx, fy = (params[:, i] for i in range(8))
    cos, sin = ops.cos(angle), ops.sin(angle)
    a00 = (cos - sin * shy) * (zoom * fx)
    a01 = (cos * shx - sin) * (zoom * fx)
    a10 = (sin + cos * shy) * (zoom * fy)
    a11 = (sin * shx + cos) * (zoom * fy)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    ox = cx + tx * float(width)  # c + t
    oy = cy + ty * float(height)
    bx = cx - a00 * ox - a01 * oy
    by = cy - a10 * ox - a11 * oy
    rows = [
        ops.stack([a00, a10], axis=1),
        ops.stack([a01, a11], axis=1),
        ops.stack([bx, by], axis=1),
    ]
    return ops.stack(rows, axis=1)


def affine_coordinates(params, height, width, offset=(0.0, 0.0), scale=(1.0, 1.0), ops=KERAS_OPS):
    """Source coordinates ``(src_x, src_y)`` of every output pixel, each (B, H, W) float32.

    With ``offset`` and ``scale`` (per axis, x then y) the coordinates come as
    ``(src + offset) * scale``: applied to the per-image coefficients, not to every pixel.
    """
    m = affine_matrices(params, height, width, ops)
    xs = ops.cast(ops.arange(width), "float32")[None, None, :]  # tensors: see sample_parameters
    ys = ops.cast(ops.arange(height), "float32")[None, :, None]

    def coordinate(j):
        def entry(i):
            value = m[:, i, j] * scale[j] if scale[j] != 1.0 else m[:, i, j]
            return ops.reshape(value, (-1, 1, 1))

        shift = offset[j] * scale[j]
        bias = entry(2) + shift if shift else entry(2)
        return entry(0) * xs + entry(1) * ys + bias

    return coordinate(0), coordinate(1)


def affine_transforms(params, height, width, ops=KERAS_OPS):
    """(B, 8) rows ``[a0, a1, a2, b0, b1, b2, 0, 0]`` for ``keras.ops.image.affine_transform``.

    That op reads output pixel ``(x, y)`` at ``(a0 x + a1 y + a2, b0 x + b1 y + b2)``:
    the columns of :func:`affine_matrices`, laid out row by row.
    """
    m = affine_matrices(params, height, width, ops)
    rows = ops.reshape(ops.transpose(m, (0, 2, 1)), (-1, 6))
    return ops.concatenate([rows, ops.zeros_like(rows[:, :2])], axis=1)


@export
class RandomAffine(StochasticLayer):
    """Random flip, rotation, shear, zoom and translation of images, in one resampling.

    Each image gets its own parameters; the two flip axes are independent coins (Keras'
    ``RandomFlip("horizontal_and_vertical")`` uses one coin for both, so it only yields
    the identity or a 180° rotation). All parts are composed into one matrix per image
    and the image is read once, by gathers (bilinear or nearest): a Keras chain
    RandomFlip → RandomRotation → RandomTranslation → RandomZoom resamples three
    times, which is slower and blurs more. Written in ``keras.ops``, the layer runs on
    every backend, inside a model (also under ``jit_compile=True``, which Keras'
    geometric layers switch off) and in a ``tf.data`` pipeline on every backend (there
    with Keras' TensorFlow ops and TensorFlow random numbers, as Keras' preprocessing
    layers do).
    Like Keras' augmentation layers it transforms when called directly
    (``training=True`` by default) and is the identity in ``predict``/``evaluate``.

    Ranges follow the Keras layers: a float ``f`` means uniform in ``[-f, f]``, a pair
    ``(low, high)`` uniform in it.

    Args:
        rotation: in fractions of a full turn (0.1 = up to 36°), positive counter-clockwise.
        translation: in fractions of the height (vertical) and width (horizontal),
            drawn independently per axis; positive moves the content down/right.
        zoom: ``z`` samples a scale ``1 + z`` of the sampling grid (positive zooms out,
            negative zooms in), the same for both axes; the lower bound must be > -1.
        shear: shear factors along x and y, drawn independently.
        flip: None, "horizontal", "vertical" or "horizontal_and_vertical".
        fill_mode: "reflect", "wrap", "constant" or "nearest": how points outside the
            image are read.
        fill_value: the value read outside the image when ``fill_mode="constant"``.
        interpolation: "bilinear" or "nearest".
        seed: integer seed, or None.
        data_format: "channels_last" or "channels_first"; default
            ``keras.config.image_data_format()``.
        resampler: how the image is read. "auto" (default): the fastest correct one for
            where the layer runs: TensorFlow's C++ kernel while ``tf.data`` traces (a
            graph never XLA-compiled; about 1.35x faster than the gathers there), the
            gathers everywhere else (a model, also under XLA; eager calls). "gather":
            always by gathers written in the op set, on every backend and under XLA.
            "affine_transform": always through ``ops.image.affine_transform`` with the
            same matrices and the same result (to 2e-5); TensorFlow's kernel cannot be
            XLA-compiled, so on TensorFlow the layer then sets ``supports_jit=False`` and,
            like Keras' geometric layers, switches XLA off for a model that contains it;
            on JAX that op interpolates through ``map_coordinates``, about 15x slower than
            the gathers. TensorFlow's kernel reads "wrap" differently across the seam
            ("affine_transform" refuses it) and rounds nearest reads of exact halves away
            from zero (the gathers round them up): "auto" keeps the gathers for both.
            Masks are moved by gathers either way.

    Call arguments:
        inputs: images, (batch, height, width, channels) or one image without the batch
            axis (channels-first per ``data_format``), or a dict with "images" and
            optionally "segmentation_masks" ((batch, height, width) or with a channel
            axis; moved by the same transforms with nearest interpolation, fill 0) and
            "labels" (passed through).
        training: bool, default True; False returns the inputs unchanged.

    Example:

    >>> import numpy as np, kreg
    >>> layer = kreg.layers.RandomAffine(rotation=0.05, translation=0.1, zoom=0.1,
    ...                                  flip="horizontal", seed=0)
    >>> tuple(layer(np.random.rand(8, 32, 32, 3).astype("float32")).shape)
    (8, 32, 32, 3)
    """

    _runs_in_tf_data = True

    def __init__(
        self,
        rotation=0.0,
        translation=0.0,
        zoom=0.0,
        shear=0.0,
        flip=None,
        fill_mode="reflect",
        fill_value=0.0,
        interpolation="bilinear",
        seed=None,
        data_format=None,
        resampler="auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._ranges = {
            "rotation": check_range(rotation, "rotation"),
            "translation": check_range(translation, "translation", -1.0, 1.0, True),
            "zoom": check_range(zoom, "zoom", -1.0),
            "shear": check_range(shear, "shear"),
        }
        # Pairs kept as tuples, so that a config read back from JSON (lists) compares equal.
        self.rotation = as_tuple(rotation)
        self.translation = as_tuple(translation)
        self.zoom = as_tuple(zoom)
        self.shear = as_tuple(shear)
        self.flip = check_choice(flip, "flip", FLIPS)
        self.fill_mode = check_choice(fill_mode, "fill_mode", FILL_MODES)
        self.fill_value = check_fill_value(fill_value)
        self.interpolation = check_choice(interpolation, "interpolation", INTERPOLATIONS)
        self.seed = check_seed(seed)
        self.data_format = check_data_format(data_format)
        self.resampler = check_choice(resampler, "resampler", RESAMPLERS)
        if self.resampler == "affine_transform":
            if self.fill_mode == "wrap":
                raise ValueError(
                    "Invalid value for argument `fill_mode`: expected 'reflect', 'nearest' or "
                    "'constant' with resampler='affine_transform' (TensorFlow's kernel reads "
                    "'wrap' differently across the seam; resampler='gather' reads it exactly). "
                    "Received: fill_mode='wrap'"
                )
            # TensorFlow's kernel has no XLA version: Keras then compiles the model without XLA.
            self.supports_jit = keras.backend.backend() != "tensorflow"
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def _to_last(self, x, ops):
        return ops.transpose(x, (0, 2, 3, 1)) if self.data_format == "channels_first" else x

    def _from_last(self, x, ops):
        return ops.transpose(x, (0, 3, 1, 2)) if self.data_format == "channels_first" else x

    def _uses_kernel(self):
        """Whether the images go through ``ops.image.affine_transform`` (TensorFlow's C++
        kernel on TensorFlow ops). "auto" takes it where nothing can be XLA-compiled and
        it is the faster one, while ``tf.data`` traces, on every backend; and only where
        it reads what the gathers read: bilinear (nearest reads of exact halves round
        differently: the kernel away from zero, the gathers up), not "wrap"."""
        if self.resampler == "auto":
            exact = self.interpolation == "bilinear" and self.fill_mode != "wrap"
            return exact and _tf_graph.in_tf_data()
        return self.resampler == "affine_transform"

    def call(self, inputs, training=True):
        if not self.active(training):
            return inputs
        ops = _tf_graph.ops_for(inputs)
        data = inputs if isinstance(inputs, dict) else {"images": inputs}
        unknown = set(data) - {"images", "segmentation_masks", "labels"}
        if "images" not in data or unknown:
            raise ValueError(
                "Invalid value for argument `inputs`: expected images or a dict with "
                "'images' and optionally 'segmentation_masks' and 'labels'. "
                f"Received: a dict with keys {sorted(data)}"
            )
        images = ops.cast(data["images"], self.compute_dtype)
        if len(images.shape) not in (3, 4):
            raise ValueError(
                "Invalid value for argument `inputs`: expected images of rank 3 (one image) "
                f"or 4 (a batch). Received: images of shape {tuple(images.shape)}"
            )
        batched = len(images.shape) == 4
        images = self._to_last(images if batched else images[None], ops)
        height, width = images.shape[1], images.shape[2]
        if "segmentation_masks" in data:
            self._check_masks(data["segmentation_masks"], data["images"], batched)
        if height is None or width is None:
            raise ValueError(
                "Invalid value for argument `inputs`: RandomAffine needs known image "
                f"height and width. Received: images of shape {images.shape}"
            )
        seed = _tf_graph.seed_generator_for(self, ops)
        params = sample_parameters(ops.shape(images)[0], self._ranges, self.flip, seed, ops)
        out, coords = self._move_images(images, params, ops)
        out = self._from_last(out, ops)
        result = dict(data)
        result["images"] = out if batched else out[0]
        if "segmentation_masks" in data:
            if coords is None:
                coords = affine_coordinates(params, height, width, ops=ops)
            result["segmentation_masks"] = self._move_masks(
                data["segmentation_masks"], coords, batched, ops
            )
        return result if isinstance(inputs, dict) else result["images"]

    def _move_images(self, images, params, ops):
        """The moved images, and the source coordinates when they were computed (nearest)."""
        height, width = images.shape[1], images.shape[2]
        if self._uses_kernel():
            transforms = affine_transforms(params, height, width, ops)
            out = ops.image.affine_transform(
                images,
                transforms,
                self.interpolation,
                self.fill_mode,
                self.fill_value,
                data_format="channels_last",
            )
            return out, None
        if self.interpolation == "bilinear":
            # Coordinates ready for the fold: the scaling rides on the per-image coefficients.
            (off_x, scale_x) = fold_scale(width, self.fill_mode)
            (off_y, scale_y) = fold_scale(height, self.fill_mode)
            scaled = affine_coordinates(
                params, height, width, (off_x, off_y), (scale_x, scale_y), ops
            )
            out = resample_2d(
                images, scaled, "bilinear", self.fill_mode, self.fill_value, True, ops
            )
            return out, None
        coords = affine_coordinates(params, height, width, ops=ops)
        out = resample_2d(images, coords, "nearest", self.fill_mode, self.fill_value, ops=ops)
        return out, coords

    def _check_masks(self, masks, images, batched):
        """Refuse masks whose batch or image size differs from the images': they would be
        read on the images' grid, silently cropped or padded."""
        mask_shape, image_shape = tuple(masks.shape), tuple(images.shape)
        ranks = (3, 4) if batched else (2, 3)
        first = self.data_format == "channels_first"
        if len(mask_shape) in ranks:
            with_channels = len(mask_shape) == ranks[1]
            size = mask_shape[-3:-1] if with_channels and not first else mask_shape[-2:]
            image_size = image_shape[-2:] if first else image_shape[-3:-1]
            pairs = list(zip(size, image_size)) + (
                [(mask_shape[0], image_shape[0])] if batched else []
            )
            if all(a is None or b is None or a == b for a, b in pairs):
                return
        raise ValueError(
            "Invalid value for argument `segmentation_masks`: expected masks of the "
            f"images' batch and size, of rank {ranks[0]} or {ranks[1]}. Received: "
            f"segmentation_masks of shape {mask_shape} for images of shape {image_shape}"
        )

    def _move_masks(self, masks, coords, batched, ops):
        masks = ops.convert_to_tensor(masks)
        rank = len(masks.shape) + (0 if batched else 1)
        if not batched:
            masks = masks[None]
        masks = masks[..., None] if rank == 3 else self._to_last(masks, ops)  # (B, H, W)
        moved = resample_2d(masks, coords, "nearest", self.fill_mode, 0, ops=ops)
        moved = moved[..., 0] if rank == 3 else self._from_last(moved, ops)
        return moved if batched else moved[0]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rotation": self.rotation,
            "translation": self.translation,
            "zoom": self.zoom,
            "shear": self.shear,
            "flip": self.flip,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "interpolation": self.interpolation,
            "seed": self.seed,
            "data_format": self.data_format,
            "resampler": self.resampler,
        }
