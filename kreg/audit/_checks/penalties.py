"""Penalties: attached to their weights, not on biases/normalization/embeddings, not meeting
an adaptive optimizer or a weight decay on the same weight."""

from kreg.audit import _facts as facts
from kreg.audit._codes import finding


def _short(variable):
    return variable.path.rsplit("/", 1)[-1]


def _attribute(variable, owner):
    """The layer attribute that holds this weight's regularizer ("kernel_regularizer"), or None."""
    name = f"{_short(variable)}_regularizer"
    return name if hasattr(owner, name) else None


def check_attachment(ctx):
    """regularizer-not-attached: a layer's ``<weight>_regularizer`` that its weight lacks."""
    found = []
    for variable, path, owner in ctx.weights:
        attribute = f"{_short(variable)}_regularizer"
        regularizer = getattr(owner, attribute, None)
        if regularizer is None or getattr(variable, "regularizer", None) is not None:
            continue
        build_module = getattr(type(owner).build, "__module__", "") or ""
        if not build_module.startswith(("keras.", "kreg.")):
            continue  # a custom build() may apply the regularizer its own way
        found.append(
            finding(
                "regularizer-not-attached",
                variable.path,
                layer_path=path,
                attribute=attribute,
                regularizer=regularizer,
                variable_path=variable.path,
            )
        )
    return found


def check_penalties(ctx):
    """Penalties: on biases/normalization/embeddings, with adaptive optimizers, with decay."""
    found = []
    stepper = ctx.stepper
    adaptive = stepper is not None and facts.is_adaptive(stepper)
    for variable, path, owner in ctx.weights:
        regularizer = getattr(variable, "regularizer", None)
        if regularizer is None:
            continue
        kind = ctx.category(variable, owner)
        about = dict(regularizer=regularizer, attribute=_attribute(variable, owner))
        if kind != "weight":
            found.append(
                finding(
                    f"penalty-on-{kind}",
                    variable.path,
                    kind=kind,
                    variable_path=variable.path,
                    layer=owner,
                    **about,
                )
            )
            continue
        l2 = facts.l2_of(regularizer)
        if not l2:
            continue
        decays = ctx.decays[id(variable)]
        if decays:
            optimizer, wd = decays[0]
            found.append(
                finding(
                    "l2-and-weight-decay",
                    variable.path,
                    variable_path=variable.path,
                    weight_decay=wd,
                    optimizer_name=type(optimizer).__name__,
                    layer=owner,
                    **about,
                )
            )
        elif adaptive:
            rate, at_step_0 = facts.initial_or_peak_learning_rate(stepper)
            found.append(
                finding(
                    "l2-with-adaptive-optimizer",
                    variable.path,
                    l2=l2,
                    variable=variable,
                    layer_path=path,
                    label=ctx.label,
                    optimizer_name=type(stepper).__name__,
                    learning_rate=rate,
                    at_step_0=at_step_0,
                    **about,
                )
            )
    return found
