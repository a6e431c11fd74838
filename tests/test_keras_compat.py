"""Pins for kreg/_keras_compat.py: one test per private Keras name kreg relies on."""

import keras
import numpy as np
import pytest

from kreg import _keras_compat as compat
