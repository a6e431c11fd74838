"""Which weights a DecoupledWeightDecay decays, by which multiplier, toward which anchor.

Resolved once, when the optimizer is built: the patterns of ``exclude`` and
``multipliers`` (kreg._masking) give each trainable variable its multiplier; a
multiplier saved with a loaded model wins where the paths changed. Kept off Keras'
attribute tracking: a list of model weights held by an optimizer would join its
variables.
"""

from kreg._masking import exclude_predicate, multiplier_fn, resolve_selection, selector

__all__ = []  # private

_NOT_CHOSEN = (0.0, None)


class Selection:
    """The decayed weights: ``multiplier(variable)``, and per-step ``rows``."""

    def __init__(self, exclude, multipliers):
        selected = selector(exclude, argument="exclude")
        self._factor = multiplier_fn(selected, multipliers or {}, exclude_predicate(exclude))
        # ((layer/variable name, multiplier), ...) as resolved by build(), or as loaded.
        self.saved = None
        self.variables = []  # as built, in order
        self._chosen = {}  # id(variable) -> (multiplier, anchor variable or None)

    def build(self, variables, anchor, make_anchor):
        """Resolve each variable's multiplier and, with ``anchor``, create its anchor
        (``make_anchor(variable, value)``) for the ones decayed."""
        self.saved = resolve_selection(variables, self._factor, self.saved)
        for position, (variable, (_, multiplier)) in enumerate(zip(variables, self.saved)):
            reference = None
            if multiplier != 0.0 and anchor is not None:
                value = variable if anchor == "initial" else anchor[position]
                reference = make_anchor(variable, value)
            self._chosen[id(variable)] = (multiplier, reference)
        self.variables = list(variables)
        return [v for v in variables if self._chosen[id(v)][0] != 0.0]

    def multiplier(self, variable):
        """The factor on λ for ``variable``: as resolved once built, else by the patterns."""
        chosen = self._chosen.get(id(variable))
        return chosen[0] if chosen is not None else self._factor(variable)

    def chosen(self, variable):
        """``(multiplier, anchor)`` of a built variable (``(0.0, None)`` for others)."""
        return self._chosen.get(id(variable), _NOT_CHOSEN)

    def rows(self, grads, variables):
        """``[(i, θ, m, θ₀)]`` of the decayed weights with a gradient, ``i`` their position
        (the inner optimizer skips the others, and so does the decay)."""
        rows = []
        for i, (variable, gradient) in enumerate(zip(variables, grads)):
            multiplier, anchor = self.chosen(variable)
            if gradient is not None and multiplier != 0.0:
                rows.append((i, variable, multiplier, anchor))
        return rows

    def config(self):
        return None if self.saved is None else [[tail, m] for tail, m in self.saved]

    def restore(self, saved):
        if saved is not None:
            self.saved = tuple((str(tail), float(m)) for tail, m in saved)
