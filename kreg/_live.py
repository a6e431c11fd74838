"""Live strengths: regularization hyperparameters that a callback can change mid-training.

Keras bakes a Python float read inside the train step into the traced graph, and on the
JAX backend a variable the model does not track is captured as a constant. kreg keeps
the strengths of each object (λ, σ, a dropout rate ...) in a :class:`StrengthState`, a
small Keras layer that the layer using them tracks as a sublayer:

* Until something asks for a handle, a strength is a Python float, exactly as in Keras:
  the state has no variable, so a kreg class built with Keras' arguments has Keras'
  weights, variables and seed generators (Keras' own layer tests pass with kreg's
  classes swapped in).
* Asking for a handle (:func:`strengths`, which every kreg callback uses) makes the
  state *live*: it creates one float32 non-trainable weight holding its strengths, and
  the model's compiled step functions are rebuilt once. From then on the step reads the
  variable, on every backend (the JAX train step carries it like any weight).
* The state saves its current values itself, under its own path in weight files
  (``.../dropout/_live/vars``, ``.../dense/kernel_regularizer/vars``), live or not: so
  ``save_weights``/``load_weights``, ``BackupAndRestore`` and ``.keras`` files keep what
  a callback set, while the layer's own entry keeps Keras' layout (a file saved by a
  plain Keras model loads into the kreg one and the other way round; a missing entry
  keeps the current values).
* kreg layers hold a ``StrengthState``; kreg regularizers *are* one, so the layer that
  stores the regularizer as an attribute (``Dense.kernel_regularizer``) tracks it.
  Optimizers keep their strengths in optimizer variables, which every backend carries.
* A :class:`Strength` is the user-facing handle on one entry: ``.assign(value)`` and
  ``float(strength)``.

On JAX the model's variables are detached from the carried state during an epoch; a
handle obtained through :func:`strengths` re-attaches them (``model.jax_state_sync()``)
before it reads or writes, so the next step picks the new value up.
"""

import contextlib

import keras
import numpy as np

from kreg import _keras_compat as compat
from kreg._strength import LiveStrengths, Strength, record
from kreg._validate import check_non_negative
from kreg._walk import find_in_chain, walk_layers, weight_owners

__all__ = ["Strength", "strengths"]


def read_values(variable):
    """A variable's value as a float32 NumPy array."""
    return np.asarray(keras.ops.convert_to_numpy(variable.value), dtype="float32")


class StrengthState(keras.layers.Layer, LiveStrengths):
    """Named strengths of one kreg object: Python floats, and a variable once live.

    Hold one as a layer attribute (kreg layers), or subclass it (kreg regularizers, so
    that the layer keeping the regularizer as an attribute tracks it). ``get(key)``
    returns the value to use inside a computation: the Python float, or once
    :meth:`make_live` has run, the entry of the state's variable.

    Args:
        values: dict from key ("l2", "stddev", "rate" ...) to its initial value.
        kind: the kind of every key, or a dict from key to kind.
        checks: optional dict from key to a validator ``check(value, name) -> float``;
            by default a finite float >= 0.
        label: how :func:`strengths` names this object inside its layer; None means the
            attribute name, "" means no component (a layer's own strengths).
        name: the layer name (unique by default).
    """

    def __init__(self, values, *, kind, checks=None, label=None, name=None):
        keras.layers.Layer.__init__(self, name=name)
        checks = checks or {}
        self._live_records = {
            key: record(
                key,
                kind[key] if isinstance(kind, dict) else kind,
                values[key],
                checks.get(key, check_non_negative),
            )
            for key in values
        }
        # The exact Python values: read without touching the variable (readable
        # mid-epoch on JAX, where the trainer purges model variables).
        self._live_values = {key: r.base for key, r in self._live_records.items()}
        self._live_label = label
        self._live_variable = None
        # Set when a step function being traced reads the Python floats: that step holds
        # them as constants until the model that owns it rebuilds it.
        self._live_read_in_trace = False
        self.built = True

    # -- the protocol

    def strength_records(self):
        return self._live_records

    def read_strength(self, key):
        """The current value of ``key`` as a Python float.

        The value last set, exactly as given, while the variable holds it; the
        variable's value when something else wrote it (``model.set_state_tree``, an Orbax
        restore). Where the variable cannot be read (inside a traced function, or purged
        by the JAX trainer during ``fit``) the value last set.
        """
        value = self._live_values[key]
        if self._live_variable is None:
            return value
        try:
            stored = float(read_values(self._live_variable)[self._index(key)])
        except Exception:  # a symbolic or purged variable: the mirror is the truth
            return value
        if np.float32(value) != np.float32(stored):
            self._live_values[key] = value = stored
        return value

    def write_strength(self, key, value):
        self._live_values[key] = value
        if self._live_variable is not None:
            self._live_variable.assign(
                np.asarray([self._live_values[k] for k in self._live_records], dtype="float32")
            )

    def make_live(self, path=None):
        """Move the strengths into a float32 non-trainable weight; True if it is new.

        ``path`` names the variable ("<path>/strengths"): :func:`strengths` passes the
        owner's layer path, so that the same model built twice has the same variable
        paths (``set_state_tree`` and checkpoints match variables by path). A compiled
        model must rebuild its step functions afterwards (:func:`strengths` does): the
        ones traced before read the Python floats.
        """
        if self._live_variable is not None:
            return False
        values = [self._live_values[k] for k in self._live_records]
        scopes = [keras.name_scope(part) for part in (path or self.name).split("/")]
        with contextlib.ExitStack() as stack, compat.unlocked_tracker(self):
            for scope in scopes:
                stack.enter_context(scope)
            # Assigned as an attribute, a variable is the layer's own (tracked) weight.
            self._live_variable = keras.Variable(
                keras.initializers.Constant(values),
                shape=(len(values),),
                dtype="float32",
                trainable=False,
                name="strengths",
            )
        return True

    def _index(self, key):
        return list(self._live_records).index(key)

    # -- inside a computation

    def get(self, key, dtype=None):
        """The current value of ``key``: a Python float, or a scalar tensor once live."""
        if self._live_variable is None:
            value = self._live_values[key]
            if not self._live_read_in_trace and compat.tracing():
                self._live_read_in_trace = True
        else:
            value = self._live_variable.value[self._index(key)]
        return value if dtype is None else keras.ops.cast(value, dtype)

    # -- between steps

    @property
    def live(self):
        """Whether the strengths are in a variable (see :meth:`make_live`)."""
        return self._live_variable is not None

    @property
    def read_in_trace(self):
        """Whether a step function traced before the strengths were live holds them."""
        return self._live_read_in_trace

    @property
    def strength_label(self):
        """How :func:`strengths` names this object in its layer (None: the attribute's name)."""
        return self._live_label

    @strength_label.setter
    def strength_label(self, label):
        self._live_label = label

    def strength_keys(self):
        return tuple(self._live_records)

    def strength_base(self, key):
        return self._live_records[key].base

    def current(self, key):
        """The current value of ``key`` as a Python float (see :meth:`read_strength`)."""
        return self.read_strength(key)

    def set(self, key, value):
        """Set ``key`` (checked), in the variable too when live."""
        self.write_strength(key, self._live_records[key].check(value, key))

    def strength(self, key, name=None, model=None):
        """A :class:`Strength` handle on ``key``; the state becomes live."""
        self.make_live()
        return Strength(self, key, name or key, model)

    def moved(self):
        """``{key: value}`` for the strengths whose value differs from the base."""
        current = {k: self.read_strength(k) for k in self._live_records}
        return {k: v for k, v in current.items() if v != self._live_records[k].base}

    def restore(self, values):
        """Set the strengths given as ``{key: value}`` (e.g. a config's ``current_strengths``)."""
        for key, value in (values or {}).items():
            if key not in self._live_records:
                raise ValueError(
                    f"Invalid value for argument `current_strengths`: expected keys among "
                    f"{list(self._live_records)}. Received: current_strengths={values!r}"
                )
            self.set(key, value)
        return self

    # -- weight files: our own entry, never the owning layer's

    def save_own_variables(self, store):
        # float64: the exact floats come back (a float32 copy would turn 0.1 into
        # 0.10000000149).
        store["0"] = np.asarray(
            [self.read_strength(k) for k in self._live_records], dtype="float64"
        )

    def load_own_variables(self, store):
        if not list(store.keys()):
            return  # a file saved with Keras' own classes: keep the current values
        values = np.asarray(store["0"], dtype="float64").reshape(-1)
        if values.shape != (len(self._live_records),):
            raise ValueError(
                f"Invalid value for argument `store` of {self.name!r}: expected "
                f"{len(self._live_records)} strengths ({', '.join(self._live_records)}). "
                f"Received: {values.size} values"
            )
        for key, value in zip(self._live_records, values):
            self.set(key, float(value))


def layer_attributes(layer):
    """``[(name, value)]``: a layer's instance attributes, sublayers included."""
    attributes = dict(vars(layer))
    children = getattr(layer, "named_children", None)
    if callable(children):  # torch: a torch.nn.Module keeps its submodules apart
        attributes.update(children())
    return list(attributes.items())


def live_states(layer):
    """Yield ``(label, StrengthState)`` for the strength states a layer holds as attributes.

    The label is the attribute's name without leading underscores (MultiHeadAttention
    keeps ``_kernel_regularizer``: its strength is ``"mha.kernel_regularizer.l2"``).
    """
    for attr, value in layer_attributes(layer):
        if isinstance(value, StrengthState):
            label = value.strength_label if value.strength_label is not None else attr.lstrip("_")
            yield label, value


def is_live(obj):
    """True for a kreg object with live-able strengths (a kreg regularizer, a strength state)."""
    return isinstance(obj, StrengthState)


def layer_strength(layer, key):
    """The current value of a layer's own strength ``key`` (e.g. "rate"), or None."""
    for _, state in live_states(layer):
        if key in state.strength_records():
            return state.read_strength(key)
    return None


def _states(model):
    """``{name prefix: state}`` for every strength state reachable from ``model``, in order."""
    found, seen = {}, set()
    for prefix, layer in walk_layers(model):
        for label, state in live_states(layer):
            if id(state) not in seen:
                seen.add(id(state))
                found[f"{prefix}.{label}" if label else prefix] = state
    return found


def _check_rebuildable(model, states):
    """Refuse to make live, through ``model``, strengths a step it cannot rebuild holds.

    A step function traced while a strength was a Python float holds it as a constant;
    only a compiled model rebuilds its own steps when its strengths become live. A
    handle taken from one of its layers (or an uncompiled model inside it) would be
    assigned while the step went on reading the constant.
    """
    if getattr(model, "compiled", False):
        return
    baked = [name for name, state in states.items() if not state.live and state.read_in_trace]
    if baked:
        raise ValueError(
            "Invalid value for argument `model`: expected the model that is trained (the "
            "strengths become variables and its compiled step functions are rebuilt to "
            "read them), or strengths made live before training. The strengths of "
            f"{baked} were read as constants by a step function traced before they "
            "became live, which a handle taken from this layer cannot change: call "
            "kreg.strengths(model) (kreg's callbacks do, in on_train_begin) before "
            "training, or take the handles from the model. Received: "
            f"model={type(model).__name__} {model.name!r}"
        )


def _make_live(model, states):
    """Make ``states`` (``{name prefix: state}``) live; rebuild a compiled model's step functions if one became so."""
    strategy = getattr(model, "distribute_strategy", None)  # TensorFlow's trainer only
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        changed = [state.make_live(base.replace(".", "/")) for base, state in states.items()]
    if any(changed) and getattr(model, "compiled", False):
        model.make_train_function(force=True)
        model.make_test_function(force=True)
        model.make_predict_function(force=True)


def strengths(model, optimizer=None):
    """Every live strength reachable from ``model`` (and ``optimizer``), by readable name.

    Names are ``"<layer path>.<attribute>.<key>"`` for regularizers (e.g.
    ``"dense.kernel_regularizer.l2"``), ``"<layer path>.<key>"`` for a layer's own
    strengths (e.g. ``"gaussian_noise.stddev"``) and ``"optimizer.<key>"`` for the
    optimizer's (``optimizer`` defaults to ``model.optimizer``). Nested layers are
    joined with "/". Each value is a :class:`Strength` with ``.assign(value)`` and
    ``float(strength)`` that works between train steps on every backend.

    The first call makes the model's strengths live (see the module docstring): each
    kreg object gains one non-trainable weight, and a compiled model rebuilds its step
    functions once. Call it (or let a kreg callback call it) before training to avoid
    that retrace; weight files keep the Keras layout either way. Handles taken from a
    layer (``kreg.strengths(model.get_layer("d"))``) work the same once the model's
    strengths are live; before that, a layer whose strengths a traced step already
    holds as constants is refused (the layer cannot rebuild the model's step).

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
    states = _states(model)
    _check_rebuildable(model, states)
    _make_live(model, states)
    found = {}
    for base, state in states.items():
        for key in state.strength_records():
            found[f"{base}.{key}"] = state.strength(key, f"{base}.{key}", model)
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        for key, handle in live_optimizer_strengths(optimizer).items():
            found[f"optimizer.{key}"] = handle.bind(model, f"optimizer.{key}")
    return found


def adopt(layer, attribute, value):
    """Set ``layer.<attribute> = value`` so the layer tracks it, even once built.

    Keras locks a layer's tracker after ``build()``; tracking a strength state is what
    lets the JAX train step carry its strengths, so the lock is lifted for this one
    assignment.
    """
    with compat.unlocked_tracker(layer):
        setattr(layer, attribute, value)


def _adopt_weight_regularizers(model):
    """Track the kreg regularizers that reach a weight only through ``add_weight(regularizer=)``.

    Such a regularizer (a custom layer's, Keras' documented way) is no layer attribute,
    so no layer tracks it: :func:`strengths` would not list it and the JAX train step
    would capture its strengths as constants. Its owner adopts it as
    ``_kreg_<weight>_regularizer``.
    """
    tracked = {id(state) for state in _states(model).values()}
    for variable, _, owner in weight_owners(model, include_frozen=True).values():
        regularizer = getattr(variable, "regularizer", None)
        if isinstance(regularizer, StrengthState) and id(regularizer) not in tracked:
            short = variable.path.rsplit("/", 1)[-1]
            if regularizer.strength_label is None:
                regularizer.strength_label = f"{short}_regularizer"
            adopt(owner, f"_kreg_{short}_regularizer", regularizer)
            tracked.add(id(regularizer))


def live_optimizer_strengths(optimizer):
    """``{key: Strength}`` of the first link of ``optimizer``'s chain that has live strengths."""
    owner = find_in_chain(optimizer, LiveStrengths)
    if owner is None:
        return {}
    return {key: Strength(owner, key) for key in owner.strength_records()}
