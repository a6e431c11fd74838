"""Weight decay: on biases/normalization/embeddings, backend-dependent exclusions, a decay
that follows a schedule, one too strong to train or so fast that it sets the weights'
scale, an L2 mode meeting an adaptive optimizer."""

import math

from kreg._walk import optimizer_chain
from kreg.audit import _facts as facts
from kreg.audit._codes import finding


def _short(variable):
    return variable.path.rsplit("/", 1)[-1]


def check_decay(ctx):
    """Decay: on biases/normalization/embeddings, per-backend exclusions, schedule, strength."""
    if ctx.optimizer is None:
        return [finding("no-optimizer", ctx.model.name)]
    found = []
    by_optimizer = {}
    for variable, _, owner in ctx.weights:
        kind = ctx.category(variable, owner)
        if kind == "weight":
            continue
        for optimizer, wd in ctx.decays[id(variable)]:
            by_optimizer.setdefault(id(optimizer), (optimizer, []))[1].append((variable, kind, wd))
    for optimizer, items in by_optimizer.values():
        about = dict(
            optimizer_name=type(optimizer).__name__,
            kreg=facts.is_kreg_decay(optimizer),
            kinds={kind for _, kind, _ in items},
            inner_name=type(facts.stepper(optimizer_chain(optimizer))).__name__,
            **_exclusion(ctx, optimizer, items),
        )
        for variable, kind, wd in items:
            found.append(
                finding(
                    f"decay-on-{kind}",
                    variable.path,
                    kind=kind,
                    variable_path=variable.path,
                    weight_decay=wd,
                    **about,
                )
            )
    for optimizer in ctx.chain:
        if facts.is_multi_optimizer(optimizer):
            found.append(finding("optimizer-not-read", "optimizer"))
        if facts.is_kreg_decay(optimizer):
            found.extend(_kreg_decay_findings(ctx, optimizer))
            continue
        if facts.keras_weight_decay(optimizer):
            found.extend(_keras_decay_findings(ctx, optimizer))
        found.extend(_keras_strength_findings(ctx, optimizer))
    return found


def _exclusion(ctx, optimizer, items):
    """How the fix names the flagged weights: ``names``, the short names that only they bear
    among the weights ``optimizer`` decays (so excluding by name spares nothing else),
    ``paths`` the others, ``embeddings`` the flagged token embeddings' paths."""
    flagged = {id(v) for v, _, _ in items}
    decayed = [v for v, _, _ in ctx.weights if any(o is optimizer for o, _ in ctx.decays[id(v)])]
    shared = {_short(v) for v in decayed if id(v) not in flagged}
    return dict(
        names=sorted({_short(v) for v, _, _ in items} - shared),
        paths=sorted(v.path for v, _, _ in items if _short(v) in shared),
        embeddings=[v.path for v, kind, _ in items if kind == "embedding"],
    )


def _amounts(ctx, optimizer):
    """The per-weight λ of ``optimizer`` on each weight it decays."""
    return [wd for v, _, _ in ctx.weights for o, wd in ctx.decays[id(v)] if o is optimizer]


def _strength(per_step, ctx, **about):
    """decay-too-strong for a per-step decay ≥ 1, decay-too-fast for a short half-life."""
    if per_step >= 1:
        return [finding("decay-too-strong", "optimizer", per_step=per_step, **about)]
    if per_step <= 0:
        return []
    half_life = facts.half_life(per_step)
    if half_life >= facts.FAST_HALF_LIFE:
        return []
    epochs = None
    if ctx.batch_size is not None and ctx.num_examples is not None:
        epochs = half_life / max(1, math.ceil(ctx.num_examples / ctx.batch_size))
    return [
        finding(
            "decay-too-fast",
            "optimizer",
            per_step=per_step,
            half_life=half_life,
            limit=facts.FAST_HALF_LIFE,
            epochs=epochs,
            batch_size=ctx.batch_size,
            **about,
        )
    ]


def _kreg_decay_findings(ctx, optimizer):
    amounts = _amounts(ctx, optimizer)
    if not amounts:
        return []
    if getattr(optimizer, "mode", "decoupled") == "l2":
        if ctx.stepper is not None and facts.is_adaptive(ctx.stepper):
            return [
                finding(
                    "l2-mode-with-adaptive-optimizer",
                    "optimizer",
                    optimizer_name=type(ctx.stepper).__name__,
                )
            ]
        return []
    # At the largest learning rate of the schedule, not the one at step 0: a warm-up from
    # a small lr_0 multiplies a follow="schedule" decay by peak / lr_0.
    peak = facts.peak_learning_rate(ctx.stepper)
    decayed = [v for v, _, _ in ctx.weights if any(o is optimizer for o, _ in ctx.decays[id(v)])]
    per_step = max(optimizer.decay_per_step(v, step=0, learning_rate=peak) for v in decayed)
    factor = optimizer.decay_per_step(step=0, learning_rate=peak, weight_decay=1.0)
    if optimizer.weight_decay is not None and callable(optimizer.weight_decay):
        factor /= facts.as_float(optimizer.weight_decay(0)) or 1.0  # the follow factor alone
    return _strength(per_step, ctx, follow=optimizer.follow, factor=factor)


def _keras_decay_findings(ctx, optimizer):
    found = []
    wd = facts.keras_weight_decay(optimizer)
    name = type(optimizer).__name__
    differs = [v for v, _, _ in ctx.weights if facts.exclusion_differs(optimizer, v)]
    if differs:
        on_tf = [facts.keras_excludes(optimizer, v, "tensorflow") for v in differs]
        found.append(
            finding(
                "decay-exclusion-backend-dependent",
                "optimizer",
                optimizer_name=name,
                pattern=facts.exclusion_pattern(optimizer),
                on_tensorflow=[v.path for v, tf in zip(differs, on_tf) if tf],
                on_jax=[v.path for v, tf in zip(differs, on_tf) if not tf],
            )
        )
    schedule = facts.schedule_of(optimizer)
    profile = facts.schedule_profile(schedule) if schedule is not None else None
    if profile is not None:
        start, peak, end, end_step, exact = profile
        found.append(
            finding(
                "decay-follows-schedule",
                "optimizer",
                optimizer_name=name,
                weight_decay=wd,
                start=start,
                peak=peak,
                end=end,
                end_step=end_step,
                exact=exact,
            )
        )
    return found


def _keras_strength_findings(ctx, optimizer):
    """Keras' built-in decay removes lr_t·λ per step: at the schedule's peak, on the weights
    it decays (Muon's λ differs per weight)."""
    amounts = _amounts(ctx, optimizer)
    if not amounts:
        return []
    lr = facts.peak_learning_rate(optimizer)
    if lr is None:
        return []
    wd = max(amounts)
    return _strength(
        lr * wd, ctx, optimizer_name=type(optimizer).__name__, learning_rate=lr, weight_decay=wd
    )
