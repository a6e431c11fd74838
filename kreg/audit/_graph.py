"""The layer graph the order checks read: who feeds whom, and what a sample looks like there.

Sequential and functional models (nested ones included) have a graph; a subclassed
model's ``call`` has none to read, so nothing here claims anything about it.
"""

import warnings

import keras
import numpy as np

from kreg import _keras_compat as compat

_PASS_THROUGH = (keras.layers.Flatten, keras.layers.Reshape, keras.layers.Permute)
_SAMPLE_ROWS = 1024


def _flat(value):
    return [t for t in keras.tree.flatten(value) if t is not None]


def is_functional(model):
    if isinstance(model, keras.Sequential):
        return False
    try:
        return isinstance(model, keras.Model) and isinstance(model.inputs, (list, tuple))
    except Exception:
        return False


def has_graph(layer):
    """True for the Sequential and functional models: their layer order can be read."""
    return isinstance(layer, keras.Sequential) or is_functional(layer)


def edges(container):
    """``{id(producer): (producer, [consumers], used_elsewhere)}`` inside one model.

    For a Sequential model consecutive layers are connected; for a functional model the
    symbolic tensors say who feeds whom. Layers called more than once are left out
    (their single input is ambiguous); subclassed models have no graph to read.
    ``used_elsewhere`` is True when the producer's output is also a model output.
    """
    graph = {}
    if isinstance(container, keras.Sequential):
        layers = [
            layer for layer in container.layers if not isinstance(layer, keras.layers.InputLayer)
        ]
        for a, b in zip(layers, layers[1:]):
            graph[id(a)] = (a, [b], False)
        return graph
    if not is_functional(container):
        return graph
    produced_by, consumers = {}, {}
    for layer in container.layers:
        if len(compat.call_input_tensors(layer)) > 1:
            continue  # called more than once: `layer.output` is only its first call's
        try:
            outputs = _flat(layer.output)
            inputs = [] if isinstance(layer, keras.layers.InputLayer) else _flat(layer.input)
        except Exception:
            continue
        for tensor in outputs:
            produced_by[id(tensor)] = layer
        for tensor in inputs:
            consumers.setdefault(id(tensor), []).append(layer)
    model_outputs = {id(t) for t in _flat(container.outputs)}
    for tensor_id, producer in produced_by.items():
        if isinstance(producer, keras.layers.InputLayer):
            continue
        entry = graph.setdefault(id(producer), (producer, [], False))
        users = consumers.get(tensor_id, [])
        graph[id(producer)] = (
            producer,
            entry[1] + users,
            entry[2] or tensor_id in model_outputs,
        )
    return graph


def containers(paths):
    """The Sequential and functional models among ``paths``: ``[(path, model)]``."""
    return [(path, layer) for path, layer in paths if has_graph(layer)]


def successors(graph, layer, through=True):
    """The layers fed by ``layer``'s output (through Flatten/Reshape/Permute if ``through``)."""
    found, frontier, seen = [], [layer], set()
    while frontier:
        current = frontier.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for nxt in graph.get(id(current), (None, [], False))[1]:
            if through and isinstance(nxt, _PASS_THROUGH):
                frontier.append(nxt)
            else:
                found.append(nxt)
    return found


def input_tensor(layer):
    """The layer's single symbolic input, or None when it has none or several."""
    try:
        inputs = _flat(layer.input)
    except Exception:
        return None
    return inputs[0] if len(inputs) == 1 else None


def call_inputs(layer):
    """The single symbolic input of each call of ``layer`` (a model's ``.input`` is its own)."""
    try:
        calls = compat.call_input_tensors(layer)
    except Exception:
        calls = []
    found = [tensors[0] for tensors in calls if len(tensors) == 1]
    if not found:
        tensor = input_tensor(layer)
        if tensor is not None:
            found.append(tensor)
    return found


# ----------------------------------------------------------------------- the sample


def _to_numpy(value):
    return keras.tree.map_structure(
        lambda x: np.asarray(keras.ops.convert_to_numpy(x))[:_SAMPLE_ROWS], value
    )


def _model_inputs(model):
    """The symbolic inputs of ``model``'s own graph, in the structure ``model(sample)`` takes.

    None when unknown. (A Sequential model's ``.input`` is its first call's input.)
    """
    if not isinstance(model, keras.Sequential):
        try:
            return model.input  # functional models: a tensor, list or dict
        except Exception:
            pass
    try:
        inputs = list(model.inputs)  # a built Sequential model
    except Exception:
        return None
    return inputs[0] if len(inputs) == 1 else inputs


def sample_at_inputs(model, paths, sample, layers):
    """``{id(layer): np.ndarray}``: ``sample`` (at most its first 1024 rows) as it reaches
    the input of each of ``layers`` (``[(path, layer)]`` among ``paths``, ``model``'s).

    A layer inside a nested Sequential or functional model is reached in two probes:
    the sample's value at the nested model's input, then inside the nested model.
    """
    if sample is None or not layers:
        return {}
    by_path = dict(paths)
    sample = _to_numpy(sample)
    cache = {}

    def value_at(path, layer):
        """The sample's value at ``layer``'s input (None when there is no graph to follow)."""
        if path in cache:
            return cache[path]
        cache[path] = None  # a cycle guard; replaced below
        parent_path = path.rpartition("/")[0] if "/" in path else None
        parent = model if parent_path is None else by_path.get(parent_path)
        if parent is None:
            return None
        if parent is model:
            inputs, value = _model_inputs(model), sample
        elif has_graph(parent):
            inputs, value = _model_inputs(parent), value_at(parent_path, parent)
        else:
            return None  # a subclassed container: its call is no graph
        if inputs is None or value is None:
            return None
        for tensor in call_inputs(layer):  # the call inside `parent` is one of them
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = keras.Model(inputs, tensor)(value, training=False)
            except Exception:
                continue
            cache[path] = np.asarray(keras.ops.convert_to_numpy(result))
            break
        return cache[path]

    found = {}
    for path, layer in layers:
        value = value_at(path, layer)
        if value is not None:
            found[id(layer)] = value
    return found
