"""Which weights a regularizer or a weight decay applies to: written once, used by all of kreg.

Selection is by ``variable.path`` ("dense_1/kernel"), which is the same string on every
backend, unlike the TF full name that Keras' ``exclude_from_weight_decay`` matches.
"""

import re

import keras

#: Short variable names that are never regularized by default.
DEFAULT_EXCLUDED_NAMES = ("bias", "beta", "gamma", "moving_mean", "moving_variance")

NORMALIZATION_LAYERS = tuple(
    getattr(keras.layers, name)
    for name in (
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "RMSNormalization",
        "SpectralNormalization",
    )
    if hasattr(keras.layers, name)
)


def _short_name(variable):
    return variable.path.rsplit("/", 1)[-1]


def is_default_excluded(variable, owner=None):
    """True for biases, normalization parameters and any weight of rank <= 1.

    ``owner`` is the layer that owns the variable when it is known (then every weight
    of a normalization layer is excluded, whatever its rank).
    """
    if len(variable.shape) <= 1:
        return True
    if _short_name(variable) in DEFAULT_EXCLUDED_NAMES:
        return True
    return owner is not None and isinstance(owner, NORMALIZATION_LAYERS)


def _is_variable(obj):
    return hasattr(obj, "path") and hasattr(obj, "assign") and hasattr(obj, "shape")


def exclude_predicate(exclude, argument="exclude"):
    """Turn ``exclude`` into a predicate ``variable -> bool``.

    ``exclude`` is None (nothing extra), a callable ``variable -> bool``, a regex string
    searched in ``variable.path``, or a list/tuple/set of regex strings and variables.
    """
    if exclude is None:
        return lambda variable: False
    if isinstance(exclude, type):  # a class is callable but is no predicate
        raise ValueError(
            f"Invalid value for argument `{argument}`: expected None, a callable "
            "(variable) -> bool, a regex string, or a list of regex strings and "
            f"variables. Received: the class {argument}={exclude!r} (to leave out a "
            "layer type, pass e.g. lambda v: 'batch_normalization' in v.path)"
        )
    if callable(exclude) and not _is_variable(exclude):
        return lambda variable: bool(exclude(variable))
    items = [exclude] if isinstance(exclude, str) or _is_variable(exclude) else exclude
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise ValueError(
            f"Invalid value for argument `{argument}`: expected None, a callable "
            "(variable) -> bool, a regex string, or a list of regex strings and "
            f"variables. Received: {argument}={exclude!r}"
        )
    patterns, ids = [], set()
    for item in items:
        if isinstance(item, str):
            try:
                patterns.append(re.compile(item))
            except re.error as err:
                raise ValueError(
                    f"Invalid value for argument `{argument}`: expected valid regular "
                    f"expressions. Received: {argument}={exclude!r} ({err})"
                ) from None
        elif _is_variable(item):
            ids.add(id(item))
        else:
            raise ValueError(
                f"Invalid value for argument `{argument}`: expected regex strings or "
                f"variables in the list. Received: {item!r} in {argument}={exclude!r}"
            )

    def predicate(variable):
        return id(variable) in ids or any(p.search(variable.path) for p in patterns)

    return predicate


def selector(exclude=None, default_exclude=True, argument="exclude"):
    """Predicate ``(variable, owner=None) -> bool``: True when the variable is selected."""
    user = exclude_predicate(exclude, argument)

    def selected(variable, owner=None):
        if default_exclude and is_default_excluded(variable, owner):
            return False
        return not user(variable)

    return selected
