"""DecoupledWeightDecay's step as data: the per-weight transforms it runs around the inner step.

Each :class:`Transform` names a stage — the gradients before the inner optimizer sees
them ("gradient"), the weights before its step ("before") or after it ("after") —, a pure
function of :mod:`kreg._decay` and the strength that scales it. :func:`transforms` builds
the tuple once from the constructor's arguments; the optimizer runs each stage's
transforms in order. A new decay variant is one function and one line here, as optax
composes ``chain(...)``.

Signatures: a "gradient" transform is ``function(gradient, θ, amount, reference)``; a
write transform is ``function(θ, amount, reference, before)``, where ``before`` is the
weight before the inner step (None unless the transform reads it).
"""

import collections
import math

import keras
from keras import ops

from kreg import _decay
from kreg import _keras_compat as compat
from kreg._validate import FLOAT32_MAX, invalid, is_number
from kreg._walk import optimizer_chain, updating_optimizer

__all__ = []  # private

STAGES = ("gradient", "before", "after")

Transform = collections.namedtuple(
    "Transform", ["stage", "name", "function", "strength", "reads_before"]
)


def transforms(mode, cautious):
    """The transforms of a DecoupledWeightDecay with this ``mode`` and ``cautious``, in order.

    >>> [t.name for t in transforms("decoupled", cautious=False)]
    ['decoupled decay', 'proximal L1']
    >>> [(t.stage, t.name) for t in transforms("decoupled", cautious=True)]
    [('after', 'cautious decay'), ('after', 'proximal L1')]
    """
    if mode == "l2":
        decay = Transform("gradient", "coupled L2", _decay.l2_gradient, "l2", False)
    elif cautious:
        decay = Transform("after", "cautious decay", _decay.cautious_decay, "weight_decay", True)
    else:
        decay = Transform("before", "decoupled decay", _decay.decay, "weight_decay", False)
    # The L1 step is always there: its strength is live, and 0 writes nothing.
    return (decay, Transform("after", "proximal L1", _decay.soft_threshold, "l1", False))


def stage(steps, name):
    """The transforms of ``steps`` that run at stage ``name``."""
    return tuple(step for step in steps if step.stage == name)


# -- what a step reads off the inner optimizer's chain


def gate(inner, grads):
    """1.0 when the inner optimizer updates the weights at this step, else 0.0.

    None when it always does. Multiplying the strengths by it makes a skipped step (a
    gradient-accumulation micro-step, a step a LossScaleOptimizer skips) write back θ
    exactly ((1 − 0)·θ, a threshold of 0) without a branch, which a ``tf.distribute``
    merge call could not sit in.
    """
    result = None
    core = updating_optimizer(inner)
    steps = core.gradient_accumulation_steps
    if steps:
        result = ops.cast(ops.equal(ops.mod(compat.micro_step(core) + 1, steps), 0), "float32")
    for link in optimizer_chain(inner):
        if isinstance(link, keras.optimizers.LossScaleOptimizer):
            finite = ops.cast(link.check_finite(grads), "float32")
            result = finite if result is None else result * finite
    return result


def gradient_scale(inner, value):
    """``value`` at the scale of the gradients reaching ``inner``: a loss scale inside it
    divides it out again, and under a ``tf.distribute`` strategy the replicas' gradients
    are summed (each adds its share)."""
    value = compat.scale_for_replicas(value)
    for link in optimizer_chain(inner):
        if isinstance(link, keras.optimizers.LossScaleOptimizer):
            value = value * ops.cast(link.dynamic_scale, "float32")
        elif link.loss_scale_factor is not None:
            value = value * link.loss_scale_factor
    return value


def scheduled(schedule, step):
    """A λ schedule's factor at ``step``, as a finite float32 tensor.

    A Python number is checked where it is produced; a tensor cannot be inside a
    compiled step, so a non-finite one decays nothing at that step (the weights stay
    finite, and the schedule is the user's to fix).
    """
    value = schedule(step)
    if is_number(value):
        if not (math.isfinite(value) and 0 <= value <= FLOAT32_MAX):
            raise invalid(
                "weight_decay",
                "a schedule returning finite floats >= 0",
                value,
                f"{value!r} from weight_decay={schedule!r}",
            )
        return ops.convert_to_tensor(float(value), "float32")
    value = ops.cast(value, "float32")
    return ops.where(ops.isfinite(value), value, ops.zeros_like(value))


# -- running a stage around the inner optimizer


def add_to_gradients(step, grads, rows, amount):
    """``step.function(g, θ, amount·m, θ₀)`` for the gradients of ``rows``, the decayed
    weights' ``(i, θ, m, θ₀)`` (``Selection.rows``).

    On torch (eager) the coupled L2 term without anchors is added in place, one batched
    call per multiplier: the gradients are the step's own fresh tensors.
    """
    grads = list(grads)
    if keras.backend.backend() == "torch" and step.function is _decay.l2_gradient:
        plain = [
            row for row in rows if row[3] is None and grads[row[0]].dtype == row[1].value.dtype
        ]
        with compat.no_gradient():
            for multiplier in sorted({row[2] for row in plain}):
                same = [row for row in plain if row[2] == multiplier]
                compat.add_scaled_in_place(
                    [grads[i] for i, _, _, _ in same],
                    [variable.value for _, variable, _, _ in same],
                    float(amount * multiplier),
                )
        done = {row[0] for row in plain}
        rows = [row for row in rows if row[0] not in done]
    for i, variable, multiplier, anchor in rows:
        grads[i] = step.function(grads[i], variable, amount * multiplier, anchor)
    return grads


def apply_inner(inner, grads, variables):
    """The inner optimizer's step. On JAX through its stateless path, the traceable one
    (LossScaleOptimizer's ``apply`` assigns inside a cond): inside the wrapper's own
    stateless scope the new values are assigned there, eagerly they are written."""
    if keras.backend.backend() != "jax":
        inner.apply(grads, variables)
        return
    state = inner.variables
    new_values, new_state = inner.stateless_apply(
        [v.value for v in state], grads, [v.value for v in variables]
    )
    for variable, value in zip(variables + state, new_values + new_state):
        variable.assign(value)
