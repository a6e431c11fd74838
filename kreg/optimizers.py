"""Decoupled weight decay for any Keras optimizer (issue 3: to be implemented)."""

__all__ = []
