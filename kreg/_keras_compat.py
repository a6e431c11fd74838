"""Every private Keras name kreg relies on, in one place, each with the reason it is needed.

kreg otherwise uses only public ``keras``, ``keras.ops`` and ``keras.random``. When a Keras
release moves one of these, ``tests/test_keras_compat.py`` (one test per entry) fails
here, by name, instead of far from the cause.
"""

import contextlib
import importlib

import keras

__all__ = []  # private module: nothing here is kreg's public API


# -- layers


@contextlib.contextmanager
def unlocked_tracker(layer):
    """Let a built layer track a new attribute or weight (a strength state made live later).

    Keras locks a layer's attribute tracker (``layer._tracker``) after ``build()``; kreg
    adds a strength state or its variable to built layers when a strength becomes live.
    """
    tracker = getattr(layer, "_tracker", None)
    locked = bool(getattr(tracker, "locked", False))
    if locked:
        tracker.unlock()
    try:
        yield
    finally:
        if locked:
            tracker.lock()


def build_at_init(layer):
    """Mark a stateless layer built at the end of ``__init__`` (``layer._build_at_init``), as
    Keras' own Dropout and GaussianNoise are (Keras' layer tests check it), unless a
    subclass overrides ``build``; Keras before 3.11 has no such method."""
    build = getattr(layer, "_build_at_init", None)
    if build is not None:
        build()
    elif getattr(type(layer).build, "_is_default", False):
        layer.built = True


def sublayers(layer):
    """A layer's direct sublayers (``layer._flatten_layers``): Keras has no public list for
    the sublayers of an arbitrary layer (``Model.layers`` covers models only)."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


def own_trainable_variables(layer):
    """The weights a layer trains when it is trainable (``layer._trainable_variables``),
    also while it is frozen: ``layer.trainable_weights`` is empty then, and
    ``non_trainable_weights`` mixes them with never-trained state (moving statistics)."""
    return list(layer._trainable_variables)


# -- optimizers (kreg.audit)


def learning_rate_schedule(optimizer):
    """The LearningRateSchedule an optimizer was given, or None (``optimizer._learning_rate``).

    The public ``optimizer.learning_rate`` is the schedule's value at the current step and
    ``get_config()`` cannot serialize a custom schedule without ``get_config``; the audit
    profiles the schedule itself (its warm-up peak, its end).
    """
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return schedule
    return None


def muon_steps_with_adam(optimizer, variable):
    """True when Muon updates ``variable`` with its Adam rule (``_should_use_adamw``), None
    for an optimizer without one: Muon decays those weights by ``adam_weight_decay``, the
    others by ``weight_decay``, and its choice has no public name."""
    choose = getattr(optimizer, "_should_use_adamw", None)
    return None if choose is None else bool(choose(variable))


def weight_decay_exclusion_pattern(optimizer):
    """The compiled ``var_names`` of ``optimizer.exclude_from_weight_decay``, or None
    (``_exclude_from_weight_decay_pattern``): Keras has no getter, and the audit quotes
    the pattern where it selects different weights on TensorFlow and on JAX."""
    return getattr(optimizer, "_exclude_from_weight_decay_pattern", None)


def excluded_from_builtin_decay(optimizer, variable, backend=None):
    """True when ``optimizer.exclude_from_weight_decay`` exempts ``variable`` from a Keras
    optimizer's built-in decay on ``backend`` (default: the current one).

    Keras keeps ``var_list`` as private ids (``_exclude_from_weight_decay``, by
    ``_var_key``) and matches ``var_names`` with ``re.search`` against the TensorFlow
    variable's name ("dense/bias:0") on TensorFlow but against ``variable.name`` ("bias")
    elsewhere: the audit reads what each backend decays.
    """
    listed = getattr(optimizer, "_exclude_from_weight_decay", None)
    if listed and optimizer._var_key(variable) in listed:
        return True
    pattern = weight_decay_exclusion_pattern(optimizer)
    if pattern is None:
        return False
    backend = backend or keras.backend.backend()
    name = f"{variable.path}:0" if backend == "tensorflow" else variable.name
    return pattern.search(name) is not None


# -- layer graph (kreg.audit)


def call_input_tensors(layer):
    """The symbolic inputs of each call of ``layer``, one list per call (``_inbound_nodes``).

    Keras 3 keeps no public record of a layer's calls (``layer.input`` is its first call's
    only): the audit follows each call's input and leaves a layer called twice out of the
    layer-order checks.
    """
    return [list(node.input_tensors) for node in layer._inbound_nodes]


# -- optimizers (kreg.optimizers; learning_rate_schedule above serves it too)


def scale_for_replicas(value):
    """``value / num_replicas`` under a ``tf.distribute`` strategy, else ``value``.

    Why: a Keras optimizer all-reduce-SUMS its gradients across replicas before
    ``update_step``; DecoupledWeightDecay passes the amount of each write as the
    "gradient" of a tiny optimizer (kreg.optimizers._Write), and with mode="l2" adds
    λ·θ to each replica's gradients: each replica passes its share.
    Keras divides the loss the same way (``keras.src.losses.loss``).
    """
    return keras.src.losses.loss.scale_loss_for_distribution(value)


def micro_step(optimizer):
    """The optimizer's count of ``apply`` calls (gradient-accumulation micro-steps).

    Why: with ``gradient_accumulation_steps=n`` the public ``iterations`` is that count
    floor-divided by n, which cannot tell which micro-step updates the weights
    (``(count + 1) % n == 0``, as Keras decides in ``_backend_apply_gradients``).
    """
    return optimizer._iterations


# -- tf.data on other backends (kreg.layers._tf_graph)


def tensorflow_backend():
    """Keras' TensorFlow backend (``keras.src.backend.tensorflow``), whatever backend is set.

    Why: inside ``tf.data`` on JAX or torch a layer receives TensorFlow graph tensors, which
    the configured backend's ``keras.ops`` cannot take. Keras' own preprocessing layers
    compute there with this module (``DataLayer.backend``); kreg's augmentation maths runs
    on the same implementations of the same op names. Importing it imports TensorFlow.
    """
    return importlib.import_module("keras.src.backend.tensorflow")


def tensorflow_seed_generator(seed):
    """A ``SeedGenerator`` whose state is a TensorFlow variable under any backend
    (the undocumented ``backend=`` argument, as Keras' ``DataLayer`` makes its own).

    Why: random draws inside ``tf.data`` on JAX or torch must be TensorFlow ops that
    advance a TensorFlow state; the layer's own generator holds a JAX or torch variable.
    """
    return keras.random.SeedGenerator(seed, backend=tensorflow_backend())


@contextlib.contextmanager
def inputs_unconverted(layer):
    """Call ``layer`` on tensors of another framework, as Keras' ``DataLayer`` does inside
    ``tf.data``: without converting them (``layer._convert_input_args``) and without
    refusing them as positional arguments (``layer._allow_non_tensor_positional_args``).

    Why: ``Layer.__call__`` converts tensor arguments with the configured backend, and
    refuses a positional argument that is not that backend's tensor, which fails on
    TensorFlow graph tensors under JAX or torch; kreg's layers compute on them with
    TensorFlow ops there.
    """
    saved = layer._convert_input_args, layer._allow_non_tensor_positional_args
    layer._convert_input_args, layer._allow_non_tensor_positional_args = False, True
    try:
        yield
    finally:
        layer._convert_input_args, layer._allow_non_tensor_positional_args = saved


# -- callbacks (kreg.callbacks.RegularizationMonitor)


def calling_callback_list(callback, depth=8):
    """The ``keras.callbacks.CallbackList`` whose hook is calling one of ``callback``'s, or None.

    Why: Keras hands a callback its model and params, never the other callbacks, and
    ``fit`` calls each hook on its list in list order with one logs dict: a key that a
    callback adds at ``on_epoch_end`` is missed by every callback listed before it
    (TensorBoard, CSVLogger). Called from one of its own hooks, the monitor finds that list
    in the caller frames (``self`` of ``CallbackList.on_train_begin``) to run first.
    Looks ``depth`` frames up, for a list that holds ``callback`` itself; None where the
    hook was not called by a CallbackList (a custom training loop) or frames are not
    available.
    """
    import inspect

    frame = inspect.currentframe()
    try:
        frame = frame and frame.f_back
        for _ in range(depth):
            if frame is None:
                return None
            caller = frame.f_locals.get("self")
            if isinstance(caller, keras.callbacks.CallbackList) and any(
                item is callback for item in caller.callbacks
            ):
                return caller
            frame = frame.f_back
        return None
    finally:
        del frame


# -- layer graph, keyword arguments (kreg.audit)


def call_keyword_arguments(layer):
    """The keyword arguments of each recorded call of ``layer``, one dict per call
    (``node.arguments.kwargs`` of ``_inbound_nodes``).

    Why: a tied ``ReversibleEmbedding`` is both the input lookup and, called with
    ``reverse=True``, the output projection of a language model; only the call says which,
    and Keras keeps no public record of a call's arguments. The audit's embedding notes
    hold for the lookup only.
    """
    return [dict(node.arguments.kwargs) for node in layer._inbound_nodes]


# -- saving (kreg.regularizers.apply)


def serializes_its_layers(layer):
    """True for a Sequential or functional model whose config is Keras' own layer graph.

    Why: only such a model saves each of its layers' configs (a regularizer held by a
    layer comes back with it); a model that overrides ``get_config`` (keras-hub's
    backbones and tasks, most subclassed models) rebuilds its layers from its own
    arguments. Keras has no public name for the functional model class
    (``keras.src.models.functional.Functional``); ``keras.Model(inputs, outputs)`` makes one.
    """
    functional = importlib.import_module("keras.src.models.functional").Functional
    base = getattr(type(layer), "_kreg_base", type(layer))
    if issubclass(base, keras.Sequential):
        return base.get_config is keras.Sequential.get_config
    return issubclass(base, functional) and base.get_config is functional.get_config


# -- live strengths (kreg._live)


def tracing():
    """True while a step function is being traced (a TensorFlow graph, a JAX trace), not
    while Keras infers output shapes (its symbolic scope).

    Why: a strength read as a Python float while a step is traced is a constant of that
    step; a handle that makes it live later must rebuild that step, which only the model
    that owns it can (``kreg.strengths(model)``). Keras' own tests for this
    (``backend_utils.in_tf_graph``, ``jax_utils.is_in_jax_tracing_scope``,
    ``symbolic_scope.in_symbolic_scope``) have no public names.
    """

    def private(module, name):
        return getattr(importlib.import_module(f"keras.src.{module}"), name)

    import sys

    if private("backend.common.symbolic_scope", "in_symbolic_scope")():
        return False
    # A TensorFlow graph only where TensorFlow is loaded (Keras' test imports it).
    if (
        sys.modules.get("tensorflow") is not None
        and private("utils.backend_utils", "in_tf_graph")()
    ):
        return True
    return bool(private("utils.jax_utils", "is_in_jax_tracing_scope")())


# -- torch (kreg._write)


def _torch():
    # Imported on first use: torch is only there when it is the backend.
    return importlib.import_module("torch")


def no_gradient():
    """A context in which torch records no autograd graph (``torch.no_grad()``); a no-op
    context on the other backends.

    Why: on torch DecoupledWeightDecay writes the decayed weights eagerly, outside the
    optimizer's own ``apply`` (which Keras runs under ``torch.no_grad()``); computing a
    new value from a weight that requires a gradient would otherwise build a graph, and
    assigning it in place to a leaf tensor needs the same context. Keras has no public
    name for it.
    """
    if keras.backend.backend() != "torch":
        return contextlib.nullcontext()
    return _torch().no_grad()


# -- metrics and torch modules (kreg.callbacks, kreg.layers)


def metric_direction(metric):
    """ "max" or "min" for a Keras metric that knows which way it improves, else None
    (``metric._direction``, "up" or "down").

    Why: ``mode="auto"`` of an early-stopping callback must infer, as Keras' own
    ``MonitorCallback`` does from the same attribute, whether e.g. "val_auc" is to be
    maximized; Keras exposes no public name for it.
    """
    direction = getattr(metric, "_direction", None)
    if direction is None:
        return None
    return "max" if direction == "up" else "min"


def own_sublayer(layer, name):
    """The sublayer ``layer`` holds as attribute ``name``, or None, found without an
    attribute lookup (safe in ``__setattr__`` before ``__init__`` has run).

    Why: torch's ``Module.__setattr__`` keeps submodules in ``layer._modules``, not in the
    instance dict, and ``getattr`` during ``__init__`` can recurse into Keras' and torch's
    ``__getattr__``.
    """
    return layer.__dict__.get(name) or layer.__dict__.get("_modules", {}).get(name)


def multiply_in_place(tensors, factor):
    """``t *= factor`` for every torch tensor of ``tensors``, in one batched call
    (``torch._foreach_mul_``).

    Why: Keras' own torch AdamW decays all weights with this one call; DecoupledWeightDecay
    on torch does the same rather than one new tensor and one copy per weight.
    """
    _torch()._foreach_mul_(tensors, factor)


def subtract_in_place(tensors, others):
    """``t -= o`` for each torch tensor ``t`` of ``tensors`` and ``o`` of ``others``, in one
    batched call (``torch._foreach_sub_``): the soft-threshold step's in-place form, for
    the same reason as :func:`multiply_in_place`."""
    if tensors:
        _torch()._foreach_sub_(tensors, others)


def add_scaled_in_place(tensors, others, scale):
    """``t += scale·o`` for each torch tensor ``t`` of ``tensors`` and ``o`` of ``others``, in
    one batched call (``torch._foreach_add_``, ``scale`` a Python float): the coupled L2
    term added to the gradients, for the same reason as :func:`multiply_in_place`."""
    if tensors:
        _torch()._foreach_add_(tensors, others, alpha=scale)
