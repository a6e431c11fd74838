"""Decoupled weight decay, proximal L1 and decay toward reference weights, for any Keras optimizer.

:class:`DecoupledWeightDecay` is a shell around an optimizer instance, like
``keras.optimizers.LossScaleOptimizer``: it delegates ``apply`` to it, serializes it and
patches nothing. Each train step composes pure functions of :mod:`kreg._decay` over the
weights :mod:`kreg._masking` selects, as optax composes
``chain(add_decayed_weights(mask), inner)``:

1. ``mode="decoupled"``: write the decayed pre-update weight ``(1 − d_t)·θ``;
   ``mode="l2"``: add ``λ_t·θ`` to its gradient;
2. the inner optimizer's ``apply``;
3. ``l1 > 0``: write the proximal (soft-threshold) step.

The writes go through ``_Write``, a tiny Keras optimizer whose ``update_step`` writes
its weight's transform by its "gradient" (the amount), so they take Keras' own write
path on each backend (the ``tf.distribute`` merge call on TensorFlow, the stateless scope
on JAX, eager on torch). On a step where the inner optimizer leaves the weights alone (a
gradient-accumulation micro-step, a step a LossScaleOptimizer skips) the strengths are
multiplied by 0, so the step leaves θ exactly as it is, without a branch around the
write (which a ``tf.distribute`` merge call could not sit in).
"""

import copy
import inspect
import math
import weakref

import keras
import numpy as np
from keras import ops

from kreg import _decay
from kreg import _keras_compat as compat
from kreg._live import Strength, optimizer_chain
from kreg._masking import (
    _is_variable,
    check_multipliers,
    exclude_predicate,
    exclude_config,
    multiplier_fn,
    resolve_selection,
    selector,
)
from kreg._registry import export
from kreg._repr import Raw, call_repr
from kreg._validate import FLOAT32_MAX, check_choice, check_non_negative, invalid, is_number

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

# Attributes through which Keras optimizers decay weights themselves (Muon decays the
# weights it steps with Adam by `adam_weight_decay`, whatever `weight_decay` says).
_OWN_DECAYS = ("weight_decay", "adam_weight_decay")

# Each core optimizer built under a DecoupledWeightDecay -> that wrapper (weakly): a
# second wrapper around it would decay its weights twice.
_OWNERS = weakref.WeakKeyDictionary()


def _check_weight_decay(weight_decay):
    """(base float, schedule or None) from a float, a LearningRateSchedule or a callable."""
    if is_number(weight_decay):
        return check_non_negative(weight_decay, "weight_decay"), None
    if isinstance(weight_decay, keras.optimizers.schedules.LearningRateSchedule):
        return 1.0, weight_decay
    if callable(weight_decay) and not isinstance(weight_decay, (bool, type)):
        if not _takes_one_argument(weight_decay):
            # tensorflow-addons took `weight_decay=lambda: ...`; read inside a compiled
            # step such a callable would be evaluated once, when the step is traced.
            raise ValueError(
                "Invalid value for argument `weight_decay`: expected a non-negative "
                "float, a keras.optimizers.schedules.LearningRateSchedule or a callable "
                "of one argument, the step (e.g. `lambda step: 1e-4 * 0.5 ** (step / "
                "1000)`); a callable without arguments (tensorflow-addons' style) would "
                "be read once, when the train step is traced. To change λ during "
                "training, assign `kreg.strengths(model)['optimizer.weight_decay']`. "
                f"Received: weight_decay={weight_decay!r}"
            )
        return 1.0, weight_decay
    raise ValueError(
        "Invalid value for argument `weight_decay`: expected a non-negative float, a "
        "keras.optimizers.schedules.LearningRateSchedule or a callable of the step. "
        f"Received: weight_decay={weight_decay!r}"
    )


def _takes_one_argument(function):
    """True when ``function(step)`` is a valid call (or its signature cannot be read)."""
    try:
        inspect.signature(function).bind(0)
    except TypeError:
        return False
    except ValueError:  # a builtin without a readable signature: let the step tell
        return True
    return True


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


def _check_kwargs(kwargs):
    for key in kwargs:
        if key in _INNER_ONLY:
            raise ValueError(
                f"Invalid argument `{key}` for DecoupledWeightDecay: set it on the "
                f"inner optimizer. Received: {key}={kwargs[key]!r}"
            )
    if kwargs:
        raise ValueError(f"Argument(s) not recognized: {kwargs}")


def _core_optimizer(optimizer):
    """The optimizer that updates the weights: through LossScaleOptimizer-like wrappers."""
    return optimizer_chain(optimizer)[-1]


def _check_inner(optimizer):
    """Refuse an inner optimizer the wrapper cannot serve, saying what was expected."""
    if not isinstance(optimizer, keras.optimizers.Optimizer) or any(
        isinstance(link, DecoupledWeightDecay) for link in optimizer_chain(optimizer)
    ):
        refused = ("a keras.optimizers.Optimizer instance (not a DecoupledWeightDecay)",
                   repr(optimizer))
    else:
        refused = _refused_core(_core_optimizer(optimizer))
    if refused is not None:
        expected, received = refused
        raise ValueError(
            f"Invalid value for argument `optimizer`: expected {expected}. "
            f"Received: optimizer={received}"
        )


def _refused_core(core):
    """``(expected, received)`` when the optimizer that updates the weights is refused."""
    if isinstance(core, getattr(keras.optimizers, "MultiOptimizer", ())):
        return ("one optimizer for all weights (not a MultiOptimizer: the learning rate "
                "the decay follows and the optimizers' own decays differ per weight)",
                repr(core))
    if isinstance(core, getattr(keras.optimizers, "ScheduleFreeAdamW", ())):
        return ("an optimizer that steps from the weights it is given; ScheduleFreeAdamW "
                "rebuilds them from its own averaged state, so a decay written to them "
                "would land on the average, not on the iterate", repr(core))
    owner = _OWNERS.get(core)
    if owner is not None and owner() is not None:
        return ("an optimizer not already wrapped by another DecoupledWeightDecay (its "
                "decay would apply twice)", repr(core))
    for name in _OWN_DECAYS:
        value = getattr(core, name, None)
        if value is not None and (not is_number(value) or float(value) != 0.0):
            return (f"an optimizer without its own weight decay (None or 0.0 for "
                    f"{' and '.join(_OWN_DECAYS)}): the decay would apply twice. Pass the "
                    "decay to DecoupledWeightDecay instead",
                    f"{type(core).__name__}({name}={value!r})")
    return None


def _positive(value):
    value = float(np.asarray(keras.ops.convert_to_numpy(value)))
    return math.isfinite(value) and value > 0


def _no_learning_rate():
    return 0.0


class _Write(keras.optimizers.Optimizer):
    """Writes ``transform(θ, amount, θ₀)`` into a weight through Keras' own update path.

    The amount travels as the weight's "gradient", so Keras calls ``update_step`` where a
    write is legal on each backend (inside the ``tf.distribute`` merge call on
    TensorFlow, in the stateless scope on JAX), and ``update_step`` computes the new
    value there from the weight itself. Under a ``tf.distribute`` strategy Keras first
    sums the replicas' "gradients", so each replica passes its share of the amount
    (``amount/2 + amount/2`` is exact for two replicas). Keras' ``update_step`` sees the
    weight (on TensorFlow, its per-device copy) but no index of it, so ``write`` applies
    one weight at a time and holds that weight's transform and anchor meanwhile.

    >>> import keras
    >>> from kreg import _decay
    >>> w = keras.Variable([1.0, -2.0])
    >>> _Write("write").write(_decay.decay, [0.5], [w], [None])
    >>> keras.ops.convert_to_numpy(w).tolist()
    [0.5, -1.0]
    """

    def __init__(self, name):
        # A callable learning rate creates no variable: the write count is its only state.
        super().__init__(learning_rate=_no_learning_rate, name=name)
        self.calls = 0
        self._job = None

    def update_step(self, gradient, variable, learning_rate):
        self.calls += 1
        transform, reference = self._job

        def write():
            self.assign(variable, transform(variable, gradient, reference))

        if keras.backend.backend() == "tensorflow":
            # A graph skips the write of a zero amount (l1 = 0, a micro-step). Under JAX
            # a cond cannot hold an assignment (XLA fuses the no-op write instead); on
            # torch the wrapper skips zero amounts before they get here.
            ops.cond(gradient > 0, write, lambda: None)
        else:
            write()

    def write(self, transform, amounts, variables, references):
        """``variable ← transform(variable, amount, reference)`` for each weight."""
        for amount, variable, reference in zip(amounts, variables, references):
            # Under tf.distribute each replica runs this loop in its own thread, in step
            # up to the merge call: the job is the same in all, the count only grows.
            self._job, calls = (transform, reference), self.calls
            self.apply([compat.scale_for_replicas(amount)], [variable])
            if self.calls == calls:
                raise RuntimeError(
                    f"Keras did not call `update_step` of {type(self).__name__} for the "
                    f"weight {variable.path}, so DecoupledWeightDecay could not write it."
                )

    # The count of writes is no state to keep: nothing saved, so this writer adds no
    # entry to weight files (files without one load as they are).
    def save_own_variables(self, store):
        pass

    def load_own_variables(self, store):
        pass


_NOT_CHOSEN = (0.0, None)


class _Table:
    """What ``build`` resolved, per trainable variable: kept off Keras' attribute tracking
    (a list of model weights assigned to an optimizer would join its variables)."""

    def __init__(self, variables, chosen):
        self.variables = variables  # as built, in order
        self.chosen = chosen  # id(variable) -> (multiplier, anchor variable or None)


@export
class DecoupledWeightDecay(keras.optimizers.Optimizer):
    """Decoupled weight decay, proximal L1 and decay toward reference weights for any optimizer.

    Wraps a Keras optimizer instance (SGD, Adam, RMSprop, Adagrad, Adamax, Nadam, Lion,
    Adafactor, AdamW or Muon with their own decay set to 0, custom subclasses, or a
    ``LossScaleOptimizer`` around one) and is itself an optimizer for ``model.compile``.
    At each update step, for each selected weight θ:

    * ``mode="decoupled"``: ``θ ← θ − d_t·θ`` on the pre-update weight, then the inner
      update. With a zero gradient one step gives exactly ``(1 − d_t)·θ``.
    * ``mode="l2"``: the classic coupled L2: ``λ_t·θ`` is added to θ's gradient before
      the inner optimizer sees it. λ·θ is the gradient of ``(λ/2)·‖θ‖²``, so this equals
      the penalty ``kreg.regularizers.L2(λ / 2)`` (or ``keras.regularizers.L2(λ / 2)``)
      in the loss, without building a loss term; like the penalty's gradient it is
      clipped by the inner ``clipnorm``/``clipvalue``. ``follow`` does not apply to it
      (the inner learning rate already scales the gradient).
    * ``l1 > 0``: after the inner update, ``θ ← sign(θ)·max(|θ| − f_t·l1, 0)`` (a
      proximal step: weights reach exactly zero). The inner optimizer's EMA averages the
      weights before this step.

    with ``d_t = λ_t · m · f_t`` where ``m`` is the weight's multiplier and ``f_t`` is
    ``lr_t`` (``follow="learning_rate"``, the default), ``lr_t / lr_0``
    (``"schedule"``, the paper's η_t) or 1 (``"none"``, as tensorflow-addons). ``lr_t``
    is the inner learning rate at this step and ``lr_0`` (``initial_learning_rate``) its
    value at the first step. With ``anchor`` every step acts on ``θ − θ₀`` instead of θ
    (decoupled L2-SP): ``θ ← θ − d_t·(θ − θ₀)``.

    The default decays as ``keras.optimizers.AdamW(lr, weight_decay=λ)``,
    ``torch.optim.AdamW(lr=lr, weight_decay=λ)`` and ``optax.adamw(lr, weight_decay=λ)``
    do: by ``lr_t·λ`` per step, so their values carry over unchanged
    (``DecoupledWeightDecay(keras.optimizers.Adam(1e-3), 0.01)`` takes the same steps as
    ``AdamW(1e-3, weight_decay=0.01)``). The paper's Algorithm 2 (AdamW), whose λ is a
    decay per step at the initial learning rate, is ``follow="schedule"``.

    Strengths are live: ``kreg.strengths(model)`` lists ``"optimizer.weight_decay"`` and
    ``"optimizer.l1"``; assigning them (e.g. from a callback) changes the next train step
    without recompiling. When ``weight_decay`` is a schedule or a callable,
    ``λ_t = s · weight_decay(step)`` where ``step`` is the inner optimizer's
    ``iterations`` (update steps) and the live strength ``s`` is a scale on the schedule
    (base 1.0).

    By default biases, normalization parameters and all weights of rank ≤ 1 are not
    decayed. Selection is by ``variable.path`` (the same on every backend); the selection
    is saved with the model, so a loaded model decays the same weights even where loading
    changed their paths (nested models' weights lose their model's name).

    A gradient-accumulation micro-step, or a step a LossScaleOptimizer skips (either
    nesting), decays nothing. The decay and L1 steps are written like the inner update
    (weight constraints run after each write). Backends: TensorFlow
    (``tf.distribute.MirroredStrategy`` and XLA included), JAX and torch.

    Args:
        optimizer: the inner ``keras.optimizers.Optimizer`` instance. Its own weight
            decay (``weight_decay``, Muon's ``adam_weight_decay``) must be unset (None or
            0): the decay would apply twice. ScheduleFreeAdamW and MultiOptimizer are
            refused. Put ``clipnorm``, ``gradient_accumulation_steps``, ``use_ema`` ...
            on it. It may be a ``LossScaleOptimizer``; then compile with
            ``auto_scale_loss=False`` under "mixed_float16", or Keras adds a second one
            around the wrapper (the default ``compile`` wrapping,
            ``LossScaleOptimizer(DecoupledWeightDecay(...))``, works as is).
        weight_decay: λ: a non-negative float, a
            ``keras.optimizers.schedules.LearningRateSchedule`` or a callable of one
            argument, the step, returning λ_t (a callable without arguments, as
            tensorflow-addons took, is refused: a compiled step would read it once). A
            schedule's Python number is checked as λ is; a tensor that is NaN or inf
            inside a compiled step decays nothing at that step.
        follow: what the decay is multiplied by: "learning_rate" (default, as Keras,
            PyTorch and optax), "schedule" (the paper's η_t = lr_t / lr_0) or "none"
            (see above).
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
            A pattern overrides the default exclusion (``{"bias": 1.0}`` decays biases),
            not ``exclude``.
        initial_learning_rate: lr_0 for ``follow="schedule"``. Default: the inner
            learning rate at the first step (a callback that sets the learning rate
            before training starts sets lr_0 too); required for a learning-rate
            schedule that starts at 0 (a warm-up: set it to the peak).
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
        follow="learning_rate",
        l1=0.0,
        anchor=None,
        mode="decoupled",
        exclude=None,
        multipliers=None,
        initial_learning_rate=None,
        name=None,
        **kwargs,
    ):
        _check_kwargs(kwargs)
        _check_inner(optimizer)
        base_weight_decay, schedule = _check_weight_decay(weight_decay)
        follow = check_choice(follow, "follow", _decay.FOLLOW)
        mode = check_choice(mode, "mode", _MODES)
        l1 = check_non_negative(0.0 if l1 is None else l1, "l1")
        anchor = _check_anchor(anchor)
        multipliers = check_multipliers(multipliers)
        selected = selector(exclude, argument="exclude")

        super().__init__(learning_rate=0.0, name=name)
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
        self.exclude = exclude if callable(exclude) else exclude_config(exclude)
        self.multipliers = multipliers
        self._factor = multiplier_fn(selected, multipliers, exclude_predicate(exclude))
        # ((layer/variable name, multiplier), ...) as resolved by build(), or as loaded.
        self._selection = None
        self._table = _Table([], {})
        self._given_initial_learning_rate = self._check_initial_learning_rate(
            initial_learning_rate
        )
        # The live strengths: [λ (or the scale on the schedule), l1].
        self._strengths = self.add_variable(
            shape=(2,),
            initializer=keras.initializers.Constant([base_weight_decay, l1]),
            dtype="float32",
            aggregation="only_first_replica",
            name="kreg_strengths",
        )
        # lr_0 of follow="schedule" when not given: the inner learning rate at the first
        # step, recorded then (0 until then), so that a callback setting the learning
        # rate before training starts sets lr_0 too. Saved with the optimizer's state.
        self._recorded_initial_learning_rate = self.add_variable(
            shape=(),
            initializer="zeros",
            dtype="float32",
            aggregation="only_first_replica",
            name="kreg_initial_learning_rate",
        )
        self._writer = _Write(name=f"{self.name}_write")

    def _check_initial_learning_rate(self, value):
        """lr_0 as given (a positive float), or None: read at the first step."""
        if value is None:
            schedule = compat.learning_rate_schedule(self._core)
            if self.follow == "schedule" and schedule is not None and not _positive(schedule(0)):
                raise ValueError(
                    "Invalid value for argument `initial_learning_rate`: expected a "
                    "positive finite float (lr_0, the divisor of follow=\"schedule\"), "
                    "as the inner learning-rate schedule starts at 0 (a warm-up): set it "
                    "to the schedule's peak. Received: initial_learning_rate=None"
                )
            return None
        # An explicit lr_0 must be usable whatever `follow` is (RegularizationScaler's
        # "timescale" rule divides by it).
        if not (is_number(value) and _positive(value)):
            raise ValueError(
                "Invalid value for argument `initial_learning_rate`: expected a positive "
                "finite float (lr_0, the divisor of follow=\"schedule\"), or None for "
                "the inner learning rate at the first step. "
                f"Received: initial_learning_rate={value!r}"
            )
        return float(value)

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
    def initial_learning_rate(self):
        """lr_0, the divisor of ``follow="schedule"``, as a Python float.

        As given; else the inner learning rate at the first step once a step has run
        (that of a loaded optimizer's saved state included); before that, the learning
        rate that the first step would read now (a schedule's value at step 0).
        """
        if self._given_initial_learning_rate is not None:
            return self._given_initial_learning_rate
        recorded = float(keras.ops.convert_to_numpy(self._recorded_initial_learning_rate))
        if recorded > 0:
            return recorded
        schedule = compat.learning_rate_schedule(self._core)
        value = schedule(0) if schedule is not None else self.inner_optimizer.learning_rate
        return float(np.asarray(keras.ops.convert_to_numpy(value)))

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
        chosen = self._table.chosen.get(id(variable))
        return chosen[0] if chosen is not None else self._factor(variable)

    def __repr__(self):
        inner = self.inner_optimizer
        schedule = compat.learning_rate_schedule(self._core)
        if schedule is not None:
            lr = type(schedule).__name__
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
        # The writer's count of writes is left out: no state, and the saved layout
        # (own variables, then the inner optimizer's) stays that of earlier versions.
        return super().variables + self.inner_optimizer.variables

    @property
    def _core(self):
        # A property, not an attribute: Keras saving walks optimizer attributes.
        return _core_optimizer(self.inner_optimizer)

    # ------------------------------------------------------------------ building

    def build(self, var_list):
        if self.built:
            return
        var_list = list(var_list)
        self._claim_core()
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(var_list)
        self._check_anchor_shapes(var_list)
        self._selection = resolve_selection(var_list, self._factor, self._selection)
        chosen = {}
        for position, (variable, (_, multiplier)) in enumerate(zip(var_list, self._selection)):
            anchor = None
            if multiplier != 0.0 and self.anchor is not None:
                value = variable if self.anchor == "initial" else self.anchor[position]
                anchor = self.add_variable_from_reference(
                    variable, name="anchor", initializer=_ValueInitializer(value)
                )
            chosen[id(variable)] = (multiplier, anchor)
        self._table = _Table(var_list, chosen)
        self._writer.build([v for v in var_list if chosen[id(v)][0] != 0.0])
        super().build(var_list)

    def _claim_core(self):
        core = self._core
        owner = _OWNERS.get(core)
        if owner is not None and owner() not in (None, self):
            raise ValueError(
                "Invalid value for argument `optimizer`: expected an optimizer not already "
                "wrapped by another DecoupledWeightDecay (its decay would apply twice). "
                f"Received: optimizer={self.inner_optimizer!r}"
            )
        _OWNERS[core] = weakref.ref(self)

    def _check_anchor_shapes(self, var_list):
        if self.anchor is None or self.anchor == "initial":
            return
        if len(self.anchor) != len(var_list) or any(
            tuple(a.shape) != tuple(v.shape) for a, v in zip(self.anchor, var_list)
        ):
            raise ValueError(
                "Invalid value for argument `anchor`: expected one array per "
                f"trainable variable with shapes {[tuple(v.shape) for v in var_list]}. "
                f"Received: shapes {[tuple(a.shape) for a in self.anchor]}"
            )

    # ------------------------------------------------------------------ the step

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
        grads = list(grads)
        variables = list(trainable_variables or self._table.variables)
        if len(grads) != len(variables):
            # zip would pair the first gradients with the first variables and leave the
            # rest alone, silently.
            raise ValueError(
                "Invalid value for argument `grads`: expected one gradient (or None) per "
                f"variable, {len(variables)} in all. Received: {len(grads)} gradients"
            )
        # (θ, m, θ₀) of each selected weight with a gradient (the inner optimizer skips
        # the others, and so does the decay).
        rows = [
            (v, *self._table.chosen.get(id(v), _NOT_CHOSEN))
            for v, g in zip(variables, grads)
            if g is not None
        ]
        chosen = [row for row in rows if row[1] != 0.0]
        weight_decay, l1, factor, gate = self._step_strengths(grads)
        if self.mode == "l2":
            grads = self._add_l2(grads, variables, weight_decay)
        else:
            self._write(_decay.decay, chosen, weight_decay * factor, gate)
        self._apply_inner(grads, variables)
        self._write(_decay.soft_threshold, chosen, l1 * factor, gate)

    def _step_strengths(self, grads):
        """``(λ_t, l1, f_t, gate)`` of this step, read before the inner optimizer steps."""
        strengths = ops.convert_to_tensor(self._strengths)
        weight_decay = strengths[0]
        if self._schedule is not None:
            weight_decay = weight_decay * self._scheduled_weight_decay()
        learning_rate = self.inner_optimizer.learning_rate
        initial = None
        if self.follow == "schedule":
            initial = self._given_initial_learning_rate
            if initial is None:
                initial = self._step_initial_learning_rate(learning_rate)
        factor = _decay.follow_factor(self.follow, learning_rate, initial)
        return weight_decay, strengths[1], factor, self._gate(grads)

    def _step_initial_learning_rate(self, learning_rate):
        """lr_0 inside the step: the recorded one, or this step's learning rate, recorded.

        Written at every step (the same value once recorded), which a compiled step
        does without a branch; until a step has a positive learning rate nothing is
        recorded, so lr_0 is the first positive one.
        """
        recorded = ops.convert_to_tensor(self._recorded_initial_learning_rate)
        initial = ops.where(recorded > 0, recorded, ops.cast(learning_rate, "float32"))
        self._recorded_initial_learning_rate.assign(initial)
        return initial

    def _scheduled_weight_decay(self):
        """The schedule's λ_t factor at this step, as a finite float32 tensor.

        A Python number is checked where it is produced; a tensor cannot be inside a
        compiled step, so a non-finite one decays nothing at that step (the weights stay
        finite, and the schedule is the user's to fix).
        """
        value = self._schedule(self._core.iterations)
        if is_number(value):
            if not (math.isfinite(value) and 0 <= value <= FLOAT32_MAX):
                raise invalid(
                    "weight_decay",
                    "a schedule returning finite floats >= 0",
                    value,
                    f"{value!r} from weight_decay={self._schedule!r}",
                )
            return ops.convert_to_tensor(float(value), "float32")
        value = ops.cast(value, "float32")
        return ops.where(ops.isfinite(value), value, ops.zeros_like(value))

    def _gate(self, grads):
        """1.0 when the inner optimizer updates the weights at this step, else 0.0.

        None when it always does. Multiplying the strengths by it makes a skipped step
        write back θ exactly ((1 − 0)·θ, a threshold of 0) without a branch, which a
        ``tf.distribute`` merge call could not sit in.
        """
        gate = None
        core = self._core
        steps = core.gradient_accumulation_steps
        if steps:
            gate = ops.cast(ops.equal(ops.mod(compat.micro_step(core) + 1, steps), 0), "float32")
        for link in optimizer_chain(self.inner_optimizer):
            if isinstance(link, keras.optimizers.LossScaleOptimizer):
                finite = ops.cast(link.check_finite(grads), "float32")
                gate = finite if gate is None else gate * finite
        return gate

    def _add_l2(self, grads, variables, weight_decay):
        """``g + λ_t·m·(θ − θ₀)`` for the selected weights, at the scale of the incoming
        gradients: a loss scale inside the wrapper divides it out again, and under a
        ``tf.distribute`` strategy the replicas' gradients are summed (each adds its share).
        """
        weight_decay = compat.scale_for_replicas(weight_decay)
        scale = None
        for link in optimizer_chain(self.inner_optimizer):
            if isinstance(link, keras.optimizers.LossScaleOptimizer):
                factor = ops.cast(link.dynamic_scale, "float32")
            elif link.loss_scale_factor is not None:
                factor = link.loss_scale_factor
            else:
                continue
            scale = factor if scale is None else scale * factor
        added = []
        for g, v in zip(grads, variables):
            multiplier, anchor = self._table.chosen.get(id(v), _NOT_CHOSEN)
            if g is not None and multiplier != 0.0:
                strength = weight_decay * multiplier
                strength = strength if scale is None else strength * scale
                g = _decay.l2_gradient(g, v, strength, anchor)
            added.append(g)
        return added

    def _write(self, transform, chosen, strength, gate):
        """Write ``transform(θ, strength·m·gate, θ₀)`` into each chosen weight θ."""
        if gate is not None:
            strength = strength * gate
        if keras.backend.backend() == "torch" and not float(strength):
            # torch runs eagerly: a step with nothing to decay (l1 = 0, a skipped step)
            # writes nothing. A TF graph cannot branch around a tf.distribute write, and
            # XLA fuses the no-op write into the update.
            return
        self._writer.write(
            transform,
            [strength * m for _, m, _ in chosen],
            [v for v, _, _ in chosen],
            [anchor for _, _, anchor in chosen],
        )

    def _apply_inner(self, grads, variables):
        inner = self.inner_optimizer
        if keras.backend.backend() != "jax":
            inner.apply(grads, variables)
            return
        # On JAX the stateless path is the traceable one (LossScaleOptimizer's `apply`
        # assigns inside a cond); inside our own stateless scope the new values are
        # assigned there, eagerly they are written.
        state = inner.variables
        new_values, new_state = inner.stateless_apply(
            [v.value for v in state], grads, [v.value for v in variables]
        )
        for variable, value in zip(variables + state, new_values + new_state):
            variable.assign(value)

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
            "exclude": exclude_config(self.exclude),
            "multipliers": dict(self.multipliers),
            "initial_learning_rate": self._given_initial_learning_rate,
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
