"""EarlyStopping: Keras' callback with Prechelt's criteria, safe NaN handling and resumable state.

The policy lives here; watching the monitored value is :mod:`._monitor_callback`'s, the
resume files :mod:`._resume`'s and the criteria's formulas :mod:`._criteria`'s.
"""

import math
import os

import numpy as np

from kreg._registry import export
from kreg._repr import call_repr
from kreg._validate import check_bool, check_number, check_verbose
from kreg.callbacks._criteria import CRITERIA, prechelt_check
from kreg.callbacks._monitor_callback import (
    MonitorCallback,
    infer_direction,
    is_improvement,
    scalar,
)
from kreg.callbacks._resume import ResumeFiles

__all__ = ["infer_direction", "is_improvement"]  # + EarlyStopping, by @export

_STATE_KEYS = (
    "wait",
    "best",
    "best_epoch",
    "stopped_epoch",
    "stop_reason",
    "next_epoch",
    "monitor_history",
    "train_history",
    "best_weights",
)


@export
class EarlyStopping(MonitorCallback):
    """Stop training when the monitored quantity stops improving: Keras' EarlyStopping and more.

    With only the arguments of ``keras.callbacks.EarlyStopping`` it behaves as Keras'
    (swap the import), except that it fixes these pitfalls:

    * a non-finite monitored value (NaN, inf) never becomes the best value, so its
      weights are never restored (Keras lets a NaN first epoch become best forever);
    * the warning about a missing monitored key is given once per ``fit``
      (``strict=True`` makes it an error);
    * with ``restore_best_weights=True`` the best weights are restored however training
      ends: stopped by this callback, by another one, or after the last epoch;
    * its state can be saved and resumed (:meth:`get_state`, :meth:`set_state`, and
      ``backup=`` with ``keras.callbacks.BackupAndRestore``).

    Criteria (``criterion``), from Prechelt (1998). Epochs t = 1, 2, ... count the
    monitored epochs (from ``start_from_epoch`` on), E_va(t) is the monitored value and
    E_opt(t) = min_{t'<=t} E_va(t'); a training strip is k = ``strip_length`` epochs
    ending at t divisible by k:

    * ``"patience"`` (Keras'): stop after ``patience`` epochs without an improvement
      of more than ``min_delta`` over the best value (and over ``baseline``, if given).
    * ``"GL"``: generalization loss GL(t) = 100·(E_va(t)/E_opt(t) − 1); stop when
      GL(t) > ``alpha``.
    * ``"PQ"``: progress quotient. P_k(t) = 1000·(Σ_{t'=t−k+1..t} E_tr(t') /
      (k·min_{t'} E_tr(t')) − 1) measures training progress over the strip; at a strip
      end stop when GL(t)/P_k(t) > ``alpha``. E_tr is the training metric matching the
      monitored one (``"loss"`` for ``"val_loss"``), read from the logs.
    * ``"UP"``: stop at a strip end t when E_va rose over ``strips`` successive strips:
      E_va(t) > E_va(t−k) > ... > E_va(t−s·k) (fell, for a metric to maximize).

    GL and PQ need an error that is minimized and non-negative. ``patience`` and
    ``baseline`` only apply to ``"patience"``; the best-weights bookkeeping (with
    ``min_delta``) is the same for every criterion. A non-finite value counts as an
    epoch without improvement and GL, PQ and UP do not fire on it (their formulas are
    undefined); ``divergence_threshold`` and ``stop_on_nonfinite`` are checked from the
    first epoch on, warm-up included.

    Resuming with ``backup=``: at each epoch end the state is written to
    ``kreg_early_stopping.<monitor>.<criterion>.<epoch>.json`` (and the best weights to
    ``....best<epoch>.weights.npz``) in ``BackupAndRestore``'s directory (a local path);
    the last two epochs' states are kept. At the start of ``fit``, when that directory
    holds ``BackupAndRestore``'s ``training_metadata.json`` (it resumes), the state of
    the epoch it resumes at is read back, and ``fit`` continues with the same wait
    count, best value, best epoch and best weights, whatever the order of the two
    callbacks in ``callbacks``. Only a run stopped between BackupAndRestore's save and
    this callback's (BackupAndRestore listed first) has no matching state: resuming it
    raises a ValueError that says what to do. ``BackupAndRestore`` deletes the
    directory once training completes.

    Args:
        monitor: quantity to monitor (default ``"val_loss"``).
        min_delta: minimum change that counts as an improvement.
        patience: epochs without improvement before stopping (``"patience"``).
        verbose: 0 (silent) or 1: at the end of training one line says which criterion
            fired on which numbers (and which epoch's weights are restored).
        mode: ``"auto"``, ``"min"`` or ``"max"`` (as Keras: an unknown mode warns and
            falls back to ``"auto"``).
        baseline: a value to beat (``"patience"``): only an epoch that beats both it and
            the best so far resets the patience count. As in Keras, training stops at
            an epoch without a new best once ``patience`` epochs have passed without
            beating the baseline; epochs that keep improving on the best (but not on
            the baseline) do not stop training.
        restore_best_weights: restore the weights of the best epoch at the end of
            training.
        start_from_epoch: epochs of warm-up before monitoring starts.
        criterion: ``"patience"``, ``"GL"``, ``"PQ"`` or ``"UP"``.
        alpha: the threshold of ``"GL"`` (percent) and ``"PQ"``.
        strips: s for ``"UP"``.
        strip_length: k for ``"PQ"`` and ``"UP"`` (default 5).
        min_delta_mode: ``"abs"`` (default) or ``"rel"``: ``min_delta`` as a fraction of
            the best value.
        stop_on_nonfinite: stop at once when the monitored value is NaN or inf.
        divergence_threshold: stop at once when the monitored value is worse than this.
        strict: raise a ValueError when the monitored key is missing from the logs.
        backup: a ``keras.callbacks.BackupAndRestore`` (or its ``backup_dir``): the
            state is written there at each epoch end, and read back when
            ``BackupAndRestore`` resumes an interrupted ``fit``.

    Attributes:
        best_value (alias ``best``), best_epoch, stopped_epoch (0 when it did not stop,
        as Keras), stop_reason (``"patience"``, ``"GL"``, ``"PQ"``, ``"UP"``,
        ``"nonfinite"``, ``"divergence"``, ``"external"`` for another callback,
        ``"completed"``), stop_message, wait, best_weights.

    Example:

    >>> import numpy as np, keras, kreg
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> stop = kreg.callbacks.EarlyStopping(monitor="loss", criterion="GL", alpha=5.0,
    ...                                     restore_best_weights=True)
    >>> x, y = np.ones((8, 4), "float32"), np.ones((8, 1), "float32")
    >>> _ = model.fit(x, y, epochs=3, callbacks=[stop], verbose=0)
    >>> stop.stop_reason
    'completed'

    References:
        Prechelt, "Early Stopping — But When?", in Neural Networks: Tricks of the
        Trade, 1998.
    """

    def __init__(
        self,
        monitor="val_loss",
        min_delta=0,
        patience=0,
        verbose=0,
        mode="auto",
        baseline=None,
        restore_best_weights=False,
        start_from_epoch=0,
        *,
        criterion="patience",
        alpha=None,
        strips=None,
        strip_length=5,
        min_delta_mode="abs",
        stop_on_nonfinite=False,
        divergence_threshold=None,
        strict=False,
        backup=None,
    ):
        super().__init__(
            monitor,
            mode,
            abs(check_number(min_delta, "min_delta")),
            min_delta_mode,
            check_bool(strict, "strict"),
        )
        self.patience = check_number(patience, "patience", minimum=0, integer=True)
        self.verbose = check_verbose(verbose)
        self.baseline = check_number(baseline, "baseline", allow_none=True)
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights")
        self.start_from_epoch = check_number(
            start_from_epoch, "start_from_epoch", minimum=0, integer=True
        )

        canonical = {c.upper(): c for c in CRITERIA}
        key = criterion.upper() if isinstance(criterion, str) else None
        if key not in canonical:
            raise ValueError(
                "Invalid value for argument `criterion`: expected one of 'patience', "
                f"'GL', 'PQ', 'UP'. Received: criterion={criterion!r}"
            )
        self.criterion = canonical[key]
        self.alpha = check_number(alpha, "alpha", minimum=0, allow_none=True)
        self.strips = check_number(strips, "strips", minimum=1, integer=True, allow_none=True)
        self.strip_length = check_number(strip_length, "strip_length", minimum=1, integer=True)
        if self.criterion in ("GL", "PQ") and self.alpha is None:
            raise ValueError(
                "Invalid value for argument `alpha`: expected a non-negative float for "
                f"criterion={self.criterion!r}. Received: alpha=None"
            )
        if self.criterion == "UP" and self.strips is None:
            raise ValueError(
                "Invalid value for argument `strips`: expected an integer >= 1 for "
                "criterion='UP'. Received: strips=None"
            )
        self.stop_on_nonfinite = check_bool(stop_on_nonfinite, "stop_on_nonfinite")
        self.divergence_threshold = check_number(
            divergence_threshold, "divergence_threshold", allow_none=True
        )
        if backup is not None and not isinstance(backup, (str, os.PathLike)):
            backup_dir = getattr(backup, "backup_dir", None)
            if not isinstance(backup_dir, (str, os.PathLike)):
                raise ValueError(
                    "Invalid value for argument `backup`: expected a "
                    "keras.callbacks.BackupAndRestore or its backup_dir. "
                    f"Received: backup={backup!r}"
                )
            backup = backup_dir
        self.backup_dir = None if backup is None else os.fspath(backup)

        self._pending_state = None
        self._reset()

    def get_config(self):
        """The constructor arguments (JSON-serializable), one key per argument."""
        return {
            "monitor": self.monitor,
            "min_delta": self.min_delta,
            "patience": self.patience,
            "verbose": self.verbose,
            "mode": self.mode,
            "baseline": self.baseline,
            "restore_best_weights": self.restore_best_weights,
            "start_from_epoch": self.start_from_epoch,
            "criterion": self.criterion,
            "alpha": self.alpha,
            "strips": self.strips,
            "strip_length": self.strip_length,
            "min_delta_mode": self.min_delta_mode,
            "stop_on_nonfinite": self.stop_on_nonfinite,
            "divergence_threshold": self.divergence_threshold,
            "strict": self.strict,
            "backup": self.backup_dir,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return call_repr(self, "kreg.callbacks.EarlyStopping", values=self.get_config())

    # ------------------------------------------------------------------ state
    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0
        self.stop_reason = None
        self.stop_message = ""
        self.monitor_history = []
        self.train_history = []
        self._next_epoch = 0
        self._warned_missing = False
        self._weights_dirty = True

    @property
    def best_value(self):
        """The best monitored value so far (None before the first finite one)."""
        return self.best

    def get_state(self):
        """The state needed to resume: a dict of counters, histories and best weights.

        Everything but ``"best_weights"`` (a list of NumPy arrays, or None) is
        JSON-serializable.
        """
        weights = self.best_weights
        if isinstance(weights, (list, tuple)):
            weights = [np.array(w, copy=True) for w in weights]
        return {
            "wait": self.wait,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "stop_reason": self.stop_reason,
            "next_epoch": self._next_epoch,
            "monitor_history": list(self.monitor_history),
            "train_history": list(self.train_history),
            "best_weights": weights,
        }

    def set_state(self, state):
        """Restore a state from :meth:`get_state`; the next ``fit`` continues from it.

        ``on_train_begin`` would otherwise reset the state (as Keras, so that one
        instance can be reused across ``fit`` calls).
        """
        if not isinstance(state, dict) or set(state) != set(_STATE_KEYS):
            raise ValueError(
                "Invalid value for argument `state`: expected a dict from "
                f"EarlyStopping.get_state() with keys {sorted(_STATE_KEYS)}. "
                f"Received: state={state!r}"
            )
        self._apply_state(state)
        self._pending_state = state

    def _apply_state(self, state):
        self.wait = int(state["wait"])
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.stop_reason = state["stop_reason"]
        self._next_epoch = int(state["next_epoch"])
        self.monitor_history = [float(v) for v in state["monitor_history"]]
        self.train_history = [float(v) for v in state["train_history"]]
        weights = state["best_weights"]
        if isinstance(weights, (list, tuple)):
            weights = [np.array(w, copy=True) for w in weights]
        self.best_weights = weights
        self._weights_dirty = True

    # ----------------------------------------------------------- resume files
    def _resume_files(self):
        stem = f"kreg_early_stopping.{self.monitor}.{self.criterion}"
        return ResumeFiles(self.backup_dir, stem)

    # -------------------------------------------------------------- callbacks
    def on_train_begin(self, logs=None):
        # Allow instances to be re-used across `fit()` calls, unless resuming.
        state = self._pending_state
        self._pending_state = None
        if state is None and self.backup_dir is not None:
            state = self._resume_files().read()
        self._reset()
        if state is not None:
            self._apply_state(state)
            # A new run: whether and why it stops is decided afresh.
            self.stop_reason = None
            self.stopped_epoch = 0
        if self.criterion in ("GL", "PQ") and self.mode == "max":
            raise ValueError(
                f"EarlyStopping criterion={self.criterion!r} needs an error to minimize; "
                f"received mode='max' for monitor={self.monitor!r}."
            )

    def _set_direction(self):
        self.set_direction()
        if self.criterion in ("GL", "PQ") and self.direction == "max":
            raise ValueError(
                f"EarlyStopping criterion={self.criterion!r} needs an error to minimize; "
                f"monitor={self.monitor!r} is maximized. Use criterion='patience' or 'UP', "
                "or monitor an error."
            )

    def _train_value(self, logs):
        key = self.monitor.removeprefix("val_")
        if key == self.monitor:
            raise ValueError(
                "EarlyStopping criterion='PQ' compares a validation error with its "
                f"training counterpart: monitor a 'val_' metric. Received: monitor={self.monitor!r}"
            )
        value = (logs or {}).get(key)
        if value is None:
            raise ValueError(
                f"EarlyStopping criterion='PQ' needs the training metric `{key}` that "
                f"matches monitor={self.monitor!r} in the logs (E_tr). Available metrics "
                f"are: {','.join(list((logs or {}).keys()))}"
            )
        return scalar(value, key)

    def _stop(self, epoch, reason, detail):
        self.stopped_epoch = epoch
        self.stop_reason = reason
        self.stop_message = f"Epoch {epoch + 1}: early stopping ({detail})"
        self.model.stop_training = True

    def _diverged(self, current):
        if self.divergence_threshold is None or not math.isfinite(current):
            return False
        if self.direction == "min":
            return current > self.divergence_threshold
        return current < self.divergence_threshold

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            # Delay set-up until the model's metrics are all built.
            self._set_direction()
        self._next_epoch = epoch + 1
        current = self.get_monitor_value(logs)
        if current is None:
            self._maybe_backup()
            return
        if self.stop_on_nonfinite and not math.isfinite(current):
            self._stop(epoch, "nonfinite", f"{self.monitor} = {current}")
            self._maybe_backup()
            return
        if self._diverged(current):
            self._stop(
                epoch,
                "divergence",
                f"{self.monitor} = {current:.6g} is worse than divergence_threshold = "
                f"{self.divergence_threshold:.6g}",
            )
            self._maybe_backup()
            return
        if epoch < self.start_from_epoch:
            self._maybe_backup()
            return

        train_value = self._train_value(logs) if self.criterion == "PQ" else None
        self.monitor_history.append(current)
        if train_value is not None:
            self.train_history.append(train_value)

        self.wait += 1
        if self.improves(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
                self._weights_dirty = True
            # Only restart wait if we beat both the baseline and our previous best.
            if self.baseline is None or self.improves(current, self.baseline):
                self.wait = 0
            improved = True
        else:
            improved = False

        if self.criterion == "patience":
            if not improved and self.wait >= self.patience and epoch > 0:
                best = "none" if self.best is None else f"{self.best:.6g}"
                self._stop(
                    epoch,
                    "patience",
                    f"patience: {self.wait} epochs without improvement of {self.monitor} "
                    f"(last {current:.6g}, best {best} at epoch {self.best_epoch + 1})",
                )
        else:
            stop, detail = prechelt_check(
                self.criterion,
                self.monitor_history,
                self.train_history,
                alpha=self.alpha,
                strips=self.strips,
                strip_length=self.strip_length,
                direction=self.direction,
            )
            if stop:
                self._stop(epoch, self.criterion, f"{self.criterion}: {detail}")
        self._maybe_backup()

    def _maybe_backup(self):
        if self.backup_dir is not None:
            self._resume_files().write(
                self.get_state(), self._next_epoch, self.best_epoch, self._weights_dirty
            )
            self._weights_dirty = False

    def on_train_end(self, logs=None):
        if self.stop_reason is None:
            stopped = bool(getattr(self.model, "stop_training", False))
            self.stop_reason = "external" if stopped else "completed"
        if self.verbose > 0 and self.stop_message:
            print(self.stop_message)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)
