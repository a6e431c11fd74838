"""Weight decay: what no-optimizer, decay-on-*, optimizer-not-read,
l2-mode-with-adaptive-optimizer, decay-too-strong, decay-too-fast,
decay-exclusion-backend-dependent and decay-follows-schedule say."""

import re

from kreg.audit._explain import optimizer_code, plain, why


def no_optimizer():
    return (
        "no optimizer: the model is not compiled and none was passed",
        "Weight decay and how penalties interact with it live in the optimizer, so "
        "those checks were skipped.",
        "kreg.audit(model, optimizer=optimizer)  # or audit after model.compile(...)",
    )


def decay_on(
    *,
    kind,
    variable_path,
    weight_decay,
    optimizer_name,
    kreg,
    kinds,
    inner_name,
    names,
    paths,
    embeddings,
):
    """decay-on-bias, -normalization, -embedding; the fix covers every kind in ``kinds``:
    the weights bearing a short name in ``names`` and those at ``paths``; ``embeddings``
    are the token embeddings' paths."""
    what = "token embedding" if kind == "embedding" else kind
    return (
        f"weight decay {weight_decay:g} from {optimizer_name} acts on {what} '{variable_path}'",
        why(kind, "decaying"),
        _decay_fix(kreg, kinds, inner_name, names, paths, embeddings),
    )


def _decay_fix(kreg, kinds, inner_name, names, paths, embeddings):
    # Each path exactly: "embeddings$" would also match an output projection's
    # "reverse_embeddings" or a position table, which are no token embeddings.
    exclude = (
        ", exclude=[" + ", ".join(repr(re.escape(p) + "$") for p in embeddings) + "]"
        if embeddings
        else ""
    )
    if kreg:
        if kinds == {"embedding"}:
            return (
                f"kreg.optimizers.DecoupledWeightDecay(...{exclude})  "
                "# or multipliers={...: 0.1} for a weaker decay"
            )
        return (
            f"kreg.optimizers.DecoupledWeightDecay(...{exclude})  # excludes biases and "
            "normalization parameters by default; drop what re-included them"
        )
    tests = []
    if names:
        tests.append(f'v.path.rsplit("/", 1)[-1] in {{{", ".join(map(repr, names))}}}')
    if paths:
        tests.append(f"v.path in {{{', '.join(map(repr, paths))}}}")
    condition = "\n    or ".join(tests)
    return (
        "optimizer.exclude_from_weight_decay(var_list=[\n"
        "    v for v in model.trainable_variables\n"
        f"    if {condition}\n"
        "])  # before the first fit; variable.path is the same on every backend\n"
        f"# or: kreg.optimizers.DecoupledWeightDecay({optimizer_code(plain(inner_name))}(...), "
        f"weight_decay=...{exclude})  # excludes biases and normalization by default"
    )


def optimizer_not_read():
    return (
        "the optimizers inside a MultiOptimizer are not read: their weight "
        "decay and how it meets the penalties were not checked",
        "The audit reads one optimizer (through LossScaleOptimizer and "
        "DecoupledWeightDecay wrappers), not a map of them.",
        "# audit with each inner optimizer: kreg.audit(model, optimizer=inner)",
    )


def l2_mode_with_adaptive_optimizer(*, optimizer_name):
    return (
        f'DecoupledWeightDecay(mode="l2") adds λ·θ to the gradients of {optimizer_name}',
        f"{optimizer_name} divides the added λ·θ by a per-weight running scale, so this "
        "is 'Adam + L2', not weight decay: fine for a comparison, weaker for "
        "weights with large gradients (Loshchilov & Hutter, 2019).",
        'kreg.optimizers.DecoupledWeightDecay(..., mode="decoupled")',
    )


def decay_too_strong(**facts):
    """kreg's wrapper (``follow``, ``per_step``, ``factor``) or Keras' built-in decay
    (``optimizer_name``, ``learning_rate``, ``weight_decay``, ``per_step``)."""
    if "follow" in facts:
        return _kreg_decay_too_strong(**facts)
    return _keras_decay_too_strong(**facts)


def _kreg_decay_too_strong(*, follow, per_step, factor):
    return (
        f"DecoupledWeightDecay(follow={follow!r}) removes {per_step:.3g} of each "
        "decayed weight per step",
        "A decay step θ ← θ − d·θ with d ≥ 1 zeroes every decayed weight or flips "
        "its sign at each step.",
        _kreg_fix(factor),
    )


def _keras_decay_too_strong(*, optimizer_name, learning_rate, weight_decay, per_step):
    return (
        f"{optimizer_name}: {_keras_product(learning_rate, weight_decay, per_step)} per step",
        "Keras applies θ ← θ − lr·λ·θ, so lr·λ ≥ 1 zeroes every decayed weight or "
        "flips its sign at each step.",
        _keras_fix(optimizer_name, learning_rate),
    )


def _keras_product(lr, wd, per_step):
    return f"learning_rate × weight_decay = {lr:g} × {wd:g} = {per_step:.3g}"


def _kreg_fix(factor):
    return (
        "kreg.optimizers.DecoupledWeightDecay(..., weight_decay="
        f"{1e-4 / (factor or 1):.3g})  # 1e-4 of each weight per step"
    )


def _keras_fix(optimizer_name, lr):
    return (
        f"{optimizer_code(optimizer_name)}(learning_rate={lr:g}, weight_decay="
        f"{1e-4 / lr:.3g})  # lr·λ = 1e-4 per step"
    )


def decay_too_fast(*, per_step, half_life, limit, epochs, batch_size, **facts):
    """A decay of ``per_step`` (< 1) that halves the weights within ``limit`` steps;
    ``epochs``: the half-life in epochs at ``batch_size`` (None when not known)."""
    when = f"{half_life:.3g} steps"
    if epochs is not None:
        when += f" ({epochs:.3g} epochs at batch_size={batch_size})"
    if "follow" in facts:
        what = (
            f"DecoupledWeightDecay(follow={facts['follow']!r}) removes {per_step:.3g} of "
            "each decayed weight per step"
        )
        fix = _kreg_fix(facts["factor"])
    else:
        lr, wd = facts["learning_rate"], facts["weight_decay"]
        what = f"{facts['optimizer_name']}: {_keras_product(lr, wd, per_step)} per step"
        fix = _keras_fix(facts["optimizer_name"], lr)
    return (
        f"{what}: a weight halves in {when} where no gradient holds it",
        "Without a gradient to hold it a decayed weight shrinks as (1 − d)^t, halving "
        "every ln 2 / −ln(1 − d) steps; common set-ups take thousands (AdamW at lr 1e-3 "
        "with λ = 0.1 about 6900 steps, SGD at lr 0.1 with λ = 5e-4 about 14000), and "
        f"under {limit} the decay, not the data, sets the weights' scale and erases "
        "pretrained weights within the first epochs.",
        fix,
    )


def decay_exclusion_backend_dependent(*, optimizer_name, pattern, on_tensorflow, on_jax):
    """``on_tensorflow``/``on_jax``: the paths excluded on that backend only."""
    parts = []
    if on_tensorflow:
        parts.append(f"excludes {', '.join(on_tensorflow)} on TensorFlow only")
    if on_jax:
        parts.append(f"excludes {', '.join(on_jax)} on JAX/torch only")
    return (
        f"{optimizer_name}.exclude_from_weight_decay(var_names=...) (pattern "
        f"{pattern!r}) {'; '.join(parts)}",
        "Keras matches var_names against the TF variable's full name "
        "('dense/bias:0') on TensorFlow but against the short name ('bias') on JAX "
        "and torch, so the same code decays different weights on each backend.",
        "import re\n"
        "optimizer.exclude_from_weight_decay(var_list=[\n"
        f"    v for v in model.trainable_variables if re.search({pattern!r}, v.path)\n"
        "])  # variable.path is the same on every backend",
    )


def decay_follows_schedule(*, optimizer_name, weight_decay, start, peak, end, end_step, exact):
    """``start``, ``peak``, ``end``: the learning rate at step 0, its peak, at ``end_step``."""
    wd = weight_decay
    where = f"step {end_step}" + ("" if exact else " (the schedule has no end)")
    if start > 0:  # DecoupledWeightDecay's lr_0 defaults to the rate at step 0
        arguments = f'weight_decay={start * wd:.3g}, follow="schedule"'
    else:
        arguments = (
            f'weight_decay={peak * wd:.3g}, follow="schedule", initial_learning_rate={peak:g}'
        )
    return (
        f"{optimizer_name}(weight_decay={wd:g}) is multiplied by the scheduled learning "
        f"rate: decay per step {start * wd:.3g} at step 0, {peak * wd:.3g} at "
        f"its peak, {end * wd:.3g} at {where}",
        "Keras' built-in decay is θ ← θ − lr_t·λ·θ, so these products, not λ, "
        "act on the weights, and changing the base learning rate retunes the "
        "decay.",
        f"kreg.optimizers.DecoupledWeightDecay({optimizer_code(plain(optimizer_name))}"
        f"(learning_rate=schedule), {arguments})"
        "  # the same decay, now independent of the base learning rate",
    )
