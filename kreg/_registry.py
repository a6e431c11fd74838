"""One decorator that registers a public kreg class for serialization and exports it.

Every public class goes through :func:`export`, so it is saved as ``"kreg>Name"``
and listed in its module's ``__all__`` (the public-API test checks both).
"""

import sys

import keras

PACKAGE = "kreg"


def export(obj):
    """Register ``obj`` under package "kreg" (classes) and add it to ``__all__``."""
    if isinstance(obj, type):
        obj = keras.saving.register_keras_serializable(package=PACKAGE)(obj)
    module = sys.modules[obj.__module__]
    names = module.__dict__.setdefault("__all__", [])
    if obj.__name__ not in names:
        names.append(obj.__name__)
    return obj
