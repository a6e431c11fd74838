"""What each finding says: ``explain(**facts) -> (what, why, fix)``, one function per code.

The checks (``kreg/audit/_checks/``) decide whether something is wrong and hand over the
facts: names, numbers, the layer or regularizer concerned. These functions only write
them up, the fix as code; each module is named as the check whose findings it explains,
and ``kreg/audit/_codes.py`` pairs each code with its function. Here: the wording they
share, and what audit-check-failed says.
"""

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


WHY_NOT_REGULARIZED = {
    "bias": "A bias shifts a unit's output and multiplies no input, so {doing} it does not "
    "limit the model's capacity, it only pulls the unit toward a zero offset; biases are "
    "conventionally not regularized.",
    "normalization": "The scale and offset of a normalization layer act on features that "
    "are already normalized, so {doing} them shrinks the layer's output instead of "
    "limiting capacity; normalization parameters are conventionally not regularized.",
    "embedding": "{Doing} the table reaches every row at every step while the data "
    "gradient reaches only the rows of the tokens in the batch, so rare tokens are pulled "
    "toward zero far more than frequent ones.",
}


def why(kind, doing):
    """Why a bias, normalization or embedding weight is not regularized ("penalizing")."""
    return WHY_NOT_REGULARIZED[kind].format(doing=doing, Doing=doing[0].upper() + doing[1:])


def audit_check_failed(*, check_name, error):
    return (
        f"{check_name} could not run on this model: {type(error).__name__}: {error}",
        "The audit is incomplete: this check's mistakes, if any, are not reported.",
        "# please report this model's structure to kreg",
    )
