"""The audit's finding codes: one table that the checks build their findings from and that
``kreg.audit``'s documentation shows.

Each code has a severity, a one-line summary (the documentation's) and the function that
writes its what/why/fix (``kreg/audit/_explain/``). :func:`finding` is how a check makes
a finding: an unregistered code raises.
"""

import collections

from kreg.audit._explain import (
    audit_check_failed,
    batch_size,
    decay,
    layer_order,
    noise,
    penalties,
    xla,
)
from kreg.audit._facts import FAST_HALF_LIFE
from kreg.audit._report import Finding

Code = collections.namedtuple("Code", ["severity", "summary", "explain"])

#: code -> Code(severity, summary, explain), most severe first.
CODES = {
    "regularizer-not-attached": Code(
        "error",
        "``layer.kernel_regularizer`` set after build",
        penalties.regularizer_not_attached,
    ),
    "noise-on-integer-input": Code(
        "error",
        "GaussianNoise on an integer tensor",
        noise.noise_on_integer_input,
    ),
    "decay-too-strong": Code(
        "error",
        "a decay step removes ≥ 100 % of a weight",
        decay.decay_too_strong,
    ),
    "decay-too-fast": Code(
        "warning",
        f"a decay halves the weights in < {FAST_HALF_LIFE} steps",
        decay.decay_too_fast,
    ),
    "l2-with-adaptive-optimizer": Code(
        "warning",
        "L2 penalty rescaled by Adam/RMSprop/...",
        penalties.l2_with_adaptive_optimizer,
    ),
    "l2-and-weight-decay": Code(
        "warning",
        "a weight both penalized and decayed",
        penalties.l2_and_weight_decay,
    ),
    "penalty-on-bias": Code(
        "warning",
        "a bias penalized",
        penalties.penalty_on,
    ),
    "decay-on-bias": Code(
        "warning",
        "a bias decayed",
        decay.decay_on,
    ),
    "penalty-on-normalization": Code(
        "warning",
        "normalization γ/β/scale penalized",
        penalties.penalty_on,
    ),
    "decay-on-normalization": Code(
        "warning",
        "normalization γ/β/scale decayed",
        decay.decay_on,
    ),
    "decay-exclusion-backend-dependent": Code(
        "warning",
        "exclude_from_weight_decay(var_names) differs: TF vs JAX",
        decay.decay_exclusion_backend_dependent,
    ),
    "dropout-before-batchnorm": Code(
        "warning",
        "variance shift between training and inference",
        layer_order.dropout_before_batchnorm,
    ),
    "noise-on-unscaled-input": Code(
        "warning",
        "GaussianNoise on 0–255 images",
        noise.noise_on_unscaled_input,
    ),
    "noise-out-of-scale": Code(
        "warning",
        "σ > the input's std or < 1 % of it",
        noise.noise_out_of_scale,
    ),
    "augmentation-disables-xla": Code(
        "warning",
        "a layer with supports_jit=False",
        xla.augmentation_disables_xla,
    ),
    "penalty-on-embedding": Code(
        "info",
        "a token embedding penalized: rare tokens shrunk more",
        penalties.penalty_on,
    ),
    "decay-on-embedding": Code(
        "info",
        "a token embedding decayed: rare tokens shrunk more",
        decay.decay_on,
    ),
    "bias-before-batchnorm": Code(
        "info",
        "the bias is cancelled by the mean subtraction",
        layer_order.bias_before_batchnorm,
    ),
    "decay-follows-schedule": Code(
        "info",
        "Keras' decay × scheduled lr, start/peak/end",
        decay.decay_follows_schedule,
    ),
    "lambda-batch-size": Code(
        "info",
        "λ per epoch for this batch size, how to rescale",
        batch_size.lambda_batch_size,
    ),
    "l2-mode-with-adaptive-optimizer": Code(
        "info",
        'DecoupledWeightDecay(mode="l2") with Adam/...',
        decay.l2_mode_with_adaptive_optimizer,
    ),
    "optimizer-not-read": Code(
        "info",
        "a MultiOptimizer: its inner optimizers not read",
        decay.optimizer_not_read,
    ),
    "no-optimizer": Code(
        "info",
        "optimizer checks skipped",
        decay.no_optimizer,
    ),
    "audit-check-failed": Code(
        "info",
        "a check raised; the audit is incomplete",
        audit_check_failed,
    ),
}


def finding(code, path, **facts):
    """The Finding ``code`` at ``path``: its severity from CODES, its text from ``facts``."""
    entry = CODES.get(code)
    if entry is None:
        raise ValueError(
            "Invalid value for argument `code`: expected a finding code registered in "
            f"kreg/audit/_codes.py. Received: code={code!r}"
        )
    what, why, fix = entry.explain(**facts)
    return Finding(entry.severity, code, path, what, why, fix)


def table():
    """The codes as a reStructuredText table: code, severity, meaning."""
    rows = [("code", "severity", "meaning")]
    rows += [(code, entry.severity, entry.summary) for code, entry in CODES.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    rule = "  ".join("=" * width for width in widths)

    def line(row):
        return "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()

    return "\n".join([rule, line(rows[0]), rule, *map(line, rows[1:]), rule])
