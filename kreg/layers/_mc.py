"""Monte-Carlo predictions: mean and spread of a model's output over stochastic passes."""

import keras
import numpy as np

from kreg._validate import check_count, invalid
from kreg.layers._stochastic import (
    describe_keras_layer,
    force_stochastic,
    keras_random_layers,
    stochastic_layers,
    training_forced,
)

#: How many layers an error message names before it only counts them.
_NAMED = 4

_KREG_LAYERS = (
    "kreg.layers.Dropout, GaussianNoise, DropPath, DropBlock2D, RandomAffine, RandomShift1D"
)
_KERAS_LAYERS = (
    "Dropout, SpatialDropout1D/2D/3D, GaussianDropout, AlphaDropout, GaussianNoise, or the "
    "dropout of Attention and recurrent layers"
)


def _shares_noise_across_batch(layer):
    """A mask whose batch axis is fixed (1, or any set size) cannot follow a tiled batch."""
    shape = getattr(layer, "noise_shape", None)
    return bool(shape) and shape[0] is not None


def mc_predict(model, x, samples=30, batch_size=None, keras_dropout=None):
    """Mean and standard deviation of ``model(x)`` over ``samples`` stochastic passes.

    Every kreg stochastic layer of the model (``kreg.layers.Dropout``, ``GaussianNoise``,
    ``DropPath``, ``DropBlock2D``, ``RandomAffine``, ``RandomShift1D``, whatever their
    ``mc`` setting) samples in each pass, while the other layers stay in inference mode
    (batch normalization uses its moving statistics). This is Monte-Carlo dropout, the
    ensemble-of-subnetworks view of dropout: the mean is the ensemble's prediction and the
    standard deviation a measure of its disagreement. Augmentation layers in the model
    make it test-time augmentation as well; apply them in the data pipeline to leave them
    out.

    Keras' own layers that are random at training sample only with ``keras_dropout=True``:
    ``keras.layers.Dropout`` (and its subclasses ``SpatialDropout1D/2D/3D``),
    ``GaussianDropout``, ``AlphaDropout``, ``GaussianNoise`` (the Keras twin of kreg's,
    which is always sampled), the ``dropout`` of ``Attention``/``AdditiveAttention`` and the
    ``dropout``/``recurrent_dropout`` of recurrent layers on Keras' cells (``LSTM``,
    ``GRU``, ``SimpleRNN``, ``ConvLSTM*D``: Gal and Ghahramani's variational RNN dropout),
    nested ones included: those inside keras-hub's transformer layers, inside
    ``MultiHeadAttention``, inside nested models. Each is called with ``training=True``,
    which in these layers switches on the randomness and nothing else. Keras' augmentation
    layers (``RandomFlip`` ...) stay in inference mode, and so do layers that draw random
    numbers in code of their own (a custom layer, the stochastic depth of some keras-hub
    vision models): they are not recognised.

    A model is never sampled only in part without a word: with ``keras_dropout=None``
    (the default), a model that has Keras random layers with a rate above 0 is refused,
    naming them, whether or not it also has kreg layers (``keras.models.clone_model``
    swapping ``Dropout`` for ``kreg.layers.Dropout`` reaches 1 of the 7 dropouts of a
    keras-hub BERT, the others being rebuilt by their transformer layers); pass
    ``keras_dropout=True`` to sample them too, or ``False`` to sample only the kreg layers
    (Monte-Carlo dropout in a head, say). Layers with rate 0 never draw and count for
    nothing (keras-hub's Llama has ``dropout=0``).

    The passes are vectorised: each chunk of ``batch_size`` examples is repeated
    ``samples`` times and goes through the model's predict function in one call (every
    layer above draws independently for each row; one whose mask has a fixed batch axis,
    ``noise_shape=(1, ...)`` or ``(k, ...)``, gets one call per sample instead). Every
    chunk has ``batch_size`` rows (the last one overlaps the one before), so batch
    statistics such as ``GaussianNoise(relative=True)``'s do not depend on where the
    chunks end.

    Args:
        model: a Keras model containing at least one kreg stochastic layer, or, with
            ``keras_dropout=True``, one of the Keras layers above with a rate above 0.
        x: input array (or a list/dict of arrays for a multi-input model).
        samples: positive int, the number of stochastic passes.
        batch_size: examples per chunk (each repeated ``samples`` times); default 32.
        keras_dropout: True to sample Keras' own random layers (listed above) as well,
            False to leave them in inference mode, None (default) to refuse a model that
            has some with a rate above 0.

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

    A model with Keras' own ``Dropout`` (every keras-hub model) samples it when asked:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
    ...                           keras.layers.Dropout(0.5), keras.layers.Dense(1)])
    >>> mean, std = kreg.mc_predict(model, np.ones((3, 4), "float32"), samples=20,
    ...                             keras_dropout=True)
    >>> bool((std > 0).all())
    True

    References:
        Gal and Ghahramani, "Dropout as a Bayesian approximation: representing model
        uncertainty in deep learning", ICML 2016.
        Gal and Ghahramani, "A theoretically grounded application of dropout in recurrent
        neural networks", NeurIPS 2016.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Invalid value for argument `model`: expected a Keras model. Received: model={model!r}"
        )
    samples = check_count(samples, "samples", allow_none=False)
    batch_size = check_count(batch_size, "batch_size") or 32
    if keras_dropout is not None and not isinstance(keras_dropout, (bool, np.bool_)):
        raise invalid("keras_dropout", "True, False or None", keras_dropout)
    layers = stochastic_layers(model)
    layers = layers + _keras_layers_to_sample(model, layers, keras_dropout)
    vectorised = not any(_shares_noise_across_batch(layer) for layer in layers)
    forced = [layer for layer in layers if not getattr(layer, "_kreg_stochastic", False)]

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
        with force_stochastic(), training_forced(forced):
            for first in range(0, n, batch_size):
                # Every chunk is a full one (the last one reaches back), so that a layer
                # whose noise depends on the batch (GaussianNoise(relative=True)) never
                # sees a remainder of a few rows; only the new rows are kept.
                start = max(0, min(first, n - batch_size))
                chunk = keras.tree.map_structure(
                    lambda a, start=start: a[start : start + batch_size], x
                )
                rows = len(keras.tree.flatten(chunk)[0])
                keep = first - start
                if vectorised:
                    tiled = keras.tree.map_structure(
                        lambda a: np.tile(a, (samples,) + (1,) * (a.ndim - 1)), chunk
                    )
                    out = _predict(model, tiled)
                    out = keras.tree.map_structure(
                        lambda o, rows=rows: np.asarray(o).reshape(
                            (samples, rows) + np.shape(o)[1:]
                        ),
                        out,
                    )
                else:
                    passes = [_predict(model, chunk) for _ in range(samples)]
                    out = keras.tree.map_structure(
                        lambda *o: np.stack([np.asarray(v) for v in o]), *passes
                    )
                means.append(keras.tree.map_structure(lambda o, keep=keep: _mean(o)[keep:], out))
                stds.append(keras.tree.map_structure(lambda o, keep=keep: _std(o)[keep:], out))
    finally:
        model.predict_function = previous
    concat = lambda *parts: np.concatenate(parts, axis=0)  # noqa: E731
    return keras.tree.map_structure(concat, *means), keras.tree.map_structure(concat, *stds)


def _keras_layers_to_sample(model, kreg_layers, keras_dropout):
    """The Keras random layers to call with ``training=True``; refuses a model that would be
    sampled only in part, or not at all."""
    found = keras_random_layers(model)
    active = [(path, layer) for path, layer, strength in found if strength > 0]
    if keras_dropout is None and active and kreg_layers:
        raise ValueError(
            "Invalid value for argument `keras_dropout`: expected True (sample the model's "
            "Keras layers that are random at training as well) or False (sample only its kreg "
            "stochastic layers) for a model that has both. Received: keras_dropout=None, for "
            f"model {model.name!r} with {_count(kreg_layers, 'kreg stochastic layer')} and "
            f"{_count(active, 'Keras random layer')} that would not be sampled: "
            f"{_names(active)}"
        )
    if keras_dropout and active:
        return [layer for _, layer in active]
    if kreg_layers:
        return []
    if active:
        received = (
            f"no kreg stochastic layer, and keras_dropout={keras_dropout} leaves "
            f"{_count(active, 'Keras random layer')} in inference mode: {_names(active)} "
            "(pass keras_dropout=True to sample them)"
        )
    elif found:
        idle = [(path, layer) for path, layer, _ in found]
        received = (
            "no kreg stochastic layer, and its Keras random layers have rate 0 (they never "
            f"draw): {_names(idle)}"
        )
    else:
        received = "no kreg stochastic layer and no Keras random layer"
    raise ValueError(
        "Invalid value for argument `model`: expected a model containing at least one kreg "
        f"stochastic layer ({_KREG_LAYERS}), or, with keras_dropout=True, a Keras layer "
        f"that is random at training ({_KERAS_LAYERS}) with a rate above 0; without one "
        "every pass gives the same output (Keras' own Dropout is off at inference). "
        f"Received: model={model.name!r} with {received}"
    )


def _count(items, noun):
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _names(entries):
    """The first few ``(path, layer)`` entries by name, then how many there are in all."""
    names = [describe_keras_layer(path, layer) for path, layer in entries[:_NAMED]]
    more = f", ... ({len(entries)} in all)" if len(entries) > _NAMED else ""
    return ", ".join(names) + more


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
