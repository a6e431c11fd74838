"""Decoupled weight decay, proximal L1 and decay toward reference weights, for any Keras optimizer.

:class:`DecoupledWeightDecay` wraps an optimizer instance. It does not re-implement the
inner update rule: it hooks into the inner optimizer's per-weight ``update_step`` (the
method every Keras optimizer implements and calls once per weight, inside the right
distribution context on TensorFlow and inside the stateless scope on JAX), and around it

1. decays the pre-update weight (``mode="decoupled"``), or adds ``λ·θ`` to its gradient
   (``mode="l2"``),
2. lets the inner rule update it,
3. applies the L1 proximal step (soft threshold) to the result.

Because the hook runs where the inner update runs, gradient accumulation (decay only on
real update steps), EMA, loss scaling (either nesting), ``jit_compile`` and
``tf.distribute.MirroredStrategy`` need no special code. The strengths live in an
optimizer variable, so a callback can change them mid-training on every backend.
"""

import copy
import math
import re
import warnings

import keras
import numpy as np
from keras import ops

from kreg import _decay
from kreg._live import Strength
from kreg._validate import check_choice, check_non_negative, is_number
from kreg._masking import _is_variable, selector
from kreg._registry import export
from kreg._repr import Raw, call_repr

_MODES = ("decoupled", "l2")

# Keyword arguments of keras.optimizers.Optimizer that belong on the inner optimizer.
_INNER_ONLY = (
    "learning_rate",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
)


def _check_weight_decay(weight_decay):
    """(base float, schedule or None) from a float, a LearningRateSchedule or a callable."""
    if is_number(weight_decay):
        return check_non_negative(weight_decay, "weight_decay"), None
    if isinstance(weight_decay, keras.optimizers.schedules.LearningRateSchedule) or (
        callable(weight_decay) and not isinstance(weight_decay, (bool, type))
    ):
        return 1.0, weight_decay
    raise ValueError(
        "Invalid value for argument `weight_decay`: expected a non-negative float, a "
        "keras.optimizers.schedules.LearningRateSchedule or a callable of the step. "
        f"Received: weight_decay={weight_decay!r}"
    )


def _check_multipliers(multipliers):
    if multipliers is None:
        return {}
    if not isinstance(multipliers, dict):
        raise ValueError(
            "Invalid value for argument `multipliers`: expected a dict from regex "
            "patterns on `variable.path` to non-negative factors. "
            f"Received: multipliers={multipliers!r}"
        )
    checked = {}
    for pattern, factor in multipliers.items():
        valid = isinstance(pattern, str) and is_number(factor)
        if valid:
            try:
                re.compile(pattern)
            except re.error:
                valid = False
        if not valid or not math.isfinite(float(factor)) or factor < 0:
            raise ValueError(
                "Invalid value for argument `multipliers`: expected a dict from valid "
                "regex patterns on `variable.path` to non-negative finite floats. "
                f"Received: {pattern!r}: {factor!r} in multipliers={multipliers!r}"
            )
        checked[pattern] = float(factor)
    return checked


def _check_anchor(anchor):
    if anchor is None or (isinstance(anchor, str) and anchor == "initial"):
        return anchor
    if isinstance(anchor, (list, tuple)) and all(
        hasattr(a, "shape") or isinstance(a, (list, tuple, float, int)) for a in anchor
    ):
        try:
            arrays = [np.asarray(keras.ops.convert_to_numpy(a)) for a in anchor]
        except Exception:  # not convertible to arrays: reported below
            arrays = None
        # Finite numbers only: a NaN anchor would make every decayed weight NaN.
        if arrays is not None and all(
            np.issubdtype(a.dtype, np.number) and np.all(np.isfinite(a)) for a in arrays
        ):
            return arrays
    raise ValueError(
        "Invalid value for argument `anchor`: expected None, \"initial\" or a list of "
        "arrays of finite numbers (one per trainable variable, in the order of "
        f"`model.trainable_variables`). Received: anchor={anchor!r}"
    )


def _core_optimizer(optimizer):
    """The optimizer that runs ``update_step``: through LossScaleOptimizer-like wrappers."""
    seen = set()
    while hasattr(optimizer, "inner_optimizer") and id(optimizer) not in seen:
        seen.add(id(optimizer))
        optimizer = optimizer.inner_optimizer
    return optimizer


def _path_tail(path):
    """The layer/variable end of a variable path, which loading a model keeps."""
    return "/".join(path.split("/")[-2:])


def _exclude_config(exclude):
    """``exclude`` as JSON-able config: variables become exact patterns on their path."""
    if exclude is None or isinstance(exclude, str):
        return exclude
    if _is_variable(exclude):
        exclude = [exclude]
    if callable(exclude) and not _is_variable(exclude):
        return keras.saving.serialize_keras_object(exclude)
    # The layer/variable tail of the path, anchored at a component boundary: a model's
    # own name prefixes the paths of a model built in code ("net/dense/kernel") but not
    # those of the same model loaded from a .keras file ("dense/kernel").
    return [
        item
        if isinstance(item, str)
        else "(?:^|/)" + re.escape(_path_tail(item.path)) + "$"
        for item in exclude
    ]


@export
class DecoupledWeightDecay(keras.optimizers.Optimizer):
    """Decoupled weight decay, proximal L1 and decay toward reference weights for any optimizer.

    Wraps a Keras optimizer instance (SGD, Adam, RMSprop, Adagrad, Adamax, Nadam, Lion,
    Adafactor, AdamW with ``weight_decay=0``, custom subclasses, or a
    ``LossScaleOptimizer`` around one) and is itself an optimizer for ``model.compile``.
    For each selected weight θ, in the inner optimizer's update of θ:

    * ``mode="decoupled"``: ``θ ← θ − d_t·θ`` on the pre-update weight, then the inner
      update. With a zero gradient one step gives exactly ``(1 − d_t)·θ``.
    * ``mode="l2"``: the classic coupled L2: ``λ_t·θ`` is added to θ's gradient before
      the inner update rule. λ·θ is the gradient of ``(λ/2)·‖θ‖²``, so this equals the
      penalty ``kreg.regularizers.L2(λ / 2)`` (or ``keras.regularizers.L2(λ / 2)``) in
      the loss, without building a loss term. ``follow`` does not apply to it (the inner
      learning rate already scales the gradient). The term is added after the inner
      optimizer's gradient clipping, so with ``clipnorm``/``clipvalue`` the penalty's
      gradient is not clipped.
    * ``l1 > 0``: after the update, ``θ ← sign(θ)·max(|θ| − f_t·l1, 0)`` (a proximal
      step: weights reach exactly zero).

    with ``d_t = λ_t · m · f_t`` where ``m`` is the weight's multiplier and ``f_t`` is
    ``lr_t / lr_0`` (``follow="schedule"``, the paper's η_t), ``lr_t``
    (``"learning_rate"``, as Keras' built-in ``weight_decay``, PyTorch and optax) or 1
    (``"none"``, as tensorflow-addons). ``lr_t`` is the inner learning rate at this step
    and ``lr_0`` (``initial_learning_rate``) its value at step 0. With ``anchor`` every
    step acts on ``θ − θ₀`` instead of θ (decoupled L2-SP): ``θ ← θ − d_t·(θ − θ₀)``.

    Strengths are live: ``kreg.strengths(model)`` lists ``"optimizer.weight_decay"`` and
    ``"optimizer.l1"``; assigning them (e.g. from a callback) changes the next train step
    on TensorFlow and JAX without recompiling. When ``weight_decay`` is a schedule or a
    callable, ``λ_t = s · weight_decay(step)`` where ``step`` is the inner optimizer's
    ``iterations`` (update steps) and the live strength ``s`` is a scale on the schedule
    (base 1.0).

    By default biases, normalization parameters and all weights of rank ≤ 1 are not
    decayed. Selection is by ``variable.path`` (the same on every backend); the selection
    is saved with the model, so a loaded model decays the same weights even where loading
    changed their paths (nested models' weights lose their model's name).

    The steps run inside the inner optimizer's update of each weight, so gradient
    accumulation decays only on real update steps, a LossScaleOptimizer's skipped step
    skips the decay too, and EMA and weight constraints see the decayed weights. Backends:
    TensorFlow (``tf.distribute.MirroredStrategy`` included) and JAX; Keras' torch
    optimizers bypass ``update_step``, so the torch backend is refused.

    Args:
        optimizer: the inner ``keras.optimizers.Optimizer`` instance. Its own
            ``weight_decay`` must be unset (None or 0): the decay would apply twice.
            It belongs to the wrapper from then on (when the wrapper is built, the
            instance's ``update_step`` is wrapped). Put ``clipnorm``,
            ``gradient_accumulation_steps``, ``use_ema`` ... on it. It may be a
            ``LossScaleOptimizer``; then compile with ``auto_scale_loss=False`` under
            "mixed_float16", or Keras adds a second one around the wrapper (the
            default ``compile`` wrapping, ``LossScaleOptimizer(DecoupledWeightDecay(
            ...))``, works as is).
        weight_decay: λ: a non-negative float, a
            ``keras.optimizers.schedules.LearningRateSchedule`` or a callable of the
            step returning λ_t.
        follow: what the decay is multiplied by: "schedule" (default), "learning_rate"
            or "none" (see above).
        l1: strength of the proximal L1 step (non-negative float, default 0).
        anchor: None (decay toward zero), "initial" (toward the weights at the time the
            optimizer is built) or a list of arrays, one per trainable variable in the
            order of ``model.trainable_variables``. Anchors are optimizer variables:
            saved and restored with the optimizer.
        mode: "decoupled" (default) or "l2" (see above).
        exclude: weights not to decay, on top of the defaults: a callable
            ``(variable) -> bool``, a regex searched in ``variable.path``, or a list of
            regexes and variables.
        multipliers: dict from regex (searched in ``variable.path``) to a factor on λ
            and l1 (e.g. ``{"embedding": 0.1}``); the first matching pattern applies.
        initial_learning_rate: lr_0 for ``follow="schedule"``. Default: the inner
            learning rate at step 0 (set it, e.g. to the peak, for a warm-up schedule
            that starts at 0).
        name: the optimizer's name.

    Example:

    >>> import keras, kreg, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> opt = kreg.optimizers.DecoupledWeightDecay(keras.optimizers.Adam(1e-3), 0.01)
    >>> model.compile(optimizer=opt, loss="mse")
    >>> sorted(kreg.strengths(model))
    ['optimizer.l1', 'optimizer.weight_decay']
    >>> history = model.fit(np.ones((8, 4)), np.ones((8, 1)), epochs=1, verbose=0)
    >>> opt.weight_decay_multiplier(model.layers[0].bias)
    0.0

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
        Duchi & Singer, "Efficient Online and Batch Learning Using Forward Backward
        Splitting" (FOBOS), JMLR 2009. Li, Grandvalet & Davoine, "Explicit Inductive
        Bias for Transfer Learning with Convolutional Networks" (L2-SP), ICML 2018.
    """

    def __init__(
        self,
        optimizer,
        weight_decay,
        *,
        follow="schedule",
        l1=0.0,
        anchor=None,
        mode="decoupled",
        exclude=None,
        multipliers=None,
        initial_learning_rate=None,
        name=None,
        **kwargs,
    ):
        if keras.backend.backend() not in ("tensorflow", "jax"):
            raise ValueError(
                "kreg.optimizers.DecoupledWeightDecay supports the TensorFlow and JAX "
                f"backends. Received: backend={keras.backend.backend()!r}"
            )
        for key in kwargs:
            if key in _INNER_ONLY:
                raise ValueError(
                    f"Invalid argument `{key}` for DecoupledWeightDecay: set it on the "
                    f"inner optimizer. Received: {key}={kwargs[key]!r}"
                )
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        self._check_inner(optimizer)
        base_weight_decay, schedule = _check_weight_decay(weight_decay)
        follow = check_choice(follow, "follow", _decay.FOLLOW)
        mode = check_choice(mode, "mode", _MODES)
        l1 = check_non_negative(0.0 if l1 is None else l1, "l1")
        anchor = _check_anchor(anchor)
        multipliers = _check_multipliers(multipliers)
        selected = selector(exclude, argument="exclude")

        super().__init__(learning_rate=0.0, name=name)
        self._selected_fn = selected
        self.inner_optimizer = optimizer
        self._kreg_weight_decay = weight_decay
        self._schedule = schedule
        self._base_weight_decay = base_weight_decay
        self.follow = follow
        self.mode = mode
        self._l1 = l1
        self.anchor = anchor
        # Variables in `exclude` become exact patterns on their paths (the same
        # selection): an optimizer attribute holding variables would track them.
        self.exclude = exclude if callable(exclude) else _exclude_config(exclude)
        self.multipliers = multipliers
        self._patterns = [(re.compile(p), f) for p, f in multipliers.items()]
        # The multiplier of each trainable variable, by position, as resolved by build()
        # (and as saved with the model: see get_config).
        # ((layer/variable name, multiplier), ...) as resolved by build(), or as loaded.
        self._selection = None
        self._selection_by_id = {}
        self.initial_learning_rate = self._initial_learning_rate(initial_learning_rate)
        # The live strengths: [λ (or the scale on the schedule), l1].
        self._strengths = self.add_variable(
            shape=(2,),
            initializer=keras.initializers.Constant([base_weight_decay, l1]),
            dtype="float32",
            aggregation="only_first_replica",
            name="kreg_strengths",
        )
        self._frozen = None
        self._hook_ran = False

    # ------------------------------------------------------------------ validation

    def _check_inner(self, optimizer):
        if not isinstance(optimizer, keras.optimizers.Optimizer) or isinstance(
            optimizer, DecoupledWeightDecay
        ):
            raise ValueError(
                "Invalid value for argument `optimizer`: expected a Keras optimizer "
                "instance (not a DecoupledWeightDecay). "
                f"Received: optimizer={optimizer!r}"
            )
        core = _core_optimizer(optimizer)
        unsupported = tuple(
            getattr(keras.optimizers, n)
            for n in ("MultiOptimizer", "OptimizerMap")
            if hasattr(keras.optimizers, n)
        )
        if isinstance(core, DecoupledWeightDecay) or (
            unsupported and isinstance(core, unsupported)
        ):
            raise ValueError(
                "Invalid value for argument `optimizer`: expected an optimizer that "
                "updates each weight through `update_step`. "
                f"Received: optimizer={optimizer!r}"
            )
        if getattr(core, "_kreg_hook_owner", None) is not None:
            raise ValueError(
                "Invalid value for argument `optimizer`: expected an optimizer not already "
                "wrapped by another DecoupledWeightDecay (its decay would apply twice). "
                f"Received: optimizer={optimizer!r}"
            )
        weight_decay = getattr(core, "weight_decay", None)
        if weight_decay is not None and (
            not is_number(weight_decay) or float(weight_decay) != 0.0
        ):
            raise ValueError(
                "Invalid value for argument `optimizer`: expected an optimizer without "
                "its own weight_decay (None, or 0.0 for AdamW): the decay would apply "
                "twice. Pass the decay to DecoupledWeightDecay instead. "
                f"Received: optimizer={type(core).__name__}(weight_decay={weight_decay!r})"
            )

    def _initial_learning_rate(self, value):
        received, given = value, value is not None
        if not given:
            lr = getattr(self._core, "_learning_rate", None)
            if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
                value = lr(0)
            else:
                value = self.inner_optimizer.learning_rate
            value = float(np.asarray(keras.ops.convert_to_numpy(value)))
            received = value
        elif not is_number(value):
            value = float("nan")  # reported below
        value = float(value)
        # An explicit lr_0 must be usable whatever `follow` is (RegularizationScaler's
        # "timescale" rule divides by it); a derived one only matters to "schedule".
        if (given or self.follow == "schedule") and not (math.isfinite(value) and value > 0):
            raise ValueError(
                "Invalid value for argument `initial_learning_rate`: expected a positive "
                "finite float (lr_0, the divisor of follow=\"schedule\"); the inner "
                "learning rate at step 0 is used by default. "
                f"Received: initial_learning_rate={received!r}"
            )
        return value

    # ------------------------------------------------------------------ public API

    @property
    def weight_decay(self):
        """λ as given: a float (the base value), a schedule or a callable."""
        return getattr(self, "_kreg_weight_decay", None)

    @weight_decay.setter
    def weight_decay(self, value):
        if value is None and not hasattr(self, "_kreg_weight_decay"):
            return  # keras.optimizers.Optimizer.__init__ sets weight_decay=None.
        raise AttributeError(
            "`DecoupledWeightDecay.weight_decay` is live: setting the attribute would "
            "not reach a compiled train step. Use "
            "`kreg.strengths(model)['optimizer.weight_decay'].assign(value)`."
        )

    @property
    def l1(self):
        """The base L1 strength (the live value: ``kreg.strengths(model)['optimizer.l1']``)."""
        return self._l1

    def weight_decay_multiplier(self, variable):
        """The factor on λ for ``variable``: 0.0 when excluded, else its ``multipliers`` factor.

        Args:
            variable: a Keras variable. Selection is by ``variable.path``; once the
                optimizer is built, the factor resolved then (or saved with a loaded
                model, whose weights' paths may differ) is returned.

        Returns:
            A float: 0.0 when the variable is not decayed, 1.0 by default.
        """
        chosen = self._selection_by_id.get(id(variable))
        return chosen if chosen is not None else self._matched_multiplier(variable)

    def _matched_multiplier(self, variable):
        """The multiplier ``exclude`` and ``multipliers`` give ``variable`` by its path."""
        if not self._selected_fn(variable):
            return 0.0
        for pattern, factor in self._patterns:
            if pattern.search(variable.path):
                return factor
        return 1.0

    def _resolve_selection(self, var_list):
        """``((layer/variable name, multiplier), ...)``: the patterns', or as saved.

        A model loaded from a .keras file can give its weights other paths than the model
        that was saved (a nested model's name no longer prefixes them: "encoder/e1/kernel"
        becomes "e1/kernel"), so patterns could silently select other weights after
        loading; the loaded optimizer keeps the saved selection instead, when it was
        saved for the same weights (the same layer/variable names, in the same order).
        Built for other weights (a config reused for another model), it selects anew.
        """
        tails = tuple(_path_tail(v.path) for v in var_list)
        matched = tuple(self._matched_multiplier(v) for v in var_list)
        saved = self._selection  # as loaded (from_config), or None
        if saved is None or tuple(tail for tail, _ in saved) != tails:
            return tuple(zip(tails, matched))  # none saved, or saved for other weights
        multipliers = tuple(m for _, m in saved)
        if multipliers != matched:
            changed = [v.path for v, a, b in zip(var_list, multipliers, matched) if a != b]
            warnings.warn(
                "DecoupledWeightDecay: the `exclude` and `multipliers` patterns select "
                "other weights in this model than in the one it was saved with (variable "
                f"paths change when a model is loaded), e.g. {changed[:3]}; the saved "
                "selection is kept.",
                stacklevel=3,
            )
        return saved

    def __repr__(self):
        inner = self.inner_optimizer
        learning_rate = getattr(self._core, "_learning_rate", None)
        if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            lr = type(learning_rate).__name__
        else:
            lr = f"{float(keras.ops.convert_to_numpy(inner.learning_rate)):.6g}"
        anchor = self.anchor
        if anchor is not None and not isinstance(anchor, str):
            anchor = Raw(f"[{len(anchor)} arrays]")
        values = {
            "optimizer": Raw(f"{type(inner).__name__}(learning_rate={lr})"),
            "weight_decay": self.weight_decay,
            "l1": self._l1,
            "anchor": anchor,
        }
        return call_repr(
            self,
            "kreg.optimizers.DecoupledWeightDecay",
            values=values,
            skip=("name", "initial_learning_rate"),
        )

    def _kreg_strengths(self):
        return {
            "weight_decay": Strength(
                self._strengths, 0, "weight_decay", kind="weight_decay",
                base=self._base_weight_decay,
            ),
            "l1": Strength(self._strengths, 1, "l1", kind="l1", base=self._l1),
        }

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        raise ValueError(
            "DecoupledWeightDecay selects weights with its `exclude` argument (regex "
            "patterns on `variable.path`, variables or a callable), the same on every "
            f"backend. Received: var_list={var_list!r}, var_names={var_names!r}"
        )

    # ------------------------------------------------------------------ delegation

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def loss_scale_factor(self):
        inner = getattr(self, "inner_optimizer", None)
        return getattr(self, "_own_loss_scale_factor", None) if inner is None else (
            inner.loss_scale_factor
        )

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        # LossScaleOptimizer(DecoupledWeightDecay(...)) switches the inner scaling off.
        inner = getattr(self, "inner_optimizer", None)
        if inner is None:
            self._own_loss_scale_factor = value
        else:
            inner.loss_scale_factor = value

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    @property
    def variables(self):
        return self._variables[:] + self.inner_optimizer.variables

    @property
    def _core(self):
        # A property, not an attribute: Keras saving walks optimizer attributes.
        return _core_optimizer(self.inner_optimizer)

    # ------------------------------------------------------------------ building

    def build(self, var_list):
        if self.built:
            return
        var_list = list(var_list)
        core = self._core
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(var_list)
        if self.anchor is not None and self.anchor != "initial":
            if len(self.anchor) != len(var_list) or any(
                tuple(a.shape) != tuple(v.shape) for a, v in zip(self.anchor, var_list)
            ):
                raise ValueError(
                    "Invalid value for argument `anchor`: expected one array per "
                    f"trainable variable with shapes {[tuple(v.shape) for v in var_list]}. "
                    f"Received: shapes {[tuple(a.shape) for a in self.anchor]}"
                )
        self._selection = self._resolve_selection(var_list)
        self._selection_by_id = {id(v): m for v, (_, m) in zip(var_list, self._selection)}
        multipliers, anchors = {}, {}
        for position, variable in enumerate(var_list):
            multiplier = self._selection[position][1]
            if multiplier == 0.0:
                continue
            index = core._get_variable_index(variable)
            multipliers[index] = multiplier
            if self.anchor is not None:
                value = variable if self.anchor == "initial" else self.anchor[position]
                anchors[index] = self.add_variable_from_reference(
                    variable, name="anchor", initializer=_ValueInitializer(value)
                )
        # Plain tuples, indexed by the inner optimizer's variable index.
        size = max(multipliers, default=-1) + 1
        self._index_multipliers = tuple(multipliers.get(i, 0.0) for i in range(size))
        self._index_anchors = tuple(anchors.get(i) for i in range(size))
        self._install_hook()
        super().build(var_list)

    def _install_hook(self):
        core = self._core
        owner = getattr(core, "_kreg_hook_owner", None)
        if owner == id(self):
            return
        if owner is not None:
            raise ValueError(
                "Invalid value for argument `optimizer`: expected an optimizer not already "
                "wrapped by another DecoupledWeightDecay (its decay would apply twice). "
                f"Received: optimizer={self.inner_optimizer!r}"
            )
        original = core.update_step
        wrapper = self

        def update_step(gradient, variable, learning_rate):
            return wrapper._update_step(original, gradient, variable, learning_rate)

        core.update_step = update_step
        core._kreg_hook_owner = id(self)  # an int: no reference cycle for saving to walk

    # ------------------------------------------------------------------ the step

    def _read(self, variable):
        """A variable's value; in ``stateless_apply``, the value passed in for it."""
        if self._frozen is not None:
            value = self._frozen.get(id(variable))
            if value is not None:
                return value
        return variable.value

    def _update_step(self, original, gradient, variable, learning_rate):
        self._hook_ran = True
        core = self._core
        index = core._get_variable_index(variable)
        multiplier = (
            self._index_multipliers[index] if index < len(self._index_multipliers) else 0.0
        )
        if multiplier == 0.0:
            return original(gradient, variable, learning_rate)
        anchor = self._index_anchors[index]
        reference = None if anchor is None else self._read(anchor)
        strengths = self._read(self._strengths)
        strength = strengths[0] * multiplier
        if self._schedule is not None:
            strength = strength * ops.cast(self._schedule(core.iterations), "float32")
        factor = _decay.follow_factor(self.follow, learning_rate, self.initial_learning_rate)
        if self.mode == "l2":
            gradient = _decay.l2_gradient(gradient, variable, strength, reference)
        else:
            core.assign(variable, _decay.decay(variable, strength * factor, reference))
        result = original(gradient, variable, learning_rate)
        threshold = strengths[1] * multiplier * factor

        def proximal_l1():
            core.assign(variable, _decay.soft_threshold(variable, threshold, reference))

        if keras.backend.backend() == "tensorflow":
            # A TF graph writes the variable once more even when l1 is 0: skip it then.
            # (Under jax.jit the step fuses into one elementwise update anyway, and a
            # JAX cond cannot hold an assignment.)
            ops.cond(threshold > 0, proximal_l1, lambda: None)
        else:
            proximal_l1()
        return result

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            if trainable_variables is None:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must "
                    "already be built. Call `optimizer.build(trainable_variables)` first."
                )
            trainable_variables = list(trainable_variables)
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
        if len(grads) == 0:
            return  # as keras.optimizers.Optimizer.apply: a no-op
        self._hook_ran = False
        self.inner_optimizer.apply(grads, trainable_variables)
        self._check_hook_ran()

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        if not self.built:
            raise ValueError(
                f"To call `stateless_apply`, {type(self).__name__} must be built (i.e. "
                "its variables must have been created). You can build it via "
                "`optimizer.build(trainable_variables)`."
            )
        own = len(self._variables)
        if len(optimizer_variables) != own + len(self.inner_optimizer.variables):
            raise ValueError(
                "Argument `optimizer_variables` must be a list of tensors corresponding "
                f"1:1 to {type(self).__name__}().variables. Received list with length "
                f"{len(optimizer_variables)}, but expected {len(self.variables)} variables."
            )
        own_values = [
            v.value if isinstance(v, keras.Variable) else v
            for v in optimizer_variables[:own]
        ]
        # The hook runs inside the inner optimizer's StatelessScope, which does not map
        # this wrapper's variables: it reads the values passed in from here.
        self._frozen = {id(v): value for v, value in zip(self._variables, own_values)}
        self._hook_ran = False
        try:
            new_trainable, new_inner = self.inner_optimizer.stateless_apply(
                list(optimizer_variables[own:]), grads, trainable_variables
            )
        finally:
            self._frozen = None
        self._check_hook_ran()
        return new_trainable, own_values + list(new_inner)

    def _check_hook_ran(self):
        # Only checked for a bare inner optimizer without gradient accumulation: a
        # LossScaleOptimizer skips non-finite steps, and eager gradient accumulation
        # skips the update (and the hook) on most steps.
        if (
            not self._hook_ran
            and self._core is self.inner_optimizer
            and not getattr(self._core, "gradient_accumulation_steps", None)
        ):
            raise RuntimeError(
                f"The inner optimizer {type(self._core).__name__} did not call "
                "`update_step` for its weights, so DecoupledWeightDecay cannot act "
                "on them (the inner optimizer is not supported)."
            )

    # ------------------------------------------------------------------ config

    def get_config(self):
        # Like LossScaleOptimizer: the base optimizer arguments belong to the inner one.
        weight_decay = self._kreg_weight_decay
        if isinstance(weight_decay, keras.optimizers.schedules.LearningRateSchedule):
            weight_decay = keras.optimizers.schedules.serialize(weight_decay)
        elif self._schedule is not None:
            weight_decay = keras.saving.serialize_keras_object(weight_decay)
        else:
            weight_decay = float(weight_decay)
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "weight_decay": weight_decay,
            "follow": self.follow,
            "l1": self._l1,
            # Array anchors are optimizer variables: their values come back with the
            # optimizer's state; "initial" only creates them at build time.
            "anchor": None if self.anchor is None else "initial",
            "mode": self.mode,
            "exclude": _exclude_config(self.exclude),
            "multipliers": dict(self.multipliers),
            "initial_learning_rate": self.initial_learning_rate,
            # The resolved multiplier of each trainable variable (by position, with its
            # name), so a loaded model decays the same weights whatever their paths became.
            "selection": None
            if self._selection is None
            else [[tail, multiplier] for tail, multiplier in self._selection],
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = copy.deepcopy(config)  # Keras' from_config edits nested dicts in place
        optimizer = keras.saving.deserialize_keras_object(
            config.pop("optimizer"), custom_objects=custom_objects
        )
        for key in ("weight_decay", "exclude"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        selection = config.pop("selection", None)
        instance = cls(optimizer, **config)
        if selection is not None:
            instance._selection = tuple((str(t), float(m)) for t, m in selection)
        return instance


class _ValueInitializer:
    """Initializer returning an array, or a variable's value at the time it runs.

    A variable is read lazily: on TensorFlow without a distribution strategy the
    optimizer is built inside the traced train function, and the initializer runs
    eagerly (lifted out of the graph) when the anchor variable is created.
    """

    def __init__(self, value):
        self.value = value if _is_variable(value) else np.asarray(value)

    def __call__(self, shape, dtype=None):
        # A copy: on JAX the anchor must not share the weight's buffer (the train step
        # donates both).
        return ops.copy(ops.cast(ops.convert_to_tensor(self.value), dtype))
