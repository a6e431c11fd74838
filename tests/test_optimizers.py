"""Tests for kreg.optimizers.DecoupledWeightDecay: NumPy references, Keras equivalences, set-ups."""

import inspect

import keras
import numpy as np
import pytest
from conftest import BACKEND, jax_only, tf_only

import kreg
from kreg._live import live_optimizer_strengths
from kreg.optimizers import DecoupledWeightDecay

LR = 0.1
STEPS = 6


# --------------------------------------------------------------------------- helpers


def lr_schedule():
    return keras.optimizers.schedules.ExponentialDecay(LR, decay_steps=2, decay_rate=0.5)


def lr_at(schedule, t):
    return LR * 0.5 ** (t / 2) if schedule else LR


INNER = {
    "sgd_momentum": lambda lr: keras.optimizers.SGD(lr, momentum=0.9),
    "sgd_nesterov": lambda lr: keras.optimizers.SGD(lr, momentum=0.9, nesterov=True),
    "adam": lambda lr: keras.optimizers.Adam(lr),
    "rmsprop": lambda lr: keras.optimizers.RMSprop(lr),
    "adagrad": lambda lr: keras.optimizers.Adagrad(lr),
}


class NumpyInner:
    """Keras 3.15 update rules in float64 NumPy (one state per variable)."""

    def __init__(self, name, shape):
        self.name = name
        self.m = np.zeros(shape)
        self.v = np.zeros(shape) + (0.1 if name == "adagrad" else 0.0)

    def step(self, theta, g, lr, t):
        if self.name == "sgd":
            return theta - lr * g
        if self.name.startswith("sgd"):
            self.m = 0.9 * self.m - lr * g
            if self.name == "sgd_nesterov":
                return theta + 0.9 * self.m - lr * g
            return theta + self.m
        if self.name == "adam":
            self.m += (g - self.m) * 0.1
            self.v += (g * g - self.v) * 0.001
            # The bias correction as Keras computes it, in float32 (1 - 0.999**t loses
            # ~1e-5 relative in float32: more than the 1e-6 tolerance allows).
            f32, step = np.float32, np.float32(t + 1)
            alpha = f32(lr) * np.sqrt(f32(1) - f32(0.999) ** step) / (f32(1) - f32(0.9) ** step)
            return theta - self.m * alpha / (np.sqrt(self.v) + 1e-7)
        if self.name == "rmsprop":
            self.v = 0.9 * self.v + 0.1 * g * g
            return theta - lr * g / np.sqrt(self.v + 1e-7)
        if self.name == "adagrad":
            self.v += g * g
            return theta - lr * g / np.sqrt(self.v + 1e-7)
        raise ValueError(self.name)


def follow_factor(follow, lr):
    return {"schedule": lr / LR, "learning_rate": lr, "none": 1.0}[follow]


def soft(x, thr):
    return np.sign(x) * np.maximum(np.abs(x) - thr, 0.0)


def make_variables(seed=0):
    rng = np.random.RandomState(seed)
    kernel = keras.Variable(rng.randn(3, 2).astype("float32"), name="kernel")
    bias = keras.Variable(rng.randn(2).astype("float32"), name="bias")
    return [kernel, bias]


def gradients(steps=STEPS, seed=1):
    rng = np.random.RandomState(seed)
    return [
        [rng.randn(3, 2).astype("float32"), rng.randn(2).astype("float32")] for _ in range(steps)
    ]


def run(optimizer, variables, grads, stateless=None):
    """Apply each gradient list; on JAX through ``stateless_apply`` as the JAX trainer does."""
    if stateless is None:
        stateless = keras.backend.backend() == "jax"
    if stateless and not optimizer.built:
        optimizer.build(variables)
    for g in grads:
        g = [keras.ops.convert_to_tensor(x) for x in g]
        if stateless:
            new_vars, new_opt_vars = optimizer.stateless_apply(
                [v.value for v in optimizer.variables], g, [v.value for v in variables]
            )
            for ref, value in zip(variables, new_vars):
                ref.assign(value)
            for ref, value in zip(optimizer.variables, new_opt_vars):
                ref.assign(value)
        else:
            optimizer.apply(g, variables)
    return [np.asarray(keras.ops.convert_to_numpy(v), dtype="float64") for v in variables]


def reference(
    inner,
    variables,
    grads,
    *,
    wd,
    follow,
    schedule=False,
    l1=0.0,
    anchor=0.0,
    mode="decoupled",
    wd_of_step=None,
):
    """Kernel decayed (bias excluded by default); the inner rule applies to both.

    ``anchor``: 0.0 (decay toward zero), "initial" or an array for the kernel.
    """
    thetas = [np.asarray(v.numpy(), dtype="float64") for v in variables]
    anchor = thetas[0].copy() if isinstance(anchor, str) else anchor
    states = [NumpyInner(inner, t.shape) for t in thetas]
    for t, g in enumerate(grads):
        lr = lr_at(schedule, t)
        lam = wd if wd_of_step is None else wd_of_step(t)
        factor = follow_factor(follow, lr)
        g = [np.asarray(x, dtype="float64") for x in g]
        if mode == "l2":
            g[0] = g[0] + lam * (thetas[0] - anchor)
        else:
            thetas[0] = thetas[0] - lam * factor * (thetas[0] - anchor)
        thetas = [s.step(th, gi, lr, t) for s, th, gi in zip(states, thetas, g)]
        if l1:
            thetas[0] = anchor + soft(thetas[0] - anchor, l1 * factor)
    return thetas


def zero_input_model(units=2, seed=3, **compile_kwargs):
    """A bias-free Dense on zero inputs: the loss gradient is exactly 0, only decay acts."""
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                units,
                use_bias=False,
                name="dense",
                kernel_initializer=keras.initializers.RandomNormal(seed=seed),
            ),
        ]
    )
    model.compile(loss="mse", **compile_kwargs)
    return model


def zero_data(n=8):
    return np.zeros((n, 3), "float32"), np.ones((n, 2), "float32")


def kernel(model):
    return np.asarray(model.layers[0].kernel.numpy(), dtype="float64")


# --------------------------------------------------------------------------- NumPy references


@pytest.mark.parametrize("schedule", [False, True], ids=["constant_lr", "lr_schedule"])
@pytest.mark.parametrize("inner", list(INNER))
def test_matches_numpy_reference(inner, schedule):
    # The three rules in one test (the per-test session reset costs more than a run).
    grads = gradients()
    results = {}
    for follow in ("schedule", "learning_rate", "none"):
        variables = make_variables()
        expected = reference(inner, variables, grads, wd=0.05, follow=follow, schedule=schedule)
        lr = lr_schedule() if schedule else LR
        opt = DecoupledWeightDecay(INNER[inner](lr), 0.05, follow=follow)
        got = run(opt, variables, grads)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=0, atol=1e-6, err_msg=follow)
        results[follow] = got[0]
    # The rules give different trajectories (lr_0 = 0.1, so "schedule" decays 10x more
    # than "learning_rate"; "none" as much as "schedule" only while lr_t = lr_0).
    assert np.abs(results["schedule"] - results["learning_rate"]).max() > 1e-3
    if schedule:
        assert np.abs(results["schedule"] - results["none"]).max() > 1e-4


@pytest.mark.parametrize("inner, kind", [("sgd_momentum", "schedule"), ("adam", "callable")])
def test_weight_decay_schedule_and_live_scale(inner, kind):
    variables = make_variables()
    grads = gradients()
    if kind == "schedule":
        decay = keras.optimizers.schedules.ExponentialDecay(0.2, decay_steps=1, decay_rate=0.8)
    else:

        def decay(step):
            return 0.2 * keras.ops.power(0.8, keras.ops.cast(step, "float32"))

    opt = DecoupledWeightDecay(INNER[inner](lr_schedule()), decay, follow="learning_rate")
    handle = live_optimizer_strengths(opt)["weight_decay"]
    assert handle.base == 1.0
    handle.assign(0.5)  # a live scale on the schedule
    expected = reference(
        inner,
        variables,
        grads,
        wd=None,
        follow="learning_rate",
        schedule=True,
        wd_of_step=lambda t: 0.5 * 0.2 * 0.8**t,
    )
    got = run(opt, variables, grads)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-6)


def test_zero_gradient_step_is_exactly_one_minus_decay():
    variables = make_variables()
    before = variables[0].numpy().copy()
    opt = DecoupledWeightDecay(keras.optimizers.Adam(0.01), 0.3, follow="none")
    zeros = [np.zeros((3, 2), "float32"), np.zeros(2, "float32")]
    run(opt, variables, [zeros], stateless=False)  # eager `apply` on every backend
    np.testing.assert_array_equal(variables[0].numpy(), (np.float32(1) - np.float32(0.3)) * before)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_learning_rate_rule_reproduces_keras_sgd_weight_decay(momentum):
    grads = [[g[0]] for g in gradients()]
    ours = make_variables()[:1]
    keras_vars = make_variables()[:1]
    opt = DecoupledWeightDecay(
        keras.optimizers.SGD(lr_schedule(), momentum=momentum), 0.05, follow="learning_rate"
    )
    builtin = keras.optimizers.SGD(lr_schedule(), momentum=momentum, weight_decay=0.05)
    np.testing.assert_allclose(
        run(opt, ours, grads)[0], run(builtin, keras_vars, grads)[0], rtol=0, atol=1e-6
    )


class PlainSGD(keras.optimizers.Optimizer):
    """A custom optimizer subclass: plain gradient descent in its own update_step."""

    def update_step(self, gradient, variable, learning_rate):
        lr = keras.ops.cast(learning_rate, variable.dtype)
        self.assign_sub(variable, keras.ops.multiply(keras.ops.cast(gradient, variable.dtype), lr))


def test_learning_rate_rule_reproduces_builtin_decay_of_other_optimizers():
    # Every Keras optimizer with a built-in weight_decay, and a custom subclass: the
    # "learning_rate" rule gives the built-in trajectory.
    grads = [[g[0]] for g in gradients(steps=5)]
    makers = {
        "adamax": keras.optimizers.Adamax,
        "nadam": keras.optimizers.Nadam,
        "lion": keras.optimizers.Lion,
        "adafactor": keras.optimizers.Adafactor,
        "adamw": keras.optimizers.AdamW,
        "custom": PlainSGD,
    }
    for name, make in makers.items():
        ours, keras_vars = make_variables()[:1], make_variables()[:1]
        inner = make(0.05, weight_decay=0.0) if name == "adamw" else make(0.05)
        opt = DecoupledWeightDecay(inner, 0.1, follow="learning_rate")
        builtin = make(0.05, weight_decay=0.1)
        np.testing.assert_allclose(
            run(opt, ours, grads)[0],
            run(builtin, keras_vars, grads)[0],
            rtol=0,
            atol=1e-6,
            err_msg=name,
        )


def test_learning_rate_rule_reproduces_keras_adamw():
    grads = [[g[0]] for g in gradients()]
    ours, keras_vars = make_variables()[:1], make_variables()[:1]
    opt = DecoupledWeightDecay(keras.optimizers.Adam(0.05), 0.1, follow="learning_rate")
    builtin = keras.optimizers.AdamW(0.05, weight_decay=0.1)
    np.testing.assert_allclose(
        run(opt, ours, grads)[0], run(builtin, keras_vars, grads)[0], rtol=0, atol=1e-6
    )


def test_default_takes_the_steps_of_keras_and_torch_adamw():
    # What a user moving AdamW values into kreg expects: the same numbers, the same steps.
    grads = [[g[0]] for g in gradients()]
    ours, keras_vars = make_variables()[:1], make_variables()[:1]
    start = keras.ops.convert_to_numpy(ours[0]).copy()
    opt = DecoupledWeightDecay(keras.optimizers.Adam(0.05), weight_decay=0.1)
    builtin = keras.optimizers.AdamW(0.05, weight_decay=0.1)
    got = run(opt, ours, grads)[0]
    np.testing.assert_allclose(got, run(builtin, keras_vars, grads)[0], rtol=0, atol=1e-6)
    torch = pytest.importorskip("torch")
    theta = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    torch_adamw = torch.optim.AdamW([theta], lr=0.05, weight_decay=0.1, eps=1e-7)
    for (g,) in grads:
        theta.grad = torch.tensor(g, dtype=torch.float64)
        torch_adamw.step()
    # Keras computes Adam's bias correction in float32 (~1e-5 relative, see NumpyInner)
    # and adds ε inside the bias correction; torch runs here in float64.
    np.testing.assert_allclose(got, theta.detach().numpy(), rtol=0, atol=1e-5)


class _HalveLearningRateEachEpoch(keras.callbacks.LearningRateScheduler):
    """Sets lr = 0.05·0.5^epoch at the start of each epoch, the first one included."""

    def __init__(self):
        super().__init__(lambda epoch: 0.05 * 0.5**epoch)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_schedule_rule_reads_lr0_at_the_first_step(jit_compile, tmp_path):
    # The optimizer is built with lr 0.1; a callback sets 0.05 before the first step.
    # Algorithm 1's η_t = lr_t / lr_0 is then 0.5^epoch, so each step decays by 0.2·η_t.
    opt = DecoupledWeightDecay(keras.optimizers.SGD(LR), 0.2, follow="schedule")
    model = zero_input_model(optimizer=opt, jit_compile=jit_compile)
    before = kernel(model)
    x, y = zero_data()
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[_HalveLearningRateEachEpoch()])
    np.testing.assert_allclose(kernel(model), before * 0.8**2 * 0.9**2, rtol=1e-6)
    assert opt.initial_learning_rate == pytest.approx(0.05)
    assert opt.get_config()["initial_learning_rate"] is None
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.optimizer.initial_learning_rate == pytest.approx(0.05)


def test_initial_learning_rate_before_training_is_what_the_first_step_would_read():
    opt = DecoupledWeightDecay(keras.optimizers.SGD(LR), 0.2, follow="schedule")
    assert opt.initial_learning_rate == pytest.approx(LR)
    opt.learning_rate = 0.03
    assert opt.initial_learning_rate == pytest.approx(0.03)
    given = DecoupledWeightDecay(keras.optimizers.SGD(LR), 0.2, initial_learning_rate=0.5)
    assert given.initial_learning_rate == 0.5
    assert given.get_config()["initial_learning_rate"] == 0.5


def test_l1_proximal_step_gives_exact_zeros():
    variables = make_variables()
    grads = [[0.1 * g[0], g[1]] for g in gradients(steps=8)]
    opt = DecoupledWeightDecay(keras.optimizers.SGD(LR), 0.0, l1=0.15, follow="none")
    expected = reference("sgd", variables, grads, wd=0.0, follow="none", l1=0.15)
    got = run(opt, variables, grads)
    np.testing.assert_allclose(got[0], expected[0], rtol=0, atol=1e-6)
    zeros = expected[0] == 0.0
    assert zeros.sum() >= 2 and not zeros.all()
    np.testing.assert_array_equal(got[0] == 0.0, zeros)  # exactly zero, same places


@pytest.mark.parametrize("follow", ["learning_rate", "schedule"])
def test_l1_threshold_follows_the_learning_rate(follow):
    # The L1 threshold is f_t·l1 (f_t from `follow`), under a decaying learning rate.
    variables = make_variables()
    grads = gradients()
    opt = DecoupledWeightDecay(
        keras.optimizers.SGD(lr_schedule(), momentum=0.9), 0.05, l1=0.02, follow=follow
    )
    expected = reference(
        "sgd_momentum", variables, grads, wd=0.05, follow=follow, schedule=True, l1=0.02
    )
    got = run(opt, variables, grads)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-6)


def test_l1_threshold_is_scaled_by_the_multiplier():
    # Threshold l1·m = 0.1·0.5: one zero-gradient step shrinks by 0.05, small ones to 0.
    variables = [keras.Variable(np.array([[0.3, -0.05], [0.02, -0.4]], "float32"), name="kernel")]
    opt = DecoupledWeightDecay(
        keras.optimizers.SGD(LR), 0.0, l1=0.1, follow="none", multipliers={"kernel": 0.5}
    )
    got = run(opt, variables, [[np.zeros((2, 2), "float32")]])
    np.testing.assert_allclose(got[0], [[0.25, 0.0], [0.0, -0.35]], rtol=0, atol=1e-7)


@pytest.mark.parametrize("anchor", ["initial", "list"])
def test_anchor_decays_toward_reference(anchor):
    variables = make_variables()
    grads = gradients()
    if anchor == "list":
        target = [np.full((3, 2), 0.5, "float32"), np.zeros(2, "float32")]
        ref_anchor = target[0].astype("float64")
    else:
        target = ref_anchor = "initial"
    # L1 shrinks toward the anchor as well.
    expected = reference(
        "adam", variables, grads, wd=2.0, follow="learning_rate", l1=0.1, anchor=ref_anchor
    )
    opt = DecoupledWeightDecay(keras.optimizers.Adam(LR), 2.0, l1=0.1, anchor=target)
    got = run(opt, variables, grads)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-6)


def test_mode_l2_matches_numpy_and_ignores_follow():
    variables = make_variables()
    grads = gradients()
    expected = reference(
        "adam", variables, grads, wd=0.3, follow="schedule", schedule=True, mode="l2"
    )
    opt = DecoupledWeightDecay(keras.optimizers.Adam(lr_schedule()), 0.3, mode="l2")
    got = run(opt, variables, grads)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-6)


def test_mode_l2_with_initial_anchor_matches_numpy():
    # mode="l2" adds λ·(θ − θ₀) to the gradient: toward the initial weights, not zero.
    variables = make_variables()
    grads = gradients()
    expected = reference(
        "adam", variables, grads, wd=0.3, follow="schedule", anchor="initial", mode="l2"
    )
    opt = DecoupledWeightDecay(keras.optimizers.Adam(LR), 0.3, mode="l2", anchor="initial")
    got = run(opt, variables, grads)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-6)


def test_gradient_accumulation_decays_only_on_update_steps():
    variables = make_variables()
    grads = gradients(steps=4)
    opt = DecoupledWeightDecay(
        keras.optimizers.SGD(LR, gradient_accumulation_steps=2), 0.1, follow="none"
    )
    theta = variables[0].numpy().astype("float64")
    for t in (0, 2):
        mean = (grads[t][0] + grads[t + 1][0]) / 2.0
        theta = (1 - 0.1) * theta - LR * mean
    got = run(opt, variables, grads)
    np.testing.assert_allclose(got[0], theta, rtol=0, atol=1e-6)


@pytest.mark.parametrize("nesting", ["lso_outside", "lso_inside"])
def test_loss_scale_skip_also_skips_decay(nesting):
    variables = make_variables()
    before = [v.numpy().copy() for v in variables]
    if nesting == "lso_outside":
        opt = keras.optimizers.LossScaleOptimizer(
            DecoupledWeightDecay(keras.optimizers.SGD(LR), 5.0)
        )
    else:
        opt = DecoupledWeightDecay(
            keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(LR)), 5.0
        )
    bad = [np.full((3, 2), np.inf, "float32"), np.zeros(2, "float32")]
    run(opt, variables, [bad])
    for v, b in zip(variables, before):
        np.testing.assert_array_equal(v.numpy(), b)
    zeros = [np.zeros((3, 2), "float32"), np.zeros(2, "float32")]
    run(opt, variables, [zeros])  # a finite step decays by lr·λ = 0.5
    np.testing.assert_allclose(variables[0].numpy(), 0.5 * before[0], rtol=1e-6)


def test_mode_l2_term_is_at_the_scale_of_a_loss_scale_optimizer_inside():
    # The gradients reaching the wrapper are multiplied by the loss scale (2**15), which
    # the inner LossScaleOptimizer divides out: λ·θ must be added at that scale.
    variables = make_variables()
    before = variables[0].numpy().astype("float64")
    opt = DecoupledWeightDecay(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(LR)), 0.5, mode="l2"
    )
    got = run(opt, variables, [[np.zeros((3, 2), "float32"), np.zeros(2, "float32")]])
    np.testing.assert_allclose(got[0], (1 - LR * 0.5) * before, rtol=1e-6)


@jax_only
def test_jitted_stateless_apply_returns_new_values_and_leaves_variables_alone():
    import jax

    variables = make_variables()
    before = [v.numpy().copy() for v in variables]
    opt = DecoupledWeightDecay(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(LR)),
        0.5,
        l1=0.01,
        follow="none",
    )
    opt.build(variables)
    zeros = [keras.ops.zeros(v.shape) for v in variables]
    new_vars, new_state = jax.jit(opt.stateless_apply)(
        [v.value for v in opt.variables], zeros, [v.value for v in variables]
    )
    assert len(new_state) == len(opt.variables)
    for v, b in zip(variables, before):
        np.testing.assert_array_equal(v.numpy(), b)
    np.testing.assert_allclose(np.asarray(new_vars[0]), soft(0.5 * before[0], 0.01), atol=1e-7)
    np.testing.assert_array_equal(np.asarray(new_vars[1]), before[1])


# --------------------------------------------------------------------------- equivalences in fit


def _twin_models(regularizer=None, seed=7):
    def build(reg):
        return keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(
                    3,
                    activation="tanh",
                    kernel_regularizer=reg,
                    name="hidden",
                    kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                ),
                keras.layers.Dense(
                    1,
                    kernel_regularizer=reg,
                    name="out",
                    kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
                ),
            ]
        )

    return build(regularizer), build(None)


def test_sgd_l2_penalty_equals_decoupled_learning_rate_rule(regression_data):
    x, y = regression_data
    lam = 0.2
    # Keras' L2(l2) has gradient 2·l2·w, so L2(λ/2) is the penalty whose gradient is λ·w.
    penalized, decoupled = _twin_models(keras.regularizers.L2(lam / 2))
    penalized.compile(keras.optimizers.SGD(0.05), "mse")
    decoupled.compile(
        DecoupledWeightDecay(keras.optimizers.SGD(0.05), lam, follow="learning_rate"), "mse"
    )
    for model in (penalized, decoupled):
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(penalized.weights, decoupled.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("clipnorm", [None, 0.05])
def test_mode_l2_with_adam_matches_penalty_in_loss(regression_data, clipnorm):
    # With clipnorm the added λ·θ is clipped with the gradient, as the penalty's is.
    x, y = regression_data
    lam = 0.2
    penalized, coupled = _twin_models(keras.regularizers.L2(lam / 2))
    penalized.compile(keras.optimizers.Adam(0.01, clipnorm=clipnorm), "mse")
    coupled.compile(
        DecoupledWeightDecay(keras.optimizers.Adam(0.01, clipnorm=clipnorm), lam, mode="l2"),
        "mse",
    )
    for model in (penalized, coupled):
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(penalized.weights, coupled.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- training set-ups


class _SetStrength(keras.callbacks.Callback):
    def __init__(self, key, value):
        super().__init__()
        self.key, self.value = key, value

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            kreg.strengths(self.model)[self.key].assign(self.value)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_live_change_by_callback_mid_fit(jit_compile):
    model = zero_input_model(
        optimizer=DecoupledWeightDecay(keras.optimizers.SGD(LR), 1.0),
        jit_compile=jit_compile,
    )
    assert set(kreg.strengths(model)) == {"optimizer.weight_decay", "optimizer.l1"}
    before = kernel(model)
    x, y = zero_data()
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        verbose=0,
        callbacks=[_SetStrength("optimizer.weight_decay", 5.0)],
    )
    # lr·λ = 0.1 per step for two steps, then 0.5.
    np.testing.assert_allclose(kernel(model), before * 0.9**2 * 0.5**2, rtol=1e-6)
    assert float(kreg.strengths(model)["optimizer.weight_decay"]) == pytest.approx(5.0)


def test_live_l1_change_mid_fit():
    model = zero_input_model(
        optimizer=DecoupledWeightDecay(keras.optimizers.SGD(LR), 0.0, follow="none")
    )
    before = kernel(model)
    x, y = zero_data()
    model.fit(
        x, y, batch_size=4, epochs=2, verbose=0, callbacks=[_SetStrength("optimizer.l1", 0.01)]
    )
    np.testing.assert_allclose(kernel(model), soft(before, 0.02), rtol=0, atol=1e-7)


@pytest.mark.parametrize("nesting", ["lso_outside", "lso_inside"])
def test_mixed_float16_with_loss_scale_optimizer(nesting):
    keras.config.set_dtype_policy("mixed_float16")
    try:
        if nesting == "lso_outside":  # model.compile wraps it in a LossScaleOptimizer
            model = zero_input_model(optimizer=DecoupledWeightDecay(keras.optimizers.Adam(LR), 1.0))
            assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        else:
            opt = DecoupledWeightDecay(
                keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(LR)), 1.0
            )
            model = zero_input_model(optimizer=opt, auto_scale_loss=False)
        before = kernel(model)
        x, y = zero_data()
        model.fit(
            x,
            y,
            batch_size=4,
            epochs=2,
            verbose=0,
            callbacks=[_SetStrength("optimizer.weight_decay", 5.0)],
        )
        np.testing.assert_allclose(kernel(model), before * 0.9**2 * 0.5**2, rtol=1e-6)
    finally:
        keras.config.set_dtype_policy("float32")


def test_gradient_accumulation_in_fit():
    opt = DecoupledWeightDecay(keras.optimizers.SGD(LR, gradient_accumulation_steps=2), 1.0)
    model = zero_input_model(optimizer=opt)
    before = kernel(model)
    x, y = zero_data()
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # 4 micro-batches, 2 updates
    np.testing.assert_allclose(kernel(model), before * 0.9**2, rtol=1e-6)


def test_use_ema_averages_decayed_weights():
    opt = DecoupledWeightDecay(keras.optimizers.SGD(LR, use_ema=True, ema_momentum=0.5), 1.0)
    model = zero_input_model(optimizer=opt)
    before = kernel(model)
    x, y = zero_data()
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # 4 steps, then EMA weights
    average = None
    for k in range(1, 5):
        theta = before * 0.9**k
        average = theta if average is None else 0.5 * average + 0.5 * theta
    np.testing.assert_allclose(kernel(model), average, rtol=1e-6)


@tf_only
@pytest.mark.parametrize("mode", ["decoupled", "l2"])
def test_mirrored_strategy_matches_one_device(mirrored, regression_data, mode):
    x, y = regression_data

    def train(strategy):
        keras.utils.set_random_seed(5)
        with strategy.scope():
            model, _ = _twin_models()
            opt = DecoupledWeightDecay(
                keras.optimizers.SGD(0.05, momentum=0.9),
                0.1,
                l1=0.001,
                anchor="initial",
                mode=mode,
            )
            model.compile(opt, "mse")
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return [w.numpy() for w in model.weights]

    import tensorflow as tf

    one = train(tf.distribute.get_strategy())
    two = train(mirrored)
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def _nested_model():
    def block(name, layer):
        return keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(4, name=layer, kernel_initializer="ones")],
            name=name,
        )

    inputs = keras.Input((4,))
    return keras.Model(inputs, block("decoder", "proj")(block("encoder", "proj")(inputs)))


@pytest.mark.parametrize("by", ["patterns", "variable"])
def test_a_loaded_model_decays_the_weights_the_saved_one_did(tmp_path, by):
    """Paths of nested weights change on loading ("encoder/proj/kernel" -> "proj/kernel"):
    the loaded optimizer keeps the saved selection, and says when its patterns differ."""
    x = np.random.RandomState(0).rand(16, 4).astype("float32")
    model = _nested_model()
    kernels = [v for v in model.trainable_variables if v.path.endswith("kernel")]
    assert [v.path for v in kernels] == ["encoder/proj/kernel", "decoder/proj/kernel"]
    if by == "patterns":
        select = dict(exclude="^encoder/", multipliers={"^decoder/": 0.5})
        expected = [0.0, 0.5]
    else:  # a variable is saved as a pattern on its layer/variable tail: "proj/kernel"
        select = dict(exclude=[kernels[0]])
        expected = [0.0, 1.0]
    opt = DecoupledWeightDecay(keras.optimizers.SGD(0.1), 0.1, **select)
    model.compile(opt, "mse")
    model.fit(x, x, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert [opt.weight_decay_multiplier(v) for v in kernels] == expected
    path = str(tmp_path / "nested.keras")
    model.save(path)
    with pytest.warns(UserWarning, match="select other weights .* the saved selection is kept"):
        loaded = keras.models.load_model(path, safe_mode=True)
    loaded_kernels = [v for v in loaded.trainable_variables if v.path.endswith("kernel")]
    assert [v.path for v in loaded_kernels] == ["proj/kernel", "proj/kernel"]
    assert [loaded.optimizer.weight_decay_multiplier(v) for v in loaded_kernels] == expected
    if BACKEND == "torch":
        # Keras' torch layers key their parameters by path: the loaded model's two
        # "proj/kernel" collide and it trains differently even with a bare SGD.
        return
    for m in (model, loaded):  # the next steps are the same
        m.fit(x, x, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-6
        )


def test_a_config_reused_for_another_model_selects_by_its_patterns():
    x = np.random.RandomState(0).rand(8, 4).astype("float32")
    first = _nested_model()
    opt = DecoupledWeightDecay(keras.optimizers.SGD(0.1), 0.1, exclude="^encoder/")
    first.compile(opt, "mse")
    first.fit(x, x, batch_size=8, epochs=1, verbose=0)
    config = opt.get_config()
    assert [m for _, m in config["selection"]] == [0.0, 0.0, 1.0, 0.0]  # kernels, biases
    # Another model with as many weights, other names: the saved selection does not apply.
    other = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4, name="a"), keras.layers.Dense(4, name="b")],
        name="encoder",
    )
    reused = DecoupledWeightDecay.from_config(config)
    other.compile(reused, "mse")
    other.fit(x, x, batch_size=8, epochs=1, verbose=0)
    kernels = [v for v in other.trainable_variables if v.path.endswith("kernel")]
    assert [reused.weight_decay_multiplier(v) for v in kernels] == [0.0, 0.0]  # "^encoder/"
    assert [m for _, m in reused.get_config()["selection"]] == [0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("variant", ["float", "schedule"])
def test_save_load_restores_state_and_next_steps(tmp_path, regression_data, variant):
    x, y = regression_data
    model, _ = _twin_models()
    weight_decay = (
        0.1
        if variant == "float"
        else keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.7)
    )
    inner = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.01, 50))
    opt = DecoupledWeightDecay(
        inner,
        weight_decay,
        l1=0.001,
        anchor="initial",
        multipliers={"out": 0.5},
        exclude=["hidden/bias"],
    )
    model.compile(opt, "mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    kreg.strengths(model)["optimizer.weight_decay"].assign(0.3)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded.optimizer, DecoupledWeightDecay)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert float(kreg.strengths(loaded)["optimizer.weight_decay"]) == pytest.approx(0.3)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    for m in (model, loaded):
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-7)


# ------------------------------------------------------------------ selection, config, errors


def test_selection_by_path_exclude_and_multipliers():
    model = keras.Sequential(
        [
            keras.Input((4,), dtype="int32"),
            keras.layers.Embedding(10, 3, name="embedding"),
            keras.layers.LayerNormalization(name="norm"),
            keras.layers.Dense(2, name="dense"),
            keras.layers.Dense(2, name="skip_me"),
        ],
        name="net",
    )
    opt = DecoupledWeightDecay(
        keras.optimizers.SGD(LR), 1.0, exclude=r"skip_me/", multipliers={"embedding": 0.1}
    )
    factors = {v.path: opt.weight_decay_multiplier(v) for v in model.trainable_variables}
    assert factors == {
        "net/embedding/embeddings": 0.1,
        "net/norm/gamma": 0.0,
        "net/norm/beta": 0.0,
        "net/dense/kernel": 1.0,
        "net/dense/bias": 0.0,
        "net/skip_me/kernel": 0.0,
        "net/skip_me/bias": 0.0,
    }
    kernel_var = model.get_layer("dense").kernel
    by_var = DecoupledWeightDecay(keras.optimizers.SGD(LR), 0.1, exclude=[kernel_var])
    by_fn = DecoupledWeightDecay(
        keras.optimizers.SGD(LR), 0.1, exclude=lambda v: "/dense/" in v.path
    )
    assert by_var.weight_decay_multiplier(kernel_var) == 0.0
    assert by_fn.weight_decay_multiplier(kernel_var) == 0.0
    assert by_var.get_config()["exclude"] == [r"(?:^|/)dense/kernel$"]
    by_var.build(model.trainable_variables)  # the excluded variable is not tracked
    assert all(v is not kernel_var for v in by_var.variables)

    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    zeros = [keras.ops.zeros(v.shape) for v in model.trainable_variables]
    opt.apply(zeros, model.trainable_variables)
    for v in model.trainable_variables:
        expected = before[v.path] * (1 - LR * 1.0 * factors[v.path])
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6, err_msg=v.path)


def test_interface_attributes_and_config_round_trip():
    inner = keras.optimizers.SGD(lr_schedule())
    opt = DecoupledWeightDecay(inner, 0.02, l1=0.001, follow="learning_rate")
    assert opt.inner_optimizer is inner
    assert (opt.follow, opt.mode, opt.l1, opt.weight_decay) == (
        "learning_rate",
        "decoupled",
        0.001,
        0.02,
    )
    assert opt.initial_learning_rate == pytest.approx(LR)
    strengths = live_optimizer_strengths(opt)
    assert {k: (s.kind, s.base) for k, s in strengths.items()} == {
        "weight_decay": ("weight_decay", 0.02),
        "l1": ("l1", 0.001),
    }
    config = opt.get_config()
    clone = DecoupledWeightDecay.from_config(config)
    assert clone.get_config() == config
    registered = keras.saving.serialize_keras_object(opt)["registered_name"]
    assert registered == "kreg>DecoupledWeightDecay"
    with pytest.raises(AttributeError, match="is live"):
        opt.weight_decay = 0.5


BAD_INPUTS = [
    (
        {"weight_decay": -0.1},
        r"`weight_decay`: expected a finite float >= 0. Received: weight_decay=-0.1",
    ),
    ({"weight_decay": "big"}, r"argument `weight_decay`.*Received: weight_decay='big'"),
    ({"follow": "lr"}, r"argument `follow`: expected one of 'learning_rate'.*follow='lr'"),
    # tensorflow-addons' style: read once, when the step is traced.
    (
        {"weight_decay": lambda: 0.01},
        r"argument `weight_decay`: .*callable without arguments"
        r".*Received: weight_decay=<function",
    ),
    ({"weight_decay": lambda a, b: 0.01}, r"argument `weight_decay`: .*one argument"),
    ({"mode": "l1"}, r"argument `mode`: expected one of 'decoupled', 'l2'.*mode='l1'"),
    ({"l1": -1.0}, r"argument `l1`: expected a finite float >= 0. Received: l1=-1.0"),
    ({"anchor": "zero"}, r"argument `anchor`: expected None, \"initial\".*anchor='zero'"),
    ({"exclude": 3}, r"argument `exclude`.*exclude=3"),
    ({"exclude": ["("]}, r"argument `exclude`: expected valid regular"),
    ({"multipliers": {"emb": -1}}, r"argument `multipliers`.*'emb': -1"),
    ({"multipliers": ["emb"]}, r"argument `multipliers`.*multipliers=\['emb'\]"),
    # float32 cannot hold it: λ·factor would be inf.
    ({"multipliers": {"d": 1e39}}, r"argument `multipliers`: .*float32 can hold.*'d': 1e\+39"),
    ({"initial_learning_rate": 0.0}, r"argument `initial_learning_rate`: expected a positive"),
    # The value received, not a NaN stand-in; checked whatever `follow` is.
    ({"initial_learning_rate": "0.1"}, r"Received: initial_learning_rate='0.1'"),
    ({"initial_learning_rate": True}, r"Received: initial_learning_rate=True"),
    (
        {"follow": "learning_rate", "initial_learning_rate": -5.0},
        r"Received: initial_learning_rate=-5.0",
    ),
    ({"follow": "none", "initial_learning_rate": "abc"}, r"initial_learning_rate='abc'"),
    # A NumPy array is not compared with "initial" (elementwise); NaN anchors are refused.
    ({"anchor": np.zeros(3)}, r"argument `anchor`: expected None, \"initial\" or a list"),
    ({"anchor": [np.array([np.nan])]}, r"argument `anchor`: .*arrays of finite numbers"),
    ({"clipnorm": 1.0}, r"argument `clipnorm`.*set it on the inner optimizer"),
]


def test_bad_inputs():
    # One test for all cases (the per-test session reset costs more than the checks).
    for kwargs, match in BAD_INPUTS:
        kwargs = {"weight_decay": 0.1, **kwargs}
        with pytest.raises(ValueError, match=match):
            DecoupledWeightDecay(keras.optimizers.SGD(LR), **kwargs)


def test_bad_inner_optimizer():
    bad = {
        "adam_wd": lambda: keras.optimizers.Adam(weight_decay=0.01),
        "adamw_default": lambda: keras.optimizers.AdamW(),  # its default weight_decay=0.004
        "lso_inner_wd": lambda: keras.optimizers.LossScaleOptimizer(
            keras.optimizers.SGD(weight_decay=0.1)
        ),
        "string": lambda: "adam",
        "nested": lambda: DecoupledWeightDecay(keras.optimizers.SGD(), 0.1),
    }
    for case, inner in bad.items():
        with pytest.raises(ValueError, match=r"Invalid value for argument `optimizer`"):
            DecoupledWeightDecay(inner(), 0.1)
            pytest.fail(case)
    with pytest.raises(ValueError, match=r"the decay would apply twice"):
        DecoupledWeightDecay(keras.optimizers.Adam(weight_decay=0.01), 0.1)


@pytest.mark.skipif(not hasattr(keras.optimizers, "Muon"), reason="Keras without Muon")
def test_muon_is_accepted_only_without_its_own_decays():
    # Keras 3.10's Muon has no adam_weight_decay (its Adam rule uses weight_decay, default
    # 0.1); later ones add it with default 0.004.
    own_adam_decay = hasattr(keras.optimizers.Muon(), "adam_weight_decay")
    if own_adam_decay:
        with pytest.raises(
            ValueError,
            match=r"weight_decay and adam_weight_decay.*"
            r"Received: optimizer=Muon\(adam_weight_decay=0.004\)",
        ):
            DecoupledWeightDecay(keras.optimizers.Muon(weight_decay=0.0), 0.1)
    default_decay = keras.optimizers.Muon().weight_decay
    with pytest.raises(
        ValueError, match=rf"Received: optimizer=Muon\(weight_decay={default_decay}\)"
    ):
        DecoupledWeightDecay(keras.optimizers.Muon(), 0.1)
    if not own_adam_decay and keras.backend.backend() == "tensorflow":
        return  # Keras 3.10's Muon.apply fails on TensorFlow by itself (variable.path)
    # Without them, one zero-gradient step decays an embedding (stepped by Muon's Adam
    # rule) by exactly 0.9.
    embedding = keras.layers.Embedding(10, 4, name="embedding")
    embedding.build((None,))
    before = embedding.embeddings.numpy().copy()
    no_decay = {"weight_decay": 0.0, **({"adam_weight_decay": 0.0} if own_adam_decay else {})}
    opt = DecoupledWeightDecay(keras.optimizers.Muon(**no_decay), 0.1, follow="none")
    opt.apply([keras.ops.zeros((10, 4))], [embedding.embeddings])
    np.testing.assert_array_equal(embedding.embeddings.numpy(), np.float32(0.9) * before)


@pytest.mark.skipif(
    not hasattr(keras.optimizers, "ScheduleFreeAdamW"), reason="Keras without ScheduleFreeAdamW"
)
def test_schedule_free_adamw_is_refused():
    with pytest.raises(ValueError, match=r"ScheduleFreeAdamW rebuilds them from its own"):
        DecoupledWeightDecay(keras.optimizers.ScheduleFreeAdamW(), 0.1)


def test_apply_with_fewer_gradients_than_variables_is_refused():
    variables = make_variables()
    opt = DecoupledWeightDecay(keras.optimizers.SGD(LR), 1.0)
    opt.build(variables)
    before = [keras.ops.convert_to_numpy(v).copy() for v in variables]
    with pytest.raises(
        ValueError,
        match=r"argument `grads`: expected one gradient \(or None\) "
        r"per variable, 2 in all. Received: 1 gradients",
    ):
        opt.apply([np.zeros((3, 2), "float32")], variables)
    with pytest.raises(ValueError, match=r"Received: 1 gradients"):
        opt.apply([np.zeros((3, 2), "float32")])  # the built variables
    for v, b in zip(variables, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), b)


def test_adamw_with_zero_weight_decay_is_accepted_and_anchor_shapes_checked():
    DecoupledWeightDecay(keras.optimizers.AdamW(weight_decay=0.0), 0.1)
    opt = DecoupledWeightDecay(keras.optimizers.SGD(LR), 0.1, anchor=[np.zeros((2, 2))])
    with pytest.raises(ValueError, match=r"argument `anchor`: expected one array per"):
        opt.build(make_variables())
    warm_up = keras.optimizers.schedules.PolynomialDecay(0.0, 10, end_learning_rate=0.1)
    with pytest.raises(ValueError, match=r'follow="schedule".*a warm-up.*Received: initial_l'):
        DecoupledWeightDecay(keras.optimizers.SGD(warm_up), 0.1, follow="schedule")


def test_one_inner_optimizer_cannot_be_wrapped_twice():
    inner = keras.optimizers.SGD(1.0)
    first = DecoupledWeightDecay(inner, 0.1)
    variable = keras.Variable(np.ones((2, 2), "float32"))
    first.build([variable])
    with pytest.raises(ValueError, match="expected an optimizer not already wrapped by another"):
        DecoupledWeightDecay(inner, 0.1)
    inner2 = keras.optimizers.SGD(1.0)
    a, b = DecoupledWeightDecay(inner2, 0.1), DecoupledWeightDecay(inner2, 0.1)
    a.build([variable])
    with pytest.raises(ValueError, match="expected an optimizer not already wrapped by another"):
        b.build([variable])


def test_excluded_variables_stay_excluded_after_save_and_load(tmp_path, regression_data):
    x, y = regression_data
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="a"), keras.layers.Dense(1, name="b")],
        name="net",
    )
    opt = DecoupledWeightDecay(
        keras.optimizers.Adam(1e-2), 0.01, anchor="initial", exclude=[model.get_layer("b").kernel]
    )
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert opt.weight_decay_multiplier(model.get_layer("b").kernel) == 0.0
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.optimizer.weight_decay_multiplier(loaded.get_layer("b").kernel) == 0.0
    assert loaded.optimizer.weight_decay_multiplier(loaded.get_layer("a").kernel) == 1.0
    assert len(loaded.optimizer.variables) == len(opt.variables)
    for mine, theirs in zip(opt.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs)
        )


# --------------------------------------------------------------------------- cautious decay


def cautious_reference(inner, variables, grads, *, wd, lr=LR):
    """Chen et al.'s rule over NumpyInner: θ ← θ' − lr·λ·𝕀(u·θ ≥ 0)·θ, u = θ − θ' (kernel)."""
    thetas = [np.asarray(v.numpy(), dtype="float64") for v in variables]
    states = [NumpyInner(inner, t.shape) for t in thetas]
    for t, g in enumerate(grads):
        g = [np.asarray(x, dtype="float64") for x in g]
        before = thetas[0]
        thetas = [s.step(th, gi, lr, t) for s, th, gi in zip(states, thetas, g)]
        aligned = (before - thetas[0]) * before >= 0
        thetas[0] = thetas[0] - lr * wd * aligned * before
    return thetas


@pytest.mark.parametrize("inner", ["sgd_momentum", "adam"])
def test_cautious_decay_matches_numpy_reference(inner):
    variables = make_variables()
    grads = gradients()
    expected = cautious_reference(inner, variables, grads, wd=2.0)
    got = run(DecoupledWeightDecay(INNER[inner](LR), 2.0, cautious=True), variables, grads)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-6)
    # It masks: neither no decay nor the plain decoupled decay of every coordinate.
    plain = run(DecoupledWeightDecay(INNER[inner](LR), 2.0), make_variables(), grads)[0]
    none = run(INNER[inner](LR), make_variables(), grads)[0]
    assert np.abs(got[0] - plain).max() > 1e-3 and np.abs(got[0] - none).max() > 1e-3


def _twin_cautious(make_inner, start, grads, decay, decayed):
    """The rule over the real inner optimizer: a twin without decay steps from the same θ
    each time (Adam's, Lion's and Muon's states depend on the gradients alone)."""
    twin_variables = [keras.Variable(s, name=f"w{i}") for i, s in enumerate(start)]
    twin = make_inner()
    twin.build(twin_variables)
    for g in grads:
        before = [keras.ops.convert_to_numpy(v).astype("float64") for v in twin_variables]
        twin.apply([keras.ops.convert_to_tensor(x) for x in g], twin_variables)
        for i in decayed:
            after = keras.ops.convert_to_numpy(twin_variables[i]).astype("float64")
            aligned = (before[i] - after) * before[i] >= 0
            twin_variables[i].assign((after - decay * aligned * before[i]).astype("float32"))
    return [keras.ops.convert_to_numpy(v).astype("float64") for v in twin_variables]


# Keras 3.10's Muon has one weight_decay for both its parts; later ones add adam_weight_decay.
_MUON_ADAM_NO_DECAY = (
    {"adam_weight_decay": 0.0}
    if hasattr(keras.optimizers, "Muon")
    and "adam_weight_decay" in inspect.signature(keras.optimizers.Muon).parameters
    else {}
)


@pytest.mark.parametrize("name", ["lion", "muon", "adamw_with_zero_decay"])
def test_cautious_decay_with_any_inner_optimizer(name):
    makers = {
        "lion": lambda: keras.optimizers.Lion(0.01),
        # Muon steps 2-D kernels with Newton-Schulz and biases with its Adam part.
        "muon": lambda: keras.optimizers.Muon(0.01, weight_decay=0.0, **_MUON_ADAM_NO_DECAY),
        "adamw_with_zero_decay": lambda: keras.optimizers.AdamW(0.01, weight_decay=0.0),
    }
    if name == "muon" and not hasattr(keras.optimizers, "Muon"):
        pytest.skip("Keras without Muon")
    if name == "muon" and not _MUON_ADAM_NO_DECAY and BACKEND == "tensorflow":
        pytest.skip("Keras 3.10's Muon.apply fails on TensorFlow by itself (variable.path)")
    start = [v.numpy() for v in make_variables()]
    grads = gradients()
    expected = _twin_cautious(makers[name], start, grads, 0.01 * 3.0, decayed=(0, 1))
    variables = [keras.Variable(s, name=f"w{i}") for i, s in enumerate(start)]
    opt = DecoupledWeightDecay(makers[name](), 3.0, cautious=True, multipliers={"w1": 1.0})
    got = run(opt, variables, grads)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-6, err_msg=name)


def _cautious_fit_reference(x, y, w, lr, lam, steps, cautious=True):
    """Full-batch Adam on mean((xw − y)²) with cautious (or plain) decay, in float64."""
    state = NumpyInner("adam", w.shape)
    for t in range(steps):
        g = 2.0 * x.T @ (x @ w - y) / len(x)
        before = w
        w = state.step(w, g, lr, t)
        aligned = ((before - w) * before >= 0) if cautious else 1.0
        w = w - lr * lam * aligned * before
    return w


@pytest.mark.parametrize("setup", ["compiled", "eager", "loss_scale", "accumulation"])
def test_cautious_decay_in_fit(regression_data, setup):
    x, y = regression_data
    inner = keras.optimizers.Adam(0.05)
    compile_kwargs = {"jit_compile": setup == "compiled", "run_eagerly": setup == "eager"}
    batch, epochs = len(x), 4
    if setup == "loss_scale":
        inner = keras.optimizers.LossScaleOptimizer(inner)
        compile_kwargs["auto_scale_loss"] = False
    if setup == "accumulation":  # two micro-batches per update: the full-batch gradient
        inner = keras.optimizers.Adam(0.05, gradient_accumulation_steps=2)
        batch = len(x) // 2
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(
                1,
                use_bias=False,
                name="d",
                kernel_initializer=keras.initializers.RandomNormal(seed=5),
            ),
        ]
    )
    start = model.get_weights()[0].astype("float64")
    model.compile(
        optimizer=DecoupledWeightDecay(inner, 2.0, cautious=True), loss="mse", **compile_kwargs
    )
    model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=False, verbose=0)
    expected = _cautious_fit_reference(
        x.astype("float64"), y.astype("float64"), start, 0.05, 2.0, epochs
    )
    np.testing.assert_allclose(model.get_weights()[0], expected, rtol=1e-5, atol=1e-6)
    plain = _cautious_fit_reference(
        x.astype("float64"), y.astype("float64"), start, 0.05, 2.0, epochs, cautious=False
    )
    assert np.abs(expected - plain).max() > 1e-3  # the mask matters here


def test_cautious_decay_is_refused_with_mode_l2():
    with pytest.raises(ValueError, match=r"argument `cautious`: expected False with mode=\"l2\""):
        DecoupledWeightDecay(keras.optimizers.Adam(), 0.1, mode="l2", cautious=True)


# --------------------------------------------------------------------------- corrected decay


def _warmup_cosine():
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=6, warmup_target=0.1, warmup_steps=3
    )


def timm_corrected_reference(inner, variables, grads, schedule, wd):
    """timm's AdamW/SGDW with corrected_weight_decay=True: θ·(1 − λ·lr_t²/max_lr) then the
    inner step, max_lr = the peak learning rate (timm: the optimizer's base lr)."""
    thetas = [np.asarray(v.numpy(), dtype="float64") for v in variables]
    states = [NumpyInner(inner, t.shape) for t in thetas]
    max_lr = 0.1
    for t, g in enumerate(grads):
        lr = float(schedule(t))
        thetas[0] = thetas[0] * (1.0 - wd * lr**2 / max_lr)
        thetas = [
            s.step(th, np.asarray(gi, "float64"), lr, t) for s, th, gi in zip(states, thetas, g)
        ]
    return thetas


@pytest.mark.parametrize("inner", ["sgd_momentum", "adam"])
def test_corrected_decay_is_timm_s_over_a_warmup_cosine_schedule(inner):
    schedule = _warmup_cosine()
    grads = gradients(steps=9)
    variables = make_variables()
    expected = timm_corrected_reference(inner, variables, grads, schedule, wd=0.5)
    opt = DecoupledWeightDecay(INNER[inner](schedule), 0.5, follow="corrected")
    assert opt.peak_learning_rate == pytest.approx(0.1)  # the warm-up's target
    got = run(opt, variables, grads)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-6)
    # lr_t² / lr_max: half the learning rate's decay where lr_t is half the peak.
    assert opt.decay_per_step(step=2, learning_rate=0.05) == pytest.approx(0.5 * 0.05**2 / 0.1)


def test_corrected_decay_with_a_constant_learning_rate_is_the_learning_rate_rule():
    variables, grads = make_variables(), gradients()
    corrected = run(
        DecoupledWeightDecay(keras.optimizers.Adam(LR), 0.5, follow="corrected"), variables, grads
    )
    plain = run(DecoupledWeightDecay(keras.optimizers.Adam(LR), 0.5), make_variables(), grads)
    for a, b in zip(corrected, plain):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ one answer: decay_per_step


@pytest.mark.parametrize(
    "follow, expected",
    [
        ("learning_rate", 0.5 * 0.02),
        ("schedule", 0.5 * 0.02 / 0.04),
        ("corrected", 0.5 * 0.02**2 / 0.08),
        ("none", 0.5),
    ],
)
def test_decay_per_step_is_lambda_times_follow_times_multiplier(follow, expected):
    opt = DecoupledWeightDecay(
        keras.optimizers.SGD(0.02),
        0.5,
        follow=follow,
        initial_learning_rate=0.04,
        peak_learning_rate=0.08,
        multipliers={"kernel": 0.25},
    )
    kernel = make_variables()[0]
    assert opt.decay_per_step() == pytest.approx(expected, rel=1e-6)
    assert opt.decay_per_step(kernel) == pytest.approx(0.25 * expected, rel=1e-6)
    assert DecoupledWeightDecay(keras.optimizers.SGD(0.02), 0.5, mode="l2").decay_per_step() is None


def test_monitor_scaler_and_audit_read_the_decay_from_decay_per_step(monkeypatch):
    # The one answer: replaced by 0.5 per step, all three say so.
    monkeypatch.setattr(DecoupledWeightDecay, "decay_per_step", lambda self, *a, **k: 0.5)
    model = zero_input_model(optimizer=DecoupledWeightDecay(keras.optimizers.SGD(LR), 1.0))
    x, y = zero_data(8)
    history = model.fit(
        x, y, batch_size=4, epochs=1, verbose=0, callbacks=[kreg.callbacks.RegularizationMonitor()]
    )
    assert history.history["decay_timescale_epochs"] == [pytest.approx(1 / (0.5 * 2))]
    report = kreg.audit(model)
    assert [f.code for f in report.findings if f.code.startswith("decay-too")] == ["decay-too-fast"]
    from kreg.callbacks._scaler import decay_of_unit

    assert decay_of_unit(model.optimizer) == (0.5, 1)
