"""What every kreg stochastic layer shares: when it is active, and how mc_predict finds it.

A kreg stochastic layer is active when Keras calls it with ``training=True``, when it
was built with ``mc=True`` (then ``training`` is ignored: Keras passes
``training=False`` under ``predict`` and ``evaluate``), or while :func:`force_stochastic`
is in effect (``kreg.mc_predict`` uses it to sample every kreg stochastic layer of a model
without touching batch normalization or other layers that have an inference mode).
The decision is taken in Python, when the call is traced.

Keras' own layers that are random at training (``keras.layers.Dropout`` and the other
regularization layers, and the ``dropout`` of attention and recurrent layers) do not
look at :func:`force_stochastic`; :func:`keras_random_layers` finds them and
:func:`training_forced` calls them with ``training=True`` (``kreg.mc_predict``'s
``keras_dropout=True``).
"""

import contextlib
import functools
import threading

import keras

from kreg import _keras_compat as compat
from kreg._walk import walk_layers
from kreg.layers import _tf_graph

# Process-wide, not per thread: tf.distribute.MirroredStrategy traces each replica's step
# in a thread of its own, and those traces must see the forcing too.
_LOCK = threading.Lock()
_STATE = {"depth": 0}


@contextlib.contextmanager
def force_stochastic():
    """Within this context every kreg stochastic layer samples, whatever ``training`` is."""
    with _LOCK:
        _STATE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["depth"] -= 1


def is_forced():
    return _STATE["depth"] > 0


class StochasticLayer(keras.layers.Layer):
    """Base of the kreg layers that sample: ``self.active(training)`` says whether to."""

    #: mc_predict looks for layers with this attribute.
    _kreg_stochastic = True
    mc = False
    #: True for layers whose maths also runs on TensorFlow ops (kreg.layers._tf_graph),
    #: so that they take TensorFlow graph tensors (tf.data) on every backend.
    _runs_in_tf_data = False

    def active(self, training):
        return bool(training) or bool(self.mc) or is_forced()

    def __setattr__(self, name, value):
        live = compat.own_sublayer(self, "_live")
        if live is not None and name in live.strength_records():
            raise AttributeError(
                f"`{type(self).__name__}.{name}` is live: setting the attribute would not "
                "reach a compiled train step. Use "
                f"`kreg.strengths(model)['{self.name}.{name}'].assign(value)`."
            )
        super().__setattr__(name, value)

    def __call__(self, inputs, *args, **kwargs):
        if self._runs_in_tf_data:
            return _tf_graph.call_layer(self, super().__call__, inputs, *args, **kwargs)
        check_native(inputs, self)
        return super().__call__(inputs, *args, **kwargs)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        current = config.pop("current_strengths", None)  # written by kreg 0.1 files
        layer = super().from_config(config)
        if current:
            layer._live.restore(current)
        return layer


def check_native(inputs, layer):
    """A clear error for TensorFlow graph tensors under another backend (e.g. tf.data on
    JAX) given to a layer that has no TensorFlow-ops path: the dropout layers, which
    belong in the model (the augmentation layers and GaussianNoise have one,
    :mod:`kreg.layers._tf_graph`)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    flat = keras.tree.flatten(inputs) if inputs is not None else []
    first = flat[0] if flat else None
    module = type(first).__module__ or ""
    if module.startswith("tensorflow") and not hasattr(first, "numpy"):
        raise ValueError(
            f"Invalid value for argument `inputs` of {type(layer).__name__}: expected "
            f"{backend} tensors or arrays. Received: a symbolic TensorFlow tensor (for "
            f"example inside tf.data's `map`). On the {backend} backend only kreg's "
            "augmentation layers (RandomAffine, RandomShift1D, GaussianNoise) run inside "
            f"tf.data; put {type(layer).__name__} in the model."
        )


def stochastic_layers(model):
    """The kreg stochastic layers reachable from ``model`` (``model`` included)."""
    return [layer for _, layer in walk_layers(model) if getattr(layer, "_kreg_stochastic", False)]


# -- Keras' own layers that are random at training (mc_predict's keras_dropout)


def keras_random_layers(model):
    """``(path, layer, strength)`` for each Keras layer of ``model`` (nested ones included)
    that draws random numbers when it is called with ``training=True``, and in which
    ``training`` switches nothing else, so that calling it with ``training=True`` at
    inference samples it and changes nothing more:

    * ``keras.layers.Dropout`` and its subclasses (``SpatialDropout1D/2D/3D``; the
      ``Dropout`` that ``MultiHeadAttention``, ``GroupedQueryAttention`` and keras-hub's
      transformer layers hold), ``GaussianDropout``, ``AlphaDropout`` (strength: ``rate``)
      and ``GaussianNoise`` (``stddev``);
    * ``keras.layers.Attention`` and ``AdditiveAttention`` (``dropout`` on the attention
      weights);
    * recurrent layers (``LSTM``, ``GRU``, ``SimpleRNN``, ``ConvLSTM1D/2D/3D``, ``RNN`` on
      Keras' cells, also inside ``Bidirectional``) with ``dropout`` or
      ``recurrent_dropout`` (the largest of their cells' rates in (0, 1), which are the
      ones Keras draws for).

    A strength of 0 means the layer never draws (Llama's ``dropout=0``). kreg's own
    stochastic layers are left out (:func:`stochastic_layers`), and so are layers that
    draw in code of their own (custom layers, some keras-hub vision models' stochastic
    depth) or Keras' augmentation layers: nothing tells them apart from deterministic ones.
    """
    found = []
    for path, layer in walk_layers(model):
        strength = _keras_strength(layer)
        if strength is not None:
            found.append((path, layer, strength))
    return found


def _keras_strength(layer):
    """The rate (or stddev) of a Keras layer :func:`keras_random_layers` lists, else None."""
    if getattr(layer, "_kreg_stochastic", False):
        return None
    layers = keras.layers
    if isinstance(layer, (layers.Dropout, layers.GaussianDropout, layers.AlphaDropout)):
        return float(layer.rate)
    if isinstance(layer, layers.GaussianNoise):
        return float(layer.stddev)
    if isinstance(layer, layers.Attention):  # AdditiveAttention subclasses it
        return float(layer.dropout)
    if isinstance(layer, layers.RNN):
        cells = _keras_cells(layer)
        if cells is None:
            return None  # a cell of the user's own: its `training` may do anything
        rates = [getattr(c, name, 0.0) for c in cells for name in ("dropout", "recurrent_dropout")]
        # Keras' cells draw only for a rate strictly between 0 and 1.
        return max([float(r) for r in rates if 0.0 < r < 1.0], default=0.0)
    return None


def _keras_cells(layer):
    """The cells of a recurrent layer when all are Keras' own (LSTM, GRU, SimpleRNN and
    ConvLSTM cells), else None."""
    layers = keras.layers
    cell = layer.cell
    cells = list(cell.cells) if isinstance(cell, layers.StackedRNNCells) else [cell]
    known = (layers.LSTMCell, layers.GRUCell, layers.SimpleRNNCell)
    if isinstance(layer, (layers.ConvLSTM1D, layers.ConvLSTM2D, layers.ConvLSTM3D)):
        return cells
    return cells if all(isinstance(c, known) for c in cells) else None


def describe_keras_layer(path, layer):
    """``'path' (Dropout, rate=0.1)``: a Keras random layer as error messages name it."""
    if isinstance(layer, keras.layers.GaussianNoise):
        setting = f"stddev={layer.stddev:g}"
    elif isinstance(layer, keras.layers.Attention):
        setting = f"dropout={layer.dropout:g}"
    elif isinstance(layer, keras.layers.RNN):
        cells = _keras_cells(layer)
        setting = ", ".join(
            f"{name}={max(float(getattr(c, name, 0.0)) for c in cells):g}"
            for name in ("dropout", "recurrent_dropout")
        )
    else:
        setting = f"rate={float(layer.rate):g}"
    return f"'{path}' ({type(layer).__name__}, {setting})"


@contextlib.contextmanager
def training_forced(layers):
    """Within this context each of ``layers`` is called with ``training=True``, whatever its
    caller passes.

    A model's ``predict`` passes ``training=False`` down the model, and keras-hub's
    transformer layers pass it to their dropout explicitly (``dropout(x,
    training=training)``), which beats any call context; so each layer's ``call`` is
    wrapped, on the instance only, for as long as the context lasts. Keras calls a layer's
    ``call`` through the attribute (``self.call``, in ``Operation.__call__``) on every
    call, and a compiled predict function keeps what it saw when it was traced:
    ``kreg.mc_predict`` traces a fresh one inside the context and puts the model's own
    back afterwards. Pinned by tests/test_mc_predict.py on every backend.
    """
    saved = []
    try:
        for layer in layers:
            saved.append((layer, layer.__dict__.get("call", _ABSENT)))
            # Written into the instance's __dict__: Keras' attribute tracking (and torch's
            # Module.__setattr__) has nothing to do with a wrapped method.
            layer.__dict__["call"] = _with_training(layer.call)
        yield
    finally:
        for layer, previous in reversed(saved):
            if previous is _ABSENT:
                layer.__dict__.pop("call", None)
            else:
                layer.__dict__["call"] = previous


_ABSENT = object()


def _with_training(call):
    @functools.wraps(call)
    def call_in_training(*args, **kwargs):
        kwargs["training"] = True
        return call(*args, **kwargs)

    return call_in_training
