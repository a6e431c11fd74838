"""Callbacks: early stopping, regularization-strength scaling, regularization monitoring.

* :class:`EarlyStopping`: Keras' EarlyStopping plus Prechelt's GL/PQ/UP criteria,
  non-finite handling, restoring however training ends, resumable state.
* :class:`RegularizationScaler`: sets live strengths before each batch from a rule
  ("minibatch", "normalized", "timescale" or a callable) and an optional schedule.
* :class:`RegularizationMonitor`: weight norms, sparsity, live strengths and the
  weight-decay timescale in the epoch logs.
"""

from kreg.callbacks._early_stopping import EarlyStopping
from kreg.callbacks._monitor import RegularizationMonitor
from kreg.callbacks._scaler import RegularizationScaler

__all__ = ["EarlyStopping", "RegularizationScaler", "RegularizationMonitor"]
