"""kreg.layers.RandomAffine, RandomShift1D and augmentation(): exact references, statistics, XLA.

tf.data on every backend: tests/test_layers_tfdata.py.
"""

import keras
import numpy as np
import pytest
from conftest import BACKEND, tf_only

import kreg

# fit(jit_compile=True) on torch is torch.compile (dynamo), which takes 50-100 s per
# model here; what these tests check is the XLA claim, made for TensorFlow and JAX.
xla_backends = pytest.mark.skipif(
    BACKEND == "torch",
    reason="jit_compile on torch is torch.compile, not XLA; kreg's XLA claims are for "
    "TensorFlow and JAX",
)


def _np(t):
    return keras.ops.convert_to_numpy(keras.ops.cast(t, "float32"))


_JITTED = {}


def _apply(layer, x, training=True):
    """``layer(x, training=training)``; on JAX through one jitted stateless call.

    The layers are plain ``keras.ops`` code, eager on every backend; on JAX eager
    dispatch compiles every primitive for every new shape, which makes a test module of
    small calls slow, so the tests here run the same code compiled once (model.fit does
    too). Direct eager calls are covered by other tests.
    """
    if BACKEND != "jax":
        return layer(x, training=training)
    import jax

    if not layer.built:
        layer.build(keras.tree.map_structure(lambda a: np.shape(a), x))
    key = (id(layer), training)
    if key not in _JITTED:
        _JITTED[key] = jax.jit(
            lambda state, inputs: layer.stateless_call([], state, inputs, training=training)
        )
    variables = layer.non_trainable_variables
    out, state = _JITTED[key]([v.value for v in variables], x)
    for variable, value in zip(variables, state):
        variable.assign(value)
    return out


def _images(shape=(4, 8, 8, 3), seed=0):
    return np.random.RandomState(seed).rand(*shape).astype("float32")


def _uniform(shape, seed):
    """The first uniform draw of a ``SeedGenerator(seed)``: what a layer seeded so draws."""
    u = keras.random.uniform(shape, dtype="float32", seed=keras.random.SeedGenerator(seed))
    return _np(u).astype("float64")


def _random_params(rs, n, angle, shift):
    """n rows of RandomAffine parameters: rotation in [-angle, angle], translations in
    [-shift, shift], zoom in [0.6, 1.8], shears in [-0.4, 0.4], and the flip pairs in turn
    (none, x, y, both)."""
    values = [rs.uniform(-angle, angle, n)] + [rs.uniform(-shift, shift, n) for _ in range(2)]
    values += [rs.uniform(0.6, 1.8, n)] + [rs.uniform(-0.4, 0.4, n) for _ in range(2)]
    flips = np.array([[1, 1], [-1, 1], [1, -1], [-1, -1]])[np.arange(n) % 4]
    return np.concatenate([np.stack(values, axis=1), flips], axis=1).astype("float32")


PAD_MODES = {"reflect": "symmetric", "wrap": "wrap", "nearest": "edge", "constant": "constant"}


def _shifted(x, dy, dx, fill_mode, fill_value=0.0):
    """NumPy reference: content moved down by dy and right by dx pixels (x: H, W, C)."""
    h, w = x.shape[:2]
    pad = max(abs(dy), abs(dx))
    kwargs = {"constant_values": fill_value} if fill_mode == "constant" else {}
    padded = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode=PAD_MODES[fill_mode], **kwargs)
    return padded[pad - dy : pad - dy + h, pad - dx : pad - dx + w]


# ---------------------------------------------------------------- RandomAffine: geometry


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "nearest", "constant"])
def test_integer_translation_matches_numpy_padding(fill_mode):
    x = _images()
    layer = kreg.layers.RandomAffine(
        translation=(0.375, 0.375), fill_mode=fill_mode, fill_value=0.5
    )
    y = _np(_apply(layer, x))
    for i in range(4):  # 0.375 * 8 = 3 pixels down and right
        np.testing.assert_allclose(y[i], _shifted(x[i], 3, 3, fill_mode, 0.5), atol=1e-6)


def test_non_square_translation_and_half_turn():
    # 6x10 images: the translation is a fraction of the height for rows and of the
    # width for columns, and the half turn is about the centre ((W-1)/2, (H-1)/2).
    x = _images((2, 6, 10, 3))
    layer = kreg.layers.RandomAffine(translation=(0.5, 0.5), fill_mode="wrap")
    y = _np(_apply(layer, x))
    np.testing.assert_allclose(y, np.roll(x, (3, 5), axis=(1, 2)), atol=1e-5)  # 3 rows, 5 cols
    y = _np(_apply(kreg.layers.RandomAffine(rotation=(0.5, 0.5)), x))
    np.testing.assert_allclose(y, x[:, ::-1, ::-1], atol=1e-5)


def test_affine_matrices_match_numpy():
    # p_in = A (p_out - c - t) + c, A = diag(fx, fy) R(angle) [[1, sx], [sy, 1]] z, on 7x10.
    from kreg.layers._affine import affine_matrices

    height, width = 7, 10
    params = _random_params(np.random.RandomState(1), 4, angle=3.0, shift=0.5)
    m = _np(affine_matrices(keras.ops.convert_to_tensor(params), height, width))
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    for i, (angle, tx, ty, zoom, sx, sy, fx, fy) in enumerate(params.astype("float64")):
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        a = np.diag([fx, fy]) @ rotation @ np.array([[1, sx], [sy, 1]]) * zoom
        # [x_out, y_out, 1] @ M = [x_in, y_in]: M = [A^T; c - A (c + t)].
        expected = np.concatenate([a.T, [centre - a @ (centre + [tx * width, ty * height])]])
        np.testing.assert_allclose(m[i], expected, rtol=0, atol=1e-5, err_msg=f"image {i}")


@pytest.mark.parametrize("case", ["all", "some"])
def test_sample_parameters_match_numpy(case):
    # Each varying column reads its own uniform u: low + u (high - low) (x 2 pi for the
    # rotation, + 1 for the zoom); a flip sign is -1 where u < 0.5. Constant columns draw none.
    from kreg.layers._affine import sample_parameters

    if case == "all":
        ranges = {
            "rotation": (-0.1, 0.1),
            "translation": (-0.2, 0.3),
            "zoom": (-0.1, 0.2),
            "shear": (0.0, 0.1),
        }
        flip, drawn = "horizontal_and_vertical", [0, 1, 2, 3, 4, 5, 6, 7]
    else:
        ranges = {
            "rotation": (0.05, 0.05),
            "translation": (-0.2, 0.3),
            "zoom": (0.0, 0.0),
            "shear": (-0.3, 0.1),
        }
        flip, drawn = "vertical", [1, 2, 4, 5, 7]
    got = _np(sample_parameters(64, ranges, flip, keras.random.SeedGenerator(5)))
    u = np.zeros((64, 8))
    u[:, drawn] = _uniform((64, len(drawn)), 5)
    keys = ("rotation", "translation", "translation", "zoom", "shear", "shear")
    low = np.array([ranges[k][0] for k in keys]) * [2 * np.pi, 1, 1, 1, 1, 1]
    high = np.array([ranges[k][1] for k in keys]) * [2 * np.pi, 1, 1, 1, 1, 1]
    values = low + u[:, :6] * (high - low) + [0, 0, 0, 1, 0, 0]
    flips = np.isin([6, 7], drawn)
    signs = np.where((u[:, 6:] < 0.5) & flips, -1.0, 1.0)
    np.testing.assert_allclose(got, np.concatenate([values, signs], axis=1), rtol=0, atol=1e-6)


def test_far_outside_reads_follow_the_fill_mode():
    # Translation by 1.5 images: reflect has period 2 * 8, wrap 8.
    x = _images()
    for fill_mode in ("reflect", "wrap"):
        y = _np(
            _apply(kreg.layers.RandomAffine(translation=(-0.75, -0.75), fill_mode=fill_mode), x)
        )[0]
        padded = np.pad(x[0], ((0, 16), (0, 16), (0, 0)), mode=PAD_MODES[fill_mode])
        np.testing.assert_allclose(y, padded[6:14, 6:14], atol=1e-6)  # moved 6 pixels up/left


def _np_read(image, r, c, fill_mode, fill_value):
    """NumPy reference: pixel (r, c) of one (H, W, C) image, read outside by fill mode."""
    h, w = image.shape[:2]

    def index(i, n):
        if fill_mode == "reflect":
            i = i % (2 * n)
            return 2 * n - 1 - i if i >= n else i
        if fill_mode == "wrap":
            return i % n
        return min(max(i, 0), n - 1)

    if fill_mode == "constant" and not (0 <= r < h and 0 <= c < w):
        return np.full(image.shape[2], fill_value, image.dtype)
    return image[index(r, h), index(c, w)]


def _np_bilinear(image, src_y, src_x, fill_mode, fill_value):
    """NumPy reference: bilinear read of one (H, W, C) image, each neighbour by fill mode."""

    def read(r, c):
        return _np_read(image, r, c, fill_mode, fill_value)

    out = np.zeros(src_y.shape + image.shape[2:])
    for (i, j), sy in np.ndenumerate(src_y):
        sx = src_x[i, j]
        y0, x0 = int(np.floor(sy)), int(np.floor(sx))
        wy, wx = sy - y0, sx - x0
        top = (1 - wx) * read(y0, x0) + wx * read(y0, x0 + 1)
        bottom = (1 - wx) * read(y0 + 1, x0) + wx * read(y0 + 1, x0 + 1)
        out[i, j] = (1 - wy) * top + wy * bottom
    return out


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "nearest", "constant"])
def test_bilinear_resampling_matches_numpy_for_every_fill_mode(fill_mode):
    from kreg.layers._affine import affine_coordinates
    from kreg.layers._resample import fold_scale, resample_2d

    rs = np.random.RandomState(3)
    x = rs.rand(3, 7, 10, 2).astype("float32")  # non-square, so rows and columns differ
    # translation up to 1.5 images: reads far outside
    params = _random_params(rs, 3, angle=3.2, shift=1.5)
    params = keras.ops.convert_to_tensor(params)
    src_x, src_y = (_np(c) for c in affine_coordinates(params, 7, 10))
    y = _np(resample_2d(x, (src_x, src_y), "bilinear", fill_mode, 0.7))
    # RandomAffine's own path: the fold's scaling applied to the per-image coefficients.
    (off_x, scale_x), (off_y, scale_y) = fold_scale(10, fill_mode), fold_scale(7, fill_mode)
    scaled = affine_coordinates(params, 7, 10, (off_x, off_y), (scale_x, scale_y))
    y_scaled = _np(resample_2d(x, scaled, "bilinear", fill_mode, 0.7, scaled=True))
    for b in range(3):
        expected = _np_bilinear(x[b], src_y[b], src_x[b], fill_mode, 0.7)
        np.testing.assert_allclose(y[b], expected, atol=2e-5, err_msg=f"image {b}")
        np.testing.assert_allclose(y_scaled[b], expected, atol=2e-5, err_msg=f"image {b}")


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "nearest", "constant"])
def test_nearest_resampling_matches_numpy_for_every_fill_mode(fill_mode):
    # The nearest pixel centre, floor(src + 0.5): halves round up, in 2-D and 1-D.
    from kreg.layers._resample import resample_1d, resample_2d

    rs = np.random.RandomState(3)
    x = rs.rand(2, 7, 10, 2).astype("float32")
    coords = []
    for high in (14, 11):  # x up to 4 past the width, y past the height; some exact halves
        src = rs.uniform(-4, high, (2, 7, 10)).astype("float32")
        halves = rs.rand(2, 7, 10) < 0.5
        src[halves] = rs.randint(-4, high, halves.sum()) + 0.5
        coords.append(src)
    src_x, src_y = coords

    def read(image, r, c):
        return _np_read(image, r, c, fill_mode, 0.7)

    rows = np.floor(src_y + np.float32(0.5)).astype(int)
    cols = np.floor(src_x + np.float32(0.5)).astype(int)
    y = _np(resample_2d(x, (src_x, src_y), "nearest", fill_mode, 0.7))
    expected = np.zeros_like(y)
    for b, i, j in np.ndindex(2, 7, 10):
        expected[b, i, j] = read(x[b], rows[b, i, j], cols[b, i, j])
    np.testing.assert_array_equal(y, expected)
    # 1-D: the first row of each image, read at the first row of src_x.
    y = _np(resample_1d(x[:, 0], src_x[:, 0], "nearest", fill_mode, 0.7))
    expected = np.stack([[read(x[b, :1], 0, cols[b, 0, j]) for j in range(10)] for b in range(2)])
    np.testing.assert_array_equal(y, expected)


def test_rotation_by_a_quarter_turn_is_rot90():
    x = _images()
    y = _np(_apply(kreg.layers.RandomAffine(rotation=(0.25, 0.25)), x))
    np.testing.assert_allclose(y, np.rot90(x, 1, axes=(1, 2)), atol=1e-5)


@tf_only  # the same keras.ops code runs on JAX; Keras' layers are slow to dispatch there
@pytest.mark.parametrize(
    "fill_mode, interpolation", [("reflect", "bilinear"), ("constant", "nearest")]
)
def test_single_transforms_match_keras_layers(fill_mode, interpolation):
    x = _images()
    common = dict(fill_mode=fill_mode, interpolation=interpolation, fill_value=0.25)
    pairs = [
        (dict(rotation=(0.07, 0.07)), keras.layers.RandomRotation((0.07, 0.07), **common)),
        (dict(zoom=(0.4, 0.4)), keras.layers.RandomZoom((0.4, 0.4), **common)),
        (dict(zoom=(-0.3, -0.3)), keras.layers.RandomZoom((-0.3, -0.3), **common)),
        (
            dict(translation=(0.2, 0.2)),
            keras.layers.RandomTranslation((0.2, 0.2), (0.2, 0.2), **common),
        ),
    ]
    for ours, theirs in pairs:
        y = _np(_apply(kreg.layers.RandomAffine(**ours, **common), x))
        np.testing.assert_allclose(y, _np(theirs(x, training=True)), atol=1e-5, err_msg=str(ours))


def test_flip_is_exact_and_the_two_coins_are_independent():
    n = 400
    x = np.broadcast_to(np.arange(16, dtype="float32").reshape(1, 4, 4, 1), (n, 4, 4, 1))
    y = _np(_apply(kreg.layers.RandomAffine(flip="horizontal_and_vertical", seed=3), x))
    outcomes = [x[0], x[0][:, ::-1], x[0][::-1], x[0][::-1, ::-1]]
    which = np.array([[np.array_equal(img, o) for o in outcomes] for img in y])
    assert np.all(which.sum(axis=1) == 1)  # every image is exactly one of the four
    freq = which.mean(axis=0)
    # Four outcomes of 1/4 each (Keras' single coin gives only two): binomial sd 0.022.
    np.testing.assert_allclose(freq, 0.25, atol=0.08)
    # Exactly the images the draw says: one uniform per axis, flipped where u < 0.5.
    u = _uniform((n, 2), 3)
    np.testing.assert_array_equal(which[:, 1] | which[:, 3], u[:, 0] < 0.5)  # horizontal
    np.testing.assert_array_equal(which[:, 2] | which[:, 3], u[:, 1] < 0.5)  # vertical


@pytest.mark.parametrize("flip", ["horizontal", "vertical"])
def test_single_axis_flip_at_half_frequency(flip):
    n = 400
    x = np.broadcast_to(np.arange(16, dtype="float32").reshape(1, 4, 4, 1), (n, 4, 4, 1))
    y = _np(_apply(kreg.layers.RandomAffine(flip=flip, seed=1), x))
    flipped = x[0][:, ::-1] if flip == "horizontal" else x[0][::-1]
    is_id = np.array([np.array_equal(img, x[0]) for img in y])
    is_flip = np.array([np.array_equal(img, flipped) for img in y])
    assert np.all(is_id ^ is_flip)
    assert abs(is_flip.mean() - 0.5) < 0.1  # binomial sd 0.025
    # Exactly the images the draw says: one uniform per image, flipped where u < 0.5.
    np.testing.assert_array_equal(is_flip, _uniform((n, 1), 1)[:, 0] < 0.5)


def test_parameters_are_drawn_per_image():
    x = np.broadcast_to(_images((1, 8, 8, 3)), (32, 8, 8, 3))
    y = _np(
        _apply(
            kreg.layers.RandomAffine(rotation=0.1, translation=0.1, zoom=0.1, shear=0.1, seed=0), x
        )
    )
    distinct = {y[i].round(4).tobytes() for i in range(32)}
    assert len(distinct) == 32
    # Two calls draw new parameters.
    layer = kreg.layers.RandomAffine(rotation=0.1, seed=0)
    assert not np.allclose(_np(_apply(layer, x)), _np(_apply(layer, x)))


@tf_only  # the same on JAX (see benchmarks/bench_augmentation.py); Keras' chain is slow there
def test_one_resampling_keeps_more_detail_than_the_keras_chain():
    noise = np.random.RandomState(0).randn(32, 32, 32, 3).astype("float32")
    ours = _np(
        _apply(
            kreg.layers.RandomAffine(
                rotation=0.05, translation=0.1, zoom=0.1, flip="horizontal", seed=0
            ),
            noise,
        )
    )
    chain = noise
    for layer in (
        keras.layers.RandomFlip("horizontal", seed=0),
        keras.layers.RandomRotation(0.05, fill_mode="reflect", seed=1),
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=2),
        keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=3),
    ):
        chain = layer(chain, training=True)
    inner = (slice(None), slice(6, -6), slice(6, -6))
    assert ours[inner].std() > 1.2 * _np(chain)[inner].std()


def test_identity_when_not_training_and_under_predict():
    x = _images()
    layer = kreg.layers.RandomAffine(rotation=0.2, flip="horizontal", seed=0)
    np.testing.assert_array_equal(_np(layer(x, training=False)), x)
    model = keras.Sequential([keras.Input((8, 8, 3)), layer])
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)


def test_unbatched_image():
    x = _images((1, 8, 8, 3))
    y = _np(
        _apply(
            kreg.layers.RandomAffine(
                flip="horizontal", translation=(0.25, 0.25), fill_mode="wrap", seed=0
            ),
            x[0],
        )
    )
    assert y.shape == (8, 8, 3)
    options = [_shifted(x[0], 2, 2, "wrap"), _shifted(x[0][:, ::-1], 2, 2, "wrap")]
    assert any(np.allclose(y, o, atol=1e-6) for o in options)


def test_channels_first_matches_channels_last():
    x = _images()
    kwargs = dict(rotation=0.1, zoom=0.2, shear=0.1, flip="vertical", seed=4)
    last = _np(_apply(kreg.layers.RandomAffine(**kwargs, data_format="channels_last"), x))
    first = _np(
        _apply(
            kreg.layers.RandomAffine(**kwargs, data_format="channels_first"),
            np.transpose(x, (0, 3, 1, 2)),
        )
    )
    np.testing.assert_allclose(np.transpose(first, (0, 2, 3, 1)), last, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_dtype_under_mixed_precision(policy):
    y = _apply(kreg.layers.RandomAffine(rotation=0.1, dtype=policy, seed=0), _images())
    assert keras.backend.standardize_dtype(y.dtype) == policy.split("_")[1]


def test_segmentation_masks_move_with_the_images():
    rng = np.random.RandomState(0)
    masks = rng.randint(0, 5, size=(4, 8, 8)).astype("int32")
    images = np.stack([masks.astype("float32")] * 3, axis=-1)
    layer = kreg.layers.RandomAffine(
        rotation=0.1, translation=0.1, zoom=0.2, flip="horizontal", interpolation="nearest", seed=0
    )
    out = _apply(layer, {"images": images, "segmentation_masks": masks, "labels": np.arange(4)})
    moved = keras.ops.convert_to_numpy(out["segmentation_masks"])
    assert moved.shape == masks.shape and moved.dtype == np.int32
    np.testing.assert_array_equal(_np(out["images"])[..., 0], moved.astype("float32"))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out["labels"]), np.arange(4))
    assert not np.array_equal(moved, masks)
    # With bilinear images the masks stay labels (nearest) and (B, H, W, 1) masks work too.
    layer = kreg.layers.RandomAffine(rotation=0.1, seed=0)
    out = _apply(layer, {"images": images, "segmentation_masks": masks[..., None]})
    assert set(np.unique(keras.ops.convert_to_numpy(out["segmentation_masks"]))) <= set(range(5))


def test_rejects_bad_arguments():
    cases = [
        (
            dict(rotation=-0.1),
            r"argument `rotation`: expected a float >= 0 or a pair .*Received: rotation=-0.1",
        ),
        (dict(translation=1.5), r"argument `translation`: .*<= 1.0. Received: translation=1.5"),
        (dict(zoom=(-1.0, 0.2)), r"argument `zoom`: .*> -1.0.*Received: zoom=\(-1.0, 0.2\)"),
        (
            dict(shear=(0.3, 0.1)),
            r"argument `shear`: .*lower <= upper.*Received: shear=\(0.3, 0.1\)",
        ),
        (
            dict(flip="both"),
            r"argument `flip`: expected one of None, 'horizontal', .*Received: flip='both'",
        ),
        (dict(fill_mode="mirror"), r"argument `fill_mode`: .*Received: fill_mode='mirror'"),
        (
            dict(interpolation="cubic"),
            r"argument `interpolation`: .*Received: interpolation='cubic'",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            kreg.layers.RandomAffine(**kwargs)
    with pytest.raises(
        ValueError, match=r"argument `inputs`: expected images or a dict with 'images'"
    ):
        kreg.layers.RandomAffine(rotation=0.1)({"image": _images()})
    for fill in (float("nan"), float("inf"), "0"):
        with pytest.raises(ValueError, match=r"argument `fill_value`: expected a finite float"):
            kreg.layers.RandomAffine(rotation=0.1, fill_mode="constant", fill_value=fill)
    layer = kreg.layers.RandomAffine(rotation=0.1, fill_mode="constant", fill_value=np.float32(0.5))
    assert layer.get_config()["fill_value"] == 0.5  # NumPy floats accepted, as Keras does
    # Ranks 2 and 5 raise an error that names `inputs`, not an IndexError or a cut shape.
    for shape in [(8, 8), (1, 2, 8, 8, 3)]:
        with pytest.raises(ValueError, match=r"argument `inputs`: expected images of rank 3"):
            kreg.layers.RandomAffine(rotation=0.1)(np.ones(shape, "float32"))


# ---------------------------------------------- resampler="affine_transform"

_MOVES = dict(rotation=0.2, translation=0.3, zoom=(-0.3, 0.5), shear=0.2, seed=3)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("fill_mode", ["reflect", "nearest", "constant"])
def test_affine_transform_resampler_gives_the_gathers_result(fill_mode, interpolation):
    x = _images((8, 12, 16, 3))
    kwargs = dict(
        _MOVES,
        flip="horizontal_and_vertical",
        fill_mode=fill_mode,
        fill_value=0.7,
        interpolation=interpolation,
    )
    gathered = _np(_apply(kreg.layers.RandomAffine(**kwargs), x))
    native = _np(_apply(kreg.layers.RandomAffine(**kwargs, resampler="affine_transform"), x))
    assert np.abs(gathered - x).max() > 0.5  # the images moved
    np.testing.assert_allclose(native, gathered, atol=2e-5)


def test_affine_transform_resampler_channels_first_single_image_masks_and_dtype():
    x = _images((4, 8, 8, 3))
    kwargs = dict(_MOVES, flip="vertical", resampler="affine_transform")
    last = _np(_apply(kreg.layers.RandomAffine(**kwargs), x))
    first = kreg.layers.RandomAffine(**kwargs, data_format="channels_first")
    first = _np(_apply(first, np.transpose(x, (0, 3, 1, 2))))
    np.testing.assert_allclose(np.transpose(first, (0, 2, 3, 1)), last, atol=1e-6)
    single = _np(_apply(kreg.layers.RandomAffine(**kwargs), x[0]))
    np.testing.assert_allclose(single, last[0], atol=1e-6)
    # Masks (moved by gathers) stay aligned with images moved by the kernel.
    masks = np.random.RandomState(0).randint(0, 5, size=(4, 8, 8)).astype("int32")
    layer = kreg.layers.RandomAffine(**kwargs, interpolation="nearest")
    images = np.stack([masks.astype("float32")] * 3, -1)
    out = _apply(layer, {"images": images, "segmentation_masks": masks})
    moved = keras.ops.convert_to_numpy(out["segmentation_masks"])
    assert not np.array_equal(moved, masks)
    np.testing.assert_array_equal(_np(out["images"])[..., 0], moved.astype("float32"))
    for policy in ("mixed_float16", "mixed_bfloat16"):
        y = _apply(kreg.layers.RandomAffine(**kwargs, dtype=policy), x)
        assert keras.backend.standardize_dtype(y.dtype) == policy.split("_")[1]


@xla_backends
def test_affine_transform_resampler_under_jit_compile():
    layer = kreg.layers.RandomAffine(rotation=0.1, flip="horizontal", resampler="affine_transform")
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), layer, keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    if BACKEND == "tensorflow":  # TensorFlow's kernel has no XLA version: XLA off, as
        assert layer.supports_jit is False  # with Keras' geometric layers
        with pytest.warns(UserWarning, match="Proceeding with `jit_compile=False`"):
            model.compile("adam", "mse", jit_compile=True)
    else:
        model.compile("adam", "mse", jit_compile=True)
    history = model.fit(_images((8, 8, 8, 3)), np.ones((8, 1)), verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert model.jit_compile is (BACKEND != "tensorflow")


@pytest.mark.skipif(BACKEND != "torch", reason="a torch-only pitfall")
def test_no_numpy_round_trip_on_torch(monkeypatch):
    """A torch tensor times a NumPy array is computed by NumPy, through a host copy that
    a CUDA tensor refuses: the layers keep their constants as tensors (refused here too)."""
    import torch

    x = keras.ops.convert_to_tensor(_images((2, 8, 8, 3)))
    signals = keras.ops.convert_to_tensor(_images((2, 20, 1)))

    def refuse(self, *args, **kwargs):
        raise RuntimeError("a host copy of a device tensor")

    monkeypatch.setattr(torch.Tensor, "__array__", refuse)
    kwargs = dict(rotation=0.1, translation=0.1, zoom=0.1, shear=0.1, flip="horizontal", seed=0)
    for layer in (
        kreg.layers.RandomAffine(**kwargs),
        kreg.layers.RandomAffine(**kwargs, interpolation="nearest", fill_mode="constant"),
        kreg.layers.RandomAffine(**kwargs, resampler="affine_transform"),
    ):
        assert tuple(layer(x, training=True).shape) == (2, 8, 8, 3)
    shift = kreg.layers.RandomShift1D(0.1, scale=0.1, seed=0)
    assert tuple(shift(signals, training=True).shape) == (2, 20, 1)


def test_affine_transform_resampler_rejects_bad_arguments():
    with pytest.raises(
        ValueError,
        match=r"argument `resampler`: expected one of 'auto', 'gather', 'affine_transform'. "
        r"Received: resampler='native'",
    ):
        kreg.layers.RandomAffine(rotation=0.1, resampler="native")
    with pytest.raises(
        ValueError,
        match=r"argument `fill_mode`: expected 'reflect', 'nearest' or 'constant' with "
        r"resampler='affine_transform' .*Received: fill_mode='wrap'",
    ):
        kreg.layers.RandomAffine(rotation=0.1, fill_mode="wrap", resampler="affine_transform")


def test_save_load_round_trip(tmp_path):
    layer = kreg.layers.RandomAffine(
        rotation=(0.0, 0.1),
        translation=0.1,
        zoom=0.2,
        shear=0.05,
        flip="horizontal_and_vertical",
        fill_mode="constant",
        fill_value=0.5,
        interpolation="nearest",
        seed=9,
        resampler="affine_transform",
        name="affine",
    )
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), layer, keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    path = str(tmp_path / "m.keras")
    model.save(path)
    first = keras.models.load_model(path, safe_mode=True)
    second = keras.models.load_model(path, safe_mode=True)
    config = first.get_layer("affine").get_config()
    assert config["flip"] == "horizontal_and_vertical" and config["fill_value"] == 0.5
    assert config["rotation"] == (0.0, 0.1) and config["seed"] == 9
    assert config["resampler"] == "affine_transform"
    assert config == layer.get_config()  # ranges come back as tuples, not JSON lists
    x = _images()
    np.testing.assert_array_equal(model.predict(x, verbose=0), first.predict(x, verbose=0))
    np.testing.assert_array_equal(
        _np(first.get_layer("affine")(x)), _np(second.get_layer("affine")(x))
    )


def _xla_model():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            kreg.layers.RandomAffine(
                rotation=0.1, translation=0.1, zoom=0.1, flip="horizontal_and_vertical", seed=0
            ),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse", jit_compile=True)
    return model


@xla_backends
def test_xla_compiled_fit():
    model = _xla_model()
    x, y = _images((16, 8, 8, 3)), np.ones((16, 1), "float32")
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert model.jit_compile is True  # not switched off, unlike with Keras' geometric layers


@tf_only
def test_keras_geometric_layers_switch_xla_off_for_contrast():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.RandomRotation(0.1),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse", jit_compile=True)
    model.fit(_images((8, 8, 8, 3)), np.ones((8, 1)), verbose=0)
    assert model.jit_compile is False


# ---------------------------------------------------------------- RandomShift1D


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "nearest", "constant"])
def test_shift_1d_matches_numpy(fill_mode):
    x = np.random.RandomState(0).rand(3, 10, 2).astype("float32")
    y = _np(
        _apply(
            kreg.layers.RandomShift1D(shift=(-0.3, -0.3), fill_mode=fill_mode, fill_value=-1.0), x
        )
    )
    kwargs = {"constant_values": -1.0} if fill_mode == "constant" else {}
    padded = np.pad(x, ((0, 0), (3, 3), (0, 0)), mode=PAD_MODES[fill_mode], **kwargs)
    np.testing.assert_allclose(y, padded[:, 6:16], atol=1e-6)  # moved 3 steps earlier


def test_shift_1d_scale_and_rank_2_inputs():
    x = np.arange(9, dtype="float32")[None]
    y = _np(
        _apply(kreg.layers.RandomShift1D(shift=0.0, scale=(-0.5, -0.5), fill_mode="nearest"), x)
    )
    np.testing.assert_allclose(y[0], 4 + 0.5 * (np.arange(9) - 4), atol=1e-6)  # stretched x2
    assert y.shape == (1, 9)


@pytest.mark.parametrize("shift", [0.0, (-0.2, 0.3)])
def test_shift_1d_random_shift_and_scale_match_numpy(shift):
    # From the draw u (B, 2): s = low + u0 (high - low), z = 1 + low + u1 (high - low),
    # read at z (i - c - s L) + c; on a ramp with "nearest" fill the output is that position.
    x = np.broadcast_to(np.arange(20, dtype="float32"), (16, 20)).copy()
    layer = kreg.layers.RandomShift1D(shift=shift, scale=(-0.3, 0.3), fill_mode="nearest", seed=4)
    y = _np(_apply(layer, x))
    u = _uniform((16, 2), 4)
    s = 0.0 if shift == 0.0 else -0.2 + 0.5 * u[:, 0:1]
    z = 0.7 + 0.6 * u[:, 1:2]
    expected = np.clip(z * (np.arange(20) - 9.5 - 20 * s) + 9.5, 0, 19)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-4)


def test_shift_1d_draws_per_sequence_and_is_identity_at_inference():
    x = np.broadcast_to(np.sin(np.linspace(0, 6, 40, dtype="float32")), (64, 40)).copy()
    layer = kreg.layers.RandomShift1D(shift=0.2, seed=0)
    y = _np(_apply(layer, x))
    assert len({row.round(4).tobytes() for row in y}) == 64
    np.testing.assert_array_equal(_np(layer(x, training=False)), x)
    model = keras.Sequential([keras.Input((40,)), layer])
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)


def test_shift_1d_shifts_are_uniform_in_range():
    n, length = 2000, 50
    x = np.zeros((n, length), "float32")
    x[:, 25] = 1.0  # an impulse: its position after the shift measures the draw
    y = _np(
        _apply(
            kreg.layers.RandomShift1D(
                shift=0.2, fill_mode="constant", interpolation="nearest", seed=0
            ),
            x,
        )
    )
    moved = y.argmax(axis=1) - 25
    assert moved.min() >= -10 and moved.max() <= 10
    assert abs(moved.mean()) < 0.5  # uniform on [-10, 10]: sd of the mean 0.13
    assert abs(moved.std() - np.sqrt(((21**2) - 1) / 12)) < 0.5


def test_shift_1d_constant_fill_is_finite_and_read_only_outside():
    # A NaN or infinite fill is refused: it would make every sample NaN (fill * 0).
    for fill in (float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match=r"argument `fill_value`: expected a finite float"):
            kreg.layers.RandomShift1D(0.1, fill_mode="constant", fill_value=fill)
    x = np.arange(8.0, dtype="float32")[None, :, None]
    layer = kreg.layers.RandomShift1D((0.25, 0.25), fill_mode="constant", fill_value=-3.0)
    np.testing.assert_array_equal(_np(layer(x, training=True))[0, :, 0], [-3, -3, 0, 1, 2, 3, 4, 5])
    layer = kreg.layers.RandomShift1D((0.2, 0.2), fill_mode="constant", fill_value=np.float32(9))
    y = _np(layer(x, training=True))[0, :, 0]  # moved by 1.6 samples
    np.testing.assert_allclose(y, [9, 0.6 * 9, 0.4, 1.4, 2.4, 3.4, 4.4, 5.4], rtol=1e-6)


def test_shift_1d_rejects_bad_arguments_and_round_trips(tmp_path):
    with pytest.raises(ValueError, match=r"argument `shift`: .*Received: shift=-0.2"):
        kreg.layers.RandomShift1D(shift=-0.2)
    with pytest.raises(
        ValueError, match=r"argument `interpolation`: expected one of 'linear', 'nearest'"
    ):
        kreg.layers.RandomShift1D(0.1, interpolation="bilinear")
    with pytest.raises(ValueError, match=r"argument `scale`: .*Received: scale=\(-1.5, 0.0\)"):
        kreg.layers.RandomShift1D(0.1, scale=(-1.5, 0.0))
    model = keras.Sequential(
        [
            keras.Input((20, 1)),
            kreg.layers.RandomShift1D((-0.1, 0.2), scale=0.1, seed=2, name="shift"),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    path = str(tmp_path / "s.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.get_layer("shift").get_config() == model.get_layer("shift").get_config()
    x = np.random.rand(4, 20, 1).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


@xla_backends
def test_shift_1d_in_an_xla_compiled_fit():
    model = keras.Sequential(
        [
            keras.Input((40,)),
            kreg.layers.RandomShift1D(0.1, scale=0.1, seed=0),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse", jit_compile=True)
    history = model.fit(
        np.random.rand(16, 40).astype("float32"), np.ones((16, 1)), batch_size=8, verbose=0
    )
    assert np.isfinite(history.history["loss"][0]) and model.jit_compile is True


# ---------------------------------------------------------------- augmentation()


def test_augmentation_builds_the_named_parts():
    augment = kreg.layers.augmentation(
        translation=0.1, rotation=0.05, flip="horizontal", color=0.2, noise=2.0, seed=0
    )
    assert [type(layer).__name__ for layer in augment.layers] == [
        "RandomAffine",
        "RandomBrightness",
        "RandomContrast",
        "GaussianNoise",
    ]
    affine = augment.layers[0]
    assert (affine.translation, affine.rotation, affine.flip, affine.seed) == (
        0.1,
        0.05,
        "horizontal",
        0,
    )
    assert affine.resampler == "auto"
    native = kreg.layers.augmentation(rotation=0.05, resampler="affine_transform", seed=0)
    assert native.layers[0].resampler == "affine_transform"
    only_noise = kreg.layers.augmentation(noise=0.1)
    assert [type(layer).__name__ for layer in only_noise.layers] == ["GaussianNoise"]
    x = _images() * 255
    y = _np(_apply(augment, x))
    assert y.shape == x.shape and not np.allclose(y, x)
    np.testing.assert_array_equal(_np(augment(x, training=False)), x)


def test_augmentation_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"expected at least one invariance to augment"):
        kreg.layers.augmentation()
    with pytest.raises(
        ValueError,
        match=r"argument `color`: expected None or a float in \[0, 1\]. Received: color=2",
    ):
        kreg.layers.augmentation(color=2)
    with pytest.raises(
        ValueError, match=r"argument `value_range`: .*Received: value_range=\(1, 0\)"
    ):
        kreg.layers.augmentation(noise=1.0, value_range=(1, 0))
    with pytest.raises(ValueError, match=r"argument `rotation`: .*Received: rotation=-1"):
        kreg.layers.augmentation(rotation=-1)
    with pytest.raises(ValueError, match=r"argument `noise`: .*Received: noise=-1.0"):
        kreg.layers.augmentation(noise=-1.0)  # names `noise`, not the `stddev` it sets
    with pytest.raises(ValueError, match=r"argument `fill_mode`: .*Received: fill_mode='bogus'"):
        kreg.layers.augmentation(color=0.1, fill_mode="bogus")  # checked though no move uses it
    with pytest.raises(ValueError, match=r"argument `flip`: .*Received: flip='both'"):
        kreg.layers.augmentation(color=0.1, flip="both")
    with pytest.raises(ValueError, match=r"argument `resampler`: .*Received: resampler='tf'"):
        kreg.layers.augmentation(color=0.1, resampler="tf")  # checked without geometry too
    with pytest.raises(ValueError, match=r"argument `value_range`: expected a pair of finite"):
        kreg.layers.augmentation(color=0.1, value_range=(0, float("inf")))


def test_augmentation_in_a_model_trains_saves_and_is_identity_in_predict(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            kreg.layers.augmentation(translation=0.1, flip="horizontal", noise=1.0, seed=0),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse", jit_compile=False)
    x = np.random.RandomState(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    model.fit(x, np.ones((8, 1)), batch_size=4, verbose=0)
    path = str(tmp_path / "a.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert [type(layer).__name__ for layer in loaded.layers[0].layers] == [
        "RandomAffine",
        "GaussianNoise",
    ]
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-6)


def test_mc_predict_samples_augmentation_layers():
    model = keras.Sequential([keras.Input((6,)), kreg.layers.RandomShift1D(0.3, seed=0)])
    x = np.arange(6, dtype="float32")[None]
    mean, std = kreg.mc_predict(model, x, samples=50)
    assert np.all(std > 0) and mean.shape == (1, 6)


def test_whole_image_translation_and_shift_are_accepted_as_in_keras():
    keras.layers.RandomTranslation(1.0, 1.0)  # Keras accepts a full-size translation
    assert kreg.layers.RandomAffine(translation=1.0).get_config()["translation"] in (
        1.0,
        (-1.0, 1.0),
        [-1.0, 1.0],
    )
    kreg.layers.RandomShift1D(shift=1.0)
    with pytest.raises(ValueError, match=r"argument `translation`: .*>= -1.0"):
        kreg.layers.RandomAffine(translation=(-1.5, 0.0))
    with pytest.raises(ValueError, match=r"argument `zoom`: .*> -1.0"):
        kreg.layers.RandomAffine(zoom=(-1.0, 0.0))
