"""kreg's augmentation layers inside tf.data on JAX and torch: the same maths on TensorFlow ops.

``tf.data`` traces a mapped function into a TensorFlow graph whatever the Keras backend,
so a layer mapped over a dataset receives TensorFlow graph tensors, which ``keras.ops`` on
JAX or torch cannot take. Keras' preprocessing layers then compute with Keras' own
TensorFlow implementations; kreg's layers do the same: :func:`ops_for` gives an
:class:`~kreg.layers._resample.OpSet` over those implementations, and
:func:`seed_generator_for` a TensorFlow-side ``SeedGenerator`` with the layer's seed.

This is the one kreg module that touches TensorFlow, and only when TensorFlow graph
tensors arrive: TensorFlow is then already imported (by ``tf.data``), so it reads
``sys.modules`` and never imports TensorFlow itself.
"""

import sys
import weakref

import keras

from kreg import _keras_compat as compat
from kreg.layers._resample import KERAS_OPS, OpSet

_TF_OPS = []
# Per layer, outside it: the layer's tracker would list a TensorFlow variable among the
# state of a JAX or torch model (saved, and passed to stateless_call).
_GENERATORS = weakref.WeakKeyDictionary()


def _tensorflow():
    return sys.modules.get("tensorflow")


def is_graph_tensor(value):
    """True for a symbolic TensorFlow tensor (``tf.data``'s map, a ``tf.function``)."""
    tf = _tensorflow()
    return tf is not None and isinstance(value, tf.Tensor) and tf.is_symbolic_tensor(value)


def needs_tf_ops(inputs):
    """True when ``inputs`` are TensorFlow graph tensors and the backend is not TensorFlow."""
    if keras.backend.backend() == "tensorflow" or inputs is None:
        return False
    flat = keras.tree.flatten(inputs)
    return bool(flat) and is_graph_tensor(flat[0])


def tf_ops():
    """Keras' TensorFlow implementations of the ``keras.ops`` names, as an OpSet."""
    if not _TF_OPS:
        backend = compat.tensorflow_backend()
        modules = [backend.numpy, backend.core, backend.math, backend.nn]
        _TF_OPS.append(OpSet(modules, backend.image, backend.random))
    return _TF_OPS[0]


def ops_for(inputs):
    """The op set that computes on ``inputs``: TensorFlow's under another backend for
    TensorFlow graph tensors, ``keras.ops`` otherwise."""
    return tf_ops() if needs_tf_ops(inputs) else KERAS_OPS


def seed_generator_for(layer, ops):
    """``layer.seed_generator``, or for TensorFlow ops under another backend a TensorFlow
    one seeded with ``layer.seed``, made once per layer."""
    if ops is KERAS_OPS:
        return layer.seed_generator
    generator = _GENERATORS.get(layer)
    if generator is None:
        generator = compat.tensorflow_seed_generator(layer.seed)
        _GENERATORS[layer] = generator
    return generator


def in_tf_data():
    """True while ``tf.data`` traces a function (a map, a filter): a graph that is never
    XLA-compiled, where TensorFlow's native image kernel is the fastest resampler.

    tf.data names the graphs of the functions it traces "Dataset_<transformation>_<fn>";
    a ``tf.function`` called inside one has it as an outer graph.
    """
    tf = _tensorflow()
    if tf is None or tf.executing_eagerly():
        return False
    graph = tf.compat.v1.get_default_graph()
    while graph is not None:
        if getattr(graph, "name", "").startswith("Dataset_"):
            return True
        graph = getattr(graph, "outer_graph", None)
    return False


def call_layer(layer, default_call, inputs, *args, **kwargs):
    """``default_call(inputs, ...)``, or for TensorFlow graph tensors under another backend
    Keras' ``Layer.__call__`` without converting them to that backend's tensors."""
    if not needs_tf_ops(inputs):
        return default_call(inputs, *args, **kwargs)
    with compat.inputs_unconverted(layer):
        return keras.layers.Layer.__call__(layer, inputs, *args, **kwargs)
