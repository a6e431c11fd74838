"""Small model and training helpers shared by the tutorials (Keras 3, any backend)."""

import keras
import numpy as np


def loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def mlp(
    ds,
    hidden=(100, 100),
    *,
    front=(),
    kernel_regularizer=None,
    dropout=None,
    input_dropout=None,
    name="mlp",
):
    """Flatten -> front layers -> [Dense(h, relu) -> dropout]* -> Dense(classes) (logits).

    ``kernel_regularizer`` is a zero-argument factory (each layer gets its own copy),
    ``dropout`` / ``input_dropout`` zero-argument layer factories.
    """
    inputs = keras.Input(ds.input_shape)
    x = inputs
    for layer in front:
        x = layer(x)
    x = keras.layers.Flatten()(x)
    if input_dropout is not None:
        x = input_dropout()(x)
    reg = (lambda: None) if kernel_regularizer is None else kernel_regularizer
    for i, h in enumerate(hidden):
        x = keras.layers.Dense(h, activation="relu", kernel_regularizer=reg(), name=f"dense_{i}")(x)
        if dropout is not None:
            x = dropout()(x)
    outputs = keras.layers.Dense(ds.num_classes, kernel_regularizer=reg(), name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def compile(model, optimizer, **kwargs):  # noqa: A001 - reads like Keras
    model.compile(
        optimizer=optimizer, loss=kwargs.pop("loss", loss()), metrics=["accuracy"], **kwargs
    )
    return model


def softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def scores_from_probs(probs, y):
    """(accuracy, mean negative log-likelihood) of class probabilities."""
    probs = np.asarray(probs, dtype="float64")
    acc = float(np.mean(probs.argmax(-1) == y))
    nll = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))))
    return acc, nll


def scores(model, x, y, batch_size=1000):
    """(accuracy, NLL) of a logits model on (x, y)."""
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return scores_from_probs(softmax(np.asarray(logits, "float64")), y)


class TestScore(keras.callbacks.Callback):
    """Adds ``test_accuracy`` (and ``test_loss``) to the epoch logs: for learning curves only.

    The test set is never used to choose anything; it is recorded so the tutorials can
    show what a stopping rule *would* keep.
    """

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            acc, nll = scores(self.model, self.x, self.y)
            logs["test_accuracy"] = acc
            logs["test_loss"] = nll


def mean_std(values):
    values = np.asarray(values, dtype="float64")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def packed_mlp(ds, regularizers, hidden=(100, 100), name="grid"):
    """``len(regularizers)`` independent MLPs side by side in one Keras model.

    Each sub-network has its own weights (named ``net{k}_...``) and its own output;
    Keras adds the outputs' losses, so each sub-network's gradient is exactly the one
    it would get alone, and a per-weight optimizer (SGD, Adam ...) updates it exactly as
    if it were trained alone. It is only a way to train a grid of small models at once:
    small models on a CPU are bound by per-step overhead, not by arithmetic.

    Args:
        regularizers: one zero-argument factory (or None) per sub-network.
    """
    inputs = keras.Input(ds.input_shape)
    flat = keras.layers.Flatten()(inputs)
    outputs = []
    for k, reg in enumerate(regularizers):
        reg = (lambda: None) if reg is None else reg
        x = flat
        for i, h in enumerate(hidden):
            x = keras.layers.Dense(
                h, activation="relu", kernel_regularizer=reg(), name=f"net{k}_dense_{i}"
            )(x)
        outputs.append(
            keras.layers.Dense(ds.num_classes, kernel_regularizer=reg(), name=f"net{k}_logits")(x)
        )
    return keras.Model(inputs, outputs, name=name)


def compile_packed(model, optimizer):
    n = len(model.outputs)
    model.compile(optimizer=optimizer, loss=[loss() for _ in range(n)])
    return model


def fit_packed(model, x, y, **kwargs):
    n = len(model.outputs)
    return model.fit(x, y if n == 1 else tuple(y for _ in range(n)), **kwargs)


def packed_scores(model, x, y, batch_size=1000):
    """[(accuracy, NLL)] of each sub-network of a :func:`packed_mlp`."""
    outs = model.predict(x, batch_size=batch_size, verbose=0)
    if len(model.outputs) == 1:
        outs = [outs]
    return [scores_from_probs(softmax(np.asarray(o, "float64")), y) for o in outs]


def packed(ds, towers, name="towers"):
    """Like :func:`packed_mlp`, for any towers: ``tower(inputs, prefix) -> logits``."""
    inputs = keras.Input(ds.input_shape)
    outputs = [tower(inputs, f"net{k}_") for k, tower in enumerate(towers)]
    return keras.Model(inputs, outputs, name=name)


def mlp_tower(ds, front=(), hidden=(100, 100), dropout=None, input_dropout=None):
    """A tower for :func:`packed`: front layers (factories) -> MLP -> logits."""

    def tower(inputs, prefix):
        x = inputs
        for make in front:
            x = make()(x)
        x = keras.layers.Flatten(name=prefix + "flatten")(x)
        if input_dropout is not None:
            x = input_dropout()(x)
        for i, h in enumerate(hidden):
            x = keras.layers.Dense(h, activation="relu", name=f"{prefix}dense_{i}")(x)
            if dropout is not None:
                x = dropout()(x)
        return keras.layers.Dense(ds.num_classes, name=prefix + "logits")(x)

    return tower


def cnn_tower(ds, front=(), filters=(32, 64)):
    """A tower for :func:`packed`: front layers (factories) -> small CNN -> logits."""

    def tower(inputs, prefix):
        x = inputs
        for make in front:
            x = make()(x)
        for i, f in enumerate(filters):
            x = keras.layers.Conv2D(
                f, 3, padding="same", activation="relu", name=f"{prefix}conv_{i}"
            )(x)
            if i < len(filters) - 1:
                x = keras.layers.MaxPooling2D(name=f"{prefix}pool_{i}")(x)
        # Flatten, not global pooling: the network itself is not made translation-invariant.
        x = keras.layers.Flatten(name=prefix + "flatten")(x)
        x = keras.layers.Dense(64, activation="relu", name=prefix + "dense")(x)
        return keras.layers.Dense(ds.num_classes, name=prefix + "logits")(x)

    return tower


def cnn1d_tower(ds, channels=25, batchnorm=False):
    """A tower for :func:`packed`: the MNIST-1D paper's CNN (Greydanus 2020).

    Three Conv1D layers of ``channels`` filters (kernel 5, stride 2, ReLU) and a linear
    read-out: the paper's network, which reaches 94% on MNIST-1D. ``batchnorm=True``
    puts a BatchNormalization after each convolution (whose bias is then dropped).
    """

    def tower(inputs, prefix):
        x = keras.layers.Reshape((-1, 1), name=prefix + "reshape")(inputs)
        for i in range(3):
            x = keras.layers.Conv1D(
                channels,
                5,
                strides=2,
                padding="same",
                use_bias=not batchnorm,
                name=f"{prefix}conv_{i}",
            )(x)
            if batchnorm:
                x = keras.layers.BatchNormalization(name=f"{prefix}bn_{i}")(x)
            x = keras.layers.ReLU(name=f"{prefix}relu_{i}")(x)
        x = keras.layers.Flatten(name=prefix + "flatten")(x)
        return keras.layers.Dense(ds.num_classes, name=prefix + "logits")(x)

    return tower
