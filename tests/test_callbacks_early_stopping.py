"""kreg.callbacks.EarlyStopping: Keras' behaviour, Prechelt's criteria, NaN, restore, resume."""

import warnings

import keras
import numpy as np
import pytest
from conftest import tf_only

import kreg
from kreg.callbacks import EarlyStopping
from kreg.callbacks._criteria import prechelt_check


# --------------------------------------------------------------------- helpers
class DummyModel:
    """Weights are the epoch number: what restore_best_weights restores is visible."""

    def __init__(self):
        self.stop_training = False
        self.weights = -1

    def get_weights(self):
        return self.weights

    def set_weights(self, weights):
        self.weights = weights


def drive(stopper, values, key="val_loss", train=None, stop_externally_at=None):
    """Feed ``values`` to ``stopper`` as epoch logs; return the number of epochs run."""
    if not isinstance(getattr(stopper, "model", None), DummyModel):
        stopper.set_model(DummyModel())
    stopper.on_train_begin()
    epochs = 0
    for epoch, value in enumerate(values):
        epochs += 1
        stopper.model.weights = epoch
        logs = {key: value}
        if train is not None:
            logs[key.removeprefix("val_")] = train[epoch]
        stopper.on_epoch_end(epoch, logs)
        if stop_externally_at == epoch:
            stopper.model.stop_training = True
        if stopper.model.stop_training:
            break
    stopper.on_train_end()
    return epochs


def tiny_model(units=1):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, name="d")])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    return model


class Inject(keras.callbacks.Callback):
    """Puts scores[epoch] under `key` in the epoch logs and records each epoch's weights."""

    def __init__(self, scores, key="score", stop_at=None):
        super().__init__()
        self.scores, self.key, self.stop_at = scores, key, stop_at
        self.weights = {}

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.scores[epoch]
        self.weights[epoch] = self.model.get_weights()
        if epoch == self.stop_at:
            self.model.stop_training = True


def assert_weights_equal(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=0, atol=0)


# ------------------------------------------------- Keras' behaviour reproduced
def test_monitor_direction_inferred_as_keras(regression_data):
    x, y = regression_data
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(1, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(
        loss="mae",
        optimizer="adam",
        metrics=["mse", "acc", "accuracy", "hinge", keras.metrics.F1Score(name="f1_score")],
    )
    cases = [
        ("max", "val_mse", "max"),
        ("min", "val_loss", "min"),
        ("auto", "val_mse", "min"),
        ("auto", "loss", "min"),
        ("auto", "acc", "max"),
        ("auto", "val_accuracy", "max"),
        ("auto", "hinge", "min"),
        ("auto", "f1_score", "max"),
    ]
    for mode, monitor, expected in cases:
        stopper = EarlyStopping(monitor=monitor, mode=mode)
        model.fit(
            x, y, batch_size=16, validation_data=(x, y), callbacks=[stopper], epochs=1, verbose=0
        )
        assert stopper.monitor_op == (keras.ops.greater if expected == "max" else keras.ops.less)
        assert stopper.direction == expected
    with pytest.raises(ValueError, match="isn't able to automatically determine"):
        model.fit(
            x, y, batch_size=16, callbacks=[EarlyStopping(monitor="unknown")], epochs=1, verbose=0
        )


def test_unknown_mode_warns_and_falls_back_to_auto():
    with pytest.warns(UserWarning, match="mode 'sideways' is unknown"):
        stopper = EarlyStopping(mode="sideways")
    assert stopper.mode == "auto"


def test_patience_stop_epoch_as_keras():
    losses = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5]
    for patience in [0, 1, 2, 3]:
        stopper = EarlyStopping(monitor="loss", patience=patience)
        drive(stopper, losses, key="loss")
        assert stopper.stopped_epoch == max(patience, 1) + 2
        assert stopper.stop_reason == "patience"
        assert stopper.best_value == 8.0 and stopper.best_epoch == 2


def test_state_reset_across_fit_calls():
    stopper = EarlyStopping(monitor="loss", patience=3)
    stopper.set_model(keras.Sequential())
    stopper.on_train_begin()
    stopper.best, stopper.wait, stopper.stopped_epoch = 0.1, 3, 5
    stopper.best_epoch, stopper.best_weights = 5, object()
    stopper.on_train_begin()
    assert stopper.best is None and stopper.wait == 0 and stopper.stopped_epoch == 0
    assert stopper.best_epoch == 0 and stopper.best_weights is None


def test_reuse_across_fits_starts_fresh(regression_data):
    x, y = regression_data
    model = tiny_model()
    stopper = EarlyStopping(monitor="score", mode="min", patience=2)
    for _ in range(2):  # a leaked wait count would stop the second fit at epoch 1
        history = model.fit(
            x, y, epochs=6, verbose=0, callbacks=[Inject([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), stopper]
        )
        assert history.epoch == [0, 1, 2] and stopper.stopped_epoch == 2


def test_restore_final_weights_as_keras():
    # Best at epoch 2; patience 2 stops at epoch 4 and restores epoch 2.
    stopper = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    assert drive(stopper, [0.2, 0.15, 0.1, 0.11, 0.12]) == 5
    assert stopper.model.get_weights() == 2
    # No epoch beats the baseline: train `patience` epochs, restore the best of them.
    stopper = EarlyStopping(monitor="val_loss", patience=5, baseline=0.5, restore_best_weights=True)
    assert drive(stopper, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73]) == 5
    assert stopper.model.get_weights() == 2
    # Another callback stops training: the best weights are restored all the same.
    stopper = EarlyStopping(monitor="val_loss", patience=5, baseline=0.5, restore_best_weights=True)
    assert drive(stopper, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73], stop_externally_at=3) == 4
    assert stopper.model.get_weights() == 2
    assert stopper.stop_reason == "external"


def test_start_from_epoch_ignores_warm_up():
    # Epochs 0 and 1 are warm-up; epoch 2 sets the best; epoch 3 does not improve.
    stopper = EarlyStopping(monitor="loss", patience=0, start_from_epoch=2)
    drive(stopper, [1.0, 0.5, 0.9, 0.95, 0.1], key="loss")
    assert stopper.stopped_epoch == 3 and stopper.best == 0.9 and stopper.best_epoch == 2


def test_same_decisions_as_keras_on_finite_histories():
    for seed in range(12):
        _compare_with_keras(seed)


def _compare_with_keras(seed):
    rng = np.random.RandomState(seed)
    values = [float(v) for v in np.round(rng.rand(15), 1)]  # rounding makes ties
    kwargs = dict(
        monitor="val_loss",
        mode=["min", "max", "auto"][seed % 3],
        patience=int(rng.randint(0, 4)),
        min_delta=[0.0, 0.05][seed % 2],
        baseline=[None, 0.5][(seed // 2) % 2],
        start_from_epoch=int(rng.randint(0, 3)),
        restore_best_weights=True,
    )
    ours = EarlyStopping(**kwargs)
    theirs = keras.callbacks.EarlyStopping(**kwargs)
    assert drive(ours, values) == drive(theirs, values)
    assert ours.stopped_epoch == theirs.stopped_epoch
    assert ours.wait == theirs.wait
    assert ours.best == (None if theirs.best is None else float(theirs.best))
    assert ours.best_epoch == theirs.best_epoch
    assert ours.model.get_weights() == theirs.model.get_weights()


def test_min_delta_rel_is_a_fraction_of_the_best():
    values = [10.0, 9.0, 8.6, 8.3]
    absolute = EarlyStopping(monitor="loss", patience=1, min_delta=0.05)
    drive(absolute, values, key="loss")
    assert absolute.stop_reason == "completed"
    # rel: 8.6 must beat 9.0 by 5% of 9.0 = 0.45: it does not, so epoch 2 stops.
    relative = EarlyStopping(monitor="loss", patience=1, min_delta=0.05, min_delta_mode="rel")
    drive(relative, values, key="loss")
    assert relative.stopped_epoch == 2 and relative.best == 9.0


# --------------------------------------------------------- Prechelt's criteria
def test_gl_stop_epoch():
    # E_opt = 0.7 from t=3; GL(4) = 2.857, GL(5) = 7.143, GL(6) = 11.43.
    values = [1.0, 0.8, 0.7, 0.72, 0.75, 0.78, 0.8]
    for alpha, stop_epoch in [(5.0, 4), (10.0, 5)]:
        stopper = EarlyStopping(criterion="GL", alpha=alpha, patience=0, restore_best_weights=True)
        drive(stopper, values)
        assert stopper.stop_reason == "GL" and stopper.stopped_epoch == stop_epoch
        assert stopper.model.get_weights() == 2 and stopper.best_value == 0.7


def test_pq_fires_only_at_strip_ends():
    train = [1.0, 0.9, 0.8, 0.7, 0.6, 0.55, 0.54, 0.53, 0.52, 0.5, 0.5]
    values = [1.0, 0.9, 0.8, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.77, 0.7]
    # t=5: GL = 7.143, P_5 = 333.3, PQ = 0.0214; t=10: GL = 10.0, P_5 = 56.0, PQ = 0.1786.
    # Between strip ends GL reaches 35.7, but PQ is only evaluated at t = 5, 10, ...
    _, detail = prechelt_check("PQ", values[:10], train[:10], alpha=0.1, strip_length=5)
    assert "10/56 = 0.178571 > alpha = 0.1" in detail
    stopper = EarlyStopping(criterion="PQ", alpha=0.1)
    drive(stopper, values, train=train)
    assert stopper.stop_reason == "PQ" and stopper.stopped_epoch == 9
    stopper = EarlyStopping(criterion="PQ", alpha=0.2)
    drive(stopper, values, train=train)
    assert stopper.stop_reason == "completed"


def test_pq_needs_the_training_metric():
    stopper = EarlyStopping(criterion="PQ", alpha=0.5)
    with pytest.raises(ValueError, match="needs the training metric `loss`"):
        drive(stopper, [1.0, 0.9])
    stopper = EarlyStopping(monitor="loss", criterion="PQ", alpha=0.5)
    with pytest.raises(ValueError, match="monitor a 'val_' metric"):
        drive(stopper, [1.0, 0.9], key="loss")


def test_up_stop_epoch():
    # k = 2: strip ends t = 2, 4, 6, 8, 10 have E_va 0.8, 0.85 (rise), 0.75, 0.9 (rise),
    # 1.0 (rise: the second in a row).
    values = [1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.8, 0.9, 0.95, 1.0]
    for strips, stop_epoch in [(1, 3), (2, 9), (3, None)]:
        stopper = EarlyStopping(criterion="UP", strips=strips, strip_length=2)
        drive(stopper, values)
        if stop_epoch is None:
            assert stopper.stop_reason == "completed"
        else:
            assert stopper.stop_reason == "UP" and stopper.stopped_epoch == stop_epoch


def test_up_on_a_metric_to_maximize_stops_when_it_falls():
    # The mirror image of test_up_stop_epoch: accuracy = 2 - E_va. In mode "max" UP counts
    # the strips in which accuracy fell; counting those in which it rose would stop as
    # soon as accuracy improved.
    values = [2 - v for v in [1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.8, 0.9, 0.95, 1.0]]
    for strips, stop_epoch in [(1, 3), (2, 9), (3, None)]:
        stopper = EarlyStopping(
            monitor="val_acc", mode="max", criterion="UP", strips=strips, strip_length=2
        )
        drive(stopper, values, key="val_acc")
        if stop_epoch is None:
            assert stopper.stop_reason == "completed"
        else:
            assert stopper.stop_reason == "UP" and stopper.stopped_epoch == stop_epoch
            assert "E_va fell over" in stopper.stop_message
    stopper = EarlyStopping(monitor="val_acc", mode="max", criterion="UP", strips=1, strip_length=1)
    drive(stopper, [0.5, 0.6, 0.7], key="val_acc")
    assert stopper.stop_reason == "completed"


def test_verbose_line_names_criterion_and_numbers(capsys):
    stopper = EarlyStopping(criterion="GL", alpha=5.0, verbose=1, restore_best_weights=True)
    drive(stopper, [1.0, 0.8, 0.7, 0.72, 0.75])
    out = capsys.readouterr().out
    assert (
        "Epoch 5: early stopping (GL: GL(5) = 7.14286 > alpha = 5 (E_va = 0.75, E_opt = 0.7))"
        in out
    )
    assert "Restoring model weights from the end of the best epoch: 3." in out


def test_invalid_arguments():
    cases = [
        (dict(criterion="XY"), "Invalid value for argument `criterion`"),
        (dict(criterion="GL"), "Invalid value for argument `alpha`"),
        (dict(criterion="UP"), "Invalid value for argument `strips`"),
        (dict(criterion="UP", strips=0), "Invalid value for argument `strips`"),
        (dict(min_delta_mode="pct"), "Invalid value for argument `min_delta_mode`"),
        (dict(divergence_threshold="big"), "Invalid value for argument `divergence_threshold`"),
        (dict(backup=3), "Invalid value for argument `backup`"),
        # A string is refused, not passed through bool(), where "False" would mean True.
        (dict(stop_on_nonfinite="False"), r"`stop_on_nonfinite`: expected a bool. .*='False'"),
        (dict(strict="no"), r"argument `strict`: expected a bool. Received: strict='no'"),
        (dict(verbose=None), r"argument `verbose`: expected an integer >= 0"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            EarlyStopping(**kwargs)
    assert EarlyStopping(strict=np.bool_(True), verbose=True).strict is True


def test_gl_refuses_a_maximized_metric():
    stopper = EarlyStopping(monitor="val_accuracy", mode="max", criterion="GL", alpha=1.0)
    with pytest.raises(ValueError, match="needs an error to minimize"):
        drive(stopper, [0.5], key="val_accuracy")


# ----------------------------------------------------------- non-finite values
def test_nan_first_epoch_never_becomes_best():
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    drive(stopper, [float("nan"), 1.0, 0.9, 0.95, 0.97])
    assert stopper.best == 0.9 and stopper.best_epoch == 2
    assert stopper.stopped_epoch == 4
    assert stopper.model.get_weights() == 2


def test_all_nan_restores_nothing():
    stopper = EarlyStopping(patience=1, restore_best_weights=True)
    drive(stopper, [float("nan")] * 3)
    assert stopper.best is None and stopper.best_weights is None
    assert stopper.stopped_epoch == 1 and stopper.model.get_weights() == 1  # left as trained


def test_stop_on_nonfinite_stops_at_once():
    stopper = EarlyStopping(patience=10, stop_on_nonfinite=True, restore_best_weights=True)
    drive(stopper, [1.0, 0.5, float("inf"), 0.4])
    assert stopper.stop_reason == "nonfinite" and stopper.stopped_epoch == 2
    assert stopper.model.get_weights() == 1
    stopper = EarlyStopping(stop_on_nonfinite=True)
    drive(stopper, [float("nan"), 1.0])
    assert stopper.stop_reason == "nonfinite" and stopper.stopped_epoch == 0


def test_divergence_threshold_stops_at_once():
    stopper = EarlyStopping(patience=10, divergence_threshold=3.0)
    drive(stopper, [1.0, 0.9, 5.0, 0.1])
    assert stopper.stop_reason == "divergence" and stopper.stopped_epoch == 2
    stopper = EarlyStopping(monitor="val_acc", mode="max", patience=10, divergence_threshold=0.2)
    drive(stopper, [0.5, 0.6, 0.1], key="val_acc")
    assert stopper.stop_reason == "divergence" and stopper.stopped_epoch == 2
    # Exactly at the threshold is not worse than it, in either direction.
    stopper = EarlyStopping(patience=10, divergence_threshold=3.0)
    drive(stopper, [1.0, 3.0, 0.9])
    assert stopper.stop_reason == "completed"
    stopper = EarlyStopping(monitor="val_acc", mode="max", patience=10, divergence_threshold=0.2)
    drive(stopper, [0.5, 0.2, 0.6], key="val_acc")
    assert stopper.stop_reason == "completed"


def test_nan_in_real_training_is_not_restored():
    model = tiny_model()
    scores = [float("nan"), 2.0, 1.0, 3.0]
    inject = Inject(scores)
    stopper = EarlyStopping(monitor="score", mode="min", patience=5, restore_best_weights=True)
    model.fit(np.ones((8, 4)), np.ones((8, 1)), epochs=4, verbose=0, callbacks=[inject, stopper])
    assert stopper.best_epoch == 2 and stopper.stop_reason == "completed"
    assert_weights_equal(model.get_weights(), inject.weights[2])
    assert not np.allclose(model.get_weights()[0], inject.weights[3][0])


# ------------------------------------------------ restore however training ends
@pytest.mark.parametrize(
    "stop_at, patience, reason, epochs_run",
    [(None, 2, "patience", 4), (2, 5, "external", 3), (None, 5, "completed", 5)],
)
def test_restore_however_training_ends(regression_data, stop_at, patience, reason, epochs_run):
    x, y = regression_data
    model = tiny_model()
    inject = Inject([3.0, 1.0, 2.0, 2.5, 2.7], stop_at=stop_at)
    stopper = EarlyStopping(
        monitor="score", mode="min", patience=patience, restore_best_weights=True
    )
    history = model.fit(
        x, y, batch_size=8, epochs=5, verbose=0, shuffle=False, callbacks=[inject, stopper]
    )
    assert len(history.epoch) == epochs_run
    assert stopper.stop_reason == reason and stopper.best_epoch == 1
    assert_weights_equal(model.get_weights(), inject.weights[1])


# ------------------------------------------------------- missing monitor key
def test_missing_monitor_warns_once_per_fit(regression_data):
    x, y = regression_data
    model = tiny_model()
    stopper = EarlyStopping(monitor="val_loss")
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, y, epochs=3, verbose=0, callbacks=[stopper])
        messages = [w for w in caught if "Early stopping conditioned on metric" in str(w.message)]
        assert len(messages) == 1
        assert "Available metrics are: loss" in str(messages[0].message)


def test_missing_monitor_strict_raises(regression_data):
    x, y = regression_data
    with pytest.raises(ValueError, match="conditioned on metric `val_loss` which is not available"):
        tiny_model().fit(
            x, y, epochs=1, verbose=0, callbacks=[EarlyStopping(monitor="val_loss", strict=True)]
        )


# ----------------------------------------------------------- state and resume
def test_get_state_set_state_resumes_exactly():
    values = [1.0, 0.8, 0.9, 0.95, 0.97, 0.99]
    full = EarlyStopping(patience=3, restore_best_weights=True)
    drive(full, values)
    assert full.stopped_epoch == 4

    first = EarlyStopping(patience=3, restore_best_weights=True)
    first.set_model(DummyModel())
    first.on_train_begin()
    for epoch in range(3):
        first.model.weights = epoch
        first.on_epoch_end(epoch, {"val_loss": values[epoch]})
    state = first.get_state()
    assert state["wait"] == 1 and state["best"] == 0.8 and state["best_weights"] == 1

    second = EarlyStopping(patience=3, restore_best_weights=True)
    second.set_model(DummyModel())
    second.set_state(state)
    second.on_train_begin()
    assert second.wait == 1 and second.best == 0.8 and second.best_epoch == 1
    for epoch in range(3, 6):
        second.model.weights = epoch
        second.on_epoch_end(epoch, {"val_loss": values[epoch]})
        if second.model.stop_training:
            break
    second.on_train_end()
    assert second.stopped_epoch == 4 and second.model.get_weights() == 1

    with pytest.raises(ValueError, match="Invalid value for argument `state`"):
        second.set_state({"wait": 1})


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise RuntimeError("Interrupting!")


def test_resume_through_backup_and_restore(tmp_path, regression_data):
    x, y = regression_data
    scores = [1.0, 0.8, 0.9, 0.95, 0.97, 0.99, 1.0, 1.1]
    kwargs = dict(monitor="score", mode="min", patience=3, restore_best_weights=True)

    # Reference: uninterrupted. Best epoch 1, stop at epoch 4.
    keras.utils.set_random_seed(7)
    reference = tiny_model()
    ref_stop = EarlyStopping(**kwargs)
    reference.fit(
        x, y, batch_size=8, epochs=8, verbose=0, shuffle=False, callbacks=[Inject(scores), ref_stop]
    )
    assert ref_stop.stopped_epoch == 4 and ref_stop.best_epoch == 1

    keras.utils.set_random_seed(7)
    model = tiny_model()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="Interrupting"):
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=8,
            verbose=0,
            shuffle=False,
            callbacks=[
                backup,
                Inject(scores),
                EarlyStopping(**kwargs, backup=backup),
                Interrupt(4),
            ],
        )
    # A new process: fresh callbacks, the same backup directory.
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    stopper = EarlyStopping(**kwargs, backup=str(tmp_path / "backup"))
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=8,
        verbose=0,
        shuffle=False,
        callbacks=[backup, Inject(scores), stopper],
    )
    assert history.epoch == [4]  # resumed at epoch 4 with wait 2, and stopped there
    assert stopper.stopped_epoch == 4 and stopper.best == 0.8 and stopper.best_epoch == 1
    assert stopper.stop_reason == "patience"
    assert_weights_equal(model.get_weights(), reference.get_weights())
    assert not (tmp_path / "backup").exists()  # BackupAndRestore cleaned up, ours too


class InterruptAtEnd(keras.callbacks.Callback):
    """Raises at the end of epoch ``at``: between the callbacks listed before and after it."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise RuntimeError("Interrupting!")


def test_resume_is_exact_when_stopped_between_early_stopping_and_backup(tmp_path, regression_data):
    """EarlyStopping saved epoch 3, BackupAndRestore did not: the run resumes at epoch 3
    and EarlyStopping must use its state from before epoch 3, not count it twice."""
    x, y = regression_data
    scores = [1.0, 0.8, 0.9, 0.95, 0.97, 0.99, 1.0, 1.1]
    kwargs = dict(monitor="score", mode="min", patience=3, restore_best_weights=True)
    fit = dict(batch_size=8, epochs=8, verbose=0, shuffle=False)
    keras.utils.set_random_seed(7)
    reference = tiny_model()
    ref_stop = EarlyStopping(**kwargs)
    reference.fit(x, y, callbacks=[Inject(scores), ref_stop], **fit)

    keras.utils.set_random_seed(7)
    model = tiny_model()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="Interrupting"):
        model.fit(
            x,
            y,
            callbacks=[
                Inject(scores),
                EarlyStopping(**kwargs, backup=backup),
                InterruptAtEnd(3),
                backup,
            ],
            **fit,
        )
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    stopper = EarlyStopping(**kwargs, backup=backup)
    history = model.fit(x, y, callbacks=[Inject(scores), stopper, backup], **fit)
    assert history.epoch == [3, 4]  # epoch 3 again, then the stop at epoch 4
    assert (stopper.stopped_epoch, stopper.best_epoch, stopper.wait) == (
        ref_stop.stopped_epoch,
        ref_stop.best_epoch,
        ref_stop.wait,
    )
    assert_weights_equal(model.get_weights(), reference.get_weights())


def test_resume_stopped_between_backup_and_early_stopping_says_what_to_do(
    tmp_path, regression_data
):
    x, y = regression_data
    kwargs = dict(monitor="score", mode="min", patience=3)
    fit = dict(batch_size=8, epochs=8, verbose=0, shuffle=False)
    model = tiny_model()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="Interrupting"):
        model.fit(
            x,
            y,
            callbacks=[
                Inject([1.0] * 8),
                backup,
                InterruptAtEnd(2),
                EarlyStopping(**kwargs, backup=backup),
            ],
            **fit,
        )
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(
        ValueError,
        match=r"argument `backup`: expected EarlyStopping's state "
        r"saved at the end of epoch 3.*Received: states for "
        r"epochs \[1, 2\].*before its BackupAndRestore",
    ):
        model.fit(
            x,
            y,
            callbacks=[Inject([1.0] * 8), backup, EarlyStopping(**kwargs, backup=backup)],
            **fit,
        )


# ------------------------------------------------------ serialization, scopes
def test_config_round_trip():
    stopper = EarlyStopping(
        monitor="val_acc",
        mode="max",
        criterion="UP",
        strips=2,
        strip_length=3,
        min_delta=0.01,
        min_delta_mode="rel",
        stop_on_nonfinite=True,
        divergence_threshold=0.1,
        strict=True,
    )
    config = keras.saving.serialize_keras_object(stopper)
    assert config["registered_name"] == "kreg>EarlyStopping"
    clone = keras.saving.deserialize_keras_object(config)
    assert isinstance(clone, EarlyStopping) and clone.get_config() == stopper.get_config()
    assert kreg.callbacks.EarlyStopping is EarlyStopping


def _replay(values, **kwargs):
    stopper = EarlyStopping(**kwargs)
    drive(stopper, values, key="loss")
    return stopper


@tf_only
def test_under_mirrored_strategy(mirrored, regression_data):
    x, y = regression_data
    with mirrored.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.05), "mse")
    inject = Inject([0.0] * 4)
    kwargs = dict(monitor="loss", patience=1, min_delta=0.5, min_delta_mode="rel")
    stopper = EarlyStopping(**kwargs, restore_best_weights=True)
    history = model.fit(
        x, y, batch_size=8, epochs=4, verbose=0, shuffle=False, callbacks=[inject, stopper]
    )
    # The decision is the one the globally aggregated logs give.
    replay = _replay(history.history["loss"], **kwargs)
    assert stopper.stopped_epoch == replay.stopped_epoch
    assert stopper.stop_reason == replay.stop_reason
    assert stopper.best_epoch == replay.best_epoch
    assert_weights_equal(model.get_weights(), inject.weights[stopper.best_epoch])
    # Independent reference: with patience 1, the first epoch whose loss is not below
    # best·(1 − 0.5) stops training; the best epoch is the last one that was.
    losses = history.history["loss"]
    best, best_epoch, stop = losses[0], 0, None
    for epoch, loss in enumerate(losses[1:], start=1):
        if loss < best * (1 - 0.5):
            best, best_epoch = loss, epoch
        else:
            stop = epoch
            break
    assert stop is not None and len(losses) == stop + 1
    assert (stopper.stopped_epoch, stopper.best_epoch, stopper.stop_reason) == (
        stop,
        best_epoch,
        "patience",
    )
    assert stopper.best == best


def test_keras_arguments_are_validated_with_their_names():
    for kwargs, message in (
        (
            dict(patience=None),
            r"argument `patience`: expected an integer >= 0. Received: patience=None",
        ),
        (dict(patience=-1), r"argument `patience`"),
        (dict(baseline="0.5"), r"argument `baseline`: expected a finite float or None"),
        (dict(start_from_epoch=1.5), r"argument `start_from_epoch`"),
    ):
        with pytest.raises(ValueError, match=message):
            EarlyStopping(**kwargs)
    es = EarlyStopping(patience=3, baseline=0.5, start_from_epoch=2)
    assert (es.patience, es.baseline, es.start_from_epoch) == (3, 0.5, 2)
