"""kreg: correct, complete and cheap regularization for Keras 3.

Public API:
    kreg.strengths(model, optimizer=None)  every live strength, by name
    kreg.regularizers   L1, L2, L1L2, L2SP, apply
    kreg.optimizers     DecoupledWeightDecay
    kreg.layers         GaussianNoise, Dropout, DropPath, DropBlock2D, RandomAffine, ...
    kreg.callbacks      EarlyStopping, RegularizationScaler, RegularizationMonitor
    kreg.mc_predict     Monte-Carlo predictions through stochastic layers
    kreg.audit          find regularization mistakes in a model
"""

__version__ = "0.1.0"

from kreg import callbacks, layers, optimizers, regularizers
from kreg._live import Strength, strengths
from kreg.audit import audit
from kreg.layers import mc_predict

__all__ = [
    "Strength",
    "strengths",
    "regularizers",
    "optimizers",
    "layers",
    "callbacks",
    "mc_predict",
    "audit",
    "__version__",
]
