"""Noise, dropout and augmentation layers, and Monte-Carlo prediction.

``GaussianNoise`` and ``Dropout`` are drop-ins for Keras' classes with live strengths;
``DropPath`` and ``DropBlock2D`` fill gaps in Keras; ``RandomAffine`` and
``RandomShift1D`` augment images and 1-D signals in one XLA-compatible resampling;
``augmentation(...)`` builds a ready pipeline; ``mc_predict`` samples stochastic layers
at inference.
"""

from kreg.layers._affine import RandomAffine
from kreg.layers._dropout import DropBlock2D, Dropout, DropPath
from kreg.layers._mc import mc_predict
from kreg.layers._noise import GaussianNoise
from kreg.layers._pipeline import augmentation
from kreg.layers._shift import RandomShift1D

__all__ = [
    "GaussianNoise",
    "Dropout",
    "DropPath",
    "DropBlock2D",
    "RandomAffine",
    "RandomShift1D",
    "augmentation",
    "mc_predict",
]
