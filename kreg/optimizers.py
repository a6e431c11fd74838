"""Decoupled weight decay, cautious decay, proximal L1 and decay toward reference weights, for
any Keras optimizer.

:class:`DecoupledWeightDecay` is a shell around an optimizer instance, like
``keras.optimizers.LossScaleOptimizer``: it delegates ``apply`` to it, serializes it and
patches nothing. Its step is data, as optax composes ``chain(add_decayed_weights(mask),
inner)``: a tuple of per-weight transforms built once from its arguments
(:mod:`kreg._steps`: a stage, a pure function of :mod:`kreg._decay`, a strength name),
run around the inner optimizer's ``apply`` over the weights :mod:`kreg._selection`
resolves, written through :mod:`kreg._write`.

Details the class docstring leaves out:

* Selection is by ``variable.path`` (the same on every backend); the resolved selection
  is saved with the model, so a loaded model decays the same weights even where loading
  changed their paths (nested models' weights lose their model's name).
* A gradient-accumulation micro-step, or a step a LossScaleOptimizer skips (either
  nesting), decays nothing: the strengths are multiplied by 0 at such a step, which
  leaves θ exactly as it is without a branch around the write (which a ``tf.distribute``
  merge call could not sit in).
* The decay and L1 steps are written like the inner update (weight constraints run after
  each write); the inner optimizer's EMA averages the weights before the L1 step.
* ``mode="l2"`` adds λ_t·θ to the gradient, the gradient of ``(λ/2)·‖θ‖²``: it equals the
  penalty ``kreg.regularizers.L2(λ / 2)`` in the loss, clipped like it by the inner
  ``clipnorm``/``clipvalue``; ``follow`` does not apply to it (the inner learning rate
  already scales a gradient).
* Backends: TensorFlow (``tf.distribute.MirroredStrategy`` and XLA included), JAX and
  torch. On torch a plain decay multiplies the weights in place in one batched call.
"""

import copy
import weakref

import keras
import numpy as np
from keras import ops

from kreg import _decay, _steps
from kreg import _keras_compat as compat
from kreg._learning_rates import LearningRates
from kreg._masking import _is_variable, check_multipliers, exclude_config
from kreg._registry import export
from kreg._repr import Raw, call_repr
from kreg._schedules import learning_rate_at
from kreg._selection import Selection
from kreg._strength import VariableStrengths, record
from kreg._validate import (
    check_anchor,
    check_anchor_shapes,
    check_cautious,
    check_choice,
    check_inner_optimizer,
    check_non_negative,
    check_weight_decay,
    check_wrapper_kwargs,
    invalid,
)
from kreg._walk import optimizer_chain, updating_optimizer
from kreg._write import Writer

_MODES = ("decoupled", "l2")

# The optimizer that updates under each DecoupledWeightDecay -> that wrapper (weakly): a
# second wrapper around it would decay its weights twice.
_OWNERS = weakref.WeakKeyDictionary()


def _owner(core):
    """The DecoupledWeightDecay already around ``core``, or None (also for a non-optimizer)."""
    owner = _OWNERS.get(core) if isinstance(core, keras.optimizers.Optimizer) else None
    return None if owner is None else owner()


@export
class DecoupledWeightDecay(keras.optimizers.Optimizer, VariableStrengths):
    """Decoupled weight decay, cautious decay, proximal L1 and decay toward reference weights.

    Wraps a Keras optimizer instance (SGD, Adam, RMSprop, Adagrad, Adamax, Nadam, Lion,
    Adafactor, AdamW or Muon with their own decay set to 0, custom subclasses, or a
    ``LossScaleOptimizer`` around one) and is itself an optimizer for ``model.compile``.
    At each update step, for each selected weight θ (by default every weight of rank ≥ 2
    outside normalization layers):

    * ``mode="decoupled"``: ``θ ← θ − d_t·θ`` on the pre-update weight, then the inner
      update; ``cautious=True`` (Chen et al. 2025) decays only the coordinates where the
      inner update u_t moves θ toward zero too (𝕀(u_t·θ_t ≥ 0)), for any inner optimizer;
    * ``mode="l2"``: the coupled L2 term ``λ_t·θ`` added to the gradient instead;
    * ``l1 > 0``: after the inner update, ``θ ← sign(θ)·max(|θ| − f_t·l1, 0)`` (weights
      reach exactly zero).

    ``d_t = λ_t·m·f_t`` (:meth:`decay_per_step`), m the weight's multiplier and f_t, by
    ``follow``: ``lr_t`` ("learning_rate", the default: the steps of Keras' ``AdamW``,
    ``torch.optim.AdamW`` and ``optax.adamw`` for the same numbers), ``lr_t / lr_0``
    ("schedule": the paper's η_t, λ a decay per step at the first learning rate),
    ``lr_t² / lr_max`` ("corrected", Defazio et al. 2025: timm's
    ``corrected_weight_decay``) or 1 ("none", as tensorflow-addons). With ``anchor``
    each step acts on ``θ − θ₀`` (decoupled L2-SP). Strengths are live:
    ``kreg.strengths(model)`` lists ``"optimizer.weight_decay"`` (a scale on λ when
    ``weight_decay`` is a schedule) and ``"optimizer.l1"``.

    Args:
        optimizer: the inner ``keras.optimizers.Optimizer``, without a decay of its own
            (``weight_decay``, Muon's ``adam_weight_decay`` None or 0); not a
            ScheduleFreeAdamW or MultiOptimizer. Put ``clipnorm``,
            ``gradient_accumulation_steps``, ``use_ema`` ... on it. Under
            "mixed_float16" a ``LossScaleOptimizer`` inside needs ``compile(...,
            auto_scale_loss=False)``; the default (``compile`` wrapping this one) works.
        weight_decay: λ: a float ≥ 0, a ``LearningRateSchedule`` or a callable of the step
            (not one without arguments: a compiled step would read it once). A
            schedule's non-finite tensor decays nothing at that step.
        follow: "learning_rate" (default), "schedule", "corrected" or "none".
        l1: strength of the proximal L1 step (default 0).
        anchor: None (toward zero), "initial" (the weights when the optimizer is built)
            or one array per trainable variable; anchors are optimizer variables.
        mode: "decoupled" (default) or "l2".
        cautious: decay only where the inner update agrees in sign (default False).
        exclude: more weights not to decay: a callable ``(variable) -> bool``, a regex
            searched in ``variable.path``, or a list of regexes and variables.
        multipliers: regex on ``variable.path`` -> factor on λ and l1 (the first match;
            ``{"bias": 1.0}`` decays biases; ``exclude`` still wins).
        initial_learning_rate: lr_0 of "schedule"; default the inner learning rate at
            the first step; required for a schedule starting at 0 (give its peak).
        peak_learning_rate: lr_max of "corrected"; default a schedule's peak, else the
            largest learning rate met.
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
    >>> round(opt.decay_per_step(model.layers[0].kernel), 8)  # lr·λ, as Keras' AdamW
    1e-05

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019. Chen et
        al., "Cautious Weight Decay", arXiv 2510.12402, 2025. Defazio et al., "Why
        Gradients Rapidly Increase Near the End of Training", arXiv 2506.02285, 2025.
        Duchi & Singer, FOBOS, JMLR 2009. Li, Grandvalet & Davoine, L2-SP, ICML 2018.
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
        cautious=False,
        exclude=None,
        multipliers=None,
        initial_learning_rate=None,
        peak_learning_rate=None,
        name=None,
        **kwargs,
    ):
        check_wrapper_kwargs(kwargs)
        chain = optimizer_chain(optimizer)
        check_inner_optimizer(optimizer, chain, DecoupledWeightDecay, _owner(chain[-1]))
        base_weight_decay, schedule = check_weight_decay(weight_decay)
        follow = check_choice(follow, "follow", _decay.FOLLOW)
        mode = check_choice(mode, "mode", _MODES)
        cautious = check_cautious(cautious, mode)
        l1 = check_non_negative(0.0 if l1 is None else l1, "l1")
        anchor = check_anchor(anchor)
        multipliers = check_multipliers(multipliers)
        selection = Selection(exclude, multipliers)
        learning_rates = LearningRates(initial_learning_rate, peak_learning_rate, follow, chain[-1])

        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = optimizer
        self.follow, self.mode, self.cautious = follow, mode, cautious
        self.anchor, self.multipliers = anchor, multipliers
        self._kreg_weight_decay, self._schedule = weight_decay, schedule
        # Variables in `exclude` become exact patterns on their paths (the same
        # selection): an optimizer attribute holding variables would track them.
        self.exclude = exclude if callable(exclude) else exclude_config(exclude)
        self._decayed = selection
        self._steps = _steps.transforms(mode, cautious)
        self._records = {
            "weight_decay": record("weight_decay", "weight_decay", base_weight_decay),
            "l1": record("l1", "l1", l1),
        }
        # The live strengths, in the order of _records.
        self._strengths = self.add_variable(
            shape=(len(self._records),),
            initializer=keras.initializers.Constant([r.base for r in self._records.values()]),
            dtype="float32",
            aggregation="only_first_replica",
            name="kreg_strengths",
        )
        self._learning_rates = learning_rates
        learning_rates.recorded = self.add_variable(
            shape=(2,),
            initializer="zeros",
            dtype="float32",
            aggregation="only_first_replica",
            name="kreg_learning_rates",
        )
        self._writer = Writer(name=f"{self.name}_write")

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
        return self._records["l1"].base

    @property
    def initial_learning_rate(self):
        """lr_0, the divisor of ``follow="schedule"``: as given; else the inner learning rate
        at the first step (before one, what it would read now)."""
        return self._learning_rates.initial(self._core)

    @property
    def peak_learning_rate(self):
        """lr_max, the divisor of ``follow="corrected"``: as given; else a learning-rate
        schedule's peak; else the largest learning rate a step has had."""
        return self._learning_rates.peak(self._core)

    def weight_decay_multiplier(self, variable):
        """The factor on λ for ``variable`` (0.0: not decayed; 1.0 by default), by its path;
        once built, as resolved then (or as saved with a loaded model)."""
        return self._decayed.multiplier(variable)

    def decay_per_step(self, variable=None, *, step=None, learning_rate=None, weight_decay=None):
        """The fraction of a weight that one decoupled decay step removes: ``d_t = λ_t·f_t·m``.

        The one answer to "how much decays at this step" in kreg: the monitor's decay
        timescale, the scaler's "timescale" rule and the audit read it. Computed on the
        host from the live strength (λ, times the weight-decay schedule at ``step``), the
        ``follow`` factor f_t at the learning rate of ``step`` and the weight's
        multiplier m. With ``cautious=True`` it is what an aligned coordinate loses (the
        others lose nothing); with ``anchor``, the fraction of θ − θ₀.

        Args:
            variable: a weight (its multiplier m; 0.0 when not decayed), or None for
                m = 1.
            step: the update step; default the inner optimizer's ``iterations``.
            learning_rate: lr_t to use instead of the inner learning rate at ``step``
                (e.g. a schedule's peak).
            weight_decay: λ (the scale on a λ schedule) to use instead of the live
                strength (e.g. 1.0, for the decay per unit of λ).

        Returns:
            A Python float, or None with ``mode="l2"`` (the L2 term is a gradient, which
            the inner optimizer scales by its own rule, not a fraction of θ).
        """
        if self.mode != "decoupled":
            return None
        core = self._core
        if step is None:
            step = int(keras.ops.convert_to_numpy(core.iterations))
        if weight_decay is None:
            weight_decay = self.read_strength("weight_decay")
        if self._schedule is not None:
            weight_decay *= float(keras.ops.convert_to_numpy(self._schedule(step)))
        if learning_rate is None:
            learning_rate = learning_rate_at(core, step)
        factor = _decay.follow_factor(
            self.follow, learning_rate, self.initial_learning_rate, self.peak_learning_rate
        )
        multiplier = 1.0 if variable is None else self.weight_decay_multiplier(variable)
        return weight_decay * float(keras.ops.convert_to_numpy(factor)) * multiplier

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
            "l1": self.l1,
            "anchor": anchor,
        }
        return call_repr(
            self,
            "kreg.optimizers.DecoupledWeightDecay",
            values=values,
            skip=("name", "initial_learning_rate", "peak_learning_rate"),
        )

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
        if inner is None:  # Optimizer.__init__ sets it before the inner one is known
            return getattr(self, "_own_loss_scale_factor", None)
        return inner.loss_scale_factor

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
        # The writer's count of writes is left out: no state to keep.
        return super().variables + self.inner_optimizer.variables

    @property
    def _core(self):
        # A property, not an attribute: Keras saving walks optimizer attributes.
        return updating_optimizer(self.inner_optimizer)

    # ------------------------------------------------------------------ building

    def build(self, var_list):
        if self.built:
            return
        var_list = list(var_list)
        self._claim_core()
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(var_list)
        check_anchor_shapes(self.anchor, var_list)

        def make_anchor(variable, value):
            return self.add_variable_from_reference(
                variable, name="anchor", initializer=_ValueInitializer(value)
            )

        self._writer.build(self._decayed.build(var_list, self.anchor, make_anchor))
        super().build(var_list)

    def _claim_core(self):
        core = self._core
        if _owner(core) not in (None, self):
            raise invalid(
                "optimizer",
                "an optimizer not already wrapped by another DecoupledWeightDecay (its "
                "decay would apply twice)",
                self.inner_optimizer,
            )
        _OWNERS[core] = weakref.ref(self)

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
        variables = list(trainable_variables or self._decayed.variables)
        if len(grads) != len(variables):
            # zip would pair the first gradients with the first variables and leave the
            # rest alone, silently.
            raise ValueError(
                "Invalid value for argument `grads`: expected one gradient (or None) per "
                f"variable, {len(variables)} in all. Received: {len(grads)} gradients"
            )
        indexed = self._decayed.rows(grads, variables)
        rows = [(variable, multiplier, anchor) for _, variable, multiplier, anchor in indexed]
        amounts = self._amounts(grads)
        for step in _steps.stage(self._steps, "gradient"):
            grads = _steps.add_to_gradients(step, grads, indexed, amounts[step.strength])
        reads_before = any(step.reads_before for step in self._steps)
        before = [ops.copy(v.value) for v, _, _ in rows] if reads_before else [None] * len(rows)
        for step in _steps.stage(self._steps, "before"):
            self._write(step, rows, amounts[step.strength], before)
        _steps.apply_inner(self.inner_optimizer, grads, variables)
        for step in _steps.stage(self._steps, "after"):
            self._write(step, rows, amounts[step.strength], before)

    def _amounts(self, grads):
        """``{strength name: amount}`` of this step, read before the inner optimizer steps.

        "weight_decay" and "l1" are λ_t·f_t and l1·f_t, gated (0 on a step the inner
        optimizer skips); "l2" is λ_t at the scale of the incoming gradients.
        """
        strengths = self.strength_tensors()
        weight_decay, l1 = strengths["weight_decay"], strengths["l1"]
        if self._schedule is not None:
            weight_decay = weight_decay * _steps.scheduled(self._schedule, self._core.iterations)
        factor = _decay.follow_factor(
            self.follow,
            self.inner_optimizer.learning_rate,
            *self._learning_rates.in_step(self.follow, self._core),
        )
        gate = _steps.gate(self.inner_optimizer, grads)
        if gate is not None:
            factor = factor * gate
        if self.mode == "l2":  # follow applies to the L1 step only
            scaled = _steps.gradient_scale(self.inner_optimizer, weight_decay)
            return {"l2": scaled, "l1": l1 * factor}
        return {"weight_decay": weight_decay * factor, "l1": l1 * factor}

    def _write(self, step, rows, amount, before):
        """Write ``step.function(θ, amount·m, θ₀, θ before the step)`` into each row's θ."""
        if keras.backend.backend() == "torch" and not float(amount):
            # torch runs eagerly: a step with nothing to write (l1 = 0, a skipped step)
            # writes nothing. A TF graph cannot branch around a tf.distribute write, and
            # XLA fuses the no-op write into the update.
            return
        self._writer.write(
            step.function,
            amount,
            [
                (variable, multiplier, anchor, previous)
                for (variable, multiplier, anchor), previous in zip(rows, before)
            ],
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
        initial, peak = self._learning_rates.given
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "weight_decay": weight_decay,
            "follow": self.follow,
            "l1": self.l1,
            # Array anchors are optimizer variables: their values come back with the
            # optimizer's state; "initial" only creates them at build time.
            "anchor": None if self.anchor is None else "initial",
            "mode": self.mode,
            "cautious": self.cautious,
            "exclude": exclude_config(self.exclude),
            "multipliers": dict(self.multipliers),
            "initial_learning_rate": initial,
            "peak_learning_rate": peak,
            # The resolved multiplier of each trainable variable (by position, with its
            # name), so a loaded model decays the same weights whatever their paths became.
            "selection": self._decayed.config(),
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
        instance._decayed.restore(selection)
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
