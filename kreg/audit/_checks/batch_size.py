"""Batch size: how strong each penalty and decay is per epoch, and how to rescale it."""

import math

from kreg.audit import _facts as facts
from kreg.audit._codes import finding


def _per_step_decay(optimizer, wd, stepper):
    """The fraction of a weight a decay removes at step 0 (None if unknown)."""
    if facts.is_kreg_decay(optimizer):
        follow = getattr(optimizer, "follow", "schedule")
        if follow == "learning_rate" or getattr(optimizer, "mode", None) == "l2":
            lr = facts.learning_rate(stepper)
            return None if lr is None else lr * wd
        return wd
    lr = facts.learning_rate(optimizer)
    return None if lr is None else lr * wd


def _follows_learning_rate(optimizer):
    """True when the decay is multiplied by the learning rate (Keras' rule)."""
    return not facts.is_kreg_decay(optimizer) or (
        getattr(optimizer, "follow", None) == "learning_rate"
        or getattr(optimizer, "mode", None) == "l2"
    )


def check_batch_size(ctx):
    """lambda-batch-size: how strong each λ is per epoch, and how to rescale it."""
    b, n = ctx.batch_size, ctx.num_examples
    if b is None or n is None:
        return []
    steps = max(1, math.ceil(n / b))
    about = dict(steps=steps, batch_size=b, num_examples=n)
    found = []
    for variable, _, _ in ctx.weights:
        regularizer = getattr(variable, "regularizer", None)
        l2 = facts.l2_of(regularizer)
        if l2:
            found.append(
                finding(
                    "lambda-batch-size",
                    variable.path,
                    regularizer=regularizer,
                    l2=l2,
                    variable_path=variable.path,
                    **about,
                )
            )
    seen = set()
    for optimizer in ctx.chain:
        if facts.is_kreg_decay(optimizer):
            wd = facts.kreg_weight_decay(optimizer)
        else:
            wd = facts.keras_weight_decay(optimizer)
        if not wd or id(optimizer) in seen:
            continue
        seen.add(id(optimizer))
        per_step = _per_step_decay(optimizer, wd, ctx.stepper)
        if per_step:
            found.append(
                finding(
                    "lambda-batch-size",
                    "optimizer",
                    optimizer_name=type(optimizer).__name__,
                    weight_decay=wd,
                    per_step=per_step,
                    follows_learning_rate=_follows_learning_rate(optimizer),
                    **about,
                )
            )
    return found
