"""Noise, dropout and augmentation layers (issue 4: to be implemented)."""


def mc_predict(model, x, samples=30, batch_size=None):
    raise NotImplementedError("kreg.mc_predict is not implemented yet")


__all__ = ["mc_predict"]
