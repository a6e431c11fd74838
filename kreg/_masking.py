"""Which weights a regularizer or a weight decay applies to: written once, used by all of kreg.

Selection is by ``variable.path`` ("dense_1/kernel"), which is the same string on every
backend, unlike the TF full name that Keras' ``exclude_from_weight_decay`` matches.
"""

import math
import re
import warnings

import keras

from kreg._validate import FLOAT32_MAX, is_number

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


# ------------------------------------------------------------------ per-weight multipliers


def check_multipliers(multipliers):
    """``multipliers`` checked: a dict from regex patterns on ``variable.path`` to factors >= 0."""
    if multipliers is None:
        return {}
    if not isinstance(multipliers, dict):
        raise ValueError(
            "Invalid value for argument `multipliers`: expected a dict from regex "
            "patterns on `variable.path` to non-negative factors. "
            f"Received: multipliers={multipliers!r}"
        )
    checked = {}
    for pattern, factor in multipliers.items():
        valid = isinstance(pattern, str) and is_number(factor)
        if valid:
            try:
                re.compile(pattern)
            except re.error:
                valid = False
        # A factor float32 cannot hold would turn λ·factor into inf (and θ into NaN).
        if not valid or not math.isfinite(float(factor)) or not 0 <= factor <= FLOAT32_MAX:
            raise ValueError(
                "Invalid value for argument `multipliers`: expected a dict from valid "
                "regex patterns on `variable.path` to non-negative finite floats that "
                f"float32 can hold (<= {FLOAT32_MAX:.8g}). "
                f"Received: {pattern!r}: {factor!r} in multipliers={multipliers!r}"
            )
        checked[pattern] = float(factor)
    return checked


def multiplier_fn(selected, multipliers, excluded=lambda variable: False):
    """``variable -> factor``: the first ``multipliers`` pattern matching its path, else
    1.0 when ``selected`` says so and 0.0 when not.

    A pattern names weights on purpose, so it wins over the default exclusion that
    ``selected`` applies (biases, normalization, rank <= 1); the user's own ``excluded``
    predicate still wins over it.

    >>> import keras
    >>> from kreg._masking import multiplier_fn, selector
    >>> factor = multiplier_fn(selector(), {"embedding": 0.1, "bias": 1.0})
    >>> emb = keras.layers.Embedding(10, 3, name="embedding")
    >>> emb.build((None,))
    >>> factor(emb.embeddings)
    0.1
    >>> dense = keras.layers.Dense(2, name="dense")
    >>> dense.build((None, 3))
    >>> factor(dense.bias), multiplier_fn(selector(), {})(dense.bias)
    (1.0, 0.0)
    """
    patterns = [(re.compile(p), float(f)) for p, f in multipliers.items()]

    def factor(variable):
        if excluded(variable):
            return 0.0
        match = next((f for p, f in patterns if p.search(variable.path)), None)
        if match is not None:
            return match
        return 1.0 if selected(variable) else 0.0

    return factor


# ------------------------------------------------------------------ saved selections


def path_tail(path):
    """The layer/variable end of a variable path, which loading a model keeps.

    >>> path_tail("encoder/proj/kernel")
    'proj/kernel'
    """
    return "/".join(path.split("/")[-2:])


def exclude_config(exclude):
    """``exclude`` as JSON-able config: variables become exact patterns on their path.

    >>> exclude_config(["bias$"])
    ['bias$']
    """
    if exclude is None or isinstance(exclude, str):
        return exclude
    if _is_variable(exclude):
        exclude = [exclude]
    if callable(exclude) and not _is_variable(exclude):
        return keras.saving.serialize_keras_object(exclude)
    # The layer/variable tail of the path, anchored at a component boundary: a model's
    # own name prefixes the paths of a model built in code ("net/dense/kernel") but not
    # those of the same model loaded from a .keras file ("dense/kernel").
    return [
        item if isinstance(item, str) else "(?:^|/)" + re.escape(path_tail(item.path)) + "$"
        for item in exclude
    ]


def resolve_selection(var_list, factor, saved=None, owner="DecoupledWeightDecay"):
    """``((layer/variable name, multiplier), ...)`` for ``var_list``: by ``factor``, or as saved.

    A model loaded from a .keras file can give its weights other paths than the model
    that was saved (a nested model's name no longer prefixes them: "encoder/e1/kernel"
    becomes "e1/kernel"), so patterns could silently select other weights after
    loading; ``saved`` (the selection saved with the model) is kept instead when it was
    saved for the same weights (the same layer/variable names, in the same order), with
    a warning naming the weights the patterns would decide otherwise. Saved for other
    weights (a config reused for another model), it is ignored.

    >>> import keras
    >>> w = keras.Variable([[1.0]], name="kernel")
    >>> resolve_selection([w], lambda v: 1.0)
    (('kernel', 1.0),)
    """
    tails = tuple(path_tail(v.path) for v in var_list)
    matched = tuple(factor(v) for v in var_list)
    if saved is None or tuple(tail for tail, _ in saved) != tails:
        return tuple(zip(tails, matched))
    multipliers = tuple(m for _, m in saved)
    if multipliers != matched:
        changed = [v.path for v, a, b in zip(var_list, multipliers, matched) if a != b]
        warnings.warn(
            f"{owner}: the `exclude` and `multipliers` patterns select "
            "other weights in this model than in the one it was saved with (variable "
            f"paths change when a model is loaded), e.g. {changed[:3]}; the saved "
            "selection is kept.",
            stacklevel=4,
        )
    return tuple(saved)
