"""``repr`` of kreg objects as the call that would build them: ``kreg.X(arg=value, ...)``.

Only the arguments that differ from their defaults are listed (required ones always), so
the repr of a callback or an optimizer wrapper says at a glance how it was set up.
"""

import inspect

from kreg._validate import is_number

_MAX_VALUE = 60


class Raw(str):
    """A value printed as is (no quotes): ``Raw("Adam(learning_rate=0.001)")``."""

    def __repr__(self):
        return str(self)


def _same(value, default):
    if value is default:
        return True
    if default is None and isinstance(value, (dict, list, tuple)) and not value:
        return True  # an empty container stored for "none given"
    if is_number(value) and is_number(default):
        return value == default
    try:
        return bool(value == default) and type(value) is type(default)
    except Exception:  # arrays, tensors: never equal to a scalar default here
        return False


def _short(value):
    text = repr(float(value)) if isinstance(value, float) else repr(value)  # exact, shortest
    if text.startswith("<"):  # an object without a helpful repr: its kind
        name = getattr(value, "__name__", None)
        text = f"<function {name}>" if callable(value) and name else f"{type(value).__name__}(...)"
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def call_repr(obj, qualname, values=None, skip=()):
    """``qualname(name=value, ...)`` for ``obj``'s constructor arguments.

    Args:
        obj: the object; argument values are read from its attributes of the same name.
        qualname: what to print before the parentheses, e.g. "kreg.callbacks.EarlyStopping".
        values: dict overriding (or supplying) the value of some arguments.
        skip: names of arguments never listed.
    """
    values = dict(values or {})
    parts = []
    for name, parameter in inspect.signature(type(obj).__init__).parameters.items():
        if name == "self" or name in skip:
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in values:
            value = values[name]
        elif hasattr(obj, name):
            value = getattr(obj, name)
        else:
            continue
        if parameter.default is parameter.empty or not _same(value, parameter.default):
            parts.append(f"{name}={_short(value)}")
    return f"{qualname}({', '.join(parts)})"
