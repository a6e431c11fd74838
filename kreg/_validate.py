"""Argument checks shared by all of kreg: one rule per kind of value, one message format.

Every check returns the value in the type kreg stores (a Python float, int, bool or
tuple, so configs stay JSON) or raises
``ValueError("Invalid value for argument `name`: expected .... Received: name=value")``.
"""

import inspect
import math

import keras
import numpy as np

#: The largest finite float32: kreg keeps strengths, noise and fill values in float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Seeds Keras' SeedGenerator accepts (it stores them as uint32).
SEED_LIMIT = 2**32


def is_number(value):
    """True for a Python or NumPy int or float (not a bool)."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(
        value, (int, float, np.integer, np.floating)
    )


def invalid(name, expected, value, received=None):
    """The ValueError every check raises."""
    received = f"{name}={value!r}" if received is None else received
    return ValueError(
        f"Invalid value for argument `{name}`: expected {expected}. Received: {received}"
    )


def check_bool(value, name):
    """``value`` as a bool if it is one (Python or NumPy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise invalid(name, "a bool", value)
    return bool(value)


def check_verbose(value, name="verbose"):
    """``value`` as an int if it is an integer >= 0 (a bool counts, as in Keras)."""
    if not isinstance(value, (int, np.integer)) or value < 0:
        raise invalid(name, "an integer >= 0 (0 is silent)", value)
    return int(value)


def check_number(value, name, *, minimum=None, integer=False, allow_none=False):
    """``value`` as a float (an int with ``integer``) if it is a finite number."""
    if value is None and allow_none:
        return None
    ok = is_number(value) and math.isfinite(float(value))
    if ok and integer:
        ok = float(value) == int(value)
    if ok and minimum is not None:
        ok = value >= minimum
    if ok and not integer and abs(float(value)) > FLOAT32_MAX:
        raise invalid(name, f"a float that float32 can hold (|{name}| <= {FLOAT32_MAX:.8g})", value)
    if not ok:
        what = "an integer" if integer else "a finite float"
        if minimum is not None:
            what += f" >= {minimum}"
        if allow_none:
            what += " or None"
        raise invalid(name, what, value)
    return int(value) if integer else float(value)


def check_non_negative(value, name):
    """``value`` as a float if it is a finite number >= 0."""
    return check_number(value, name, minimum=0)


def check_fraction(value, name, include_one=True):
    """``value`` as a float if it lies in [0, 1] ([0, 1) without ``include_one``)."""
    if (
        not is_number(value)
        or not math.isfinite(float(value))
        or not (0 <= value <= 1 if include_one else 0 <= value < 1)
    ):  # (within [0, 1], float32 holds every value)
        raise invalid(name, f"a float in [0, {'1]' if include_one else '1)'}", value)
    return float(value)


def check_count(value, name, allow_none=True):
    """``value`` as an int if it is a positive integer (or None with ``allow_none``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise invalid(
            name, "a positive integer or None" if allow_none else "a positive integer", value
        )
    return int(value)


def check_choice(value, name, choices):
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, (str, type(None))) or value not in choices:
        raise invalid(name, f"one of {', '.join(repr(c) for c in choices)}", value)
    return value


def check_seed(seed):
    """``seed`` as an int if it is None or an integer in [0, 2**32) (Keras' SeedGenerator range)."""
    if seed is None:
        return None
    if (
        isinstance(seed, (bool, np.bool_))
        or not isinstance(seed, (int, np.integer))
        or not 0 <= seed < SEED_LIMIT
    ):
        raise invalid("seed", f"None or an integer in [0, 2**32 = {SEED_LIMIT})", seed)
    return int(seed)


def check_data_format(data_format):
    """``data_format``, or Keras' image data format for None."""
    if data_format is None:
        return keras.config.image_data_format()
    return check_choice(data_format, "data_format", ("channels_last", "channels_first"))


def check_noise_shape(noise_shape):
    """``noise_shape`` as a tuple of positive integers and None (or None)."""
    if noise_shape is None:
        return None
    try:
        dims = tuple(noise_shape)
    except TypeError:
        dims = None
    if (
        isinstance(noise_shape, str)
        or dims is None
        or not all(
            d is None
            or (isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) and d > 0)
            for d in dims
        )
    ):
        raise invalid("noise_shape", "None or a tuple of positive integers and None", noise_shape)
    return tuple(None if d is None else int(d) for d in dims)


def check_noise_shape_fits(noise_shape, shape):
    """Refuse a ``noise_shape`` that cannot broadcast over an input of ``shape``.

    Each entry must be None, 1 or the input's size on that axis (unknown sizes pass), and
    the ranks must agree: broadcasting a mask of another rank would silently change the
    output's shape (Keras' Dropout on TensorFlow) or fail deep in the backend.
    """
    if noise_shape is None:
        return
    shape = tuple(shape)
    fits = len(noise_shape) == len(shape) and all(
        n is None or n == 1 or s is None or n == s for n, s in zip(noise_shape, shape)
    )
    if not fits:
        raise invalid(
            "noise_shape",
            f"one entry per input axis, each None, 1 or the input's size (inputs of shape {shape})",
            noise_shape,
        )


def check_range(value, name, lower_limit=None, upper_limit=None, lower_inclusive=False):
    """``f`` -> ``(-f, f)`` (f >= 0); ``(lo, hi)`` with lo <= hi -> itself.

    Values must lie in (lower_limit, upper_limit] — [lower_limit, ...] with
    ``lower_inclusive`` (translations of a whole image, as Keras' RandomTranslation allows).
    """

    def bad():
        limits = ""
        if lower_limit is not None:
            limits = f" with values {'>=' if lower_inclusive else '>'} {lower_limit}"
        if upper_limit is not None:
            limits += f"{' and' if limits else ' with values'} <= {upper_limit}"
        return invalid(
            name, f"a float >= 0 or a pair (lower, upper) with lower <= upper{limits}", value
        )

    def number(v):
        if is_number(v) and math.isfinite(float(v)) and abs(float(v)) > FLOAT32_MAX:
            raise invalid(
                name, f"values that float32 can hold (<= {FLOAT32_MAX:.8g} in size)", value
            )
        return is_number(v) and math.isfinite(float(v))

    if number(value):
        if value < 0:
            raise bad()
        low, high = -float(value), float(value)  # Python floats: configs stay JSON
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(number, value)):
        low, high = float(value[0]), float(value[1])
        if low > high:
            raise bad()
    else:
        raise bad()
    below = lower_limit is not None and (
        low < lower_limit if lower_inclusive else low <= lower_limit
    )
    if below or (upper_limit is not None and high > upper_limit):
        raise bad()
    return low, high


# -- DecoupledWeightDecay's arguments


def check_weight_decay(weight_decay):
    """``(base float, schedule or None)`` from a float, a LearningRateSchedule or a callable
    of the step."""
    if is_number(weight_decay):
        return check_non_negative(weight_decay, "weight_decay"), None
    if isinstance(weight_decay, keras.optimizers.schedules.LearningRateSchedule):
        return 1.0, weight_decay
    if callable(weight_decay) and not isinstance(weight_decay, (bool, type)):
        if not _takes_one_argument(weight_decay):
            # tensorflow-addons took `weight_decay=lambda: ...`; read inside a compiled
            # step such a callable would be evaluated once, when the step is traced.
            raise invalid(
                "weight_decay",
                "a non-negative float, a keras.optimizers.schedules.LearningRateSchedule "
                "or a callable of one argument, the step (e.g. `lambda step: 1e-4 * 0.5 ** "
                "(step / 1000)`); a callable without arguments (tensorflow-addons' style) "
                "would be read once, when the train step is traced. To change λ during "
                "training, assign `kreg.strengths(model)['optimizer.weight_decay']`",
                weight_decay,
            )
        return 1.0, weight_decay
    raise invalid(
        "weight_decay",
        "a non-negative float, a keras.optimizers.schedules.LearningRateSchedule or a "
        "callable of the step",
        weight_decay,
    )


def _takes_one_argument(function):
    """True when ``function(step)`` is a valid call (or its signature cannot be read)."""
    try:
        inspect.signature(function).bind(0)
    except TypeError:
        return False
    except ValueError:  # a builtin without a readable signature: let the step tell
        return True
    return True


def check_anchor(anchor):
    """``anchor`` as None, "initial" or a list of finite NumPy arrays."""
    if anchor is None or (isinstance(anchor, str) and anchor == "initial"):
        return anchor
    if isinstance(anchor, (list, tuple)) and all(
        hasattr(a, "shape") or isinstance(a, (list, tuple, float, int)) for a in anchor
    ):
        try:
            arrays = [np.asarray(keras.ops.convert_to_numpy(a)) for a in anchor]
        except Exception:  # not convertible to arrays: reported below
            arrays = None
        # Finite numbers only: a NaN anchor would make every decayed weight NaN.
        if arrays is not None and all(
            np.issubdtype(a.dtype, np.number) and np.all(np.isfinite(a)) for a in arrays
        ):
            return arrays
    raise invalid(
        "anchor",
        'None, "initial" or a list of arrays of finite numbers (one per trainable '
        "variable, in the order of `model.trainable_variables`)",
        anchor,
    )


def check_anchor_shapes(anchor, variables):
    """An anchor given as arrays must have one array per variable, of its shape."""
    if anchor is None or isinstance(anchor, str):
        return
    if len(anchor) != len(variables) or any(
        tuple(a.shape) != tuple(v.shape) for a, v in zip(anchor, variables)
    ):
        raise invalid(
            "anchor",
            f"one array per trainable variable with shapes {[tuple(v.shape) for v in variables]}",
            anchor,
            f"shapes {[tuple(a.shape) for a in anchor]}",
        )


#: Keyword arguments of keras.optimizers.Optimizer that belong on the inner optimizer.
INNER_ONLY = (
    "learning_rate",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
)


def check_wrapper_kwargs(kwargs, owner="DecoupledWeightDecay"):
    """Refuse keyword arguments a wrapper does not take, naming where they belong."""
    for key in kwargs:
        if key in INNER_ONLY:
            raise ValueError(
                f"Invalid argument `{key}` for {owner}: set it on the inner optimizer. "
                f"Received: {key}={kwargs[key]!r}"
            )
    if kwargs:
        raise ValueError(f"Argument(s) not recognized: {kwargs}")


def check_positive_learning_rate(value, name, role, allow_none=True):
    """A learning rate given for ``role``: a positive finite float (or None)."""
    if value is None and allow_none:
        return None
    if not is_number(value) or not math.isfinite(float(value)) or not float(value) > 0:
        raise invalid(name, f"a positive finite float ({role}), or None", value)
    return float(value)


def check_cautious(cautious, mode):
    """Cautious decay masks a decoupled decay: refused with ``mode="l2"``."""
    cautious = check_bool(cautious, "cautious")
    if cautious and mode != "decoupled":
        raise invalid(
            "cautious",
            'False with mode="l2" (cautious decay masks a decoupled decay by the sign of '
            "the inner update; a coupled L2 term is part of the gradient)",
            cautious,
        )
    return cautious


# Attributes through which Keras optimizers decay weights themselves (Muon decays the
# weights it steps with Adam by `adam_weight_decay`, whatever `weight_decay` says).
OWN_DECAYS = ("weight_decay", "adam_weight_decay")


def check_inner_optimizer(optimizer, chain, wrapper_type, owner):
    """Refuse an inner optimizer a decay wrapper cannot serve, saying what was expected.

    ``chain`` is the optimizer's chain of wrappers (outermost first, the one that updates
    last); ``owner`` is the wrapper already around the one that updates, or None.
    """
    if not isinstance(optimizer, keras.optimizers.Optimizer) or any(
        isinstance(link, wrapper_type) for link in chain
    ):
        raise invalid(
            "optimizer",
            f"a keras.optimizers.Optimizer instance (not a {wrapper_type.__name__})",
            optimizer,
        )
    core = chain[-1]
    refused = _refused_core(core, wrapper_type, owner)
    if refused is not None:
        expected, received = refused
        raise invalid("optimizer", expected, optimizer, f"optimizer={received}")


def _refused_core(core, wrapper_type, owner):
    """``(expected, received)`` when the optimizer that updates the weights is refused."""
    if isinstance(core, getattr(keras.optimizers, "MultiOptimizer", ())):
        return (
            "one optimizer for all weights (not a MultiOptimizer: the learning rate "
            "the decay follows and the optimizers' own decays differ per weight)",
            repr(core),
        )
    if isinstance(core, getattr(keras.optimizers, "ScheduleFreeAdamW", ())):
        return (
            "an optimizer that steps from the weights it is given; ScheduleFreeAdamW "
            "rebuilds them from its own averaged state, so a decay written to them "
            "would land on the average, not on the iterate",
            repr(core),
        )
    if owner is not None:
        return (
            f"an optimizer not already wrapped by another {wrapper_type.__name__} (its "
            "decay would apply twice)",
            repr(core),
        )
    for name in OWN_DECAYS:
        value = getattr(core, name, None)
        if value is not None and (not is_number(value) or float(value) != 0.0):
            return (
                f"an optimizer without its own weight decay (None or 0.0 for "
                f"{' and '.join(OWN_DECAYS)}): the decay would apply twice. Pass the "
                f"decay to {wrapper_type.__name__} instead",
                f"{type(core).__name__}({name}={value!r})",
            )
    return None
