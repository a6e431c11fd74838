"""Penalties attached to a built model survive ``.keras`` saving, whatever rebuilds its layers.

Keras saves a regularizer only inside the config of the layer that holds it, and only
where the enclosing models rebuild that layer from its config (a Sequential or
functional model does). keras-hub backbones, task models and most custom layers rebuild
their sublayers from constructor arguments, so a penalty that
:func:`kreg.regularizers.apply` put on one of their weights would be gone after
``keras.saving.load_model``, with the weights reloading exactly and nothing looking
wrong.

So the object given to ``apply`` records those penalties in its own config. Its class
becomes a subclass made here (same name and behaviour) whose ``get_config`` wraps the
original config with one record per penalty — the weight's position in the model, its
path, its shape, the attribute that holds it and the serialized regularizer — and whose
``from_config`` rebuilds the original object, then attaches the recorded penalties. The
live strengths come back from the weights file, as for every kreg regularizer: the
penalty is held under the same attribute, so its entry has the same path.

A model whose class cannot take the subclass is reported by ``apply``, naming the
weights: never silence.
"""

import keras

from kreg import _keras_compat as compat
from kreg._live import StrengthState, adopt, layer_attributes
from kreg._walk import walk_layers, weight_owners

__all__ = []  # private: reached through kreg.regularizers.apply

#: How a layer that has no attribute for a weight's regularizer holds the one kreg attaches.
_OWN_PREFIX = "_kreg_"


def penalized_weights(model):
    """``[(variable, owner)]``: every weight the model trains (frozen ones too), in model order.

    The order is the same for a model and the one rebuilt from its config, which is
    what the records' positions refer to.
    """
    return [(v, owner) for v, _, owner in weight_owners(model, include_frozen=True).values()]


def _rebuilt_from_config(model):
    """``{id(layer)}`` of the layers that Keras rebuilds from their own config.

    The model itself, and recursively the layers of a Sequential or functional model
    that does not override ``get_config``: Keras serializes those layer by layer. Any
    other layer rebuilds its sublayers its own way (from constructor arguments), so
    their configs are not saved.
    """
    rebuilt = {id(model)}
    for _, layer in walk_layers(model):
        if id(layer) in rebuilt and compat.serializes_its_layers(layer):
            rebuilt.update(id(child) for child in layer.layers)
    return rebuilt


def config_keys(layer):
    try:
        return set(layer.get_config())
    except Exception:  # a layer without a usable config saves nothing anyway
        return set()


def holding_attribute(owner, regularizer):
    """The name of the attribute of ``owner`` that holds ``regularizer``, or None."""
    return next((name for name, value in layer_attributes(owner) if value is regularizer), None)


def unsaved_penalties(model):
    """``[(position, variable, owner, attribute)]``: penalties the model's config would lose."""
    rebuilt = _rebuilt_from_config(model)
    found = []
    for position, (variable, owner) in enumerate(penalized_weights(model)):
        regularizer = getattr(variable, "regularizer", None)
        if regularizer is None:
            continue
        attribute = holding_attribute(owner, regularizer)
        if id(owner) in rebuilt and attribute and attribute.lstrip("_") in config_keys(owner):
            continue  # the owner's config holds it, and Keras rebuilds the owner from it
        found.append((position, variable, owner, attribute))
    return found


def records(model):
    """The JSON-able record of every penalty that the model's config would lose."""
    return [
        {
            "position": position,
            "path": variable.path,
            "shape": [int(d) for d in variable.shape],
            "attribute": attribute,
            "regularizer": keras.saving.serialize_keras_object(variable.regularizer),
        }
        for position, variable, _, attribute in unsaved_penalties(model)
    ]


def attach(variable, owner, regularizer, attribute):
    """Put ``regularizer`` on ``variable`` and have ``owner`` hold it as ``attribute``.

    The variable's ``regularizer`` is what Keras adds to the loss; the attribute makes
    the owner track it, so that the JAX train step carries its live strengths and
    weight files save them under the owner's path.
    """
    variable.regularizer = regularizer
    if attribute is None:
        return
    if attribute.startswith(_OWN_PREFIX) and isinstance(regularizer, StrengthState):
        # Named as the weight's own regularizer would be ("class_token_regularizer").
        regularizer.strength_label = attribute[len(_OWN_PREFIX) :]
    adopt(owner, attribute, regularizer)


def _matches(variable, record):
    return (
        variable.path.split("/")[-2:] == record["path"].split("/")[-2:]
        and [int(d) for d in variable.shape] == record["shape"]
    )


def restore(model, saved):
    """Attach the recorded penalties to the matching weights of ``model``.

    A record finds its weight by position, checked by the layer/weight end of its path
    and its shape (loading drops a nested model's name from the paths); failing that,
    by the one weight with that end and shape. A record that finds none is reported.
    """
    weights = penalized_weights(model)
    lost = []
    for record in saved:
        position = record["position"]
        candidates = [weights[position]] if position < len(weights) else []
        if not candidates or not _matches(candidates[0][0], record):
            candidates = [pair for pair in weights if _matches(pair[0], record)]
        if len(candidates) != 1:
            lost.append(record["path"])
            continue
        variable, owner = candidates[0]
        regularizer = keras.saving.deserialize_keras_object(record["regularizer"])
        attach(variable, owner, regularizer, record["attribute"])
    if lost:
        raise ValueError(
            f"Invalid value for argument `config` of {type(model).__name__} "
            f"{model.name!r}: expected recorded penalties that match its weights. "
            f"Received: penalties on {lost}, which no weight of the rebuilt model matches "
            "(by position, path and shape)"
        )


class KeptPenalties:
    """Mixin of the recording classes: the original config plus the penalty records."""

    def get_config(self):
        base = self._kreg_base
        registered = keras.saving.get_registered_name(base)
        return {
            "model": {
                "module": base.__module__,
                "class_name": base.__name__,
                "config": base.get_config(self),
                "registered_name": registered if ">" in registered else None,
            },
            "penalties": records(self),
        }

    @classmethod
    def from_config(cls, config):
        model = keras.saving.deserialize_keras_object(config["model"])
        penalties = list(config.get("penalties", ()))
        if model.built or not penalties:
            restore(model, penalties)
        else:  # a model that builds later: attached once Keras builds it (see below)
            object.__setattr__(model, "_kreg_pending_penalties", tuple(penalties))
        keep(model)
        return model

    def build_from_config(self, config):
        super().build_from_config(config)
        pending = self.__dict__.pop("_kreg_pending_penalties", ())
        if pending:
            restore(self, pending)


keras.saving.register_keras_serializable(package="kreg", name="KeptPenalties")(KeptPenalties)

_CLASSES = {}  # original class -> its recording subclass


def recording_class(base):
    """The subclass of ``base`` that records penalties in its config (made once per class)."""
    if issubclass(base, KeptPenalties):
        return base
    if base not in _CLASSES:
        subclass = type(
            base.__name__,
            (KeptPenalties, base),
            {
                "__module__": __name__,
                "__qualname__": base.__qualname__,
                "__doc__": base.__doc__,
                "_kreg_base": base,
            },
        )
        _CLASSES[base] = keras.saving.register_keras_serializable(
            package="kreg", name="KeptPenalties"
        )(subclass)
        # Loading finds the mixin's from_config under the name whichever class is
        # registered last; keep the entry on the mixin itself.
        keras.saving.register_keras_serializable(package="kreg", name="KeptPenalties")(
            KeptPenalties
        )
    return _CLASSES[base]


def keep(model):
    """Make ``model`` record its penalties in its config; False if its class cannot."""
    try:
        object.__setattr__(model, "__class__", recording_class(type(model)))
    except TypeError:  # a class whose instances cannot change class (slots, builtins)
        return False
    return True
