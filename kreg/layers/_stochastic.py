"""What every kreg stochastic layer shares: when it is active, and how mc_predict finds it.

A kreg stochastic layer is active when Keras calls it with ``training=True``, when it
was built with ``mc=True`` (then ``training`` is ignored: Keras passes
``training=False`` under ``predict`` and ``evaluate``), or while :func:`force_stochastic`
is in effect (``kreg.mc_predict`` uses it to sample every kreg stochastic layer of a model
without touching batch normalization or other layers that have an inference mode).
The decision is taken in Python, when the call is traced.
"""

import contextlib
import threading

import keras

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
        live = self.__dict__.get("_live") or getattr(self, "_modules", {}).get("_live")
        if live is not None and name in live._live_keys:
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
    from kreg._live import walk_layers

    return [layer for _, layer in walk_layers(model) if getattr(layer, "_kreg_stochastic", False)]


