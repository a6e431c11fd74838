"""Every private Keras name kreg relies on, in one place, each with the reason it is needed.

kreg otherwise uses only public ``keras``, ``keras.ops`` and ``keras.random``. When a Keras
release moves one of these, ``tests/test_keras_compat.py`` (one test per entry) fails
here, by name, instead of far from the cause.
"""

import contextlib

import keras

__all__ = []  # private module: nothing here is kreg's public API
