"""Facts the checks read: which weights are penalized or decayed, by what, and the layer graph.

Everything here is read through public Keras attributes where Keras has them. Two facts
only exist as optimizer attributes: the exclusions set by Keras'
``optimizer.exclude_from_weight_decay`` (read with ``getattr`` and a default, and
matched the way Keras matches them on each backend).
"""

import math
import re

import keras
import numpy as np

from kreg._live import live_states, optimizer_chain, walk_layers
from kreg._masking import NORMALIZATION_LAYERS

# ---------------------------------------------------------------------------- optimizers

_ADAPTIVE_NAMES = (
    "Adam",
    "AdamW",
    "Adamax",
    "Nadam",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adafactor",
    "Ftrl",
    "Lamb",
    "Lion",
    "Muon",
    "ScheduleFreeAdamW",
)
ADAPTIVE_OPTIMIZERS = tuple(
    getattr(keras.optimizers, n) for n in _ADAPTIVE_NAMES if hasattr(keras.optimizers, n)
)


def is_kreg_decay(optimizer):
    """True for kreg.optimizers.DecoupledWeightDecay (and anything with its interface)."""
    return hasattr(optimizer, "weight_decay_multiplier") and hasattr(optimizer, "_kreg_strengths")


def stepper(chain):
    """The optimizer that computes the update direction: the innermost of the chain."""
    return chain[-1] if chain else None


def is_adaptive(optimizer):
    return isinstance(optimizer, ADAPTIVE_OPTIMIZERS)


def _as_float(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(keras.ops.convert_to_numpy(value))
    except Exception:
        return None
    return value if math.isfinite(value) else None


def schedule_of(optimizer):
    """The optimizer's LearningRateSchedule, or None for a constant learning rate."""
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return schedule
    if callable(schedule):  # a plain callable learning rate: no schedule to profile
        return None
    try:
        config = optimizer.get_config().get("learning_rate")
    except Exception:
        return None
    if isinstance(config, dict):
        try:
            found = keras.optimizers.schedules.deserialize(config)
        except Exception:
            return None
        if isinstance(found, keras.optimizers.schedules.LearningRateSchedule):
            return found
    return None


def learning_rate(optimizer, step=0):
    """The learning rate at ``step`` as a float (None if it cannot be read)."""
    schedule = schedule_of(optimizer)
    if schedule is not None:
        try:
            return _as_float(schedule(step))
        except Exception:
            return None
    try:
        return _as_float(getattr(optimizer, "learning_rate", None))
    except Exception:
        return None


def _config(schedule):
    """A schedule's config, or {} (a custom schedule need not implement get_config)."""
    try:
        return dict(schedule.get_config())
    except Exception:
        return {}


def schedule_end(schedule):
    """``(step, exact)``: the step where ``schedule`` ends, or a horizon to show it at."""
    config = _config(schedule)
    name = type(schedule).__name__
    if not config:
        return 10000, False
    if name == "CosineDecay":
        return int(config["decay_steps"]) + int(config.get("warmup_steps") or 0), True
    if name == "CosineDecayRestarts":
        return int(config["first_decay_steps"]), True
    if name == "PolynomialDecay" and not config.get("cycle"):
        return int(config["decay_steps"]), True
    if name == "PiecewiseConstantDecay":
        return int(config["boundaries"][-1]) + 1, True
    if "decay_steps" in config:
        return 10 * int(config["decay_steps"]), False
    return 10000, False


def schedule_profile(schedule):
    """``(lr at step 0, peak lr, lr at the end, end step, end is exact)`` of a schedule."""
    end, exact = schedule_end(schedule)
    config = _config(schedule)
    # A few steps only: on JAX each call of a schedule with a branch is traced anew.
    steps = set(np.linspace(0, end, 6).astype(int).tolist())
    steps.add(int(config.get("warmup_steps") or 0))  # the peak of a warm-up
    steps.update(int(b) + 1 for b in config.get("boundaries") or ())
    steps = sorted(s for s in steps if 0 <= s <= end)
    values = [_as_float(schedule(int(s))) for s in steps]
    values = [v for v in values if v is not None]
    if not values:
        return None
    return values[0], max(values), values[-1], end, exact


def peak_learning_rate(optimizer):
    """The largest learning rate of ``optimizer``'s schedule (a warm-up's peak, not step 0's).

    Its plain learning rate when it has no schedule to profile; None when unknown.
    """
    schedule = schedule_of(optimizer)
    profile = schedule_profile(schedule) if schedule is not None else None
    return profile[1] if profile is not None else learning_rate(optimizer)


def keras_weight_decay(optimizer, variable=None):
    """A Keras optimizer's own built-in ``weight_decay`` as a float (0.0 when unset).

    With ``variable``: the decay that acts on it. Muon decays the weights its Adam step
    updates (not matrices, embeddings, ``exclude_layers``) by ``adam_weight_decay``.
    """
    if is_kreg_decay(optimizer):
        return 0.0
    value = getattr(optimizer, "weight_decay", None)
    uses_adam = getattr(optimizer, "_should_use_adamw", None)
    if variable is not None and uses_adam is not None and hasattr(optimizer, "adam_weight_decay"):
        try:
            if uses_adam(variable):
                value = optimizer.adam_weight_decay
        except Exception:
            pass
    return _as_float(value) or 0.0


def _excluded_by_list(optimizer, variable):
    ids = getattr(optimizer, "_exclude_from_weight_decay", None) or set()
    if not ids:
        return False
    try:
        return optimizer._var_key(variable) in ids
    except Exception:
        return False


def exclusion_names(variable):
    """The name Keras' exclude_from_weight_decay(var_names=...) matches, per backend."""
    return {"tensorflow": f"{variable.path}:0", "other": variable.name}


def keras_excludes(optimizer, variable, backend=None):
    """True when ``optimizer.exclude_from_weight_decay`` excludes ``variable`` on ``backend``.

    Keras matches ``var_names`` with ``re.search`` on the TF variable's full name
    ("dense/bias:0") on TensorFlow, but on the short name ("bias") on JAX and torch.
    """
    if _excluded_by_list(optimizer, variable):
        return True
    pattern = getattr(optimizer, "_exclude_from_weight_decay_pattern", None)
    if pattern is None:
        return False
    backend = backend or keras.backend.backend()
    name = exclusion_names(variable)["tensorflow" if backend == "tensorflow" else "other"]
    return re.search(pattern, name) is not None


def exclusion_differs(optimizer, variable):
    """True when Keras' var_names exclusion decides ``variable`` differently per backend."""
    if _excluded_by_list(optimizer, variable):
        return False
    return keras_excludes(optimizer, variable, "tensorflow") != keras_excludes(
        optimizer, variable, "jax"
    )


def kreg_weight_decay(optimizer):
    """The live weight decay of a kreg DecoupledWeightDecay as a float (0.0 if unknown)."""
    try:
        found = dict(optimizer._kreg_strengths())
    except Exception:
        return 0.0
    handle = found.get("weight_decay")
    if handle is None:
        return 0.0
    try:
        value = float(handle)
    except Exception:
        return 0.0
    given = getattr(optimizer, "weight_decay", None)
    if callable(given):  # a schedule: the live strength is a scale on it; λ at step 0
        value *= _as_float(given(0)) or 0.0
    return value


def decays(chain, variable):
    """The weight decays that act on ``variable``: a list of ``(optimizer, per-weight λ)``."""
    found = []
    for optimizer in chain:
        if is_kreg_decay(optimizer):
            wd = kreg_weight_decay(optimizer)
            try:
                multiplier = float(optimizer.weight_decay_multiplier(variable))
            except Exception:
                multiplier = 0.0
            if wd > 0 and multiplier > 0:
                found.append((optimizer, wd * multiplier))
        else:
            wd = keras_weight_decay(optimizer, variable)
            if wd > 0 and not keras_excludes(optimizer, variable):
                found.append((optimizer, wd))
    return found


def plain_name(optimizer):
    """The class name to suggest inside DecoupledWeightDecay (AdamW without its decay is Adam)."""
    name = type(optimizer).__name__
    return "Adam" if name == "AdamW" else name


def optimizer_label(optimizer):
    """``"Adam"``, or ``"DecoupledWeightDecay(Adam)"`` for wrappers."""
    chain = optimizer_chain(optimizer)
    names = [type(o).__name__ for o in chain]
    return "(".join(names) + ")" * (len(names) - 1)


# ------------------------------------------------------------------------ regularizers


def l2_of(regularizer):
    """The L2 strength of a Keras or kreg regularizer (L2, L1L2, L2SP), else None."""
    if regularizer is None:
        return None
    return _as_float(getattr(regularizer, "l2", None))


def describe_regularizer(regularizer):
    parts = []
    for key in ("l1", "l2"):
        value = _as_float(getattr(regularizer, key, None))
        if value:
            parts.append(f"{key}={value:g}")
    if getattr(regularizer, "normalize", "sum") == "mean":
        parts.append("normalize='mean'")
    return f"{type(regularizer).__name__}({', '.join(parts)})"


def category(variable, owner):
    """"normalization", "embedding", "bias" or "weight"."""
    short = variable.path.rsplit("/", 1)[-1]
    if owner is not None and isinstance(owner, NORMALIZATION_LAYERS):
        return "normalization"
    if isinstance(owner, keras.layers.Embedding) or short == "embeddings":
        return "embedding"
    if short == "bias":
        return "bias"
    return "weight"


# ------------------------------------------------------------------------------ layers


def layer_paths(model):
    """``[(path, layer)]`` for every layer of ``model``, parents first."""
    return list(walk_layers(model))


def live_value(layer, key):
    """A layer's strength ``key``: its live value for kreg layers, else the attribute."""
    for _, state in live_states(layer):
        if key in state._live_keys:
            return state.current(key)
    return _as_float(getattr(layer, key, None))


def is_linear(activation):
    return activation is None or getattr(activation, "__name__", "") == "linear"


# ------------------------------------------------------------------------------- graph

_PASS_THROUGH = (keras.layers.Flatten, keras.layers.Reshape, keras.layers.Permute)


def _flat(value):
    return [t for t in keras.tree.flatten(value) if t is not None]


def _is_functional(model):
    if isinstance(model, keras.Sequential):
        return False
    try:
        return isinstance(model, keras.Model) and isinstance(model.inputs, (list, tuple))
    except Exception:
        return False


def edges(container):
    """``{id(producer): (producer, [consumers], used_elsewhere)}`` inside one model.

    For a Sequential model consecutive layers are connected; for a functional model the
    symbolic tensors say who feeds whom. Layers called more than once are left out
    (their single input is ambiguous); subclassed models have no graph to read.
    ``used_elsewhere`` is True when the producer's output is also a model output.
    """
    graph = {}
    if isinstance(container, keras.Sequential):
        layers = [l for l in container.layers if not isinstance(l, keras.layers.InputLayer)]
        for a, b in zip(layers, layers[1:]):
            graph[id(a)] = (a, [b], False)
        return graph
    if not _is_functional(container):
        return graph
    produced_by, consumers = {}, {}
    for layer in container.layers:
        if len(getattr(layer, "_inbound_nodes", ())) > 1:
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
    return [
        (path, layer)
        for path, layer in paths
        if isinstance(layer, keras.Sequential) or _is_functional(layer)
    ]


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
    found = []
    for node in getattr(layer, "_inbound_nodes", ()):
        tensors = _flat(getattr(node, "input_tensors", None))
        if len(tensors) == 1:
            found.append(tensors[0])
    if not found:
        tensor = input_tensor(layer)
        if tensor is not None:
            found.append(tensor)
    return found
