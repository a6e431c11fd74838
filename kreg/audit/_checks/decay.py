"""Weight decay: on biases/normalization/embeddings, backend-dependent exclusions, a decay
that follows a schedule, one too strong to train, an L2 mode meeting an adaptive optimizer."""

from kreg._live import optimizer_chain
from kreg.audit import _facts as facts
from kreg.audit._codes import finding


def check_decay(ctx):
    """Decay: on biases/normalization/embeddings, per-backend exclusions, schedule, strength."""
    if ctx.optimizer is None:
        return [finding("no-optimizer", ctx.model.name)]
    found = []
    by_optimizer = {}
    for variable, _, owner in ctx.weights:
        kind = facts.category(variable, owner)
        if kind == "weight":
            continue
        for optimizer, wd in ctx.decays[id(variable)]:
            by_optimizer.setdefault(id(optimizer), (optimizer, []))[1].append(
                (variable, kind, wd)
            )
    for optimizer, items in by_optimizer.values():
        about = dict(
            optimizer_name=type(optimizer).__name__,
            kreg=facts.is_kreg_decay(optimizer),
            kinds={kind for _, kind, _ in items},
            inner_name=type(facts.stepper(optimizer_chain(optimizer))).__name__,
        )
        for variable, kind, wd in items:
            found.append(finding(
                f"decay-on-{kind}", variable.path, kind=kind, variable_path=variable.path,
                weight_decay=wd, **about,
            ))
    for optimizer in ctx.chain:
        if facts.is_multi_optimizer(optimizer):
            found.append(finding("optimizer-not-read", "optimizer"))
        if facts.is_kreg_decay(optimizer):
            found.extend(_kreg_decay_findings(ctx, optimizer))
        elif facts.keras_weight_decay(optimizer):
            found.extend(_keras_decay_findings(ctx, optimizer))
    return found


def _kreg_decay_findings(ctx, optimizer):
    amounts = [wd for v, _, _ in ctx.weights for o, wd in ctx.decays[id(v)] if o is optimizer]
    if not amounts:
        return []
    if getattr(optimizer, "mode", "decoupled") == "l2":
        if ctx.stepper is not None and facts.is_adaptive(ctx.stepper):
            return [finding("l2-mode-with-adaptive-optimizer", "optimizer",
                            optimizer_name=type(ctx.stepper).__name__)]
        return []
    follow = getattr(optimizer, "follow", "schedule")
    factor = 1.0
    if follow in ("learning_rate", "schedule"):
        # The largest learning rate of the schedule, not the one at step 0: a warm-up
        # from a small lr_0 multiplies a follow="schedule" decay by peak / lr_0.
        peak = facts.peak_learning_rate(ctx.stepper)
        if follow == "learning_rate":
            factor = peak or 0.0
        else:
            lr0 = facts.as_float(getattr(optimizer, "initial_learning_rate", None))
            factor = (peak / lr0) if (peak and lr0) else 1.0
    per_step = max(amounts) * factor
    if per_step >= 1:
        return [finding("decay-too-strong", "optimizer", follow=follow, per_step=per_step,
                        factor=factor)]
    return []


def _keras_decay_findings(ctx, optimizer):
    found = []
    wd = facts.keras_weight_decay(optimizer)
    name = type(optimizer).__name__
    differs = [v for v, _, _ in ctx.weights if facts.exclusion_differs(optimizer, v)]
    if differs:
        on_tf = [facts.keras_excludes(optimizer, v, "tensorflow") for v in differs]
        found.append(finding(
            "decay-exclusion-backend-dependent", "optimizer", optimizer_name=name,
            pattern=facts.exclusion_pattern(optimizer),
            on_tensorflow=[v.path for v, tf in zip(differs, on_tf) if tf],
            on_jax=[v.path for v, tf in zip(differs, on_tf) if not tf],
        ))
    schedule = facts.schedule_of(optimizer)
    if schedule is not None:
        profile = facts.schedule_profile(schedule)
        lr_max = None
        if profile is not None:
            start, peak, end, end_step, exact = profile
            found.append(finding(
                "decay-follows-schedule", "optimizer", optimizer_name=name, weight_decay=wd,
                start=start, peak=peak, end=end, end_step=end_step, exact=exact,
            ))
            lr_max = peak
    else:
        lr_max = facts.learning_rate(optimizer)
    if lr_max is not None and lr_max * wd >= 1:
        found.append(finding("decay-too-strong", "optimizer", optimizer_name=name,
                             learning_rate=lr_max, weight_decay=wd))
    return found
