"""Monte-Carlo predictions: mean and spread of a model's output over stochastic passes."""

import keras
import numpy as np

from kreg._validate import check_count
from kreg.layers._stochastic import force_stochastic, stochastic_layers


def _shares_noise_across_batch(layer):
    """A mask whose batch axis is fixed (1, or any set size) cannot follow a tiled batch."""
    shape = getattr(layer, "noise_shape", None)
    return bool(shape) and shape[0] is not None


def mc_predict(model, x, samples=30, batch_size=None):
    """Mean and standard deviation of ``model(x)`` over ``samples`` stochastic passes.

    Every kreg stochastic layer of the model (``kreg.layers.Dropout``, ``GaussianNoise``,
    ``DropPath``, ``DropBlock2D``, ``RandomAffine``, ``RandomShift1D``, whatever their
    ``mc`` setting) samples in each pass, while the other layers stay in inference mode
    (batch normalization uses its moving statistics). This is Monte-Carlo dropout, the
    ensemble-of-subnetworks view of dropout: the mean is the ensemble's prediction and the
    standard deviation a measure of its disagreement. Augmentation layers in the model
    make it test-time augmentation as well; apply them in the data pipeline to leave them
    out. Keras' own ``Dropout`` is not sampled.

    The passes are vectorised: each chunk of ``batch_size`` examples is repeated
    ``samples`` times and goes through the model's predict function in one call (a layer
    whose mask has a fixed batch axis, ``noise_shape=(1, ...)`` or ``(k, ...)``, gets one
    call per sample instead). Every chunk has ``batch_size`` rows (the last one overlaps
    the one before), so batch statistics such as ``GaussianNoise(relative=True)``'s
    do not depend on where the chunks end.

    Args:
        model: a Keras model containing at least one kreg stochastic layer.
        x: input array (or a list/dict of arrays for a multi-input model).
        samples: positive int, the number of stochastic passes.
        batch_size: examples per chunk (each repeated ``samples`` times); default 32.

    Returns:
        ``(mean, std)``: NumPy arrays shaped like one output of the model (or structures
        of them for a multi-output model); ``std`` is the population standard deviation
        over the passes.

    Example:

    >>> import keras, numpy as np, kreg
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
    ...                           kreg.layers.Dropout(0.5), keras.layers.Dense(1)])
    >>> mean, std = kreg.mc_predict(model, np.ones((3, 4), "float32"), samples=20)
    >>> mean.shape, std.shape, bool((std > 0).all())
    ((3, 1), (3, 1), True)

    References:
        Gal and Ghahramani, "Dropout as a Bayesian approximation: representing model
        uncertainty in deep learning", ICML 2016.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Invalid value for argument `model`: expected a Keras model. "
            f"Received: model={model!r}"
        )
    samples = check_count(samples, "samples", allow_none=False)
    batch_size = check_count(batch_size, "batch_size") or 32
    layers = stochastic_layers(model)
    if not layers:
        raise ValueError(
            "Invalid value for argument `model`: expected a model containing at least one "
            "kreg stochastic layer (kreg.layers.Dropout, GaussianNoise, DropPath, "
            "DropBlock2D, RandomAffine, RandomShift1D); without one every pass gives the "
            "same output (Keras' own Dropout is off at inference). "
            f"Received: model={model.name!r} with no kreg stochastic layer"
        )
    vectorised = not any(_shares_noise_across_batch(layer) for layer in layers)

    x = keras.tree.map_structure(np.asarray, x)
    if any(leaf.ndim == 0 for leaf in keras.tree.flatten(x)):
        raise ValueError(
            "Invalid value for argument `x`: expected an array with the examples on its "
            "first axis, or a list/dict of such arrays (one per model input), as "
            "model.predict takes. Received: a structure of scalars (for a nested list of "
            "numbers, pass np.asarray(x))"
        )
    n = len(keras.tree.flatten(x)[0])
    if n == 0:
        raise ValueError(
            "Invalid value for argument `x`: expected at least one example. Received: x with 0 rows"
        )
    means, stds = [], []
    previous = getattr(model, "predict_function", None)
    model.predict_function = None  # trace a predict function that samples
    try:
        with force_stochastic():
            for first in range(0, n, batch_size):
                # Every chunk is a full one (the last one reaches back), so that a layer
                # whose noise depends on the batch (GaussianNoise(relative=True)) never
                # sees a remainder of a few rows; only the new rows are kept.
                start = max(0, min(first, n - batch_size))
                chunk = keras.tree.map_structure(lambda a: a[start : start + batch_size], x)
                rows = len(keras.tree.flatten(chunk)[0])
                keep = first - start
                if vectorised:
                    tiled = keras.tree.map_structure(
                        lambda a: np.tile(a, (samples,) + (1,) * (a.ndim - 1)), chunk
                    )
                    out = _predict(model, tiled)
                    out = keras.tree.map_structure(
                        lambda o: np.asarray(o).reshape((samples, rows) + np.shape(o)[1:]), out
                    )
                else:
                    passes = [_predict(model, chunk) for _ in range(samples)]
                    out = keras.tree.map_structure(
                        lambda *o: np.stack([np.asarray(v) for v in o]), *passes
                    )
                means.append(keras.tree.map_structure(lambda o: _mean(o)[keep:], out))
                stds.append(keras.tree.map_structure(lambda o: _std(o)[keep:], out))
    finally:
        model.predict_function = previous
    concat = lambda *parts: np.concatenate(parts, axis=0)  # noqa: E731
    return keras.tree.map_structure(concat, *means), keras.tree.map_structure(concat, *stds)


def _predict(model, batch):
    """The model's outputs on ``batch``, in one call of its predict function.

    Under a ``tf.distribute`` strategy with several replicas, ``predict_on_batch`` runs
    the whole batch on every replica and returns the outputs of all of them (twice the
    rows on two devices); ``predict`` splits the batch among them as ``fit`` does.
    """
    strategy = getattr(model, "distribute_strategy", None)
    if getattr(strategy, "num_replicas_in_sync", 1) > 1:
        rows = len(keras.tree.flatten(batch)[0])
        return model.predict(batch, batch_size=rows, verbose=0)
    return model.predict_on_batch(batch)


def _mean(o):
    return np.mean(o.astype("float64"), axis=0).astype(_out_dtype(o))


def _std(o):
    return np.std(o.astype("float64"), axis=0).astype(_out_dtype(o))


def _out_dtype(o):
    return o.dtype if np.issubdtype(o.dtype, np.floating) else np.float32
