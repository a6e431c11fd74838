"""RegularizationMonitor: weight norms, sparsity, live strengths and decay timescale in the epoch logs."""

import math

import keras
import numpy as np

from kreg import _keras_compat as compat
from kreg._live import strengths as live_strengths
from kreg._registry import export
from kreg._repr import call_repr
from kreg._validate import check_bool, check_non_negative
from kreg._walk import accumulation_steps, find_in_chain, weight_owners
from kreg.optimizers import DecoupledWeightDecay


def weight_statistics(arrays, zero_tol):
    """``(norm, zero_fraction, near_zero_fraction)`` over a list of arrays.

    norm = √(Σ w²); zero_fraction = #{w = 0}/#w; near_zero_fraction = #{|w| < zero_tol}/#w.

    Example:

    >>> import numpy as np
    >>> from kreg.callbacks._monitor import weight_statistics
    >>> weight_statistics([np.array([3.0, 0.0]), np.array([4.0, 1e-9])], 1e-8)
    (5.0, 0.25, 0.5)
    """
    total = sum(int(np.size(a)) for a in arrays)
    if total == 0:
        return 0.0, 0.0, 0.0
    squares = sum(float(np.sum(np.square(np.asarray(a, dtype="float64")))) for a in arrays)
    zeros = sum(int(np.count_nonzero(np.asarray(a) == 0)) for a in arrays)
    small = sum(int(np.count_nonzero(np.abs(np.asarray(a)) < zero_tol)) for a in arrays)
    return math.sqrt(squares), zeros / total, small / total


def decay_timescale(decay_per_step, steps_per_epoch):
    """τ_epoch = 1/(decay per step · steps per epoch) (inf if 0; Wang & Aitchison 2024).

    Example:

    >>> from kreg.callbacks._monitor import decay_timescale
    >>> decay_timescale(1e-3, 100)
    10.0
    """
    per_epoch = decay_per_step * steps_per_epoch
    return math.inf if per_epoch == 0 else 1.0 / per_epoch


def _numpy(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable.value))


@export
class RegularizationMonitor(keras.callbacks.Callback):
    """Add regularization diagnostics to the epoch logs (so History, CSVLogger, TensorBoard get them).

    Keys added at each epoch end, over the model's trainable weights:

    * ``"weight_norm"``: the global norm √(Σ w²);
    * ``"weight_norm/<layer>"`` for each layer owning trainable weights, with
      ``per_layer=True``;
    * ``"zero_fraction"``: the fraction of weights exactly 0; ``"near_zero_fraction"``:
      the fraction with |w| < ``zero_tol``;
    * every live strength's current value under its name (see :func:`kreg.strengths`),
      e.g. ``"dense.kernel_regularizer.l2"``, ``"optimizer.weight_decay"``;
    * ``"decay_timescale_epochs"`` when the optimizer is a
      ``kreg.optimizers.DecoupledWeightDecay``: τ_epoch = 1/(wd·f·S), the decay per step
      wd·f times the steps per epoch S, with f = lr_t/lr₀ (``follow="schedule"``),
      lr_t (``"learning_rate"``) or 1 (``"none"``), at the current learning rate lr_t
      (Wang & Aitchison 2024), for a weight of multiplier 1. S comes from ``fit``, or from the number of batches
      seen in the epoch when ``fit`` does not know it. A ``weight_decay``
      given as a schedule counts at its current value (times the live scale); with
      ``mode="l2"`` no timescale is logged (the decay is not decoupled).

    Every callback of the ``fit`` sees these keys at ``on_epoch_end`` (and in the last
    epoch's logs at ``on_train_end``), wherever the monitor is in the list: ``TensorBoard``,
    ``CSVLogger``, ``History``, ``ProgbarLogger``, an ``EarlyStopping`` monitoring one of
    them. Keras calls the callbacks in list order with one logs dict, so with callbacks
    listed before it the monitor also runs first (it adds a hook at the head of ``fit``'s
    list for the time of the ``fit``) and computes the keys twice per epoch: those listed
    before it see the weights as the epoch's steps left them; it and those after it see
    them after the epoch-end hooks listed before it (e.g. ``SwapEMAWeights``). In a custom
    loop that calls its hooks directly, it adds the keys at its own ``on_epoch_end``.

    Args:
        per_layer: also log each layer's weight norm.
        zero_tol: the threshold of ``"near_zero_fraction"``, a non-negative float.

    Example:

    >>> import numpy as np, keras, kreg
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
    ...     1, kernel_initializer="ones", kernel_regularizer=kreg.regularizers.L2(0.1),
    ...     name="d")])
    >>> model.compile(keras.optimizers.SGD(0.0), "mse")
    >>> history = model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, verbose=0,
    ...                     callbacks=[kreg.callbacks.RegularizationMonitor()])
    >>> round(history.history["weight_norm"][0], 4), history.history["zero_fraction"][0]
    (1.4142, 0.3333333333333333)
    >>> round(history.history["d.kernel_regularizer.l2"][0], 6)
    0.1

    References:
        Wang & Aitchison, "How to set AdamW's weight decay as you scale model and
        dataset size", 2024.
    """

    def __init__(self, per_layer=False, zero_tol=1e-8):
        super().__init__()
        self.per_layer = check_bool(per_layer, "per_layer")
        self.zero_tol = check_non_negative(zero_tol, "zero_tol")

    def get_config(self):
        """The constructor arguments."""
        return {"per_layer": self.per_layer, "zero_tol": self.zero_tol}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return call_repr(self, "kreg.callbacks.RegularizationMonitor")

    # Only records a batch index: safe for Keras' asynchronous batch-end dispatch.
    async_safe = True

    # Order. Keras' CallbackList calls each hook on its callbacks in list order with one
    # logs dict, and TensorBoard and CSVLogger write the epoch's logs in their own
    # on_epoch_end: keys added later in the list never reach them. Public Keras gives a
    # callback no way to run earlier: the logs dict is made just before on_epoch_end, and
    # a callback sees neither the list nor the other callbacks. Alternatives rejected:
    # writing to TensorBoard ourselves covers TensorBoard only (not CSVLogger, History,
    # EarlyStopping listed before us), needs the TensorBoard callback found all the same
    # and copies its private tag/writer layout; a metric in the train step costs every step
    # and changes the model's metrics (and the validation logs). So the monitor finds
    # fit's CallbackList (compat.calling_callback_list) and puts a hook at its head.
    def on_train_begin(self, logs=None):
        self._last = {}
        self._callbacks = compat.calling_callback_list(self)
        listed = [] if self._callbacks is None else self._callbacks.callbacks
        if not listed or listed[0] is self:
            return  # already first, or called by hand: nothing to move ahead
        if any(isinstance(item, _Ahead) and item.monitor is self for item in listed):
            return  # a CallbackList given to fit again
        # A new list: the CallbackList is iterating the old one.
        self._callbacks.callbacks = [_Ahead(self), *listed]

    def on_train_end(self, logs=None):
        if logs is not None:
            logs.update(getattr(self, "_last", {}))
        callbacks = getattr(self, "_callbacks", None)
        if callbacks is not None:
            callbacks.callbacks = [
                item
                for item in callbacks.callbacks
                if not (isinstance(item, _Ahead) and item.monitor is self)
            ]
        self._callbacks = None

    def on_epoch_begin(self, epoch, logs=None):
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches = batch + 1

    def statistics(self):
        """The dict of diagnostics this callback adds to the logs, computed now."""
        model = self.model
        sync = getattr(model, "jax_state_sync", None)
        if sync is not None:
            sync()
        variables = list(model.trainable_weights)
        arrays = [_numpy(v) for v in variables]
        norm, zeros, small = weight_statistics(arrays, self.zero_tol)
        result = {"weight_norm": norm, "zero_fraction": zeros, "near_zero_fraction": small}
        if self.per_layer:
            owners = {key: prefix for key, (_, prefix, _) in weight_owners(model).items()}
            groups = {}
            for variable, array in zip(variables, arrays):
                groups.setdefault(owners.get(id(variable), model.name), []).append(array)
            for layer, group in groups.items():
                result[f"weight_norm/{layer}"] = weight_statistics(group, self.zero_tol)[0]
        found = live_strengths(model)
        for name, strength in found.items():
            result[name] = float(strength)
        optimizer = find_in_chain(getattr(model, "optimizer", None), DecoupledWeightDecay)
        decoupled = optimizer is not None and optimizer.mode == "decoupled"
        if decoupled and "optimizer.weight_decay" in found:
            steps = (self.params or {}).get("steps")
            if steps is None:  # data of unknown length: the batches of this epoch
                steps = getattr(self, "_batches", 0)
            if steps:
                updates = steps / accumulation_steps(optimizer)
                result["decay_timescale_epochs"] = decay_timescale(
                    optimizer.decay_per_step(), updates
                )
        return result

    def on_epoch_end(self, epoch, logs=None):
        # Computed again at our place in the list: the hooks before us may have changed
        # the weights (SwapEMAWeights) or the learning rate (ReduceLROnPlateau).
        self._last = self.statistics()
        if logs is not None:
            logs.update(self._last)


class _Ahead(keras.callbacks.Callback):
    """The monitor's hook at the head of ``fit``'s CallbackList, for the callbacks before it.

    Not exported: the monitor adds it at ``on_train_begin`` and removes it at ``on_train_end``.
    """

    async_safe = True  # no batch hooks

    def __init__(self, monitor):
        super().__init__()
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.monitor.statistics())

    def on_train_end(self, logs=None):
        # Keras passes the last epoch's logs as fit made them, without the keys callbacks added.
        if logs is not None:
            logs.update(getattr(self.monitor, "_last", {}))
