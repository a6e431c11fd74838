"""kreg.audit: clean reference models stay clean, broken ones give exactly the intended findings."""

import inspect
import math
import re
import runpy
import sys

import keras
import numpy as np
import pytest
from conftest import BACKEND

import kreg
from kreg.audit import AuditError, Finding, Report
from kreg.audit.__main__ import main as cli_main

L2 = keras.regularizers.L2
layers = keras.layers


@pytest.fixture(autouse=True)
def _fresh_session():
    """conftest's fresh session and seeds, without a full garbage collection per test.

    The audit builds small models and never trains; ``gc.collect()`` on a TensorFlow heap
    costs about 0.5 s, which would be most of this module's run time.
    """
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield


def _zeros(layer_class, argument="kernel_initializer"):
    """The layer class with a zero initializer by default.

    The audit reads structure, not values; a random initializer is compiled once per
    weight shape on JAX, which costs seconds per model on a busy CPU.
    """

    def make(*args, **kwargs):
        kwargs.setdefault(argument, "zeros")
        return layer_class(*args, **kwargs)

    return make


Dense = _zeros(layers.Dense)
Conv2D = _zeros(layers.Conv2D)
Embedding = _zeros(layers.Embedding, "embeddings_initializer")


def _dwd(inner, weight_decay=1e-4, **kwargs):
    return kreg.optimizers.DecoupledWeightDecay(inner, weight_decay, **kwargs)


def _pairs(report, severities=("error", "warning", "info")):
    return {(f.code, f.path) for f in report.findings if f.severity in severities}


def _mlp(name="m", reg=None, bias_reg=None, bn=False, activation="relu"):
    stack = [
        keras.Input((6,)),
        Dense(
            8, activation=activation, kernel_regularizer=reg, bias_regularizer=bias_reg, name="h"
        ),
    ]
    if bn:
        stack.append(layers.BatchNormalization(name="bn"))
    stack.append(Dense(1, name="o"))
    return keras.Sequential(stack, name=name)


def _exclude_non_kernels(optimizer, model):
    """Keras' exclusion done right: by variable.path, the same on every backend."""
    optimizer.exclude_from_weight_decay(
        var_list=[v for v in model.trainable_variables if not v.path.endswith("kernel")]
    )
    return optimizer


# ------------------------------------------------------------------ clean references


def clean_sgd_l2():
    model = _mlp(reg=L2(1e-4))
    return model, keras.optimizers.SGD(0.01, momentum=0.9), {}


def clean_kreg_penalties_sgd():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            Dense(8, activation="relu", name="a", kernel_regularizer=kreg.regularizers.L2(1e-4)),
            Dense(
                8,
                activation="relu",
                name="b",
                kernel_regularizer=kreg.regularizers.L1L2(l1=1e-5, l2=1e-4),
            ),
            Dense(1, name="o"),
        ],
        name="m",
    )
    return model, keras.optimizers.SGD(0.1, nesterov=True, momentum=0.9), {}


def clean_dwd_adam_cnn():
    x = keras.Input((8, 8, 3))
    y = Conv2D(4, 3, padding="same", use_bias=False, name="c1")(x)
    y = layers.BatchNormalization(name="bn1")(y)
    y = layers.ReLU()(y)
    y = Conv2D(4, 3, padding="same", use_bias=False, name="c2")(y)
    y = layers.BatchNormalization(name="bn2")(y)
    y = layers.ReLU()(y)
    y = layers.GlobalAveragePooling2D()(y)
    y = layers.Dropout(0.5)(y)
    model = keras.Model(x, Dense(3, name="head")(y), name="cnn")
    return model, _dwd(keras.optimizers.Adam(1e-3)), {}


def clean_kreg_layers():
    x = keras.Input((6,))
    y = kreg.layers.GaussianNoise(0.1, name="noise")(x)
    y = Dense(8, activation="relu", name="a")(y)
    branch = Dense(8, name="branch")(y)
    y = layers.Add()([y, kreg.layers.DropPath(0.1, name="drop_path")(branch)])
    y = kreg.layers.Dropout(0.5, name="drop")(y)
    model = keras.Model(x, Dense(1, name="o")(y), name="k")
    sample = np.random.RandomState(0).randn(64, 6).astype("float32")
    return model, _dwd(keras.optimizers.Adam(1e-3), 1e-4), {"sample": sample}


def clean_adamw_excluded_layernorm():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            Dense(8, name="a"),
            layers.LayerNormalization(name="ln"),
            Dense(1, name="o"),
        ],
        name="m",
    )
    optimizer = _exclude_non_kernels(keras.optimizers.AdamW(1e-3, weight_decay=0.01), model)
    return model, optimizer, {}


def clean_subclassed():
    class Net(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.a = Dense(8, activation="relu", name="a")
            self.o = Dense(1, name="o")

        def call(self, x):
            return self.o(self.a(x))

    model = Net(name="net")
    model(np.zeros((2, 6), "float32"))
    return model, keras.optimizers.Adam(1e-3), {}


def clean_nested():
    inner = keras.Sequential(
        [
            Dense(8, activation="relu", name="a", kernel_regularizer=L2(1e-4)),
            layers.BatchNormalization(name="bn"),
        ],
        name="inner",
    )
    x = keras.Input((6,))
    y = layers.Dropout(0.2, name="drop")(inner(x))
    model = keras.Model(x, Dense(1, name="o")(y), name="outer")
    return model, keras.optimizers.SGD(0.01), {}


def clean_scaled_images_with_noise():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            layers.Rescaling(1 / 255, name="rescale"),
            layers.RandomFlip("horizontal", name="flip"),  # XLA-compatible
            kreg.layers.RandomAffine(rotation=0.05, translation=0.1, name="affine"),
            kreg.layers.augmentation(translation=0.1, flip="horizontal", noise=0.02),
            layers.GaussianNoise(0.05, name="noise"),
            Conv2D(4, 3, use_bias=False, name="c"),
            layers.BatchNormalization(name="bn"),
            layers.Flatten(),
            Dense(2, name="o"),
        ],
        name="img",
    )
    sample = np.random.RandomState(0).randint(0, 256, (16, 8, 8, 3)).astype("float32")
    return model, _dwd(keras.optimizers.Adam(1e-3)), {"sample": sample}


def clean_bias_not_cancelled():
    # Dense(relu) -> BN: the activation sits between; Dense -> BN and a skip: the bias is used.
    x = keras.Input((6,))
    a = Dense(6, activation="relu", name="a")(x)
    a = layers.BatchNormalization(name="bn_a")(a)
    b = Dense(6, name="b")(a)
    y = layers.Add()([layers.BatchNormalization(name="bn_b")(b), b])
    model = keras.Model(x, Dense(1, name="o")(y), name="skip")
    return model, keras.optimizers.SGD(0.01), {}


def clean_loss_scale_sgd():
    model = _mlp(reg=L2(1e-4))
    return model, keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01)), {}


def clean_embedding():
    x = keras.Input((5,), dtype="int32")
    y = Embedding(20, 4, name="emb")(x)
    y = layers.GlobalAveragePooling1D()(y)
    model = keras.Model(x, Dense(1, name="o")(y), name="seq")
    return model, _dwd(keras.optimizers.Adam(1e-3), exclude=r"emb/embeddings"), {}


def clean_mnist1d_tutorial():
    # The set-up of tutorials/08: shift augmentation, input noise, dropout, AdamW-style decay.
    x = keras.Input((40,))
    y = layers.Reshape((40, 1))(x)
    y = kreg.layers.RandomShift1D(0.1, name="shift")(y)
    y = kreg.layers.GaussianNoise(0.2, name="noise")(y)
    y = layers.Flatten()(y)
    for i in range(2):
        y = Dense(16, activation="relu", name=f"dense_{i}")(y)
        y = kreg.layers.Dropout(0.2, name=f"drop_{i}")(y)
    model = keras.Model(x, Dense(10, name="logits")(y), name="mnist1d")
    sample = np.random.RandomState(0).randn(64, 40).astype("float32")
    return model, _dwd(keras.optimizers.Adam(1e-3), 2e-4), {"sample": sample}


def clean_readme_quick_start():
    # README's quick start, with the penalty on the last layer replaced by the decay.
    model = keras.Sequential(
        [
            keras.Input((40,)),
            kreg.layers.GaussianNoise(0.05),
            Dense(128, activation="relu"),
            kreg.layers.Dropout(0.5),
            Dense(10),
        ],
        name="quick",
    )
    sample = np.random.RandomState(0).rand(64, 40).astype("float32")
    optimizer = _dwd(keras.optimizers.SGD(0.05, momentum=0.9), 5e-4)
    return model, optimizer, {"sample": sample}


CLEAN = [
    clean_mnist1d_tutorial,
    clean_readme_quick_start,
    clean_sgd_l2,
    clean_kreg_penalties_sgd,
    clean_dwd_adam_cnn,
    clean_kreg_layers,
    clean_adamw_excluded_layernorm,
    clean_subclassed,
    clean_nested,
    clean_scaled_images_with_noise,
    clean_bias_not_cancelled,
    clean_loss_scale_sgd,
    clean_embedding,
]


@pytest.mark.parametrize("make", CLEAN, ids=[f.__name__ for f in CLEAN])
def test_clean_reference_models_have_no_findings(make):
    model, optimizer, kwargs = make()
    report = kreg.audit(model, optimizer, **kwargs)
    assert report.findings == [], str(report)
    report.raise_for("info")
    # With the batch size known, only the informative λ-per-epoch notes appear.
    report = kreg.audit(model, optimizer, batch_size=32, num_examples=1000, **kwargs)
    assert _pairs(report, ("error", "warning")) == set(), str(report)
    assert {f.code for f in report.findings} <= {"lambda-batch-size"}


# ------------------------------------------------------------------ broken models


ADAPTIVE = {
    "adam": lambda: keras.optimizers.Adam(1e-3),
    "rmsprop": lambda: keras.optimizers.RMSprop(1e-3),
    "adagrad": lambda: keras.optimizers.Adagrad(1e-2),
    "lion": lambda: keras.optimizers.Lion(1e-4),
    "adamw-no-decay": lambda: keras.optimizers.AdamW(1e-3, weight_decay=0.0),
    "loss-scale-adam": lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3)),
}


def test_l2_with_adaptive_optimizer():
    model = _mlp(reg=kreg.regularizers.L2(1e-4))
    for name, make_optimizer in ADAPTIVE.items():
        report = kreg.audit(model, make_optimizer())
        assert _pairs(report) == {("l2-with-adaptive-optimizer", "m/h/kernel")}, name
        (finding,) = report.findings
        assert finding.severity == "warning"
        assert "kreg.optimizers.DecoupledWeightDecay(keras.optimizers." in finding.fix
        assert "AdamW" not in finding.fix  # AdamW without its decay is Adam
    # SGD with the same penalty is the textbook case: nothing to report.
    assert kreg.audit(model, keras.optimizers.SGD(0.01)).findings == []


def test_l2_with_adaptive_optimizer_suggests_the_sgd_equivalent_decay():
    model = _mlp(reg=L2(5e-4))
    (finding,) = kreg.audit(model, keras.optimizers.Adam(2e-3)).findings
    assert "weight_decay=2e-06" in finding.fix  # 2 * lr * l2
    # L2-SP (toward the pretrained weights) becomes a decay toward the initial weights.
    model = _mlp()
    kreg.regularizers.apply(model, kreg.regularizers.L2SP(5e-4))
    report = kreg.audit(model, keras.optimizers.Adam(2e-3))
    assert _pairs(report) == {
        ("l2-with-adaptive-optimizer", "m/h/kernel"),
        ("l2-with-adaptive-optimizer", "m/o/kernel"),
    }
    assert "weight_decay=2e-06, follow=\"schedule\", anchor='initial')" in report.findings[0].fix


def test_l2_and_weight_decay_on_the_same_weight():
    model = _mlp(reg=L2(1e-4))
    keras_sgd = _exclude_non_kernels(keras.optimizers.SGD(0.01, weight_decay=1e-4), model)
    assert _pairs(kreg.audit(model, keras_sgd)) == {("l2-and-weight-decay", "m/h/kernel")}
    # Through kreg's wrapper, and with an adaptive optimizer: one finding, not two.
    assert _pairs(kreg.audit(model, _dwd(keras.optimizers.Adam(1e-3)))) == {
        ("l2-and-weight-decay", "m/h/kernel")
    }


def test_keras_adamw_decays_biases_and_normalization_by_default():
    model = _mlp(bn=True)
    report = kreg.audit(model, keras.optimizers.AdamW(1e-3))
    assert _pairs(report) == {
        ("decay-on-bias", "m/h/bias"),
        ("decay-on-bias", "m/o/bias"),
        ("decay-on-normalization", "m/bn/gamma"),
        ("decay-on-normalization", "m/bn/beta"),
    }
    assert {f.severity for f in report.findings} == {"warning"}
    assert "exclude_from_weight_decay(var_list=" in report.findings[0].fix


def test_penalties_on_bias_normalization_and_embedding():
    x = keras.Input((5,), dtype="int32")
    y = Embedding(20, 4, embeddings_regularizer=L2(1e-4), name="emb")(x)
    y = layers.GlobalAveragePooling1D()(y)
    y = Dense(8, activation="relu", bias_regularizer=L2(1e-4), name="h")(y)
    y = layers.BatchNormalization(
        gamma_regularizer=L2(1e-4), beta_regularizer=kreg.regularizers.L1(1e-4), name="bn"
    )(y)
    model = keras.Model(x, Dense(1, name="o")(y), name="m")
    report = kreg.audit(model, keras.optimizers.SGD(0.01))
    assert _pairs(report) == {
        ("penalty-on-embedding", "emb/embeddings"),
        ("penalty-on-bias", "h/bias"),
        ("penalty-on-normalization", "bn/gamma"),
        ("penalty-on-normalization", "bn/beta"),
    }
    severity = {f.code: f.severity for f in report.findings}
    assert severity == {
        "penalty-on-embedding": "info",
        "penalty-on-bias": "warning",
        "penalty-on-normalization": "warning",
    }
    fixes = {f.path: f.fix for f in report.findings}
    assert fixes["h/bias"] == "keras.layers.Dense(..., bias_regularizer=None)"
    assert fixes["bn/gamma"] == "keras.layers.BatchNormalization(..., gamma_regularizer=None)"


def test_decay_on_embedding_is_info():
    model, _, _ = clean_embedding()
    report = kreg.audit(model, _dwd(keras.optimizers.Adam(1e-3)))  # no exclusion
    assert _pairs(report) == {("decay-on-embedding", "emb/embeddings")}
    assert report.findings[0].severity == "info"


def test_bias_before_batchnorm_in_functional_and_sequential_models():
    x = keras.Input((8, 8, 3))
    y = Conv2D(4, 3, name="conv")(x)
    y = layers.BatchNormalization(name="bn1")(y)
    y = layers.Flatten()(y)
    y = Dense(6, name="dense")(y)
    y = layers.BatchNormalization(name="bn2")(y)
    functional = keras.Model(x, Dense(1, name="o")(y), name="f")
    report = kreg.audit(functional, keras.optimizers.SGD(0.01))
    assert _pairs(report) == {("bias-before-batchnorm", "conv"), ("bias-before-batchnorm", "dense")}
    assert {f.severity for f in report.findings} == {"info"}
    fixes = {f.path: f.fix for f in report.findings}
    assert fixes["dense"] == "keras.layers.Dense(6, use_bias=False)"
    assert fixes["conv"] == "keras.layers.Conv2D(4, (3, 3), ..., use_bias=False)"
    sequential = _mlp(bn=True, activation=None)
    assert _pairs(kreg.audit(sequential, keras.optimizers.SGD(0.01))) == {
        ("bias-before-batchnorm", "h")
    }


def test_bias_before_batchnorm_needs_a_trainable_batchnorm_on_the_bias_axis():
    # A frozen BatchNormalization normalizes with fixed moving statistics: the bias counts.
    model = _mlp(bn=True, activation=None)
    model.get_layer("bn").trainable = False
    assert kreg.audit(model, keras.optimizers.SGD(0.01)).findings == []
    # BatchNormalization(axis=1) on (batch, 4, 6): the Dense bias lies along axis 2.
    x = keras.Input((4, 6))
    y = Dense(6, name="dense")(x)
    y = layers.BatchNormalization(axis=1, name="bn")(y)
    model = keras.Model(x, y, name="axis")
    assert kreg.audit(model, keras.optimizers.SGD(0.01)).findings == []


def test_dropout_before_batchnorm_keras_kreg_and_nested():
    inner = keras.Sequential(
        [
            Dense(6, activation="relu", use_bias=False, name="a"),
            layers.Dropout(0.3, name="inner_drop"),
            layers.BatchNormalization(name="inner_bn"),
        ],
        name="inner",
    )
    x = keras.Input((4, 4))
    y = inner(x)
    y = kreg.layers.Dropout(0.2, name="kreg_drop")(y)
    y = layers.Flatten()(y)  # shape-only: the variance shift passes through
    y = layers.BatchNormalization(name="bn")(y)
    y = layers.SpatialDropout1D(0.0, name="zero_rate")(layers.Reshape((4, 6))(y))
    y = layers.BatchNormalization(name="bn_after_zero")(y)
    model = keras.Model(x, Dense(1, name="o")(layers.Flatten()(y)), name="m")
    report = kreg.audit(model, keras.optimizers.SGD(0.01))
    assert _pairs(report) == {
        ("dropout-before-batchnorm", "inner/inner_drop"),
        ("dropout-before-batchnorm", "kreg_drop"),
    }
    assert {f.severity for f in report.findings} == {"warning"}


def test_noise_on_integer_inputs():
    x = keras.Input((4,), dtype="int32")
    y = layers.GaussianNoise(0.1, name="gn")(x)
    model = keras.Model(x, Dense(1, name="o")(y), name="m")
    report = kreg.audit(model, keras.optimizers.SGD(0.01))
    assert _pairs(report) == {("noise-on-integer-input", "gn")}
    assert report.findings[0].severity == "error"
    with pytest.raises(AuditError, match="noise-on-integer-input"):
        report.raise_for("error")


def test_noise_on_unscaled_images():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.GaussianNoise(1.0, name="gn"),
            layers.Flatten(),
            Dense(1, name="o"),
        ],
        name="m",
    )
    pixels = np.random.RandomState(0).randint(0, 256, (16, 8, 8, 1)).astype("float32")
    report = kreg.audit(model, keras.optimizers.SGD(0.01), sample=pixels)
    assert _pairs(report) == {("noise-on-unscaled-input", "gn")}
    # Without a sample nothing can be said about the scale.
    assert kreg.audit(model, keras.optimizers.SGD(0.01)).findings == []
    # σ in scale with 0-255 pixels (kreg's GaussianNoise accepts σ > 1): nothing to report.
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            kreg.layers.GaussianNoise(10.0),
            layers.Flatten(),
            Dense(1, name="o"),
        ],
        name="k",
    )
    assert kreg.audit(model, keras.optimizers.SGD(0.01), sample=pixels).findings == []


def test_noise_out_of_scale():
    cases = [(1.0, 0.1, True), (0.001, 1.0, True), (0.1, 1.0, False), (0.5, 1.0, False)]
    for stddev, scale, expected in cases:
        keras.backend.clear_session()
        model = keras.Sequential(
            [keras.Input((4,)), layers.GaussianNoise(stddev, name="gn"), Dense(1, name="o")],
            name="m",
        )
        sample = scale * np.random.RandomState(0).randn(256, 4).astype("float32")
        report = kreg.audit(model, keras.optimizers.SGD(0.01), sample=sample)
        assert _pairs(report) == ({("noise-out-of-scale", "gn")} if expected else set()), (
            stddev,
            scale,
        )


def test_kreg_noise_scale_and_relative_noise():
    sample = np.random.RandomState(0).randn(64, 4).astype("float32")
    for relative, expected in ((False, {("noise-out-of-scale", "kn")}), (True, set())):
        keras.backend.clear_session()
        model = keras.Sequential(
            [
                keras.Input((4,)),
                kreg.layers.GaussianNoise(5.0, relative=relative, name="kn"),
                Dense(1, name="o"),
            ],
            name="m",
        )
        report = kreg.audit(model, keras.optimizers.SGD(0.01), sample=sample)
        assert _pairs(report) == expected
    # The live σ is what counts: lowered through kreg.strengths, the finding goes away.
    kreg.strengths(model)["kn.stddev"].assign(0.1)
    model.get_layer("kn").relative = False
    assert kreg.audit(model, keras.optimizers.SGD(0.01), sample=sample).findings == []


def test_keras_decay_with_a_schedule_shows_start_peak_and_end():
    model = _mlp()
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-3, decay_steps=1000, warmup_steps=100, warmup_target=2e-3
    )
    optimizer = _exclude_non_kernels(keras.optimizers.AdamW(schedule, weight_decay=0.01), model)
    report = kreg.audit(model, optimizer)
    assert _pairs(report) == {("decay-follows-schedule", "optimizer")}
    (finding,) = report.findings
    assert finding.severity == "info"
    assert "1e-05 at step 0, 2e-05 at its peak, 0 at step 1100" in finding.what
    assert (
        "DecoupledWeightDecay(keras.optimizers.Adam(learning_rate=schedule), "
        'weight_decay=1e-05, follow="schedule")' in finding.fix
    )


def test_decay_too_strong():
    model = _mlp()
    keras_sgd = _exclude_non_kernels(keras.optimizers.SGD(1.0, weight_decay=2.0), model)
    report = kreg.audit(model, keras_sgd)
    assert _pairs(report) == {("decay-too-strong", "optimizer")}
    assert report.findings[0].severity == "error"
    kreg_sgd = _dwd(keras.optimizers.SGD(0.1), 1.5, follow="none")
    assert _pairs(kreg.audit(model, kreg_sgd)) == {("decay-too-strong", "optimizer")}
    # The same λ multiplied by the learning rate trains: 0.15 per step is too fast, not
    # too strong.
    fast = _dwd(keras.optimizers.SGD(0.1), 1.5, follow="learning_rate")
    assert _pairs(kreg.audit(model, fast)) == {("decay-too-fast", "optimizer")}
    fine = _dwd(keras.optimizers.SGD(0.1), 1e-3, follow="learning_rate")
    assert kreg.audit(model, fine).findings == []


class _WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """A custom schedule without get_config (Keras does not require one)."""

    def __call__(self, step):
        return keras.ops.minimum(1.0, (keras.ops.cast(step, "float32") + 1) / 100.0) * 2.0


def test_decay_findings_survive_custom_and_callable_learning_rates():
    """A custom schedule without get_config, or a callable learning rate, hides no decay finding."""
    model = _mlp()
    expected = {
        ("decay-too-strong", "optimizer"),
        ("decay-on-bias", "m/h/bias"),
        ("decay-on-bias", "m/o/bias"),
    }
    for learning_rate in (2.0, _WarmUp(), lambda: 2.0):
        report = kreg.audit(model, keras.optimizers.SGD(learning_rate, weight_decay=0.9))
        assert {p for p in _pairs(report) if p[0] != "decay-follows-schedule"} == expected
        assert "audit-check-failed" not in {f.code for f in report.findings}


def test_decay_too_strong_at_the_peak_of_a_warm_up():
    """follow="schedule" decays by wd·lr_t/lr_0: a warm-up from lr_0 = 1e-5 to 1e-3 makes
    0.05 a decay of 5 per step at the peak (the weights flip sign and explode)."""
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-5, 1000, warmup_target=1e-3, warmup_steps=20
    )
    report = kreg.audit(_mlp(), _dwd(keras.optimizers.SGD(schedule), 0.05, follow="schedule"))
    (finding,) = report.filter("error")
    assert finding.code == "decay-too-strong" and "5 of each decayed weight" in finding.what
    # the same decay without the warm-up is fine
    assert not kreg.audit(
        _mlp(name="n"), _dwd(keras.optimizers.SGD(1e-3), 0.05, follow="schedule")
    ).filter("error")


@pytest.mark.skipif(
    "adam_weight_decay" not in inspect.signature(keras.optimizers.Muon).parameters,
    reason="this Keras' Muon has no adam_weight_decay: it decays every weight alike",
)
def test_muon_decays_by_adam_weight_decay_where_it_steps_with_adam():
    """Muon decays vectors (biases) by adam_weight_decay, matrices by weight_decay."""
    model = _mlp()
    report = kreg.audit(model, keras.optimizers.Muon(weight_decay=0.0, adam_weight_decay=0.5))
    assert _pairs(report) == {("decay-on-bias", "m/h/bias"), ("decay-on-bias", "m/o/bias")}
    report = kreg.audit(model, keras.optimizers.Muon(weight_decay=0.5, adam_weight_decay=None))
    assert not {code for code, _ in _pairs(report) if code.startswith("decay-on")}


@pytest.mark.skipif(
    not hasattr(keras.optimizers, "MultiOptimizer"), reason="this Keras has no MultiOptimizer"
)
def test_multi_optimizer_is_said_not_to_be_read():
    model = _mlp(reg=L2(1e-4))
    optimizer = keras.optimizers.MultiOptimizer(
        [(keras.optimizers.AdamW(10.0, weight_decay=0.5), model.layers)]
    )
    assert _pairs(kreg.audit(model, optimizer)) == {("optimizer-not-read", "optimizer")}


def test_l2_fix_for_mean_penalties_warm_ups_and_l1():
    """The suggested decay gives the penalty's per-step shrink under SGD in each case."""
    model = _mlp(reg=kreg.regularizers.L2(1e-2, normalize="mean"))  # h/kernel: 6x8 = 48
    (finding,) = kreg.audit(model, keras.optimizers.Adam(2e-3)).findings
    assert "normalize='mean'" in finding.what
    assert 'weight_decay=8.33e-07, follow="schedule")' in finding.fix  # 2 * 2e-3 * 1e-2 / 48
    warm_up = keras.optimizers.schedules.CosineDecay(0.0, 1000, warmup_target=1e-3, warmup_steps=50)
    (finding,) = kreg.audit(_mlp(name="n", reg=L2(5e-4)), keras.optimizers.Adam(warm_up)).findings
    assert (
        'weight_decay=1e-06, follow="schedule", initial_learning_rate=0.001)' in finding.fix
    )  # lr_0 = 0
    elastic = _mlp(name="e", reg=keras.regularizers.L1L2(l1=1e-3, l2=5e-4))
    (finding,) = kreg.audit(elastic, keras.optimizers.Adam(2e-3)).findings
    assert 'weight_decay=2e-06, follow="schedule", l1=2e-06)' in finding.fix


def test_noise_scale_is_checked_inside_nested_models():
    sample = 1000 * np.random.RandomState(0).randn(64, 8).astype("float32")
    augment = keras.Sequential(
        [keras.Input((8,)), layers.GaussianNoise(0.1, name="gn")], name="augment"
    )
    nested = keras.Sequential([keras.Input((8,)), augment, Dense(1, name="o")], name="outer")
    inputs = keras.Input((8,))
    functional = keras.Model(inputs, Dense(1, name="o")(augment(inputs)), name="f")
    for model in (nested, functional):
        report = kreg.audit(model, keras.optimizers.SGD(0.01), sample=sample)
        assert _pairs(report) == {("noise-out-of-scale", "augment/gn")}, model.name


def test_shared_layer_bias_is_not_called_useless():
    """A Dense called twice, once into BatchNormalization: its bias still gets a gradient."""
    inputs = keras.Input((4,))
    shared = Dense(4, name="shared")
    y = layers.BatchNormalization(name="bn")(shared(inputs))
    z = shared(layers.Dense(4, name="pre")(inputs))
    model = keras.Model(inputs, layers.Concatenate()([y, z]), name="m")
    assert "bias-before-batchnorm" not in {c for c, _ in _pairs(kreg.audit(model, "sgd"))}


def test_lambda_batch_size():
    model = _mlp(reg=L2(1e-4))
    optimizer = _exclude_non_kernels(keras.optimizers.SGD(0.1, weight_decay=1e-3), model)
    model.get_layer("h").kernel.regularizer = None  # penalty on 'o' only: no double finding
    model.get_layer("o").kernel.regularizer = L2(2e-4)
    model.get_layer("h").kernel_regularizer = None
    report = kreg.audit(model, optimizer, batch_size=32, num_examples=1000)
    findings = {f.path: f for f in report.findings}
    assert _pairs(report) == {
        ("l2-and-weight-decay", "m/o/kernel"),
        ("lambda-batch-size", "m/o/kernel"),
        ("lambda-batch-size", "optimizer"),
    }
    steps = math.ceil(1000 / 32)
    assert f"{steps} steps per epoch" in findings["m/o/kernel"].what
    assert f"{2e-4 * steps:.3g} per epoch" in findings["m/o/kernel"].what
    assert findings["m/o/kernel"].fix.startswith("l2 = 0.0002 * new_batch_size / 32")
    assert f"{0.1 * 1e-3 * steps:.3g} per epoch" in findings["optimizer"].what
    # kreg's follow="schedule": the decay per step is λ itself, not lr·λ.
    report = kreg.audit(
        _mlp(),
        _dwd(keras.optimizers.Adam(1e-3), 1e-4, follow="schedule"),
        batch_size=10,
        num_examples=100,
    )
    (finding,) = report.findings
    assert "0.0001 per step × 10 steps per epoch" in finding.what


def test_augmentation_layers_that_turn_xla_off():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            layers.RandomFlip("horizontal", name="flip"),
            layers.RandomRotation(0.1, name="rot"),
            layers.RandomZoom(0.2, name="zoom"),
            layers.Flatten(),
            Dense(1, name="o"),
        ],
        name="aug",
    )
    report = kreg.audit(model, keras.optimizers.SGD(0.01))
    assert _pairs(report) == {
        ("augmentation-disables-xla", "rot"),
        ("augmentation-disables-xla", "zoom"),
    }
    fixes = {f.path: f.fix for f in report.findings}
    assert fixes["rot"].startswith("kreg.layers.RandomAffine(rotation=")


def test_random_affine_with_tensorflows_kernel_turns_xla_off_on_tensorflow():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            kreg.layers.RandomAffine(rotation=0.1, resampler="affine_transform", name="affine"),
            kreg.layers.RandomAffine(rotation=0.1, name="gathers"),
            layers.Flatten(),
            Dense(1, name="o"),
        ],
        name="aug",
    )
    report = kreg.audit(model, keras.optimizers.SGD(0.01))
    if BACKEND != "tensorflow":  # affine_transform compiles under XLA there
        assert report.findings == []
        return
    assert _pairs(report) == {("augmentation-disables-xla", "affine")}
    assert report.findings[0].fix.startswith("kreg.layers.RandomAffine(..., resampler='gather')")


def test_exclusion_by_name_differs_between_backends():
    model = _mlp(bn=True)
    optimizer = keras.optimizers.AdamW(1e-3)
    optimizer.exclude_from_weight_decay(var_names=["bias$", "gamma$", "beta$"])
    report = kreg.audit(model, optimizer)
    expected = {("decay-exclusion-backend-dependent", "optimizer")}
    if BACKEND == "tensorflow":  # the TF name is "m/h/bias:0": "bias$" does not match it
        expected |= {
            ("decay-on-bias", "m/h/bias"),
            ("decay-on-bias", "m/o/bias"),
            ("decay-on-normalization", "m/bn/gamma"),
            ("decay-on-normalization", "m/bn/beta"),
        }
    assert _pairs(report) == expected
    finding = report.filter(code="decay-exclusion-backend-dependent")[0]
    assert "on JAX/torch only" in finding.what
    assert "re.search('" in finding.fix and "', v.path)" in finding.fix
    compile(finding.fix, "<fix>", "exec")


def test_regularizer_set_after_build_is_not_attached():
    model = _mlp()
    model.get_layer("h").kernel_regularizer = L2(1e-4)  # too late: the weight exists
    report = kreg.audit(model, keras.optimizers.SGD(0.01))
    assert _pairs(report) == {("regularizer-not-attached", "m/h/kernel")}
    assert report.findings[0].severity == "error"

    # A custom build() may apply its regularizers its own way: no claim about it.
    class OwnBuild(layers.Dense):
        def build(self, input_shape):
            super().build(input_shape)

    custom = keras.Sequential([keras.Input((3,)), OwnBuild(2, name="own")], name="c")
    custom.get_layer("own").kernel_regularizer = L2(1e-4)
    assert kreg.audit(custom, keras.optimizers.SGD(0.01)).findings == []
    # The fix, run as written, attaches the penalty to that weight only.
    exec(report.findings[0].fix, {"keras": keras, "kreg": kreg, "model": model})
    assert kreg.audit(model, keras.optimizers.SGD(0.01)).findings == []
    assert model.get_layer("h").kernel.regularizer.l2 == pytest.approx(1e-4)
    assert model.get_layer("o").kernel.regularizer is None


def test_subclassed_model_weight_checks():
    class Net(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.a = Dense(4, kernel_regularizer=L2(1e-4), name="a")
            self.bn = layers.BatchNormalization(name="bn")

        def call(self, x):
            return self.bn(self.a(x))

    model = Net(name="net")
    model(np.zeros((2, 3), "float32"))
    report = kreg.audit(model, keras.optimizers.Adam(1e-3))
    # The order of calls is unknown without a graph: no bias-before-batchnorm claim.
    assert _pairs(report) == {("l2-with-adaptive-optimizer", "net/a/kernel")}


def test_no_optimizer_and_l2_mode_infos():
    model = _mlp(reg=L2(1e-4))
    assert _pairs(kreg.audit(model)) == {("no-optimizer", "m")}
    model.compile(optimizer=_dwd(keras.optimizers.Adam(1e-3), 1e-4, mode="l2"), loss="mse")
    report = kreg.audit(model)  # model.optimizer
    assert _pairs(report) == {
        ("l2-and-weight-decay", "m/h/kernel"),
        ("l2-mode-with-adaptive-optimizer", "optimizer"),
    }


# ------------------------------------------------------------------ fast decay


def _half_life(per_step):
    """NumPy reference: the steps in which θ ← (1 − d)·θ halves θ."""
    return float(np.log(2.0) / -np.log1p(-per_step))


def test_decay_too_fast_kreg_decay_by_follow_at_the_schedules_peak():
    """DecoupledWeightDecay removes λ·m·f per step: f = 1 ("none"), lr_t ("learning_rate"),
    lr_t / lr_0 ("schedule"), at the largest lr_t of the schedule."""
    model = _mlp()
    cases = [  # (inner, λ, follow, decay per step or None when slow enough)
        (keras.optimizers.Adam(1e-3), 0.05, "schedule", 0.05),
        (keras.optimizers.Adam(1e-3), 0.05, "none", 0.05),
        (keras.optimizers.Adam(1e-3), 0.05, "learning_rate", None),  # 5e-5
        (keras.optimizers.SGD(0.1), 0.05, "learning_rate", 0.005),
        (keras.optimizers.Adam(1e-3), 7e-4, "none", 7e-4),  # halves in 990 steps
        (keras.optimizers.Adam(1e-3), 6.9e-4, "none", None),  # in 1004 steps
    ]
    for inner, weight_decay, follow, per_step in cases:
        report = kreg.audit(model, _dwd(inner, weight_decay, follow=follow))
        label = (type(inner).__name__, weight_decay, follow)
        if per_step is None:
            assert report.findings == [], label
            continue
        assert _pairs(report) == {("decay-too-fast", "optimizer")}, label
        (finding,) = report.findings
        assert finding.severity == "warning"
        assert finding.what == (
            f"DecoupledWeightDecay(follow={follow!r}) removes {per_step:.3g} of each decayed "
            f"weight per step: a weight halves in {_half_life(per_step):.3g} steps where no "
            "gradient holds it"
        ), label
    assert f"{_half_life(0.05):.3g}" == "13.5" and f"{_half_life(7e-4):.3g}" == "990"
    # A warm-up from lr_0 = 1e-5 to 1e-3: follow="schedule" decays 100 × λ at the peak.
    warm_up = keras.optimizers.schedules.CosineDecay(
        1e-5, 1000, warmup_target=1e-3, warmup_steps=20
    )
    optimizer = _dwd(keras.optimizers.SGD(warm_up), 2e-5, follow="schedule")
    report = kreg.audit(model, optimizer, batch_size=32, num_examples=1000)
    (finding,) = report.filter(code="decay-too-fast")
    assert (
        "removes 0.002 of each decayed weight per step: a weight halves in 346 steps "
        "(10.8 epochs at batch_size=32)" in finding.what
    )  # 346.2 / ceil(1000 / 32)
    assert finding.fix == (
        "kreg.optimizers.DecoupledWeightDecay(..., weight_decay=1e-06)"
        "  # 1e-4 of each weight per step"
    )
    # Only what it decays counts: a strong λ on nothing is no finding.
    nothing = _dwd(keras.optimizers.Adam(1e-3), 0.5, follow="none", exclude=".*")
    assert kreg.audit(model, nothing).findings == []


def test_decay_too_fast_keras_builtin_decay_is_lr_times_weight_decay():
    model = _mlp()
    report = kreg.audit(
        model,
        _exclude_non_kernels(keras.optimizers.SGD(0.1, weight_decay=0.05), model),
        batch_size=32,
        num_examples=1000,
    )
    (finding,) = report.filter(code="decay-too-fast")
    assert finding.severity == "warning"
    assert finding.what == (
        "SGD: learning_rate × weight_decay = 0.1 × 0.05 = 0.005 per step: a weight halves "
        "in 138 steps (4.32 epochs at batch_size=32) where no gradient holds it"
    )
    assert f"{_half_life(0.1 * 0.05):.3g}" == "138"
    assert finding.fix == (
        "keras.optimizers.SGD(learning_rate=0.1, weight_decay=0.001)  # lr·λ = 1e-4 per step"
    )
    for make, fast in [
        (lambda: keras.optimizers.AdamW(1e-3, weight_decay=0.7), True),  # 990 steps
        (lambda: keras.optimizers.AdamW(1e-3, weight_decay=0.69), False),  # 1004 steps
        (lambda: keras.optimizers.AdamW(1e-3, weight_decay=0.1), False),
        (lambda: keras.optimizers.Lion(1e-3, weight_decay=1.0), True),
        (lambda: keras.optimizers.Adam(1e-2, weight_decay=0.1), True),
    ]:
        optimizer = _exclude_non_kernels(make(), model)
        found = _pairs(kreg.audit(model, optimizer))
        assert found == ({("decay-too-fast", "optimizer")} if fast else set()), optimizer
    # With a schedule: lr·λ at its peak (a warm-up to 1e-3), not at step 0 (1e-5).
    warm_up = keras.optimizers.schedules.CosineDecay(
        1e-5, 1000, warmup_target=1e-3, warmup_steps=20
    )
    optimizer = _exclude_non_kernels(keras.optimizers.AdamW(warm_up, weight_decay=0.7), model)
    report = kreg.audit(model, optimizer)
    assert _pairs(report) == {
        ("decay-too-fast", "optimizer"),
        ("decay-follows-schedule", "optimizer"),
    }
    assert "= 0.0007 per step: a weight halves in 990 steps" in report.findings[0].what
    # ≥ 100 % per step stays the error, and is not also "too fast".
    strong = _exclude_non_kernels(keras.optimizers.SGD(1.0, weight_decay=1.0), model)
    assert _pairs(kreg.audit(model, strong)) == {("decay-too-strong", "optimizer")}


# ------------------------------------------------------------------ what is normalization


class _RMSNorm(layers.Layer):
    """A Llama/Gemma-style norm: its own class with a "scale" vector, no Keras base class."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

    def call(self, x):
        mean_square = keras.ops.mean(keras.ops.square(x), axis=-1, keepdims=True)
        return x * keras.ops.rsqrt(mean_square + 1e-6) * self.scale


def _normalized_mlp():
    stack = [
        keras.Input((6,)),
        Dense(8, use_bias=False, name="a"),
        _RMSNorm(name="rms"),
        layers.LayerNormalization(name="ln"),
        Dense(8, use_bias=False, name="b"),
        layers.BatchNormalization(name="bn"),
    ]
    norm_weights = ["rms/scale", "ln/gamma", "ln/beta", "bn/gamma", "bn/beta"]
    if hasattr(layers, "RMSNormalization"):
        stack.append(layers.RMSNormalization(name="keras_rms"))
        norm_weights.append("keras_rms/scale")
    stack.append(Dense(1, use_bias=False, name="o"))
    model = keras.Sequential(stack, name="n")
    return model, {("decay-on-normalization", f"n/{path}") for path in norm_weights}


BUILTIN_DECAYS = {
    "adamw": lambda: keras.optimizers.AdamW(1e-3, weight_decay=0.01),
    "lion": lambda: keras.optimizers.Lion(1e-4, weight_decay=0.01),
    "adam": lambda: keras.optimizers.Adam(1e-3, weight_decay=0.01),
    "sgd": lambda: keras.optimizers.SGD(0.01, weight_decay=1e-4),
    "rmsprop": lambda: keras.optimizers.RMSprop(1e-3, weight_decay=0.01),
}


def test_decayed_normalization_scales_of_every_norm_under_every_builtin_decay():
    model, expected = _normalized_mlp()
    for name, make in BUILTIN_DECAYS.items():
        report = kreg.audit(model, make())
        assert _pairs(report) == expected, name
        assert {f.severity for f in report.findings} == {"warning"}
        assert "in {'beta', 'gamma', 'scale'}" in report.findings[0].fix, name
    # kreg's default selection leaves every norm out; a multiplier that re-includes one
    # is reported.
    optimizer = _dwd(keras.optimizers.Adam(1e-3), 1e-4, follow="learning_rate")
    assert kreg.audit(model, optimizer).findings == []
    optimizer = _dwd(
        keras.optimizers.Adam(1e-3), 1e-4, follow="learning_rate", multipliers={"/rms/scale": 1.0}
    )
    assert _pairs(kreg.audit(model, optimizer)) == {("decay-on-normalization", "n/rms/scale")}
    # A penalty on such a scale is a penalty on normalization, too.
    model.get_layer("rms").scale.regularizer = L2(1e-4)
    report = kreg.audit(model, keras.optimizers.SGD(0.01))
    assert _pairs(report) == {("penalty-on-normalization", "n/rms/scale")}
    assert report.findings[0].fix == "# remove the regularizer of 'n/rms/scale'"


# ------------------------------------------------------------------ token embeddings only


class _LearnedPositionEmbedding(layers.Layer):
    """A position table of its own class (as keras-hub's PositionEmbedding)."""

    def build(self, input_shape):
        self.embeddings = self.add_weight(shape=tuple(input_shape[1:]), name="embeddings")

    def call(self, x):
        return x + self.embeddings


class _TokenAndPosition(layers.Layer):
    """A ViT-style embedding: a Keras Embedding named "position_embedding" on positions."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.token = Embedding(20, 4, name="token_embedding")
        self.position = Embedding(5, 4, name="position_embedding")

    def build(self, input_shape):
        self.token.build(input_shape)
        self.position.build(input_shape)

    def call(self, ids):
        return self.token(ids) + self.position(keras.ops.arange(5))


def _embedded(name="e"):
    x = keras.Input((5,), dtype="int32")
    y = _LearnedPositionEmbedding(name="learned")(_TokenAndPosition(name="embed")(x))
    y = layers.GlobalAveragePooling1D()(y)
    return keras.Model(x, Dense(1, name="o")(y), name=name)


@pytest.mark.filterwarnings("ignore:kreg.regularizers.apply")
def test_embedding_notes_only_on_token_embeddings():
    """The notes' reason (a row gets a gradient only when its token is in the batch) does
    not hold for position tables: every row is used at every step."""
    model = _embedded()
    decayed = _dwd(keras.optimizers.Adam(1e-3), 1e-4, follow="learning_rate")
    tables = {
        "embed/token_embedding/embeddings",
        "embed/position_embedding/embeddings",
        "learned/embeddings",
    }
    assert tables <= {
        v.path for v in model.trainable_weights if decayed.weight_decay_multiplier(v) == 1.0
    }
    report = kreg.audit(model, decayed)
    assert _pairs(report) == {("decay-on-embedding", "embed/token_embedding/embeddings")}
    finding = report.findings[0]
    assert finding.what == (
        "weight decay 0.0001 from DecoupledWeightDecay acts on token "
        "embedding 'embed/token_embedding/embeddings'"
    )
    assert "exclude=['embed/token_embedding/embeddings$']" in finding.fix
    model = _embedded(name="p")
    kreg.regularizers.apply(model, kreg.regularizers.L2(1e-4))
    report = kreg.audit(model, keras.optimizers.SGD(0.01))
    assert _pairs(report) == {("penalty-on-embedding", "embed/token_embedding/embeddings")}
    assert report.findings[0].fix == "keras.layers.Embedding(..., embeddings_regularizer=None)"


@pytest.mark.skipif(
    not hasattr(layers, "ReversibleEmbedding"),
    reason="this Keras has no keras.layers.ReversibleEmbedding",
)
def test_output_projections_are_no_token_embeddings():
    """An untied output projection (logits = h·W) and a tied table the model also calls with
    reverse=True get a gradient on every row at every step."""

    def language_model(tie_weights, reverse=True):
        x = keras.Input((5,), dtype="int32")
        table = layers.ReversibleEmbedding(
            20, 4, tie_weights=tie_weights, name="tokens", embeddings_initializer="zeros"
        )
        h = Dense(4, name="h")(table(x))
        return keras.Model(x, table(h, reverse=True) if reverse else h, name="lm")

    decay = _dwd(keras.optimizers.Adam(1e-3), 1e-4, follow="learning_rate")
    report = kreg.audit(language_model(tie_weights=False), decay)
    assert _pairs(report) == {("decay-on-embedding", "tokens/embeddings")}  # not reverse_
    assert kreg.audit(language_model(tie_weights=True), decay).findings == []
    # Tied but only looked up (a backbone, a classifier on it): a token embedding.
    assert _pairs(kreg.audit(language_model(tie_weights=True, reverse=False), decay)) == {
        ("decay-on-embedding", "tokens/embeddings")
    }
    # Penalized and decayed, the tied output projection is a weight like any other.
    model = language_model(tie_weights=True)
    kreg.regularizers.apply(model, kreg.regularizers.L2(1e-4))
    assert _pairs(kreg.audit(model, keras.optimizers.SGD(0.01))) == set()


# ------------------------------------------------------------------ class names in fixes


_CLASS_NAME = re.compile(
    r"\b(keras_hub|keras|kreg)\.(layers|optimizers|regularizers|models)"
    r"\.([A-Z]\w*)"
)


def _named_classes(report):
    """``[(text, class)]``: every class a fix names by its module, resolved in this install."""
    found = []
    for f in report.findings:
        for package, namespace, name in _CLASS_NAME.findall(f.fix):
            module = getattr(sys.modules.get(package), namespace, None)
            found.append((f"{package}.{namespace}.{name}", getattr(module, name, None)))
    return found


class _WideDense(layers.Dense):
    """A user's Dense subclass: keras.layers has no class of this name."""


def test_fixes_name_only_classes_that_exist_and_are_the_ones_in_use():
    x = keras.Input((4,), dtype="int32")
    y = kreg.layers.GaussianNoise(0.1, name="noise")(x)
    y = _WideDense(8, bias_regularizer=L2(1e-4), kernel_initializer="zeros", name="wide")(y)
    y = layers.BatchNormalization(name="bn")(y)
    model = keras.Model(x, Dense(1, name="o")(y), name="m")
    report = kreg.audit(model, keras.optimizers.SGD(0.01))
    assert _pairs(report) == {
        ("noise-on-integer-input", "noise"),
        ("penalty-on-bias", "wide/bias"),
        ("bias-before-batchnorm", "wide"),
    }
    fixes = {f.code: f.fix for f in report.findings}
    assert fixes["bias-before-batchnorm"] == "_WideDense(8, use_bias=False)"
    assert fixes["penalty-on-bias"] == "_WideDense(..., bias_regularizer=None)"
    assert fixes["noise-on-integer-input"].endswith("x = kreg.layers.GaussianNoise(0.1)(x)")
    reports = [report, *_all_broken_reports()]
    for report in reports:
        for text, cls in _named_classes(report):
            assert cls is not None, f"{text} does not exist in this install"


# ------------------------------------------------------------------ tiny keras-hub models


def _hub():
    pytest.importorskip("keras_hub")
    import _hub_models

    return _hub_models


def test_keras_hub_norm_scales_are_decayed_under_builtin_decays():
    hub = _hub()
    import keras_hub

    model, _, _ = hub.llama()
    scales = {
        ("decay-on-normalization", v.path)
        for v in model.trainable_weights
        if v.path.endswith("layernorm/scale")
    }
    assert len(scales) == 5  # 2 layers × 2 + the final norm
    for name, make in BUILTIN_DECAYS.items():
        report = kreg.audit(model, make())
        assert _pairs(report, ("warning",)) == scales, name
        assert "'scale'}" in report.findings[0].fix
    decay = _dwd(
        keras.optimizers.Adam(1e-3),
        1e-4,
        follow="learning_rate",
        multipliers={"layernorm/scale": 1.0},
    )
    assert _pairs(kreg.audit(model, decay), ("warning",)) == scales
    # Gemma's norm: keras-hub's RMSNormalization of the Gemma model.
    gemma = keras_hub.models.GemmaBackbone(
        vocabulary_size=32,
        num_layers=1,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
        head_dim=4,
    )
    report = kreg.audit(gemma, keras.optimizers.AdamW(1e-3, weight_decay=0.01))
    assert _pairs(report, ("warning",)) == {
        ("decay-on-normalization", "decoder_block_0/pre_attention_norm/scale"),
        ("decay-on-normalization", "decoder_block_0/pre_ffw_norm/scale"),
        ("decay-on-normalization", "final_normalization/scale"),
    }


def test_keras_hub_tied_output_projection_is_no_token_embedding():
    hub = _hub()
    import keras_hub

    backbone, _, _ = hub.gpt2()
    decay = _dwd(keras.optimizers.AdamW(1e-3, weight_decay=0.0), 0.01, follow="learning_rate")
    assert _pairs(kreg.audit(backbone, decay)) == {
        ("decay-on-embedding", "token_embedding/embeddings")
    }
    causal_lm = keras_hub.models.GPT2CausalLM(backbone, preprocessor=None)
    assert kreg.audit(causal_lm, decay).findings == []


def test_keras_hub_classes_are_named_by_their_own_module():
    hub = _hub()
    import keras_hub

    x = keras.Input((5,), dtype="int32")
    table = keras_hub.layers.ReversibleEmbedding(
        20, 4, embeddings_regularizer=L2(1e-4), name="tokens"
    )
    model = keras.Model(x, Dense(1, name="o")(table(x)), name="m")
    (finding,) = kreg.audit(model, keras.optimizers.SGD(0.01)).findings
    assert finding.code == "penalty-on-embedding"
    assert finding.fix == ("keras_hub.layers.ReversibleEmbedding(..., embeddings_regularizer=None)")
    if hasattr(layers, "ReversibleEmbedding"):  # Keras' own, in Keras 3.15 (not 3.10)
        assert type(table) is not layers.ReversibleEmbedding
    # A keras-hub layer with no public name is not named at all.
    llama, _, _ = hub.llama()
    scale = llama.get_layer("sequence_output_layernorm").scale
    scale.regularizer = L2(1e-4)
    report = kreg.audit(llama, keras.optimizers.SGD(0.01))
    (finding,) = report.filter(code="penalty-on-normalization")
    assert finding.fix == "# remove the regularizer of 'sequence_output_layernorm/scale'"
    for text, cls in _named_classes(report):
        assert cls is not None, text


def _hub_token_tables(name):
    """The token embeddings of each tiny keras-hub model (not position tables nor Llama's
    untied output projection)."""
    return {
        "resnet": set(),
        "vit": set(),
        "bert": {"token_embedding/embeddings", "segment_embedding/embeddings"},
        "gpt2": {"token_embedding/embeddings"},
        "llama": {"token_embedding/embeddings"},
        "bert_classifier": {"token_embedding/embeddings", "segment_embedding/embeddings"},
    }[name]


HUB_MODELS = ["resnet", "vit", "bert", "gpt2", "llama", "bert_classifier"]


@pytest.mark.filterwarnings("ignore:kreg.regularizers.apply")
@pytest.mark.parametrize("name", HUB_MODELS)
def test_tiny_keras_hub_models_report_only_what_is_true(name):
    hub = _hub()
    model, _, _ = hub.BUILDERS[name]()
    tables = _hub_token_tables(name)
    # kreg's decay with its default selection: token embeddings noted, nothing else.
    decay = _dwd(keras.optimizers.AdamW(1e-3, weight_decay=0.0), 0.01, follow="learning_rate")
    report = kreg.audit(model, decay)
    assert _pairs(report) == {("decay-on-embedding", path) for path in tables}, str(report)
    # Keras' AdamW decays every bias and normalization parameter (LlamaLayerNorm's scale
    # included): those are the warnings, and only those.
    report = kreg.audit(model, keras.optimizers.AdamW(1e-3, weight_decay=0.01))
    kinds = {
        "bias": "decay-on-bias",
        "gamma": "decay-on-normalization",
        "beta": "decay-on-normalization",
        "scale": "decay-on-normalization",
    }
    assert _pairs(report, ("error", "warning")) == {
        (kinds[v.path.rsplit("/", 1)[-1]], v.path)
        for v in model.trainable_weights
        if v.path.rsplit("/", 1)[-1] in kinds
    }, str(report)
    assert _pairs(report, ("info",)) == {("decay-on-embedding", path) for path in tables}
    # An L2 penalty on the kernels and tables (kreg's default selection): under SGD only
    # the token-embedding notes; under Adam the penalty is rescaled on every penalized
    # weight that is not a token embedding.
    penalized = set(kreg.regularizers.apply(model, kreg.regularizers.L2(1e-4)))
    report = kreg.audit(model, keras.optimizers.SGD(0.01, momentum=0.9))
    assert _pairs(report) == {("penalty-on-embedding", path) for path in tables}, str(report)
    report = kreg.audit(model, keras.optimizers.Adam(1e-3))
    assert _pairs(report, ("error", "warning")) == {
        ("l2-with-adaptive-optimizer", path) for path in penalized - tables
    }, str(report)


# ------------------------------------------------------------------ report and API


def _all_broken_reports():
    model = _mlp(reg=L2(1e-4), bias_reg=L2(1e-4), bn=True, activation=None)
    optimizer = keras.optimizers.AdamW(keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9))
    optimizer.exclude_from_weight_decay(var_names=["gamma$"])
    yield kreg.audit(model, optimizer, batch_size=8, num_examples=100)
    yield kreg.audit(_mlp(reg=L2(1e-4)), keras.optimizers.Adam(1e-3))
    x = keras.Input((8, 8, 1))
    y = layers.GaussianNoise(0.001, name="gn")(x)
    y = layers.RandomRotation(0.1, name="rot")(y)
    y = layers.Dropout(0.5, name="drop")(y)
    y = layers.BatchNormalization(name="bn")(y)
    model = keras.Model(x, Dense(1)(layers.Flatten()(y)), name="img")
    yield kreg.audit(
        model,
        keras.optimizers.SGD(1.0, weight_decay=1.0),
        sample=np.random.RandomState(0).rand(8, 8, 8, 1),
    )
    yield kreg.audit(
        _normalized_mlp()[0],
        keras.optimizers.AdamW(1e-3, weight_decay=1.0),
        batch_size=32,
        num_examples=1000,
    )
    yield kreg.audit(_embedded(), _dwd(keras.optimizers.Adam(1e-3), 0.05, follow="schedule"))


def test_every_finding_is_complete_and_its_fix_is_python():
    codes = set()
    for report in _all_broken_reports():
        for f in report.findings:
            assert isinstance(f, Finding)
            assert f.severity in ("error", "warning", "info")
            assert f.code and f.code == f.code.lower() and " " not in f.code
            assert f.path and f.what
            assert f.why.endswith(".") and not re.search(r"\.\s+[A-Z]", f.why), f.why
            compile(f.fix, f"<fix for {f.code}>", "exec")  # the fix is code
            codes.add(f.code)
    assert len(codes) >= 10, codes


def test_report_table_repr_and_raise_for():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            Dense(2, name="d"),
            layers.Dropout(0.5, name="drop"),
            layers.BatchNormalization(name="bn"),
        ],
        name="net",
    )
    report = kreg.audit(
        model,
        keras.optimizers.SGD(
            keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5), weight_decay=20.0
        ),
    )
    assert isinstance(report, Report) and isinstance(report, kreg.audit.Report)
    assert repr(report) == (
        "<kreg.audit.Report of Sequential 'net' with SGD: 1 error, 4 warnings, 1 info>"
    )
    assert [f.severity for f in report.findings] == [
        "error",
        "warning",
        "warning",
        "warning",
        "warning",
        "info",
    ]
    text = str(report)
    lines = text.splitlines()
    assert lines[0] == "kreg.audit of Sequential 'net' with SGD: 1 error, 4 warnings, 1 info"
    assert lines[2].split() == ["SEVERITY", "CODE", "PATH", "WHAT"]
    # Why and fix once per kind of finding, with every path it concerns.
    assert "\ndecay-on-normalization: net/bn/gamma, net/bn/beta\n  why: " in text
    assert text.count("decay-on-normalization: ") == 1
    assert "  why: " in text and "  fix: " in text
    with pytest.raises(AuditError) as info:
        report.raise_for()
    assert [f.code for f in info.value.findings] == ["decay-too-strong"]
    assert isinstance(info.value, ValueError)
    with pytest.raises(AuditError) as info:
        report.raise_for("warning")
    assert len(info.value.findings) == 5
    with pytest.raises(
        ValueError,
        match="Invalid value for argument `severity`: expected one "
        "of 'error', 'warning', 'info'. Received: severity='fatal'",
    ):
        report.raise_for("fatal")
    with pytest.raises(ValueError, match=r"Received: severity=\['error'\]"):  # not a TypeError
        report.raise_for(["error"])
    assert report.filter(code="dropout-before-batchnorm")[0].path == "drop"
    clean = Report([], "nothing")
    clean.raise_for("info")
    assert str(clean).endswith("No regularization mistakes found.")


def test_argument_validation():
    model = _mlp()
    with pytest.raises(
        ValueError,
        match="Invalid value for argument `model`: expected a "
        "Keras model or layer. Received: model='model'",
    ):
        kreg.audit("model")
    with pytest.raises(ValueError, match="expected a built model"):
        kreg.audit(keras.Sequential([Dense(2)]))
    with pytest.raises(
        ValueError,
        match="Invalid value for argument `batch_size`: expected a "
        "positive integer or None. Received: batch_size=0",
    ):
        kreg.audit(model, batch_size=0)
    with pytest.raises(ValueError, match="Received: num_examples=1.5"):
        kreg.audit(model, num_examples=1.5)
    with pytest.raises(ValueError, match="Invalid value for argument `optimizer`"):
        kreg.audit(model, optimizer=3)
    x = np.zeros((4, 6), "float32")
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `sample`: expected a "
        r"batch of model inputs \(as `model\(sample\)` takes; no targets\): "
        r"1 array\(s\). Received: 2 arrays",
    ):
        kreg.audit(model, sample=(x, np.zeros((4, 1))))
    # A sample the noise probe cannot use is refused, not skipped silently.
    for bad, received in [
        (np.zeros((4, 3), "float32"), r"shape \(batch, 6\). Received: an array of shape \(4, 3\)"),
        (np.zeros(6, "float32"), r"shape \(batch, 6\). Received: an array of shape \(6,\)"),
        ("abc", r"numeric arrays with a batch axis. Received: str 'abc'"),
    ]:
        with pytest.raises(ValueError, match=r"argument `sample`: .*" + received):
            kreg.audit(model, sample=bad)
    assert _pairs(kreg.audit(model, sample=x)) == {("no-optimizer", "m")}
    assert _pairs(kreg.audit(_mlp(name="n", reg=L2(1e-4)), "adam")) == {
        ("l2-with-adaptive-optimizer", "n/h/kernel")
    }


# ------------------------------------------------------------------ command line


def _save(model, optimizer, path):
    model.compile(optimizer=optimizer, loss="mse")
    model.save(path)
    return str(path)


@pytest.mark.filterwarnings("ignore:Skipping variable loading")
def test_cli_prints_the_report_and_sets_the_exit_status(tmp_path, capsys):
    clean = _save(
        _mlp(reg=kreg.regularizers.L2(1e-4)), keras.optimizers.SGD(0.01), tmp_path / "clean.keras"
    )
    broken = _save(
        _mlp(reg=L2(1e-4)), keras.optimizers.SGD(1.0, weight_decay=2.0), tmp_path / "broken.keras"
    )
    assert cli_main([clean]) == 0
    assert "0 errors, 0 warnings" in capsys.readouterr().out
    assert cli_main([broken, "--batch-size", "10", "--num-examples", "100"]) == 1
    out = capsys.readouterr().out
    assert "decay-too-strong" in out and "lambda-batch-size" in out
    warn_only = _save(_mlp(reg=L2(1e-4)), keras.optimizers.Adam(1e-3), tmp_path / "w.keras")
    assert cli_main([warn_only]) == 0
    assert cli_main([warn_only, "--fail-on", "warning"]) == 1
    capsys.readouterr()
    assert cli_main([str(tmp_path / "missing.keras")]) == 2
    assert "cannot load" in capsys.readouterr().err


def test_cli_sample_file(tmp_path, capsys):
    model = keras.Sequential(
        [keras.Input((4,)), layers.GaussianNoise(1.0, name="gn"), Dense(1, name="o")], name="m"
    )
    path = _save(model, keras.optimizers.SGD(0.01), tmp_path / "noise.keras")
    np.save(tmp_path / "x.npy", 0.1 * np.random.RandomState(0).randn(64, 4).astype("float32"))
    assert cli_main([path, "--sample", str(tmp_path / "x.npy"), "--fail-on", "warning"]) == 1
    assert "noise-out-of-scale" in capsys.readouterr().out
    assert cli_main([path, "--fail-on", "warning"]) == 0  # no sample: no claim on the scale
    capsys.readouterr()
    assert cli_main([path, "--sample", str(tmp_path / "missing.npy")]) == 2
    assert "cannot load '" + str(tmp_path / "missing.npy") in capsys.readouterr().err


def test_a_failing_check_is_reported_and_the_others_still_run(monkeypatch):
    module = sys.modules["kreg.audit"]

    def check_that_breaks(ctx):
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "CHECKS", (check_that_breaks,) + tuple(module.CHECKS))
    report = kreg.audit(_mlp(reg=L2(1e-4)), keras.optimizers.Adam(1e-3))
    assert _pairs(report) == {
        ("audit-check-failed", "m"),
        ("l2-with-adaptive-optimizer", "m/h/kernel"),
    }
    assert "check_that_breaks could not run on this model: RuntimeError: boom" in str(report)


@pytest.mark.filterwarnings("ignore:'kreg.audit.__main__' found in sys.modules")
@pytest.mark.filterwarnings("ignore:Skipping variable loading")
def test_python_dash_m_kreg_audit(tmp_path, monkeypatch, capsys):
    # What `python -m kreg.audit broken.keras` runs, in this process (no second TF start).
    path = _save(
        _mlp(reg=L2(1e-4)), keras.optimizers.SGD(1.0, weight_decay=2.0), tmp_path / "broken.keras"
    )
    monkeypatch.setattr(sys, "argv", ["python -m kreg.audit", path])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("kreg.audit", run_name="__main__", alter_sys=False)
    assert exit_info.value.code == 1
    assert "decay-too-strong" in capsys.readouterr().out


# ------------------------------------------------------------------ the codes table


def _emitted_code_patterns():
    """Every code a module of kreg/audit passes to ``finding(...)``, as a regex, by module.

    An f-string code (``f"penalty-on-{kind}"``) becomes a pattern over its placeholders.
    """
    import ast
    import pathlib

    root = pathlib.Path(sys.modules["kreg.audit"].__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            assert name != "Finding" or path.name == "_codes.py", (
                f"{path.name} builds a Finding directly: use _codes.finding(code, ...)"
            )
            if name != "finding" or path.name == "_codes.py":
                continue
            code = node.args[0]
            if isinstance(code, ast.Constant):
                pattern = re.escape(code.value)
            else:
                assert isinstance(code, ast.JoinedStr), ast.dump(code)
                pattern = "".join(
                    re.escape(part.value) if isinstance(part, ast.Constant) else "[a-z0-9-]+"
                    for part in code.values
                )
            found.append((path.name, pattern))
    return found


def test_every_code_a_check_can_emit_is_registered_and_every_registered_code_is_emitted():
    from kreg.audit._codes import CODES

    emitted = set()
    patterns = _emitted_code_patterns()
    assert len(patterns) >= 20, patterns
    for module, pattern in patterns:
        matching = {code for code in CODES if re.fullmatch(pattern, code)}
        assert matching, f"{module}: finding({pattern!r}) matches no code in _codes.CODES"
        emitted |= matching
    assert emitted == set(CODES)
    for code, entry in CODES.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", code)
        assert entry.severity in kreg.audit.SEVERITIES and entry.summary and entry.explain


def test_the_documented_codes_table_is_the_registry():
    from kreg.audit._codes import CODES, table

    doc = sys.modules["kreg.audit"].__doc__
    assert table() in doc
    # help(kreg.audit) shows the function, which kreg/__init__.py imports over the module.
    assert table() in inspect.cleandoc(kreg.audit.__doc__)
    assert "decay-too-fast" in table()
    rows = {line.split()[0]: line.split()[1] for line in table().splitlines()[3:-1]}
    assert rows == {code: entry.severity for code, entry in CODES.items()}
    assert "optimizer-not-read" in rows
    # Most severe first, as a report lists them.
    ranks = [kreg.audit.SEVERITIES.index(entry.severity) for entry in CODES.values()]
    assert ranks == sorted(ranks)


def test_findings_take_their_severity_from_the_registry_and_need_a_registered_code():
    from kreg.audit._codes import CODES, finding

    made = finding("no-optimizer", "m")
    assert made.severity == CODES["no-optimizer"].severity == "info"
    assert (made.code, made.path) == ("no-optimizer", "m")
    with pytest.raises(
        ValueError,
        match="Invalid value for argument `code`: expected a "
        "finding code registered in kreg/audit/_codes.py. Received: "
        "code='l2-everywhere'",
    ):
        finding("l2-everywhere", "m")
    for report in _all_broken_reports():
        for f in report.findings:
            assert f.severity == CODES[f.code].severity, f
