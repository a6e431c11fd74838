"""The reprs of kreg's callbacks and optimizer wrapper: the call that builds them."""

import keras
import numpy as np

import kreg


def test_defaults_print_no_arguments():
    assert repr(kreg.callbacks.EarlyStopping()) == "kreg.callbacks.EarlyStopping()"
    assert repr(kreg.callbacks.RegularizationMonitor()) == "kreg.callbacks.RegularizationMonitor()"
    assert (
        repr(kreg.optimizers.DecoupledWeightDecay(keras.optimizers.Adam(), 0.01))
        == "kreg.optimizers.DecoupledWeightDecay(optimizer=Adam(learning_rate=0.001), "
        "weight_decay=0.01)"
    )


def test_only_the_arguments_that_differ_are_listed():
    early = kreg.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=5, criterion="GL", alpha=2.0, min_delta=0.0
    )
    assert repr(early) == (
        "kreg.callbacks.EarlyStopping(monitor='val_accuracy', patience=5, criterion='GL', "
        "alpha=2.0)"
    )
    scaler = kreg.callbacks.RegularizationScaler("minibatch", num_examples=600, batch_size=32)
    assert repr(scaler) == (
        "kreg.callbacks.RegularizationScaler(rule='minibatch', batch_size=32, num_examples=600)"
    )


def test_callback_reprs_rebuild_the_same_callback():
    for callback in (
        kreg.callbacks.EarlyStopping(monitor="loss", patience=3, min_delta_mode="rel"),
        kreg.callbacks.RegularizationScaler("normalized", num_examples=100),
        kreg.callbacks.RegularizationMonitor(per_layer=True, zero_tol=1e-3),
        # every digit counts: with 6 significant ones (1.23457e+06) the repr would rebuild
        # a different callback
        kreg.callbacks.EarlyStopping(baseline=1234567.0, min_delta=0.123456789),
    ):
        rebuilt = eval(repr(callback), {"kreg": kreg})  # noqa: S307 - our own repr
        assert rebuilt.get_config() == callback.get_config()


def test_optimizer_repr_names_schedules_anchors_and_callables():
    optimizer = kreg.optimizers.DecoupledWeightDecay(
        keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(0.1, 100), momentum=0.9),
        keras.optimizers.schedules.ExponentialDecay(1e-2, 10, 0.5),
        follow="schedule",
        l1=1e-5,
        anchor=[np.zeros(3), np.zeros(2)],
        mode="l2",
        exclude=["emb"],
        multipliers={"x": 0.1},
    )
    assert repr(optimizer) == (
        "kreg.optimizers.DecoupledWeightDecay(optimizer=SGD(learning_rate=CosineDecay), "
        "weight_decay=ExponentialDecay(...), follow='schedule', l1=1e-05, "
        "anchor=[2 arrays], mode='l2', exclude=['emb'], multipliers={'x': 0.1})"
    )

    def warmup(step):
        return 1.0

    scaler = kreg.callbacks.RegularizationScaler(warmup)
    assert repr(scaler) == "kreg.callbacks.RegularizationScaler(rule=<function warmup>)"
