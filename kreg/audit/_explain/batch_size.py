"""Batch size: what lambda-batch-size says, for a penalty and for a decay."""

from kreg.audit._explain import describe


def lambda_batch_size(**facts):
    """A penalty's λ per epoch (``regularizer``, ``l2``, ``variable_path``) or a decay's
    (``optimizer_name``, ``weight_decay``, ``per_step``, ``follows_learning_rate``)."""
    if "regularizer" in facts:
        return _penalty_per_epoch(**facts)
    return _decay_per_epoch(**facts)


def _penalty_per_epoch(*, regularizer, l2, variable_path, steps, batch_size, num_examples):
    b, n = batch_size, num_examples
    return (
        f"{describe(regularizer)} on '{variable_path}' is added "
        f"at each of {steps} steps per epoch (batch_size={b}, num_examples={n}): "
        f"l2 × steps = {l2 * steps:.3g} per epoch",
        "Keras adds the penalty once per step to a loss averaged over the batch, "
        "so the regularization per epoch grows as num_examples / batch_size and "
        "the same λ is a different regularizer at another batch size (Bengio 2012).",
        f"l2 = {l2:g} * new_batch_size / {b}  # keeps l2 × steps per epoch constant",
    )


def _decay_per_epoch(
    *,
    optimizer_name,
    weight_decay,
    per_step,
    follows_learning_rate,
    steps,
    batch_size,
    num_examples,
):
    """``follows_learning_rate``: the decay is multiplied by the learning rate (Keras' rule)."""
    b, n, wd = batch_size, num_examples, weight_decay
    per_epoch = per_step * steps
    note = (
        "; or scale the learning rate by new_batch_size / "
        f"{b} and keep weight_decay={wd:g}, since the decay is multiplied by it"
        if follows_learning_rate
        else ""
    )
    return (
        f"weight decay from {optimizer_name}: {per_step:.3g} per step × "
        f"{steps} steps per epoch (batch_size={b}, num_examples={n}) = "
        f"{per_epoch:.3g} per epoch, a timescale of {1 / per_epoch:.3g} epochs",
        "Decay acts once per step, so the shrinkage per epoch grows as "
        "num_examples / batch_size: at another batch size the same λ and learning "
        "rate regularize differently (Wang & Aitchison 2024 keep the timescale "
        "1/(decay per step × steps per epoch) fixed).",
        f"weight_decay = {wd:g} * new_batch_size / {b}  # the same decay per epoch" + note,
    )
