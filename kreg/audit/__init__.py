"""Find regularization mistakes in a model and its training set-up.

``kreg.audit(model)`` reads a model (Sequential, functional, subclassed or nested) and its
optimizer (Keras built-in or kreg) and returns a :class:`Report` of findings. Each
:class:`Finding` has a severity, a stable code, the layer or variable path, what is
wrong, why in one sentence and the fix as code. The codes are listed at the end (from
``kreg/audit/_codes.py``, the table the checks make their findings from).

``kreg.audit.Report``, ``kreg.audit.Finding`` and ``kreg.audit.AuditError`` (a
ValueError) are reachable from the function. From a shell,
``python -m kreg.audit path/to/model.keras`` prints the report and exits with status 1
when there are errors (``--fail-on warning`` to fail on warnings too).
"""

import keras
import numpy as np

from kreg._validate import check_count as _check_count
from kreg.audit import _codes, _facts
from kreg.audit._checks import CHECKS
from kreg.audit._context import Context
from kreg.audit._report import SEVERITIES, AuditError, Finding, Report

if __doc__ is not None:  # None under python -OO
    __doc__ += "\nThe finding codes:\n\n" + _codes.table() + "\n"


def _check_optimizer(optimizer):
    if optimizer is None or isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        try:
            return keras.optimizers.get(optimizer)
        except ValueError:
            pass
    raise ValueError(
        "Invalid value for argument `optimizer`: expected a Keras optimizer instance, "
        f"an optimizer name such as 'adam', or None. Received: optimizer={optimizer!r}"
    )


def _check_sample(model, sample):
    """A sample must be numeric arrays with a batch axis, one per model input, of its shape."""
    if sample is None:
        return
    what = "expected a batch of model inputs (as `model(sample)` takes; no targets)"
    arrays = []
    for leaf in keras.tree.flatten(sample):
        try:
            array = np.asarray(keras.ops.convert_to_numpy(leaf))
        except Exception:
            array = np.asarray(None)
        if array.dtype.kind not in "biuf" or array.ndim < 1:
            raise ValueError(
                f"Invalid value for argument `sample`: {what}: numeric arrays with a batch "
                f"axis. Received: {type(leaf).__name__} {leaf!r:.60}"
            )
        arrays.append(array)
    try:
        inputs = list(model.inputs)
    except Exception:  # subclassed models: their inputs are not known
        return
    if len(arrays) != len(inputs):
        raise ValueError(
            f"Invalid value for argument `sample`: {what}: {len(inputs)} array(s). "
            f"Received: {len(arrays)} arrays"
        )
    if isinstance(sample, dict):
        return  # matched by name, not by position
    for array, tensor in zip(arrays, inputs):
        expected = tuple(tensor.shape[1:])
        received = array.shape[1:]
        if len(received) != len(expected) or any(
            e is not None and e != r for e, r in zip(expected, received)
        ):
            raise ValueError(
                f"Invalid value for argument `sample`: {what}: shape (batch, "
                f"{', '.join(str(e) for e in expected)}). Received: an array of shape "
                f"{array.shape}"
            )


def _failed(check, err, model):
    return _codes.finding("audit-check-failed", model.name, check_name=check.__name__, error=err)


def audit(model, optimizer=None, *, batch_size=None, num_examples=None, sample=None):
    """Find regularization mistakes in a model and its training set-up.

    Every check reports only what it can establish: a subclassed model has no graph to
    read, so the checks on layer order (bias or dropout before BatchNormalization) cover
    Sequential and functional models and the functional or Sequential models nested in
    any model; the checks on weights, regularizers and the optimizer cover all models.

    Args:
        model: a built Keras model or layer.
        optimizer: the optimizer it is (or will be) trained with; default
            ``model.optimizer`` (set by ``compile``). Keras optimizers,
            LossScaleOptimizer and ``kreg.optimizers.DecoupledWeightDecay`` are read
            through their wrappers.
        batch_size: the training batch size; with ``num_examples``, enables the
            "lambda-batch-size" findings (λ per epoch and how to rescale it).
        num_examples: the number of training examples per epoch.
        sample: a batch of model inputs (array, list or dict, as ``model(sample)``
            takes); enables the checks on the scale of the inputs of GaussianNoise,
            followed through Sequential and functional models, nested ones included
            (not into the ``call`` of a subclassed model). At most its first 1024 rows
            are used.

    Returns:
        A :class:`Report`: ``.findings`` (most severe first), ``print(report)``,
        ``report.raise_for("error")``.

    Example:

    >>> import keras, kreg
    >>> model = keras.Sequential([keras.Input((8,)),
    ...     keras.layers.Dense(4, kernel_regularizer=keras.regularizers.L2(1e-4), name="hidden"),
    ...     keras.layers.Dense(1, name="out")], name="mlp")
    >>> model.compile(keras.optimizers.Adam(1e-3), "mse")
    >>> report = kreg.audit(model)
    >>> [(f.severity, f.code, f.path) for f in report.findings]
    [('warning', 'l2-with-adaptive-optimizer', 'mlp/hidden/kernel')]
    >>> report.raise_for("error")  # no errors: returns None
    """
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            "Invalid value for argument `model`: expected a Keras model or layer. "
            f"Received: model={model!r}"
        )
    if not model.built:
        raise ValueError(
            "Invalid value for argument `model`: expected a built model (call "
            "`model.build(input_shape)` or call it on a batch first). Received: an "
            f"unbuilt {type(model).__name__} {model.name!r}"
        )
    optimizer = _check_optimizer(optimizer)
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None)
    _check_sample(model, sample)
    batch_size = _check_count(batch_size, "batch_size")
    num_examples = _check_count(num_examples, "num_examples")
    ctx = Context(model, optimizer, batch_size, num_examples, sample)
    findings = []
    for check in CHECKS:
        try:
            findings.extend(check(ctx))
        except Exception as err:  # one check must not hide the others' findings
            findings.append(_failed(check, err, model))
    subject = f"{type(model).__name__} {model.name!r}"
    if optimizer is not None:
        subject += f" with {_facts.optimizer_label(optimizer)}"
    return Report(findings, subject)


# `kreg.audit` is this function (kreg/__init__.py imports it over the module), so
# `help(kreg.audit)` shows its docstring: the codes go there as well as in the module's.
if audit.__doc__ is not None:
    audit.__doc__ += "\n    The finding codes:\n\n" + "".join(
        f"    {line}\n" for line in _codes.table().splitlines()
    )

# The report types are reachable from the function too: `except kreg.audit.AuditError`.
audit.Report = Report
audit.Finding = Finding
audit.AuditError = AuditError
audit.SEVERITIES = SEVERITIES

# Report, Finding and AuditError are importable from kreg.audit but not listed: they are
# plain Python classes, not Keras objects to register for serialization.
__all__ = ["audit"]
