"""Walking a model's layers and an optimizer's wrappers: written once, used by all of kreg.

A model is a tree of layers; an optimizer can be a chain of wrappers
(``LossScaleOptimizer``, kreg's ``DecoupledWeightDecay``), each keeping the next as
``inner_optimizer``. The strengths, the penalties kept on save, the audit, the callbacks
and the optimizer all walk them through these functions.
"""

from kreg import _keras_compat as compat
from kreg._strength import LiveStrengths

__all__ = []  # private: kreg's own plumbing


def _is_state(layer):
    # kreg's strength states (regularizers included) are Keras layers for tracking only:
    # state, not layers of the model.
    return isinstance(layer, LiveStrengths)


def walk_layers(model, skip=_is_state):
    """Yield ``(prefix, layer)`` for ``model`` (prefix = its name) and all nested layers.

    Parents come before their children; ``skip(layer)`` leaves a layer and its subtree
    out (by default kreg's strength states).
    """
    seen = set()

    def visit(layer, prefix):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        yield prefix, layer
        for child in compat.sublayers(layer):
            if skip(child):
                continue
            child_prefix = child.name if layer is model else f"{prefix}/{child.name}"
            yield from visit(child, child_prefix)

    yield from visit(model, model.name)


def weight_owners(model, include_frozen=False):
    """id(variable) -> (variable, prefix, layer): the deepest layer owning each trainable weight.

    In model order. With ``include_frozen`` also the weights a frozen layer
    (``trainable = False``) trains once it is unfrozen: Keras then marks the variables
    themselves untrainable, and only the layer's own list still tells them from
    never-trained state such as BatchNormalization's moving statistics.
    """
    owners = {}
    for prefix, layer in walk_layers(model):  # parents first, so children overwrite
        variables = layer.trainable_weights
        if include_frozen:
            variables = compat.own_trainable_variables(layer)
        for variable in variables:
            owners[id(variable)] = (variable, prefix, layer)
    return owners


def optimizer_chain(optimizer):
    """``[optimizer, its inner optimizer, ...]``, outermost first (``[]`` for None).

    LossScaleOptimizer and kreg's DecoupledWeightDecay keep the wrapped one as
    ``inner_optimizer``.
    """
    chain, seen = [], set()
    while optimizer is not None and id(optimizer) not in seen:
        seen.add(id(optimizer))
        chain.append(optimizer)
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return chain


def updating_optimizer(optimizer):
    """The optimizer that updates the weights: the innermost of the chain (None for None).

    Its learning rate is the one a decay follows, its ``gradient_accumulation_steps``
    the ones that skip updates, its own ``weight_decay`` the one that would decay twice.
    """
    chain = optimizer_chain(optimizer)
    return chain[-1] if chain else None


def accumulation_steps(optimizer):
    """k of ``gradient_accumulation_steps`` anywhere in the chain (1 if unset): the
    weights change on one step in k."""
    steps = [
        getattr(link, "gradient_accumulation_steps", None) for link in optimizer_chain(optimizer)
    ]
    return int(next((k for k in steps if k), 1))


def find_in_chain(optimizer, cls):
    """The first link of ``optimizer``'s chain that is a ``cls``, or None."""
    return next((link for link in optimizer_chain(optimizer) if isinstance(link, cls)), None)
