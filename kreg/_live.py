"""Live strengths: regularization hyperparameters that a callback can change mid-training.

Keras bakes a Python float read inside the train step into the traced graph, and on the
JAX backend a variable the model does not track is captured as a constant. kreg keeps
every strength (λ, weight decay, σ, dropout rate ...) in a Keras variable that *is*
passed through the train step, without appearing in ``layer.weights``:

* A :class:`LiveState` is a ``keras.random.SeedGenerator`` subclass whose ``state`` is a
  float32 vector of named strengths. Layers track seed generators: their ``state`` joins
  ``layer.variables`` / ``non_trainable_variables`` (so the JAX train step carries it and
  sees new values) but not ``layer.weights`` (so saved weights load between a Keras model
  and the same model built with kreg classes) and it is not written into weight files.
  kreg layers hold a ``LiveState``; kreg regularizers *are* one, so the layer that stores
  the regularizer as an attribute (``Dense.kernel_regularizer``) tracks it.
* Optimizers keep their strengths in optimizer variables, which every backend carries.
* A :class:`Strength` is the user-facing handle on one entry: ``.assign(value)`` and
  ``float(strength)``. :func:`strengths` finds every handle reachable from a model.

On JAX the model's variables are detached from the carried state during an epoch; a
handle obtained through :func:`strengths` re-attaches them (``model.jax_state_sync()``)
before it reads or writes, so the next step picks the new value up.
"""

import itertools
import weakref

import keras
import numpy as np

from kreg._validate import check_non_negative

__all__ = ["Strength", "strengths"]


def read_values(variable):
    """A variable's value as a float32 NumPy array."""
    return np.asarray(keras.ops.convert_to_numpy(variable.value), dtype="float32")


class Strength:
    """Handle on one live strength: ``assign(value)``, ``float(strength)``.

    Obtained from :func:`kreg.strengths`. ``base`` is the value the owning object was
    built with (what ``get_config`` saves); ``kind`` groups strengths for callbacks
    ("regularizer", "weight_decay", "l1", "noise", "dropout", ...).

    Example:

    >>> import keras, kreg
    >>> model = keras.Sequential([keras.Input((3,)),
    ...     keras.layers.Dense(2, kernel_regularizer=kreg.regularizers.L2(0.01), name="d")])
    >>> s = kreg.strengths(model)["d.kernel_regularizer.l2"]
    >>> s.assign(0.5)
    >>> float(s)
    0.5
    """

    def __init__(
        self, variable, index, name, *, kind, base, check=check_non_negative, model=None,
        on_assign=None,
    ):
        self.variable = variable
        self.index = index
        self.name = name
        self.kind = kind
        self.base = float(base)
        self._check = check
        self._model = weakref.ref(model) if model is not None else None
        self._on_assign = on_assign

    def bind(self, model, name=None):
        """A copy of this handle that keeps ``model``'s JAX state in sync (and a new name)."""
        return Strength(
            self.variable,
            self.index,
            self.name if name is None else name,
            kind=self.kind,
            base=self.base,
            check=self._check,
            model=model,
            on_assign=self._on_assign,
        )

    def _sync(self):
        model = self._model() if self._model is not None else None
        sync = getattr(model, "jax_state_sync", None)
        if sync is not None:
            sync()

    def _read(self):
        return read_values(self.variable)

    def assign(self, value):
        """Set the strength; the next train step uses it (no recompiling)."""
        value = self._check(value, self.name)
        self._sync()
        if self.index is None:
            self.variable.assign(np.asarray(value, dtype=self.variable.dtype))
        else:
            current = np.array(self._read())
            current[self.index] = value
            self.variable.assign(current)
        if self._on_assign is not None:
            self._on_assign(value)

    def __float__(self):
        self._sync()
        current = self._read()
        return float(current if self.index is None else current[self.index])

    def __repr__(self):
        try:
            value = f"{float(self):.6g}"
        except Exception:  # a purged JAX variable outside a model, for instance
            value = "?"
        return f"<Strength {self.name}={value} (kind={self.kind}, base={self.base:.6g})>"


_STATE_NUMBERS = itertools.count(1)


class LiveState(keras.random.SeedGenerator):
    """Named float32 strengths in one variable, tracked by Keras layers as seed-generator state.

    Subclass it (regularizers) or hold one as a layer attribute (layers). ``get(key)``
    returns the current value as a tensor inside a computation.

    Args:
        values: dict from key ("l2", "stddev", "rate" ...) to its initial value.
        kind: the kind of every key, or a dict from key to kind.
        checks: optional dict from key to a validator ``check(value, name) -> float``;
            by default a finite float >= 0.
        label: how :func:`strengths` names this object inside its layer; None means the
            attribute name, "" means no component (a layer's own strengths).
    """

    def __init__(self, values, *, kind, checks=None, label=None, name=None):
        # SeedGenerator.__init__ is deliberately not called: it would create an integer
        # seed state. Layers only ever read `.state` from a tracked seed generator.
        # A unique name, as Keras gives its seed generators: variable paths must be unique
        # for Model.get_state_tree(), Orbax checkpoints and keras.distribution layouts.
        self.name = name or f"kreg_strengths_{next(_STATE_NUMBERS)}"
        checks = checks or {}
        self._live_keys = tuple(values)
        self._live_checks = {k: checks.get(k, check_non_negative) for k in self._live_keys}
        self._live_kinds = {
            k: (kind[k] if isinstance(kind, dict) else kind) for k in self._live_keys
        }
        self._live_base = {k: self._live_checks[k](values[k], k) for k in self._live_keys}
        # Python mirror of the values, kept by Strength.assign: read without touching the
        # variable (exact floats, and readable mid-epoch on JAX where the variable is purged).
        self._live_values = dict(self._live_base)
        self._live_label = label
        self.state = keras.Variable(
            np.asarray([self._live_base[k] for k in self._live_keys], dtype="float32"),
            dtype="float32",
            trainable=False,
            aggregation="none",
            name=self.name,
        )

    def get(self, key, dtype=None):
        """The current value of ``key`` as a scalar tensor (cast to ``dtype`` if given)."""
        value = self.state.value[self._live_keys.index(key)]
        return value if dtype is None else keras.ops.cast(value, dtype)

    def strength(self, key, name=None, model=None):
        """A :class:`Strength` handle on ``key``."""
        return Strength(
            self.state,
            self._live_keys.index(key),
            name or key,
            kind=self._live_kinds[key],
            base=self._live_base[key],
            check=self._live_checks[key],
            model=model,
            on_assign=lambda value, key=key: self._live_values.__setitem__(key, value),
        )

    def current(self, key):
        """The current value of ``key`` as a Python float.

        The value last assigned, exactly as given, while the variable holds it; the
        variable's value when something else wrote it (``model.set_state_tree``, an Orbax
        restore). Where the variable cannot be read (inside a traced function, or purged
        by the JAX trainer during ``fit``) the value last assigned.
        """
        value = self._live_values[key]
        try:
            stored = float(read_values(self.state)[self._live_keys.index(key)])
        except Exception:  # a symbolic or purged variable: the mirror is the truth
            return value
        if np.float32(value) != np.float32(stored):
            self._live_values[key] = value = stored
        return value

    def next(self, ordered=True):
        raise TypeError(
            f"{type(self).__name__} holds regularization strengths, not a random seed: "
            "it cannot be used as `seed=`."
        )


def current_config(state):
    """``{"current_strengths": {key: value}}`` when a strength moved from its base, else ``{}``.

    A strength's variable is not in the weight files (see the module docstring), so what
    training changed (a scheduled λ, an annealed rate) travels in the config; the
    config's own keys keep the constructor's values, as Keras' classes have them.
    """
    current = {key: state.current(key) for key in state._live_keys}
    if all(np.float32(current[k]) == np.float32(state._live_base[k]) for k in current):
        return {}
    return {"current_strengths": current}


def restore_current(state, values):
    """Assign the ``current_strengths`` a config carried (see :func:`current_config`)."""
    for key, value in (values or {}).items():
        if key not in state._live_keys:
            raise ValueError(
                f"Invalid value for argument `current_strengths`: expected keys among "
                f"{list(state._live_keys)}. Received: current_strengths={values!r}"
            )
        state.strength(key).assign(value)
    return state


def _sublayers(layer):
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=False))
    return list(getattr(layer, "layers", []))


def walk_layers(model):
    """Yield ``(prefix, layer)`` for ``model`` (prefix = its name) and all nested layers."""
    seen = set()

    def visit(layer, prefix):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        yield prefix, layer
        for child in _sublayers(layer):
            child_prefix = child.name if layer is model else f"{prefix}/{child.name}"
            yield from visit(child, child_prefix)

    yield from visit(model, model.name)


def weight_owners(model, include_frozen=False):
    """id(variable) -> (variable, prefix, layer): the deepest layer owning each trainable weight.

    In model order. With ``include_frozen`` also the weights a frozen layer
    (``trainable = False``) trains once it is unfrozen: Keras then marks the variables
    themselves untrainable, and only the layer's own list still tells them from
    never-trained state such as BatchNormalization's moving statistics.
    """
    owners = {}
    for prefix, layer in walk_layers(model):  # parents first, so children overwrite
        variables = layer.trainable_weights
        if include_frozen:
            variables = getattr(layer, "_trainable_variables", variables)
        for variable in variables:
            owners[id(variable)] = (variable, prefix, layer)
    return owners


def live_states(layer):
    """Yield ``(label, LiveState)`` for the live states a layer holds as attributes.

    The label is the attribute's name without leading underscores (MultiHeadAttention
    keeps ``_kernel_regularizer``: its strength is ``"mha.kernel_regularizer.l2"``).
    """
    for attr, value in list(vars(layer).items()):
        if isinstance(value, LiveState):
            label = value._live_label if value._live_label is not None else attr.lstrip("_")
            yield label, value


def is_live(obj):
    """True for a kreg object whose strengths are live (a kreg regularizer, a live state)."""
    return isinstance(obj, LiveState)


def layer_strength(layer, key):
    """The current value of a layer's own strength ``key`` (e.g. "rate"), or None."""
    for _, state in live_states(layer):
        if key in state._live_keys:
            return state.current(key)
    return None


def strengths(model, optimizer=None):
    """Every live strength reachable from ``model`` (and ``optimizer``), by readable name.

    Names are ``"<layer path>.<attribute>.<key>"`` for regularizers (e.g.
    ``"dense.kernel_regularizer.l2"``), ``"<layer path>.<key>"`` for a layer's own
    strengths (e.g. ``"gaussian_noise.stddev"``) and ``"optimizer.<key>"`` for the
    optimizer's (``optimizer`` defaults to ``model.optimizer``). Nested layers are
    joined with "/". Each value is a :class:`Strength` with ``.assign(value)`` and
    ``float(strength)`` that works between train steps on every backend.

    A regularizer given to ``add_weight(regularizer=...)`` in a custom layer is no layer
    attribute: the first call adopts it (as ``<weight>_regularizer``) so that it is
    listed and live. One regularizer instance shared by several layers is one strength;
    a saved model loads one copy per layer (as Keras does), each its own strength.

    Args:
        model: a Keras layer or model.
        optimizer: an optimizer whose strengths to include; default ``model.optimizer``.

    Returns:
        dict from name to :class:`Strength`, in model order.

    Example:

    >>> import keras, kreg
    >>> model = keras.Sequential([keras.Input((4,)),
    ...     keras.layers.Dense(3, kernel_regularizer=kreg.regularizers.L1L2(l1=0.1, l2=0.2),
    ...                        name="hidden")])
    >>> sorted(kreg.strengths(model))
    ['hidden.kernel_regularizer.l1', 'hidden.kernel_regularizer.l2']
    """
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            "Invalid value for argument `model`: expected a Keras layer or model. "
            f"Received: model={model!r}"
        )
    if optimizer is not None and not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            "Invalid value for argument `optimizer`: expected a Keras optimizer or None "
            f"(model.optimizer). Received: optimizer={optimizer!r}"
        )
    _adopt_weight_regularizers(model)
    found = {}
    seen = set()
    for prefix, layer in walk_layers(model):
        for label, state in live_states(layer):
            if id(state) in seen:
                continue
            seen.add(id(state))
            base = f"{prefix}.{label}" if label else prefix
            for key in state._live_keys:
                found[f"{base}.{key}"] = state.strength(key, f"{base}.{key}", model)
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        for key, handle in live_optimizer_strengths(optimizer).items():
            found[f"optimizer.{key}"] = handle.bind(model, f"optimizer.{key}")
    return found


def adopt(layer, attribute, value):
    """Set ``layer.<attribute> = value`` so the layer tracks it, even once built.

    Keras locks a layer's tracker after ``build()``; tracking a live state is what lets
    the JAX train step carry its strengths, so the lock is lifted for this one
    assignment (as Keras itself does when it untracks a variable).
    """
    tracker = getattr(layer, "_tracker", None)
    locked = bool(getattr(tracker, "locked", False))
    if locked:
        tracker.unlock()
    try:
        setattr(layer, attribute, value)
    finally:
        if locked:
            tracker.lock()


def _adopt_weight_regularizers(model):
    """Track the live regularizers that reach a weight only through ``add_weight(regularizer=)``.

    Such a regularizer (a custom layer's, Keras' documented way) is no layer attribute,
    so no layer tracks it: :func:`strengths` would not list it and the JAX train step
    would capture its strengths as constants. Its owner adopts it as
    ``_kreg_<weight>_regularizer``; a compiled model's step functions are rebuilt.
    """
    tracked = {id(state) for _, layer in walk_layers(model) for _, state in live_states(layer)}
    adopted = False
    for variable, _, owner in weight_owners(model, include_frozen=True).values():
        regularizer = getattr(variable, "regularizer", None)
        if isinstance(regularizer, LiveState) and id(regularizer) not in tracked:
            short = variable.path.rsplit("/", 1)[-1]
            if regularizer._live_label is None:
                regularizer._live_label = f"{short}_regularizer"
            adopt(owner, f"_kreg_{short}_regularizer", regularizer)
            tracked.add(id(regularizer))
            adopted = True
    if adopted and getattr(model, "compiled", False):
        model.make_train_function(force=True)
        model.make_test_function(force=True)


def optimizer_chain(optimizer):
    """``[optimizer, its inner optimizer, ...]``, outermost first.

    LossScaleOptimizer and kreg's DecoupledWeightDecay keep the wrapped one as
    ``inner_optimizer``.
    """
    chain, seen = [], set()
    while optimizer is not None and id(optimizer) not in seen:
        seen.add(id(optimizer))
        chain.append(optimizer)
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return chain


def live_optimizer_strengths(optimizer):
    """The optimizer's strengths: kreg optimizers implement ``_kreg_strengths()``."""
    for link in optimizer_chain(optimizer):
        get = getattr(link, "_kreg_strengths", None)
        if get is not None:
            return dict(get())
    return {}
