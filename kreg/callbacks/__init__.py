"""EarlyStopping, RegularizationScaler, RegularizationMonitor (issue 5: to be implemented)."""

__all__ = []
