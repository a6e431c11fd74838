"""Weight penalties with live strengths, and attaching them to already-built models.

``L1``, ``L2`` and ``L1L2`` are drop-in replacements for ``keras.regularizers``: the same
arguments, penalty values and config keys. In addition their strengths are live
(``kreg.strengths(model)`` lists them; a callback can change them between steps on
every backend, without recompiling), ``normalize="mean"`` divides the penalty by the
number of elements of the weight, and :class:`L2SP` pulls weights toward a reference.

Convention (the same as Keras): ``L2(l2)`` adds ``l2 * sum(w**2)`` to the loss, so its
gradient is ``2 * l2 * w``. A weight decay ``wd`` with gradient ``wd * w`` matches
``L2(wd / 2)``.
"""

import warnings

import keras
import numpy as np
from keras import ops

from kreg import _kept_penalties as _kept
from kreg._live import StrengthState
from kreg._masking import selector
from kreg._registry import export
from kreg._validate import FLOAT32_MAX, check_bool, check_choice, check_non_negative, is_number

__all__ = ["apply", "penalty_sum", "l1_penalty", "l2_penalty"]  # + classes, by @export

_NORMALIZE = ("sum", "mean")


def penalty_sum(values, normalize):
    """``sum(values)`` or ``mean(values)``: the reduction behind every kreg penalty."""
    return (
        ops.sum(values)
        if check_choice(normalize, "normalize", _NORMALIZE) == "sum"
        else ops.mean(values)
    )


def _strength(value, name):
    """A number must be >= 0; a tensor (a live strength read in the step) passes as is."""
    return check_non_negative(value, name) if is_number(value) else value


def l1_penalty(x, l1, normalize="sum"):
    """``l1 * sum(|x|)`` (or the mean over the elements of ``x``)."""
    return ops.cast(_strength(l1, "l1"), x.dtype) * penalty_sum(ops.absolute(x), normalize)


def l2_penalty(x, l2, normalize="sum", reference=None):
    """``l2 * sum((x - reference)**2)`` (reference 0 by default; or the mean)."""
    diff = x if reference is None else x - ops.cast(reference, x.dtype)
    return ops.cast(_strength(l2, "l2"), x.dtype) * penalty_sum(ops.square(diff), normalize)


class _Penalty(keras.regularizers.Regularizer, StrengthState):
    """Shared shell: a Keras Regularizer that is its own strength state.

    Being a (weightless) ``StrengthState`` layer, it is tracked by the layer that keeps
    it as an attribute, and saved under that attribute in weight files.
    """

    def __init__(self, values, normalize):
        StrengthState.__init__(self, values, kind="regularizer")
        self.normalize = check_choice(normalize, "normalize", _NORMALIZE)

    def _config(self):
        config = {k: self.strength_base(k) for k in self.strength_keys()}
        if self.normalize != "sum":
            config["normalize"] = self.normalize
        return config

    def get_config(self):
        return self._config()

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        current = config.pop("current_strengths", None)  # written by kreg 0.1 files
        return cls(**config).restore(current)

    def __setattr__(self, name, value):
        if name in getattr(self, "_live_records", ()):
            raise AttributeError(
                f"`{type(self).__name__}.{name}` is live: setting the attribute would not "
                "reach a compiled train step. Use "
                f"`kreg.strengths(model)['<layer>.<attribute>.{name}'].assign(value)`."
            )
        super().__setattr__(name, value)

    def __repr__(self):
        args = ", ".join(f"{k}={self.current(k)!r}" for k in self.strength_keys())
        extra = f", normalize={self.normalize!r}" if self.normalize != "sum" else ""
        return f"kreg.regularizers.{type(self).__name__}({args}{extra})"


@export
class L1L2(_Penalty):
    """Elastic-net penalty ``l1 * sum(|w|) + l2 * sum(w**2)`` with live strengths.

    Drop-in for ``keras.regularizers.L1L2``.

    Args:
        l1: L1 strength, a non-negative float.
        l2: L2 strength, a non-negative float.
        normalize: "sum" (as Keras) or "mean": the penalty divided by the number of
            elements of the weight, so λ does not grow with the layer's size.

    Example:

    >>> import numpy as np, kreg
    >>> reg = kreg.regularizers.L1L2(l1=0.1, l2=0.5)
    >>> round(float(reg(np.array([[1.0, -2.0]], "float32"))), 6)
    2.8
    """

    def __init__(self, l1=0.0, l2=0.0, *, normalize="sum"):
        l1 = 0.0 if l1 is None else l1
        l2 = 0.0 if l2 is None else l2
        super().__init__({"l1": l1, "l2": l2}, normalize)

    @property
    def l1(self):
        return self.current("l1")

    @property
    def l2(self):
        return self.current("l2")

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        return l1_penalty(x, self.get("l1"), self.normalize) + l2_penalty(
            x, self.get("l2"), self.normalize
        )


@export
class L1(_Penalty):
    """L1 penalty ``l1 * sum(|w|)`` with a live strength. Drop-in for ``keras.regularizers.L1``.

    Args:
        l1: strength, a non-negative float (default 0.01).
        normalize: "sum" (as Keras) or "mean" over the weight's elements.

    Example:

    >>> import numpy as np, kreg
    >>> round(float(kreg.regularizers.L1(0.5)(np.array([1.0, -3.0], "float32"))), 6)
    2.0
    """

    def __init__(self, l1=0.01, *, normalize="sum"):
        super().__init__({"l1": 0.01 if l1 is None else l1}, normalize)

    @property
    def l1(self):
        return self.current("l1")

    def __call__(self, x):
        return l1_penalty(ops.convert_to_tensor(x), self.get("l1"), self.normalize)


@export
class L2(_Penalty):
    """L2 penalty ``l2 * sum(w**2)`` with a live strength. Drop-in for ``keras.regularizers.L2``.

    Args:
        l2: strength, a non-negative float (default 0.01).
        normalize: "sum" (as Keras) or "mean" over the weight's elements.

    Example:

    >>> import numpy as np, kreg
    >>> round(float(kreg.regularizers.L2(0.5)(np.array([1.0, -3.0], "float32"))), 6)
    5.0
    """

    def __init__(self, l2=0.01, *, normalize="sum"):
        super().__init__({"l2": 0.01 if l2 is None else l2}, normalize)

    @property
    def l2(self):
        return self.current("l2")

    def __call__(self, x):
        return l2_penalty(ops.convert_to_tensor(x), self.get("l2"), self.normalize)


@export
class L2SP(_Penalty):
    """Penalty ``l2 * sum((w - w0)**2)`` toward reference weights ``w0`` (L2-SP).

    For fine-tuning: the weights are pulled toward their pretrained values instead of
    toward zero. With :func:`apply`, the reference of each weight is its value at the
    moment the regularizer is attached (the pretrained weights); one may also pass
    ``reference`` explicitly when the regularizer regularizes a single weight.

    The reference is stored in ``get_config`` (as nested lists) so that a saved model
    keeps its penalty; for large models prefer
    ``kreg.optimizers.DecoupledWeightDecay(anchor="initial")``, whose reference lives in
    the optimizer's variables.

    Args:
        l2: strength, a non-negative float (default 0.01).
        reference: the reference weights (array-like) or None (set by :func:`apply`).
        normalize: "sum" or "mean" over the weight's elements.

    Example:

    >>> import numpy as np, kreg
    >>> reg = kreg.regularizers.L2SP(0.5, reference=np.array([1.0, 1.0], "float32"))
    >>> round(float(reg(np.array([1.0, 3.0], "float32"))), 6)
    2.0

    References:
        Li, Grandvalet & Davoine, "Explicit inductive bias for transfer learning with
        convolutional networks", ICML 2018.
    """

    def __init__(self, l2=0.01, reference=None, *, normalize="sum"):
        super().__init__({"l2": 0.01 if l2 is None else l2}, normalize)
        if reference is not None:
            try:
                if np.asarray(reference).dtype == bool:
                    raise TypeError("bools are no weights")
                reference = np.asarray(reference, dtype="float64")
            except (TypeError, ValueError):
                raise ValueError(
                    "Invalid value for argument `reference`: expected an array-like of "
                    f"floats or None. Received: reference={reference!r}"
                ) from None
            if not np.all(np.isfinite(reference)) or np.any(np.abs(reference) > FLOAT32_MAX):
                raise ValueError(
                    "Invalid value for argument `reference`: expected finite values that "
                    f"float32 can hold (|x| <= {FLOAT32_MAX:.8g}). Received: an array with "
                    "NaN, inf or larger values"
                )
            reference = reference.astype("float32")
        self.reference = reference

    @property
    def l2(self):
        return self.current("l2")

    def with_reference(self, reference):
        """A copy of this regularizer (same strength and normalize) toward ``reference``."""
        copy = L2SP(self.strength_base("l2"), reference, normalize=self.normalize)
        return copy.restore(self.moved())

    def __call__(self, x):
        if self.reference is None:
            raise ValueError(
                "L2SP has no reference weights. Attach it with "
                "`kreg.regularizers.apply(model, kreg.regularizers.L2SP(l2))` after loading "
                "the pretrained weights (each weight's current value becomes its "
                "reference), or pass `reference=` explicitly."
            )
        x = ops.convert_to_tensor(x)
        if tuple(x.shape) != self.reference.shape:
            raise ValueError(
                "L2SP reference shape does not match the weight: expected "
                f"{self.reference.shape}. Received: a weight of shape {tuple(x.shape)}"
            )
        return l2_penalty(x, self.get("l2"), self.normalize, self.reference)

    def get_config(self):
        config = self._config()
        config["reference"] = None if self.reference is None else self.reference.tolist()
        return config


def _clone(regularizer):
    """A copy with the same base and the same current strengths (the config has both)."""
    if isinstance(regularizer, StrengthState):
        return type(regularizer).from_config(regularizer.get_config()).restore(regularizer.moved())
    return regularizer


#: Weight names whose layer may keep the regularizer under another attribute (config key).
_CONFIG_ATTRIBUTES = {
    "recurrent_kernel": ("recurrent_regularizer",),  # LSTM, GRU, SimpleRNN, ConvLSTM
    "depthwise_kernel": ("depthwise_regularizer",),  # SeparableConv
    "pointwise_kernel": ("pointwise_regularizer",),  # SeparableConv
    "kernel": ("kernel_regularizer", "depthwise_regularizer"),  # DepthwiseConv: "kernel"
}


def _config_attribute(layer, short):
    """The attribute under which ``layer`` keeps the regularizer of its weight ``short``.

    The first candidate that is both an attribute and a config key (so a saved model
    keeps it), else the first that is an attribute, else None.
    """
    candidates = _CONFIG_ATTRIBUTES.get(short, (f"{short}_regularizer",))
    present = [name for name in candidates if hasattr(layer, name)]
    keys = _kept.config_keys(layer) if present else set()
    return next((name for name in present if name in keys), present[0] if present else None)


def apply(model, regularizer, exclude=None, *, default_exclude=True):
    """Attach ``regularizer`` to the weights of an already-built (e.g. pretrained) model.

    Each selected weight gets its own copy of a kreg regularizer (its own live
    strength, and for :class:`L2SP` its current value as reference), stored on the
    layer as ``<weight>_regularizer`` (``kernel_regularizer`` for Dense/Conv, so the
    layer's config saves it). If the model is compiled, its train and test functions
    are rebuilt, so the next ``fit`` includes the penalties with no further step.
    A ``.keras`` file keeps every penalty, also where the layer's config does not hold
    it (a custom layer; a sublayer that its parent rebuilds from its own arguments, as
    keras-hub models and MultiHeadAttention do): ``model`` then records those penalties
    in its own config (its class becomes a subclass of the same name that does, and
    ``keras.saving.load_model`` attaches them again, with their live strengths). So
    save ``model`` itself, or a model that holds it (a Sequential, functional or
    keras-hub task model); a sublayer given to ``apply`` alone records only what its
    own config is saved with.

    Args:
        model: a built Keras model or layer.
        regularizer: a kreg regularizer (or any Keras regularizer / callable).
        exclude: extra weights to leave out: a callable (variable) -> bool, a regex
            string or a list of regex strings searched in ``variable.path`` (the same
            on every backend), or variables.
        default_exclude: also leave out biases, normalization parameters and every
            weight of rank <= 1 (default True).

    Returns:
        The list of the ``variable.path`` of every weight it attached to.

    Example:

    >>> import keras, kreg
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="a"),
    ...                           keras.layers.BatchNormalization(name="bn"),
    ...                           keras.layers.Dense(1, name="b")], name="net")
    >>> kreg.regularizers.apply(model, kreg.regularizers.L2(1e-4))
    ['net/a/kernel', 'net/b/kernel']
    """
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            "Invalid value for argument `model`: expected a Keras model or layer. "
            f"Received: model={model!r}"
        )
    if not model.built or not model.weights:
        raise ValueError(
            "Invalid value for argument `model`: expected a built model with weights "
            "(call `model.build(input_shape)` or call it on a batch first). Received: "
            f"{'a' if model.built else 'an unbuilt'} {type(model).__name__} {model.name!r}"
            f"{' without weights' if model.built else ''}"
        )
    if not callable(regularizer) or isinstance(regularizer, type):
        raise ValueError(
            "Invalid value for argument `regularizer`: expected a regularizer instance "
            f"such as kreg.regularizers.L2(1e-4). Received: regularizer={regularizer!r}"
        )
    if isinstance(regularizer, L2SP) and regularizer.reference is not None:
        raise ValueError(
            "Invalid value for argument `regularizer`: expected an L2SP without "
            "`reference` (apply takes each weight's current value as its reference). "
            f"Received: an L2SP whose reference has shape {regularizer.reference.shape}"
        )
    selected = selector(exclude, check_bool(default_exclude, "default_exclude"))
    attached = []
    # Frozen layers too: Keras keeps their penalties out of the loss until they are
    # unfrozen (freeze, attach L2SP, unfreeze and fine-tune is the usual recipe).
    for variable, owner in _kept.penalized_weights(model):
        if not selected(variable, owner):
            continue
        reg = _clone(regularizer)
        if isinstance(reg, L2SP) and reg.reference is None:
            reg = reg.with_reference(keras.ops.convert_to_numpy(variable))
        short = variable.path.rsplit("/", 1)[-1]
        attribute = _config_attribute(owner, short)
        if attribute is None:
            attribute = f"_kreg_{short}_regularizer"
        _kept.attach(variable, owner, reg, attribute)
        attached.append(variable.path)
    unsaved = [variable.path for _, variable, _, _ in _kept.unsaved_penalties(model)]
    if unsaved and not _kept.keep(model):
        warnings.warn(
            f"kreg.regularizers.apply: the penalties on {unsaved} are active in this "
            f"model, but a saved .keras model will not keep them: {type(model).__name__} "
            "rebuilds the layers that hold them from its own arguments and its class "
            "cannot record them. Attach them again after loading.",
            stacklevel=2,
        )
    if getattr(model, "compiled", False):
        model.make_train_function(force=True)
        model.make_test_function(force=True)
    return attached
