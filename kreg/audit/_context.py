"""What every check reads: the model's layers and weights, the optimizer chain, the arguments."""

from kreg._walk import optimizer_chain, weight_owners
from kreg.audit import _facts as facts


class Context:
    """The audited model and set-up, read once for all checks (read-only to them).

    ``weights`` holds ``(variable, owner path, owner layer)`` for each trainable weight,
    ``decays`` maps ``id(variable)`` to the decays that act on it, ``paths`` is
    ``[(layer path, layer)]``, parents first, ``projections`` the ids of the tied
    embeddings the model also uses as its output projection.
    """

    def __init__(self, model, optimizer, batch_size, num_examples, sample):
        self.model = model
        self.optimizer = optimizer
        self.chain = optimizer_chain(optimizer)
        self.stepper = facts.stepper(self.chain)
        self.batch_size = batch_size
        self.num_examples = num_examples
        self.sample = sample
        self.paths = facts.layer_paths(model)
        self.path_of = {id(layer): path for path, layer in self.paths}
        owners = weight_owners(model)
        self.weights = []
        seen = set()
        for variable in model.trainable_weights:
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            _, path, layer = owners.get(id(variable), (variable, model.name, model))
            self.weights.append((variable, path, layer))
        self.decays = {id(v): facts.decays(self.chain, v) for v, _, _ in self.weights}
        self.projections = facts.output_projections(self.paths)

    def category(self, variable, owner):
        """ "normalization", "embedding" (a token embedding), "bias" or "weight"."""
        return facts.category(variable, owner, self.projections)

    @property
    def label(self):
        return facts.optimizer_label(self.optimizer) if self.optimizer is not None else None
