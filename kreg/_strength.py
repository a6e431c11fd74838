"""One live strength: one record, one read/write protocol, one handle.

Every kreg object with strengths a callback may change (λ, σ, a dropout rate, a weight
decay) implements :class:`LiveStrengths`: it describes each strength with a
:class:`StrengthRecord` and reads and writes its current value. Layer-side objects keep
their strengths in a :class:`kreg._live.StrengthState`; ``DecoupledWeightDecay`` keeps
its own in an optimizer variable. A :class:`Strength` handle talks to either through
the protocol alone.
"""

import collections
import weakref

import keras
import numpy as np

from kreg._validate import check_non_negative

__all__ = ["Strength"]

#: What a strength is: its key in its owner, its kind (callbacks group strengths by it),
#: the check a new value passes (``check(value, name) -> float``) and the value its owner
#: was built with (what ``get_config`` saves).
StrengthRecord = collections.namedtuple("StrengthRecord", ["key", "kind", "check", "base"])


def record(key, kind, base, check=check_non_negative):
    """A :class:`StrengthRecord` whose ``base`` has passed ``check``."""
    return StrengthRecord(key, kind, check, check(base, key))


class LiveStrengths:
    """The protocol of an owner of live strengths.

    ``strength_records()`` describes them, in order; ``read_strength(key)`` gives the
    current value as a Python float; ``write_strength(key, value)`` sets a value that
    has passed its record's check; ``make_live(path)`` moves the strengths into a
    variable a compiled step reads (True if it did; an owner whose strengths always live
    in a variable returns False).
    """

    def strength_records(self):
        raise NotImplementedError

    def read_strength(self, key):
        raise NotImplementedError

    def write_strength(self, key, value):
        raise NotImplementedError

    def make_live(self, path=None):
        return False


class VariableStrengths(LiveStrengths):
    """The protocol for an owner that keeps its strengths in one float32 vector variable
    (``self._strengths``), described by ``self._records``: always live."""

    def strength_records(self):
        return self._records

    def read_strength(self, key):
        return float(self._values()[self._index(key)])

    def write_strength(self, key, value):
        values = self._values()
        values[self._index(key)] = value
        self._strengths.assign(values)

    def strength_tensors(self):
        """``{key: the live value as a scalar tensor}``, what a compiled step reads."""
        values = keras.ops.convert_to_tensor(self._strengths)
        return {key: values[i] for i, key in enumerate(self._records)}

    def _index(self, key):
        return list(self._records).index(key)

    def _values(self):
        return np.array(keras.ops.convert_to_numpy(self._strengths.value), dtype="float32")


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

    def __init__(self, owner, key, name=None, model=None):
        self.owner = owner
        self.key = key
        self.name = key if name is None else name
        self._model = weakref.ref(model) if model is not None else None

    @property
    def record(self):
        return self.owner.strength_records()[self.key]

    @property
    def kind(self):
        return self.record.kind

    @property
    def base(self):
        return self.record.base

    def bind(self, model, name=None):
        """A copy of this handle that keeps ``model``'s JAX state in sync (and a new name)."""
        return Strength(self.owner, self.key, self.name if name is None else name, model)

    def _sync(self):
        # On JAX the trainer detaches the model's variables from their values during an
        # epoch; syncing re-attaches them, so a write reaches the next step.
        model = self._model() if self._model is not None else None
        sync = getattr(model, "jax_state_sync", None)
        if sync is not None:
            sync()

    def assign(self, value):
        """Set the strength; the next train step uses it (no recompiling)."""
        value = self.record.check(value, self.name)
        self._sync()
        self.owner.write_strength(self.key, value)

    def __float__(self):
        self._sync()
        return float(self.owner.read_strength(self.key))

    def __repr__(self):
        try:
            value = repr(float(self))
        except Exception:  # a purged JAX variable outside a model, for instance
            value = "?"
        return f"<Strength {self.name}={value} (kind={self.kind}, base={self.base!r})>"
