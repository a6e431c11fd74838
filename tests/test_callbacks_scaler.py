"""kreg.callbacks.RegularizationScaler: rules with exact numbers, partial batches, errors."""

import math

import keras
import numpy as np
import pytest
from conftest import tf_only

import kreg
from kreg._live import Strength, StrengthState
from kreg.callbacks import RegularizationScaler
from kreg.callbacks._scaler import (
    batch_sizes,
    loss_reduction,
    minibatch_value,
    normalized_value,
    select,
    timescale_value,
)
from kreg.optimizers import DecoupledWeightDecay

pytestmark = [
    pytest.mark.filterwarnings("ignore:`shuffle=True` was passed"),
    pytest.mark.filterwarnings("ignore:Your input ran out of data"),
]

N, B = 10, 4  # 3 steps per epoch: batches of 4, 4 and 2
NAME = "d.kernel_regularizer.l2"


def model_with_l2(l2=1.0, loss="mse", optimizer=None):
    """w ← w·(1 − 2·lr·λ_b) per step on zero data: the applied λ_b shows in the weight."""
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(
                1,
                use_bias=False,
                kernel_initializer="ones",
                kernel_regularizer=kreg.regularizers.L2(l2),
                name="d",
            ),
        ]
    )
    model.compile(optimizer or keras.optimizers.SGD(0.1), loss)
    return model


def zeros(n=N):
    return np.zeros((n, 2), "float32"), np.zeros((n, 1), "float32")


class Record(keras.callbacks.Callback):
    """After the scaler (later in the list): the value each batch trains with, read as the
    batch begins, or with ``after_step`` once its step ran (a batch call that runs no
    step, at the end of data of unknown length, then records nothing)."""

    def __init__(self, name=NAME, after_step=False):
        super().__init__()
        self.name, self.after_step, self.values = name, after_step, []

    def _record(self):
        self.values.append(float(kreg.strengths(self.model)[self.name]))

    def on_train_batch_begin(self, batch, logs=None):
        if not self.after_step:
            self._record()

    def on_train_batch_end(self, batch, logs=None):
        if self.after_step:
            self._record()


def fit(model, scaler, epochs=2, n=N, batch_size=B, **kwargs):
    record = Record()
    history = model.fit(
        *zeros(n),
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        shuffle=False,
        callbacks=[scaler, record],
        **kwargs,
    )
    return record.values, history


def kernel(model):
    return float(model.get_weights()[0][0, 0])


# ----------------------------------------------------------------- pure rules
def test_rule_functions_exact():
    assert minibatch_value(1.0, 32, 100, "sum") == 0.32
    assert minibatch_value(1.0, 4, 100, "sum") == 0.04
    assert minibatch_value(1.0, 32, 100, "mean") == 0.01
    assert normalized_value(0.05, 100, 50000, 200) == pytest.approx(
        1.5811388300841897e-4, rel=1e-15
    )
    assert normalized_value(1.0, 2, 10, 5) == pytest.approx(0.2, rel=1e-15)
    assert timescale_value(10.0, 100) == pytest.approx(1e-3, rel=1e-15)
    assert timescale_value(10.0, 100, 0.01) == pytest.approx(0.1, rel=1e-15)
    assert batch_sizes(32, 100, 4) == (32, 4)
    assert batch_sizes(25, 100, 4) == (25, 25)
    assert batch_sizes(32, 100, 2) == (32, 32)  # steps_per_epoch < one pass: all full


def test_loss_reduction_read_from_the_compiled_loss():
    assert loss_reduction("mse") == "mean"
    assert loss_reduction(keras.losses.mean_squared_error) == "mean"
    assert loss_reduction(keras.losses.MeanSquaredError(reduction="sum")) == "sum"
    assert loss_reduction({"a": "mse", "b": keras.losses.MeanAbsoluteError()}) == "mean"
    with pytest.raises(ValueError, match="could not determine how the compiled loss reduces"):
        loss_reduction(keras.losses.MeanSquaredError(reduction="mean_with_sample_weight"))
    with pytest.raises(ValueError, match="could not determine how the compiled loss reduces"):
        loss_reduction(["mse", keras.losses.MeanSquaredError(reduction="sum")])
    with pytest.raises(ValueError, match="could not determine how the compiled loss reduces"):
        loss_reduction(None)


def test_select_by_name_kind_and_pattern():
    kinds = {
        "a.kernel_regularizer.l2": ("regularizer", 1.0),
        "b.kernel_regularizer.l1": ("regularizer", 1.0),
        "noise.stddev": ("noise", 0.1),
        "drop.rate": ("dropout", 0.5),
        "optimizer.weight_decay": ("weight_decay", 1.0),
    }
    found = {}
    for name, (kind, base) in kinds.items():
        state = StrengthState({"x": base}, kind=kind)
        found[name] = Strength(state, "x", name)
    assert list(select(found, None)) == list(found)
    assert list(select(found, ["regularizers"])) == [
        "a.kernel_regularizer.l2",
        "b.kernel_regularizer.l1",
    ]
    assert list(select(found, ["*.l2", "drop.rate"])) == ["a.kernel_regularizer.l2", "drop.rate"]
    assert list(select(found, ["weight_decay", "noise"])) == [
        "noise.stddev",
        "optimizer.weight_decay",
    ]
    with pytest.raises(
        ValueError, match="Invalid value for argument `targets`: 'conv.*' matches no"
    ):
        select(found, ["conv.*"])


def test_targets_select_kreg_layer_strengths_by_kind():
    model = keras.Sequential(
        [
            keras.Input((2,)),
            kreg.layers.GaussianNoise(0.1, name="noise"),
            kreg.layers.Dropout(0.5, name="drop"),
            keras.layers.Dense(1, kernel_regularizer=kreg.regularizers.L2(0.1), name="d"),
        ]
    )
    model.compile("sgd", "mse")
    ramp = lambda base, step, epoch, b, n, t: base * (epoch + 1) / 4  # noqa: E731
    scaler = RegularizationScaler(ramp, targets=["noise", "dropout"])
    history = model.fit(*zeros(), batch_size=B, epochs=2, verbose=0, callbacks=[scaler])
    assert history.history["noise.stddev"] == pytest.approx([0.025, 0.05], rel=1e-6)
    assert history.history["drop.rate"] == pytest.approx([0.125, 0.25], rel=1e-6)
    assert "d.kernel_regularizer.l2" not in history.history
    current = {n: float(s) for n, s in kreg.strengths(model).items()}
    assert current == pytest.approx(
        {"noise.stddev": 0.05, "drop.rate": 0.25, "d.kernel_regularizer.l2": 0.1}, rel=1e-6
    )


def test_targets_none_scales_penalties_but_not_rates_or_sigma():
    model = keras.Sequential(
        [
            keras.Input((2,)),
            kreg.layers.GaussianNoise(0.1, name="noise"),
            kreg.layers.Dropout(0.5, name="drop"),
            keras.layers.Dense(1, kernel_regularizer=kreg.regularizers.L2(1.0), name="d"),
        ]
    )
    model.compile("sgd", "mse")
    scaler = RegularizationScaler("minibatch", batch_size=B, num_examples=N)
    history = model.fit(*zeros(), batch_size=B, epochs=1, verbose=0, callbacks=[scaler])
    assert history.history["d.kernel_regularizer.l2"] == pytest.approx([1.0 / N], rel=1e-6)
    assert "drop.rate" not in history.history and "noise.stddev" not in history.history
    current = {n: float(s) for n, s in kreg.strengths(model).items()}
    assert current["drop.rate"] == 0.5 and current["noise.stddev"] == pytest.approx(0.1)
    only_rates = keras.Sequential(
        [keras.Input((2,)), kreg.layers.Dropout(0.5, name="drop"), keras.layers.Dense(1)]
    )
    only_rates.compile("sgd", "mse")
    with pytest.raises(
        ValueError, match="found no penalty strength .* Available: \\['drop.rate'\\]"
    ):
        only_rates.fit(
            *zeros(),
            batch_size=B,
            epochs=1,
            verbose=0,
            callbacks=[RegularizationScaler("minibatch", batch_size=B, num_examples=N)],
        )


# ------------------------------------------------------- rules in training
def test_minibatch_sum_scales_each_batch_including_the_last():
    model = model_with_l2(1.0, loss=keras.losses.MeanSquaredError(reduction="sum"))
    scaler = RegularizationScaler("minibatch", batch_size=B, num_examples=N)
    values, history = fit(model, scaler, epochs=2)
    np.testing.assert_allclose(values, [0.4, 0.4, 0.2] * 2, rtol=1e-7)
    # One epoch applies exactly λ = 1: b/N summed over the epoch.
    assert sum(values[:3]) == pytest.approx(1.0, rel=1e-6)
    # The train step used those values: w = Π (1 − 2·lr·λ_b).
    expected = ((1 - 0.08) ** 2 * (1 - 0.04)) ** 2
    assert kernel(model) == pytest.approx(expected, rel=1e-6)
    assert history.history[NAME] == pytest.approx([0.2, 0.2], rel=1e-7)


def test_minibatch_mean_is_lambda_over_n_and_assigned_once(monkeypatch):
    calls = []
    original = Strength.assign
    monkeypatch.setattr(Strength, "assign", lambda self, v: (calls.append(v), original(self, v)))
    model = model_with_l2(1.0)  # "mse": sum_over_batch_size
    scaler = RegularizationScaler("minibatch", num_examples=N)
    values, _ = fit(model, scaler, epochs=2)
    np.testing.assert_allclose(values, [0.1] * 6, rtol=1e-7)
    assert calls == [pytest.approx(0.1)]  # unchanged values are not assigned again
    assert kernel(model) == pytest.approx((1 - 0.02) ** 6, rel=1e-6)


def test_minibatch_sum_assigns_only_on_change(monkeypatch):
    calls = []
    original = Strength.assign
    monkeypatch.setattr(Strength, "assign", lambda self, v: (calls.append(v), original(self, v)))
    model = model_with_l2(1.0, loss=keras.losses.MeanSquaredError(reduction="sum"))
    scaler = RegularizationScaler("minibatch", batch_size=B, num_examples=N)
    # No other callback reads the strength: the scaler's assignments alone reach the step.
    model.fit(*zeros(), batch_size=B, epochs=2, verbose=0, shuffle=False, callbacks=[scaler])
    np.testing.assert_allclose(calls, [0.4, 0.2, 0.4, 0.2], rtol=1e-7)
    assert kernel(model) == pytest.approx(((1 - 0.08) ** 2 * (1 - 0.04)) ** 2, rel=1e-6)


def test_normalized_uses_the_actual_batch_size_and_fit_epochs():
    model = model_with_l2(0.5)
    scaler = RegularizationScaler("normalized", batch_size=B, num_examples=N)
    values, _ = fit(model, scaler, epochs=2)  # T = 2 from fit
    full, last = 0.5 * math.sqrt(4 / 20), 0.5 * math.sqrt(2 / 20)
    np.testing.assert_allclose(values, [full, full, last] * 2, rtol=1e-6)
    scaler = RegularizationScaler("normalized", batch_size=B, num_examples=N, epochs=5)
    values, _ = fit(model_with_l2(0.5), scaler, epochs=1)
    np.testing.assert_allclose(
        values, [0.5 * math.sqrt(4 / 50)] * 2 + [0.5 * math.sqrt(2 / 50)], rtol=1e-6
    )


def test_callable_rule_receives_step_epoch_and_sizes():
    seen = []

    def rule(base, step, epoch, batch_size, num_examples, epochs):
        seen.append((base, step, epoch, batch_size, num_examples, epochs))
        return base * (step + 1) / 100

    values, _ = fit(
        model_with_l2(2.0), RegularizationScaler(rule, batch_size=B, num_examples=N), epochs=2
    )
    assert seen == [(2.0, s, s // 3, 2 if s % 3 == 2 else 4, N, 2) for s in range(6)]
    np.testing.assert_allclose(values, [2.0 * (s + 1) / 100 for s in range(6)], rtol=1e-6)


def test_schedule_multiplies_the_rule():
    schedule = keras.optimizers.schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    scaler = RegularizationScaler("minibatch", num_examples=N, schedule=schedule)
    values, _ = fit(model_with_l2(1.0), scaler, epochs=2)
    np.testing.assert_allclose(values, [0.1 * 0.5**s for s in range(6)], rtol=1e-6)
    scaler = RegularizationScaler(
        "minibatch", num_examples=N, schedule=lambda step: min(1.0, (step + 1) / 4)
    )
    values, _ = fit(model_with_l2(1.0), scaler, epochs=2)
    np.testing.assert_allclose(values, [0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rtol=1e-6)


def test_timescale_sets_decoupled_weight_decay():
    for follow, expected_wd in [
        ("schedule", 1 / (2.0 * 3)),
        ("learning_rate", 1 / (2.0 * 3 * 0.1)),
        ("corrected", 1 / (2.0 * 3 * 0.1)),
        ("none", 1 / (2.0 * 3)),
    ]:
        keras.backend.clear_session()
        model = keras.Sequential(
            [
                keras.Input((2,)),
                keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name="d"),
            ]
        )
        optimizer = DecoupledWeightDecay(keras.optimizers.SGD(0.1), weight_decay=2.0, follow=follow)
        model.compile(optimizer, "mse")
        scaler = RegularizationScaler("timescale")  # τ = 2 epochs, 3 steps per epoch
        record = Record("optimizer.weight_decay")
        model.fit(*zeros(), batch_size=B, epochs=1, verbose=0, callbacks=[scaler, record])
        np.testing.assert_allclose(record.values, [expected_wd] * 3, rtol=1e-6)
        # The decay per step at lr_0 is 1/(τ·S) = 1/6, whatever `follow` is.
        assert kernel(model) == pytest.approx((1 - 1 / 6) ** 3, rel=1e-6)


def test_timescale_refuses_other_kinds():
    model = model_with_l2(1.0)
    with pytest.raises(ValueError, match="needs a kreg.optimizers.DecoupledWeightDecay"):
        model.fit(
            *zeros(),
            batch_size=B,
            epochs=1,
            verbose=0,
            callbacks=[RegularizationScaler("timescale")],
        )
    with pytest.raises(ValueError, match="sets weight decays only"):
        model.fit(
            *zeros(),
            batch_size=B,
            epochs=1,
            verbose=0,
            callbacks=[RegularizationScaler("timescale", targets="regularizers")],
        )


# --------------------------------------------------------------- errors
def _generator():
    x, y = zeros()
    for i in range(0, N, B):
        yield x[i : i + B], y[i : i + B]


def test_errors_name_what_could_not_be_determined():
    cases = [
        ("normalized", dict(num_examples=N), "could not determine the batch size b"),
        ("normalized", dict(batch_size=B), "could not determine the number of training examples N"),
        ("minibatch", dict(), "could not determine the number of training examples N"),
        ("timescale", dict(targets="regularizers"), "could not determine the steps per epoch"),
    ]
    model = model_with_l2(1.0)
    for rule, kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            model.fit(
                _generator(), epochs=1, verbose=0, callbacks=[RegularizationScaler(rule, **kwargs)]
            )


def test_minibatch_sum_needs_the_batch_size():
    model = model_with_l2(1.0, loss=keras.losses.MeanSquaredError(reduction="sum"))
    with pytest.raises(ValueError, match="could not determine the batch size b"):
        model.fit(
            *zeros(),
            batch_size=B,
            epochs=1,
            verbose=0,
            callbacks=[RegularizationScaler("minibatch", num_examples=N)],
        )


def test_unknown_reduction_is_an_error_unless_given():
    loss = keras.losses.MeanSquaredError(reduction="mean_with_sample_weight")
    with pytest.raises(ValueError, match="Pass reduction='sum' or reduction='sum_over_batch_size'"):
        model_with_l2(1.0, loss=loss).fit(
            *zeros(),
            batch_size=B,
            epochs=1,
            verbose=0,
            callbacks=[RegularizationScaler("minibatch", num_examples=N)],
        )
    scaler = RegularizationScaler("minibatch", num_examples=N, reduction="sum_over_batch_size")
    values, _ = fit(model_with_l2(1.0, loss=loss), scaler, epochs=1)
    np.testing.assert_allclose(values, [0.1] * 3, rtol=1e-7)


def test_data_of_unknown_length_with_arguments():
    model = model_with_l2(1.0, loss=keras.losses.MeanSquaredError(reduction="sum"))
    record = Record()
    scaler = RegularizationScaler("minibatch", batch_size=B, num_examples=N)
    model.fit(_generator(), epochs=1, verbose=0, callbacks=[scaler, record])
    # (On TF, Keras calls on_train_batch_begin once more before it finds the end of data.)
    np.testing.assert_allclose(record.values[:3], [0.4, 0.4, 0.2], rtol=1e-7)
    assert kernel(model) == pytest.approx((1 - 0.08) ** 2 * (1 - 0.04), rel=1e-6)


def _unknown_length(n=N, batch_size=B):
    """A tf.data dataset whose length fit cannot tell (a filter)."""
    import tensorflow as tf

    x, y = zeros(n)
    return tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda a, b: True).batch(batch_size)


def test_data_of_unknown_length_over_several_epochs_matches_numpy():
    """Keras calls on_train_batch_begin once more at the end of the data, and no step runs
    for it. On JAX the trainer's end-of-epoch sync undoes the value assigned there: the
    scaler's cache of assigned values must follow, or from epoch 2 on the full batches
    would train with the last batch's λ."""
    model = model_with_l2(1.0, loss=keras.losses.MeanSquaredError(reduction="sum"))
    used = Record(after_step=True)
    scaler = RegularizationScaler("minibatch", batch_size=B, num_examples=N)
    model.fit(_unknown_length(), epochs=3, verbose=0, callbacks=[scaler, used])
    expected = [0.4, 0.4, 0.2] * 3  # λ·b/N for batches of 4, 4 and 2
    np.testing.assert_allclose(used.values, expected, rtol=1e-6)
    reference = np.prod([1 - 2 * 0.1 * np.float32(v) for v in expected])
    assert kernel(model) == pytest.approx(reference, rel=1e-5)


def test_schedule_counts_the_steps_that_ran_on_data_of_unknown_length():
    """Only the steps that ran count. The end-of-data call of each epoch runs no step;
    counted, it would shift the schedule's step by one per epoch: [0, 1, 2, 4, 5, 6, 8, ...]."""
    model = model_with_l2(1.0)  # a mean loss: b is not needed
    used = Record(after_step=True)
    scaler = RegularizationScaler("minibatch", num_examples=N, schedule=lambda step: step + 1.0)
    model.fit(_unknown_length(), epochs=3, verbose=0, callbacks=[scaler, used])
    np.testing.assert_allclose(np.array(used.values) * N, np.arange(1, 10), rtol=1e-6)
    # A resumed fit cannot number its steps without the steps per epoch: said, not guessed.
    with pytest.raises(ValueError, match=r"global step of a resumed fit \(initial_epoch=2\)"):
        model.fit(
            _unknown_length(),
            epochs=3,
            initial_epoch=2,
            verbose=0,
            callbacks=[
                RegularizationScaler("minibatch", num_examples=N, schedule=lambda step: 1.0)
            ],
        )


def test_timescale_counts_updates_under_gradient_accumulation():
    """With gradient_accumulation_steps=k the decay acts once per k steps: S/k updates."""
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name="d"),
        ]
    )
    inner = keras.optimizers.SGD(0.1, gradient_accumulation_steps=2)
    model.compile(kreg.optimizers.DecoupledWeightDecay(inner, 5.0), "mse")  # τ = 5 epochs
    history = model.fit(
        *zeros(40),
        batch_size=B,
        epochs=5,
        verbose=0,
        callbacks=[RegularizationScaler("timescale"), kreg.callbacks.RegularizationMonitor()],
    )
    # S = 10 steps, 5 updates per epoch: 1/(τ·5) = 0.04 per update, 25 updates
    assert kernel(model) == pytest.approx(0.96**25, rel=1e-5)
    assert history.history["decay_timescale_epochs"][-1] == pytest.approx(5.0, rel=1e-6)


def test_keras_penalties_left_unscaled_are_named():
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(2, kernel_regularizer=kreg.regularizers.L2(1.0), name="a"),
            keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L2(1.0), name="b"),
        ]
    )
    model.compile(keras.optimizers.AdamW(1e-3, weight_decay=0.1), "mse")
    scaler = RegularizationScaler("minibatch", num_examples=N)
    with pytest.warns(
        UserWarning,
        match=r"leaves \['b.kernel_regularizer', "
        r"'AdamW\(weight_decay=0.1\)'\] unscaled",
    ):
        model.fit(*zeros(), batch_size=B, epochs=1, verbose=0, callbacks=[scaler])
    assert list(scaler.values) == ["a.kernel_regularizer.l2"]


def test_invalid_arguments():
    cases = [
        (dict(rule="fast"), "Invalid value for argument `rule`"),
        (dict(rule="minibatch", batch_size=0), "Invalid value for argument `batch_size`"),
        (dict(rule="minibatch", num_examples=2.5), "Invalid value for argument `num_examples`"),
        (dict(rule="minibatch", schedule=3), "Invalid value for argument `schedule`"),
        (dict(rule="minibatch", targets=[]), "Invalid value for argument `targets`"),
        (dict(rule="minibatch", reduction="max"), "Invalid value for argument `reduction`"),
        # a ValueError, not the TypeError of hashing a list or iterating an int
        (dict(rule="minibatch", reduction=["sum"]), "Invalid value for argument `reduction`"),
        (dict(rule="minibatch", targets=5), r"argument `targets`: .*Received: targets=\[5\]"),
        # verbose is checked here, not first used (with a TypeError) in on_train_begin.
        (dict(rule="minibatch", verbose=None), r"argument `verbose`: .*Received: verbose=None"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            RegularizationScaler(**kwargs)


def test_config_round_trip():
    schedule = keras.optimizers.schedules.CosineDecay(1.0, decay_steps=10)
    scaler = RegularizationScaler(
        "normalized", targets=["*.l2"], batch_size=8, num_examples=80, epochs=3, schedule=schedule
    )
    config = keras.saving.serialize_keras_object(scaler)
    assert config["registered_name"] == "kreg>RegularizationScaler"
    clone = keras.saving.deserialize_keras_object(config)
    assert clone.get_config()["targets"] == ["*.l2"] and clone.epochs == 3
    assert float(clone.schedule(5)) == pytest.approx(float(schedule(5)))


# ------------------------------------------------------------- distribution
@tf_only
def test_under_mirrored_strategy(mirrored):
    with mirrored.scope():
        model = model_with_l2(1.0, loss=keras.losses.MeanSquaredError(reduction="sum"))
    scaler = RegularizationScaler("minibatch", batch_size=B, num_examples=N)
    values, _ = fit(model, scaler, epochs=1)
    np.testing.assert_allclose(values, [0.4, 0.4, 0.2], rtol=1e-7)
    assert kernel(model) == pytest.approx((1 - 0.08) ** 2 * (1 - 0.04), rel=1e-6)
