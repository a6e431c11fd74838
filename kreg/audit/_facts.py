"""Facts the checks read: which optimizer steps and decays each weight, by how much, and what
penalizes it.

Public Keras attributes where Keras has them; the few facts Keras keeps private (an
optimizer's schedule, its ``exclude_from_weight_decay`` choices, Muon's split between its
two update rules) through ``kreg._keras_compat``.
"""

import math
import re

import keras

from kreg import _keras_compat as compat
from kreg import _schedules as schedules
from kreg._live import layer_strength, live_optimizer_strengths
from kreg._masking import NORMALIZATION_LAYERS
from kreg._walk import optimizer_chain, walk_layers
from kreg.optimizers import DecoupledWeightDecay

# ---------------------------------------------------------------------------- optimizers

_ADAPTIVE_NAMES = (
    "Adam",
    "AdamW",
    "Adamax",
    "Nadam",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adafactor",
    "Ftrl",
    "Lamb",
    "Lion",
    "Muon",
    "ScheduleFreeAdamW",
)
ADAPTIVE_OPTIMIZERS = tuple(
    getattr(keras.optimizers, n) for n in _ADAPTIVE_NAMES if hasattr(keras.optimizers, n)
)


def is_kreg_decay(optimizer):
    """True for kreg.optimizers.DecoupledWeightDecay."""
    return isinstance(optimizer, DecoupledWeightDecay)


def is_multi_optimizer(optimizer):
    """True for a MultiOptimizer, whose inner optimizers the audit does not read."""
    multi = getattr(keras.optimizers, "MultiOptimizer", None)
    return multi is not None and isinstance(optimizer, multi)


def stepper(chain):
    """The optimizer that computes the update direction: the innermost of the chain."""
    return chain[-1] if chain else None


def is_adaptive(optimizer):
    return isinstance(optimizer, ADAPTIVE_OPTIMIZERS)


as_float = schedules.as_float
schedule_of = schedules.schedule_of
learning_rate = schedules.learning_rate_at
schedule_profile = schedules.schedule_profile
peak_learning_rate = schedules.peak_learning_rate


def initial_or_peak_learning_rate(optimizer):
    """``(lr_0, True)``; for a schedule that starts at 0 (a warm-up) ``(its peak, False)``."""
    lr0 = learning_rate(optimizer)
    if lr0:
        return lr0, True
    return peak_learning_rate(optimizer), False


#: "decay-too-fast" below this half-life, in steps. Common set-ups halve a weight in far
#: more: AdamW at lr 1e-3 with λ = 0.1 in ~6900 steps (λ = 0.01: ~69000), SGD at lr 0.1
#: with 5e-4 in ~14000. Within fewer than 1000 steps (a per-step decay above 6.9e-4) the
#: decay, not the data, sets the weights' scale from the first epochs on, and a fine-tuned
#: model's pretrained weights are gone within a few hundred steps.
FAST_HALF_LIFE = 1000


def half_life(per_step):
    """Steps in which a decay of ``per_step`` (0 < d < 1) halves a weight: ln 2 / −ln(1 − d)."""
    return math.log(2) / -math.log1p(-per_step)


def keras_weight_decay(optimizer, variable=None):
    """A Keras optimizer's own built-in ``weight_decay`` as a float (0.0 when unset).

    With ``variable``: the decay that acts on it. Muon decays the weights its Adam step
    updates (not matrices, embeddings, ``exclude_layers``) by ``adam_weight_decay``.
    """
    if is_kreg_decay(optimizer):
        return 0.0
    value = getattr(optimizer, "weight_decay", None)
    if variable is not None and hasattr(optimizer, "adam_weight_decay"):
        try:
            if compat.muon_steps_with_adam(optimizer, variable):
                value = optimizer.adam_weight_decay
        except Exception:
            pass
    return as_float(value) or 0.0


def keras_excludes(optimizer, variable, backend=None):
    """True when ``optimizer.exclude_from_weight_decay`` excludes ``variable`` on ``backend``."""
    try:
        return compat.excluded_from_builtin_decay(optimizer, variable, backend)
    except Exception:
        return False


def exclusion_differs(optimizer, variable):
    """True when Keras' var_names exclusion decides ``variable`` differently per backend."""
    return keras_excludes(optimizer, variable, "tensorflow") != keras_excludes(
        optimizer, variable, "jax"
    )


def exclusion_pattern(optimizer):
    """The text of the ``var_names`` pattern of Keras' exclude_from_weight_decay."""
    pattern = compat.weight_decay_exclusion_pattern(optimizer)
    return getattr(pattern, "pattern", str(pattern))


def kreg_weight_decay(optimizer):
    """The live weight decay of a kreg DecoupledWeightDecay as a float (0.0 if unknown)."""
    try:
        handle = live_optimizer_strengths(optimizer).get("weight_decay")
        value = 0.0 if handle is None else float(handle)
    except Exception:
        return 0.0
    given = getattr(optimizer, "weight_decay", None)
    if callable(given):  # a schedule: the live strength is a scale on it; λ at step 0
        value *= as_float(given(0)) or 0.0
    return value


def decays(chain, variable):
    """The weight decays that act on ``variable``: a list of ``(optimizer, per-weight λ)``."""
    found = []
    for optimizer in chain:
        if is_kreg_decay(optimizer):
            wd = kreg_weight_decay(optimizer)
            try:
                multiplier = float(optimizer.weight_decay_multiplier(variable))
            except Exception:
                multiplier = 0.0
            if wd > 0 and multiplier > 0:
                found.append((optimizer, wd * multiplier))
        else:
            wd = keras_weight_decay(optimizer, variable)
            if wd > 0 and not keras_excludes(optimizer, variable):
                found.append((optimizer, wd))
    return found


def optimizer_label(optimizer):
    """``"Adam"``, or ``"DecoupledWeightDecay(Adam)"`` for wrappers."""
    chain = optimizer_chain(optimizer)
    names = [type(o).__name__ for o in chain]
    return "(".join(names) + ")" * (len(names) - 1)


# ------------------------------------------------------------------------ regularizers


def l2_of(regularizer):
    """The L2 strength of a Keras or kreg regularizer (L2, L1L2, L2SP), else None."""
    if regularizer is None:
        return None
    return as_float(getattr(regularizer, "l2", None))


# keras-hub and model code bring their own norms (LlamaLayerNorm, Gemma's RMSNormalization,
# T5LayerNorm, RmsNorm2d, Qwen3_5RMSNormGated ...), none a subclass of Keras' own: a layer
# is one when a class in its MRO is named so. A layer that merely contains a norm
# (ConvNormAct) owns no norm weight itself: its sublayers do.
_NORMALIZATION_NAME = re.compile(r"norm(alization)?(\d+d|gated)?$", re.IGNORECASE)

# A position table is indexed by the position, not by the data: every row is used at
# every step (keras-hub's PositionEmbedding, a ViT's Embedding named "position_embedding").
_POSITION_CLASS = re.compile(r"Position(al)?(Embedding|Encoding)")
_POSITION_NAME = re.compile(r"(^|_)pos(ition(al)?)?(_|$)", re.IGNORECASE)


def is_normalization(layer):
    """True for Keras' normalization layers and for any layer whose class is named as a norm."""
    if layer is None:
        return False
    if isinstance(layer, NORMALIZATION_LAYERS):
        return True
    return any(_NORMALIZATION_NAME.search(c.__name__) for c in type(layer).__mro__)


def is_position_embedding(layer):
    if layer is None:
        return False
    return bool(
        any(_POSITION_CLASS.search(c.__name__) for c in type(layer).__mro__)
        or _POSITION_NAME.search(layer.name)
    )


def output_projections(paths):
    """``{id(layer)}``: the tied embeddings (``tie_weights=True``) that a recorded call uses
    as the output projection (``reverse=True``, as keras-hub's CausalLM tasks do)."""
    found = set()
    for _, layer in paths:
        if not getattr(layer, "tie_weights", False):
            continue
        try:
            calls = compat.call_keyword_arguments(layer)
        except Exception:
            continue
        if any(kwargs.get("reverse") is True for kwargs in calls):
            found.add(id(layer))
    return found


def is_token_embedding(variable, owner, projections=()):
    """True for a table whose rows are indexed by the data's tokens (ids), and only then.

    Only there does the reason for the embedding notes hold: a row gets a gradient only
    in the steps whose batch holds its token, while a penalty or decay shrinks it at
    every step. Not there:

    * a position table (every row used at every step);
    * an untied output projection (``ReversibleEmbedding``'s ``reverse_embeddings``,
      logits = h·W): the softmax sends every column a gradient at every step;
    * a tied table (``tie_weights=True``) that the model also calls with
      ``reverse=True``: it is that output projection too, so every row gets a gradient
      at every step. A tied table the audited graph only looks up (a backbone, a
      classifier on it) is a token embedding; one used in the ``call`` of a subclassed
      model leaves no record, and is taken as the lookup it is built for.

    A segment (token type) table is a token embedding: its rows too get a gradient only
    when their id is in the batch (BERT's second segment never is in single-sentence
    tasks, and decays toward zero).
    """
    short = variable.path.rsplit("/", 1)[-1]
    if short == "reverse_embeddings" or is_position_embedding(owner):
        return False
    if id(owner) in projections:
        return False
    if isinstance(owner, keras.layers.Embedding):
        # The table, or LoRA's row factor: one row per token id (not LoRA's other factor).
        return bool(variable.shape) and variable.shape[0] == getattr(owner, "input_dim", None)
    return short == "embeddings"


def category(variable, owner, projections=()):
    """ "normalization", "embedding" (a token embedding), "bias" or "weight".

    ``projections``: the tied embeddings used as output projections
    (:func:`output_projections`).
    """
    short = variable.path.rsplit("/", 1)[-1]
    if is_normalization(owner):
        return "normalization"
    if is_token_embedding(variable, owner, projections):
        return "embedding"
    if short == "bias":
        return "bias"
    return "weight"


# ------------------------------------------------------------------------------ layers


def layer_paths(model):
    """``[(path, layer)]`` for every layer of ``model``, parents first."""
    return list(walk_layers(model))


def live_value(layer, key):
    """A layer's strength ``key``: its live value for kreg layers, else the attribute."""
    value = layer_strength(layer, key)
    return value if value is not None else as_float(getattr(layer, key, None))


def is_linear(activation):
    return activation is None or getattr(activation, "__name__", "") == "linear"
