"""kreg.callbacks.RegularizationMonitor: norms, sparsity, strengths and decay timescale in the logs."""

import csv
import math

import keras
import numpy as np
import pytest
from conftest import tf_only

import kreg
from kreg.callbacks import RegularizationMonitor, RegularizationScaler
from kreg.callbacks._monitor import decay_timescale, weight_statistics
from kreg.optimizers import DecoupledWeightDecay

pytestmark = [
    pytest.mark.filterwarnings("ignore:`shuffle=True` was passed"),
    pytest.mark.filterwarnings("ignore:Your input ran out of data"),
]

N, B = 10, 4  # 3 steps per epoch


def zeros(n=N):
    return np.zeros((n, 3), "float32"), np.zeros((n, 2), "float32")


def frozen_model(optimizer=None):
    """Two Dense layers whose weights training does not change (lr 0 by default).

    a: kernel (3, 2) of ones except one 1e-9, bias zeros (2); b: kernel (2, 2) of twos,
    bias zeros (2). 14 weights: norm √(5 + 1e-18 + 16) = √21, zeros 4/14, |w| < 1e-8 5/14.
    """
    kernel_a = np.ones((3, 2), "float32")
    kernel_a[0, 0] = 1e-9
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                2,
                kernel_initializer=keras.initializers.Constant(kernel_a),
                kernel_regularizer=kreg.regularizers.L2(0.25),
                name="a",
            ),
            keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant(2.0), name="b"),
        ]
    )
    model.compile(optimizer or keras.optimizers.SGD(0.0), "mse")
    return model


def test_pure_functions():
    norm, zero, small = weight_statistics([np.array([3.0, 0.0]), np.array([[4.0, 1e-9]])], 1e-8)
    assert (norm, zero, small) == (5.0, 0.25, 0.5)
    assert weight_statistics([], 1e-8) == (0.0, 0.0, 0.0)
    assert decay_timescale(0.05, 3) == pytest.approx(1 / 0.15, rel=1e-15)
    assert decay_timescale(0.0, 3) == math.inf


class SetKernelB(keras.callbacks.Callback):
    """Before the monitor in the list: sets b's kernel to values[epoch] at each epoch end."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        self.model.get_layer("b").kernel.assign(np.full((2, 2), self.values[epoch], "float32"))


def test_epoch_logs_reach_history_and_csv_logger(tmp_path):
    model = frozen_model()
    path = tmp_path / "log.csv"
    # b's kernel: 2 at the start, then 3, 0 and 1e-9 at the ends of epochs 0, 1, 2: the
    # logs must be computed from the weights at each epoch end, not once.
    values = [3.0, 0.0, 1e-9]
    history = model.fit(
        *zeros(),
        batch_size=B,
        epochs=3,
        verbose=0,
        callbacks=[
            SetKernelB(values),
            RegularizationMonitor(per_layer=True),
            keras.callbacks.CSVLogger(str(path)),
        ],
    )
    logs = history.history
    # NumPy reference: a = ones(3, 2) with one 1e-9 and bias zeros(2), b = c·ones(2, 2) and
    # bias zeros(2), 14 weights.
    a = [np.where(np.arange(6).reshape(3, 2) == 0, 1e-9, 1.0), np.zeros(2)]
    for epoch, c in enumerate(values):
        arrays = a + [np.full((2, 2), np.float32(c), "float64"), np.zeros(2)]
        flat = np.concatenate([w.ravel() for w in arrays])
        assert logs["weight_norm"][epoch] == pytest.approx(np.sqrt(np.sum(flat**2)), rel=1e-6)
        assert logs["weight_norm/a"][epoch] == pytest.approx(math.sqrt(5), rel=1e-6)
        assert logs["weight_norm/b"][epoch] == pytest.approx(2 * abs(c), rel=1e-6)
        assert logs["zero_fraction"][epoch] == np.mean(flat == 0)
        assert logs["near_zero_fraction"][epoch] == np.mean(np.abs(flat) < 1e-8)
    assert logs["zero_fraction"] == [4 / 14, 8 / 14, 4 / 14]
    assert logs["near_zero_fraction"] == [5 / 14, 9 / 14, 9 / 14]
    assert logs["a.kernel_regularizer.l2"] == pytest.approx([0.25] * 3, rel=1e-7)
    assert "decay_timescale_epochs" not in logs
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [float(r["weight_norm"]) for r in rows] == pytest.approx(
        [math.sqrt(41), math.sqrt(5), math.sqrt(5 + 4e-18)], rel=1e-6
    )
    assert [float(r["near_zero_fraction"]) for r in rows] == pytest.approx([5 / 14, 9 / 14, 9 / 14])


def test_zero_tol_and_per_layer_off():
    history = frozen_model().fit(
        *zeros(), batch_size=B, epochs=1, verbose=0, callbacks=[RegularizationMonitor(zero_tol=0.0)]
    )
    assert history.history["near_zero_fraction"] == [0.0]  # nothing is below 0
    assert not any(key.startswith("weight_norm/") for key in history.history)


def test_strengths_show_the_values_set_during_training():
    history = frozen_model().fit(
        *zeros(),
        batch_size=B,
        epochs=2,
        verbose=0,
        callbacks=[
            RegularizationScaler("minibatch", num_examples=N, targets="regularizers"),
            RegularizationMonitor(),
        ],
    )
    assert history.history["a.kernel_regularizer.l2"] == pytest.approx([0.025] * 2, rel=1e-6)


@pytest.mark.parametrize(
    "follow, learning_rate, expected",
    [
        ("schedule", 0.1, 1 / (0.05 * 3)),
        ("learning_rate", 0.1, 1 / (0.05 * 0.1 * 3)),
        # "none" ignores the schedule that "schedule" follows (the next case): 1/(wd·S).
        ("none", keras.optimizers.schedules.ExponentialDecay(0.1, 1, 0.5), 1 / (0.05 * 3)),
        # lr_t = 0.1·0.5^3 after 3 steps: f = lr_t/lr_0 = 0.125.
        (
            "schedule",
            keras.optimizers.schedules.ExponentialDecay(0.1, 1, 0.5),
            1 / (0.05 * 0.125 * 3),
        ),
    ],
)
def test_decay_timescale_in_epochs(follow, learning_rate, expected):
    optimizer = DecoupledWeightDecay(
        keras.optimizers.SGD(learning_rate), weight_decay=0.05, follow=follow
    )
    history = frozen_model(optimizer).fit(
        *zeros(), batch_size=B, epochs=1, verbose=0, callbacks=[RegularizationMonitor()]
    )
    assert history.history["decay_timescale_epochs"] == pytest.approx([expected], rel=1e-6)
    assert history.history["optimizer.weight_decay"] == pytest.approx([0.05], rel=1e-6)


def test_timescale_round_trip_with_the_scaler():
    optimizer = DecoupledWeightDecay(
        keras.optimizers.SGD(0.1), weight_decay=4.0, follow="learning_rate"
    )
    history = frozen_model(optimizer).fit(
        *zeros(),
        batch_size=B,
        epochs=2,
        verbose=0,
        callbacks=[RegularizationScaler("timescale"), RegularizationMonitor()],
    )
    assert history.history["decay_timescale_epochs"] == pytest.approx([4.0, 4.0], rel=1e-6)


def _generator():
    x, y = zeros()
    for i in range(0, N, B):
        yield x[i : i + B], y[i : i + B]


def test_steps_counted_when_fit_does_not_know_them():
    optimizer = DecoupledWeightDecay(
        keras.optimizers.SGD(0.1), weight_decay=0.05, follow="schedule"
    )
    history = frozen_model(optimizer).fit(
        _generator(), epochs=1, verbose=0, callbacks=[RegularizationMonitor()]
    )
    assert history.history["decay_timescale_epochs"] == pytest.approx([1 / (0.05 * 3)], rel=1e-6)


def test_invalid_zero_tol_and_config_round_trip():
    with pytest.raises(ValueError, match=r"argument `per_layer`: expected a bool"):
        RegularizationMonitor(per_layer="no")  # a string is no bool, though "no" is truthy
    with pytest.raises(ValueError, match="Invalid value for argument `zero_tol`"):
        RegularizationMonitor(zero_tol=-1.0)
    monitor = RegularizationMonitor(per_layer=True, zero_tol=1e-4)
    config = keras.saving.serialize_keras_object(monitor)
    assert config["registered_name"] == "kreg>RegularizationMonitor"
    clone = keras.saving.deserialize_keras_object(config)
    assert clone.get_config() == {"per_layer": True, "zero_tol": 1e-4}


@tf_only
def test_all_three_callbacks_under_mirrored_strategy(mirrored):
    with mirrored.scope():
        optimizer = DecoupledWeightDecay(keras.optimizers.SGD(0.0), weight_decay=2.0, follow="none")
        model = frozen_model(optimizer)
    # The monitor comes before the stopper in the list, so the stopper sees its logs.
    stopper = kreg.callbacks.EarlyStopping(monitor="weight_norm", mode="max", patience=0)
    history = model.fit(
        *zeros(),
        batch_size=B,
        epochs=3,
        verbose=0,
        callbacks=[
            RegularizationScaler("timescale"),
            RegularizationMonitor(per_layer=True),
            stopper,
        ],
    )
    logs = history.history
    # τ = 2 epochs, 3 steps per epoch, follow="none": wd = 1/6 per step.
    assert logs["optimizer.weight_decay"] == pytest.approx([1 / 6, 1 / 6], rel=1e-6)
    assert logs["decay_timescale_epochs"] == pytest.approx([2.0, 2.0], rel=1e-6)
    shrink = (1 - 1 / 6) ** 3  # per epoch, on every kernel (lr 0: decay only)
    assert logs["weight_norm/b"] == pytest.approx([4.0 * shrink, 4.0 * shrink**2], rel=1e-5)
    # The norm falls: epoch 1 is no improvement in mode "max", so it stops there.
    assert stopper.stopped_epoch == 1 and stopper.stop_reason == "patience"


def _tensorboard_epochs(log_dir):
    """tag -> [(step, value)] of the epoch scalars a keras.callbacks.TensorBoard wrote."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    events = EventAccumulator(str(log_dir / "train"), size_guidance={"tensors": 0})
    events.Reload()
    return {
        tag: [(e.step, make_ndarray(e.tensor_proto).item()) for e in events.Tensors(tag)]
        for tag in events.Tags()["tensors"]
    }


@pytest.mark.parametrize("monitor_first", [False, True])
def test_scalars_reach_tensorboard_csv_logger_and_history_in_either_order(tmp_path, monitor_first):
    pytest.importorskip("tensorflow")  # keras.callbacks.TensorBoard writes with tf.summary
    pytest.importorskip("tensorboard")  # and the test reads its event files
    # follow="none" with lr 0: each step multiplies the kernels by 1 - 0.05, and nothing else.
    optimizer = DecoupledWeightDecay(keras.optimizers.SGD(0.0), weight_decay=0.05, follow="none")
    model = frozen_model(optimizer)
    monitor = RegularizationMonitor(per_layer=True)
    loggers = [
        keras.callbacks.TensorBoard(str(tmp_path), write_graph=False),
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        keras.callbacks.History(),
    ]
    callbacks = [monitor, *loggers] if monitor_first else [*loggers, monitor]
    logs = model.fit(*zeros(), batch_size=B, epochs=2, verbose=0, callbacks=callbacks).history
    shrink = [0.95**3, 0.95**6]  # after 3 and 6 steps
    assert logs["weight_norm"] == pytest.approx([math.sqrt(21) * s for s in shrink], rel=1e-5)
    assert logs["weight_norm/b"] == pytest.approx([4 * s for s in shrink], rel=1e-5)
    assert logs["zero_fraction"] == [4 / 14] * 2 and logs["near_zero_fraction"] == [5 / 14] * 2
    assert logs["a.kernel_regularizer.l2"] == pytest.approx([0.25] * 2, rel=1e-7)
    assert logs["decay_timescale_epochs"] == pytest.approx([1 / (0.05 * 3)] * 2, rel=1e-6)
    keys = sorted(monitor.statistics())  # 9 or more: the optimizer's other strengths too
    assert {"weight_norm", "weight_norm/a", "optimizer.weight_decay"} <= set(keys)
    # TensorBoard: each key once per epoch, at the History's value in float32.
    scalars = _tensorboard_epochs(tmp_path)
    for key in keys:
        assert scalars[f"epoch_{key}"] == [
            (0, np.float32(logs[key][0])),
            (1, np.float32(logs[key][1])),
        ], key
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    for key in keys:
        assert [float(row[key]) for row in rows] == logs[key], key


class Record(keras.callbacks.Callback):
    """Keeps the "weight_norm/b" it sees in the logs at each epoch end and at train end."""

    def __init__(self):
        super().__init__()
        self.seen, self.at_end = [], None

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(logs.get("weight_norm/b"))

    def on_train_end(self, logs=None):
        self.at_end = logs.get("weight_norm/b")


def test_callbacks_before_the_monitor_see_the_weights_before_the_epoch_end_hooks():
    before, after = Record(), Record()
    history = frozen_model().fit(
        *zeros(),
        batch_size=B,
        epochs=3,
        verbose=0,
        callbacks=[
            before,
            SetKernelB([3.0, 0.0, 1e-9]),
            RegularizationMonitor(per_layer=True),
            after,
        ],
    )
    # b's kernel is 2, and SetKernelB sets it to 3, 0, 1e-9 between the two computations of
    # each epoch: the monitor and those after it see the new value, those before the old.
    assert before.seen == pytest.approx([4.0, 6.0, 0.0], rel=1e-7)
    assert after.seen == history.history["weight_norm/b"]
    assert after.seen == pytest.approx([6.0, 0.0, 2e-9], rel=1e-6, abs=0)
    # on_train_end's logs (Keras: the last epoch's) carry the monitor's last values.
    assert before.at_end == after.at_end == after.seen[-1]


def test_hook_ahead_is_removed_after_fit_from_a_callback_list_given_again(tmp_path):
    model = frozen_model()
    csv_logger = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    monitor = RegularizationMonitor()
    callbacks = keras.callbacks.CallbackList([csv_logger, monitor], add_history=True, model=model)
    for _ in range(2):
        model.fit(*zeros(), batch_size=B, epochs=1, verbose=0, callbacks=callbacks)
        assert callbacks.callbacks == [csv_logger, monitor, model.history]
        with open(tmp_path / "log.csv") as f:  # rewritten by each fit
            rows = list(csv.DictReader(f))
        assert [float(row["weight_norm"]) for row in rows] == pytest.approx([math.sqrt(21)])
