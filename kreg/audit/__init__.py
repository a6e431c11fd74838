"""Find regularization mistakes in a model and its training set-up (issue 7: to be implemented)."""


def audit(model, optimizer=None, *, batch_size=None, num_examples=None, sample=None):
    raise NotImplementedError("kreg.audit is not implemented yet")


__all__ = ["audit"]
