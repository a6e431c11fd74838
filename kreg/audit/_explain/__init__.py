"""What each finding says: ``explain(**facts) -> (what, why, fix)``, one function per code.

The checks (``kreg/audit/_checks/``) decide whether something is wrong and hand over the
facts: names, numbers, the layer or regularizer concerned. These functions only write
them up, the fix as code; each module is named as the check whose findings it explains,
and ``kreg/audit/_codes.py`` pairs each code with its function. Here: the wording they
share, and what audit-check-failed says.
"""

import sys

import keras

from kreg.audit._facts import as_float


def describe(regularizer):
    """``L2(l2=0.0001)``: a regularizer with its strengths."""
    parts = []
    for key in ("l1", "l2"):
        value = as_float(getattr(regularizer, key, None))
        if value:
            parts.append(f"{key}={value:g}")
    if getattr(regularizer, "normalize", "sum") == "mean":
        parts.append("normalize='mean'")
    return f"{type(regularizer).__name__}({', '.join(parts)})"


def plain(optimizer_name):
    """The class name to suggest inside DecoupledWeightDecay (AdamW without its decay is Adam)."""
    return "Adam" if optimizer_name == "AdamW" else optimizer_name


def optimizer_code(optimizer_name):
    """``keras.optimizers.Adam`` where this Keras has an optimizer of that name, else the
    bare name (a custom optimizer)."""
    if hasattr(keras.optimizers, optimizer_name):
        return f"keras.optimizers.{optimizer_name}"
    return optimizer_name


# The public namespaces a fix may name a layer class from, and the packages whose classes
# are not the user's own.
_NAMESPACES = (
    ("keras", "layers"),
    ("kreg", "layers"),
    ("keras_hub", "layers"),
    ("keras_hub", "models"),
)
_LIBRARIES = ("keras", "keras_hub", "keras_nlp", "keras_cv", "kreg", "tf_keras")


def class_code(layer):
    """How a fix names ``layer``'s class, or None when it cannot.

    The public name that is this very class in the installed versions, not one that
    merely reads the same: ``keras.layers.ReversibleEmbedding`` exists in Keras 3.15 but
    not in 3.10, and keras-hub's ``keras_hub.layers.ReversibleEmbedding`` is a class of
    its own. A user's class goes by its bare name; a library class with no public name
    (keras-hub's LlamaLayerNorm) is None: a fix cannot ask to construct it.
    """
    cls = type(layer)
    for package, namespace in _NAMESPACES:
        module = getattr(sys.modules.get(package), namespace, None)
        if module is not None and getattr(module, cls.__name__, None) is cls:
            return f"{package}.{namespace}.{cls.__name__}"
    if cls.__module__.split(".")[0] in _LIBRARIES:
        return None
    return cls.__name__


WHY_NOT_REGULARIZED = {
    "bias": "A bias shifts a unit's output and multiplies no input, so {doing} it does not "
    "limit the model's capacity, it only pulls the unit toward a zero offset; biases are "
    "conventionally not regularized.",
    "normalization": "The scale and offset of a normalization layer act on features that "
    "are already normalized, so {doing} them shrinks the layer's output instead of "
    "limiting capacity; normalization parameters are conventionally not regularized.",
    "embedding": "{Doing} a token embedding reaches every row at every step while the "
    "data gradient reaches only the rows of the tokens in the batch, so rare tokens are "
    "pulled toward zero far more than frequent ones.",
}


def why(kind, doing):
    """Why a bias, normalization or token embedding weight is not regularized ("penalizing")."""
    return WHY_NOT_REGULARIZED[kind].format(doing=doing, Doing=doing[0].upper() + doing[1:])


def audit_check_failed(*, check_name, error):
    return (
        f"{check_name} could not run on this model: {type(error).__name__}: {error}",
        "The audit is incomplete: this check's mistakes, if any, are not reported.",
        "# please report this model's structure to kreg",
    )
