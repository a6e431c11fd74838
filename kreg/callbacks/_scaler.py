"""RegularizationScaler: set live strengths before each batch from a rule (λ-per-batch scaling)."""

import fnmatch
import math
import warnings

import keras
import numpy as np

from kreg._live import is_live
from kreg._live import strengths as live_strengths
from kreg._registry import export
from kreg._repr import call_repr
from kreg._validate import check_count as _check_count
from kreg._validate import check_verbose
from kreg._walk import accumulation_steps, find_in_chain, optimizer_chain, walk_layers
from kreg.optimizers import DecoupledWeightDecay

RULES = ("minibatch", "normalized", "timescale")

#: Target keywords that select strengths by kind.
#: The kinds that targets=None scales: penalty strengths (λ), not rates or σ.
PENALTY_KINDS = ("regularizer", "weight_decay", "l1")

KINDS = {
    "regularizers": "regularizer",
    "regularizer": "regularizer",
    "weight_decay": "weight_decay",
    "l1": "l1",
    "noise": "noise",
    "dropout": "dropout",
}

#: Loss reductions: "sum" adds the per-example losses, "mean" averages them.
REDUCTIONS = {"sum": "sum", "sum_over_batch_size": "mean", "mean": "mean"}

#: What each built-in rule needs to know, in the order it is checked; "minibatch" also
#: needs b when the loss sums over the batch. A callable rule gets None for the unknown.
REQUIRES = {
    "minibatch": ("num_examples",),
    "normalized": ("batch_size", "num_examples", "epochs"),
    "timescale": ("steps",),
}

_NEEDS_DECOUPLED = "rule='timescale' needs a kreg.optimizers.DecoupledWeightDecay."

#: For each requirement: what could not be determined, and what to do about it.
UNKNOWN = {
    "batch_size": (
        "the batch size b",
        "`fit` does not report the batch size; pass batch_size=... (the batch size given to fit).",
    ),
    "num_examples": (
        "the number of training examples N",
        "`fit` does not report the number of training examples; pass num_examples=....",
    ),
    "epochs": ("the number of epochs T", "pass epochs=...."),
    "steps": (
        "the steps per epoch",
        "`fit` does not know them (data of unknown length); pass batch_size= "
        "and num_examples=, or steps_per_epoch to fit.",
    ),
    "weight_decay": ("the weight decay to set", _NEEDS_DECOUPLED),
    "optimizer": ("the decay rule of the optimizer", _NEEDS_DECOUPLED),
}


# ----------------------------------------------------------------- pure rules
def minibatch_value(base, batch_size, num_examples, reduction):
    """Bengio (2012): the share of a full-batch λ that one minibatch step gets.

    λ·b/N when the loss sums over the batch (``reduction="sum"``), λ/N when it averages
    (``"mean"``, Keras' ``"sum_over_batch_size"``): one epoch of minibatch steps then
    applies exactly the regularization of one full-batch step on Σᵢ ℓᵢ + λ·R(w).

    Example:

    >>> from kreg.callbacks._scaler import minibatch_value
    >>> minibatch_value(1.0, 32, 1000, "sum"), minibatch_value(1.0, 32, 1000, "mean")
    (0.032, 0.001)
    """
    if reduction == "sum":
        return base * batch_size / num_examples
    return base / num_examples


def normalized_value(base, batch_size, num_examples, epochs):
    """Loshchilov & Hutter (2019): λ = λ_norm·√(b/(N·T)).

    Example:

    >>> from kreg.callbacks._scaler import normalized_value
    >>> round(normalized_value(0.05, 100, 50000, 200), 10)
    0.0001581139
    """
    return base * math.sqrt(batch_size / (num_examples * epochs))


def timescale_value(tau, steps_per_epoch, decay_of_unit=1.0):
    """Wang & Aitchison (2024): the weight decay whose timescale is ``tau`` epochs.

    ``decay_of_unit`` is the decay per step that λ = 1 gives at the initial learning rate
    (``DecoupledWeightDecay.decay_per_step(weight_decay=1.0, ...)``: 1 for
    ``follow="schedule"`` and ``"none"``, lr₀ for ``"learning_rate"``); λ is set so that
    the decay per step is 1/(τ·steps_per_epoch).

    Example:

    >>> from kreg.callbacks._scaler import timescale_value
    >>> timescale_value(10.0, 100), timescale_value(10.0, 100, 0.01)
    (0.001, 0.1)
    """
    return 1.0 / (tau * steps_per_epoch * decay_of_unit)


def batch_sizes(batch_size, num_examples, steps):
    """``(b, b_last)``: the size of every batch of an epoch and of its last one.

    When an epoch is one pass over N examples in ``steps = ceil(N/b)`` batches, the
    last batch holds N − (steps−1)·b examples; otherwise (``steps_per_epoch`` set to
    another number of steps, a repeated dataset) every batch is taken to be full.

    Example:

    >>> from kreg.callbacks._scaler import batch_sizes
    >>> batch_sizes(32, 100, 4)
    (32, 4)
    """
    if num_examples is None or steps is None or steps != math.ceil(num_examples / batch_size):
        return batch_size, batch_size
    return batch_size, num_examples - (steps - 1) * batch_size


def loss_reduction(loss):
    """The reduction ("sum" or "mean") of a compiled Keras loss (``model.loss``).

    A loss name or plain function is wrapped by Keras with "sum_over_batch_size"
    ("mean"); a ``keras.losses.Loss`` says its own; several losses must agree.
    Anything else raises ValueError: the reduction is never guessed.
    """
    if isinstance(loss, dict):
        losses = [v for v in loss.values() if v is not None]
    elif isinstance(loss, (list, tuple)):
        losses = [v for v in loss if v is not None]
    else:
        losses = [loss]
    found = set()
    for item in losses:
        if isinstance(item, keras.losses.Loss):
            reduction = item.reduction
        elif isinstance(item, str) or (callable(item) and not isinstance(item, type)):
            reduction = "sum_over_batch_size"
        else:
            reduction = None
        if reduction not in REDUCTIONS:
            raise ValueError(
                "RegularizationScaler(rule='minibatch') could not determine how the "
                f"compiled loss reduces over the batch: loss={item!r} has "
                f"reduction={reduction!r}; expected 'sum' or 'sum_over_batch_size'. "
                "Pass reduction='sum' or reduction='sum_over_batch_size'."
            )
        found.add(REDUCTIONS[reduction])
    if len(found) != 1:
        raise ValueError(
            "RegularizationScaler(rule='minibatch') could not determine how the compiled "
            f"loss reduces over the batch: model.loss={loss!r}. Compile the model with a "
            "loss, or pass reduction='sum' or reduction='sum_over_batch_size'."
        )
    return found.pop()


def select(found, targets):
    """The strengths of ``found`` (name -> Strength) that ``targets`` names.

    Each target is a strength name, a kind keyword ("regularizers", "weight_decay",
    "l1", "noise", "dropout") or a glob pattern ("*.kernel_regularizer.l2").
    """
    if targets is None:
        return dict(found)
    chosen = {}
    for target in targets:
        if target in found:
            matched = [target]
        elif target in KINDS:
            matched = [n for n, s in found.items() if s.kind == KINDS[target]]
        else:
            matched = [n for n in found if fnmatch.fnmatchcase(n, target)]
        if not matched:
            raise ValueError(
                f"Invalid value for argument `targets`: {target!r} matches no live strength "
                f"of the model. Available: {sorted(found)}. Received: targets={targets!r}"
            )
        for name in matched:
            chosen[name] = found[name]
    return {n: s for n, s in found.items() if n in chosen}


def fixed_penalties(model):
    """Penalties no callback can change: Keras regularizers and Keras' built-in weight decay."""
    names = []
    for prefix, layer in walk_layers(model):
        for attribute, value in vars(layer).items():
            if isinstance(value, keras.regularizers.Regularizer) and not is_live(value):
                names.append(f"{prefix}.{attribute.lstrip('_')}")
    for optimizer in optimizer_chain(getattr(model, "optimizer", None)):
        decay = getattr(optimizer, "weight_decay", None)
        kreg_decay = isinstance(optimizer, DecoupledWeightDecay)
        if not kreg_decay and isinstance(decay, (int, float)) and decay:
            names.append(f"{type(optimizer).__name__}(weight_decay={decay!r})")
    return names


# ------------------------------------------------------------ requirements
def rule_name(rule):
    """The name a message gives ``rule``: the built-in's name or the callable's ``__name__``."""
    return rule if isinstance(rule, str) else getattr(rule, "__name__", "callable")


def unknown(rule, need):
    """The ValueError saying that ``need`` (a key of :data:`UNKNOWN`) could not be determined."""
    what, hint = UNKNOWN[need]
    return ValueError(
        f"RegularizationScaler(rule={rule_name(rule)!r}) could not determine {what}: {hint}"
    )


def requirements(rule, reduction):
    """What ``rule`` needs to know (see :data:`REQUIRES`), given the loss ``reduction``."""
    needs = REQUIRES.get(rule, ()) if isinstance(rule, str) else ()
    if rule == "minibatch" and reduction == "sum":
        needs += ("batch_size",)
    return needs


def check_known(rule, needs, known):
    """Raise the :func:`unknown` error of the first of ``needs`` that ``known`` has as None."""
    for need in needs:
        if known.get(need) is None:
            raise unknown(rule, need)


def steps_per_epoch(steps, batch_size, num_examples):
    """S: ``fit``'s steps per epoch; when ``fit`` cannot tell, ceil(N/b) if both are given."""
    if steps is None and batch_size is not None and num_examples is not None:
        return math.ceil(num_examples / batch_size)
    return steps


def resolve_targets(found, targets, rule):
    """The strengths of ``found`` that ``rule`` sets: ``targets`` selected by :func:`select`.

    ``targets=None`` means every penalty strength (:data:`PENALTY_KINDS`), and the
    weight decays for "timescale": a dropout rate or a noise σ is not a λ, and scaling it
    by b/N would silently break it, so it is scaled only when named.
    """
    if targets is None and rule != "timescale":
        penalties = {n: s for n, s in found.items() if s.kind in PENALTY_KINDS}
        if found and not penalties:
            raise ValueError(
                "RegularizationScaler found no penalty strength (regularizer, weight "
                "decay or l1) to scale; name the strengths to scale in `targets`. "
                f"Available: {sorted(found)}. Received: targets=None"
            )
        found = penalties
    if not found:
        raise ValueError(
            "RegularizationScaler found no live strength in the model or its optimizer: "
            "use kreg regularizers, layers or kreg.optimizers.DecoupledWeightDecay."
        )
    if targets is None and rule == "timescale":
        if not any(s.kind == "weight_decay" for s in found.values()):
            raise unknown(rule, "weight_decay")
        targets = ["weight_decay"]
    return select(found, targets)


def check_timescale_targets(targets):
    """ "timescale" reads each target's base as τ in epochs: weight decays with τ > 0 only."""
    for name, strength in targets.items():
        if strength.kind != "weight_decay":
            raise ValueError(
                "RegularizationScaler(rule='timescale') sets weight decays only; "
                f"target {name!r} has kind {strength.kind!r}."
            )
        if strength.base <= 0:
            raise ValueError(
                "RegularizationScaler(rule='timescale') reads the base value as the "
                f"timescale τ in epochs, which must be > 0; {name!r} has base "
                f"{strength.base!r}."
            )


def timescale_optimizer(optimizer):
    """The DecoupledWeightDecay in ``optimizer`` whose float weight decay "timescale" sets."""
    wrapper = find_in_chain(optimizer, DecoupledWeightDecay)
    check_known("timescale", ("optimizer",), {"optimizer": wrapper})
    if wrapper.mode != "decoupled":
        raise ValueError(
            "RegularizationScaler(rule='timescale') needs a DecoupledWeightDecay "
            f"with mode='decoupled'. Received: mode={wrapper.mode!r}"
        )
    if callable(wrapper.weight_decay):
        raise ValueError(
            "RegularizationScaler(rule='timescale') reads the optimizer's "
            "weight_decay as τ in epochs; it must be a float, not a schedule. "
            f"Received: weight_decay={wrapper.weight_decay!r}"
        )
    return wrapper


def decay_of_unit(wrapper):
    """The decay per step that λ = 1 gives at the wrapper's initial learning rate, and k,
    its gradient accumulation steps (the decay acts on update steps only: S/k per epoch)."""
    unit = wrapper.decay_per_step(
        step=0, learning_rate=wrapper.initial_learning_rate, weight_decay=1.0
    )
    if not unit > 0:
        raise ValueError(
            "RegularizationScaler(rule='timescale') needs a DecoupledWeightDecay whose "
            "decay per step is positive at its initial learning rate; set its "
            "`initial_learning_rate` (a warm-up schedule starts at 0). Received: a decay "
            f"of {unit!r} per unit of λ"
        )
    return unit, accumulation_steps(wrapper)


@export
class RegularizationScaler(keras.callbacks.Callback):
    """Set live strengths before every batch from their base value, a rule and the batch size.

    Before each training batch, each targeted strength (see :func:`kreg.strengths`) is
    set to ``rule(base) · schedule(step)``, where ``base`` is the value its object was
    built with. The rules, with b the size of this batch, N the number of training
    examples, S the steps per epoch and T the number of epochs:

    * ``"minibatch"`` (Bengio 2012): ``base`` is λ for full-batch training of the summed
      objective J = Σᵢ ℓᵢ + λ·R(w). A step gets λ·b/N when the compiled loss sums over
      the batch (reduction "sum") and λ/N when it averages (Keras' default
      "sum_over_batch_size"), so an epoch, the last partial batch included, applies
      exactly one full-batch step's worth of regularization. E.g. λ = 1, N = 100,
      b = 32: "sum" gives 0.32 for the three full batches and 0.04 for the last batch
      of 4; "sum_over_batch_size" gives 0.01 for every batch.
    * ``"normalized"`` (Loshchilov & Hutter 2019): λ = λ_norm·√(b/(N·T)). E.g.
      λ_norm = 0.05, b = 100, N = 50 000, T = 200: λ = 1.5811e-4.
    * ``"timescale"`` (Wang & Aitchison 2024): ``base`` is τ in epochs; the weight decay
      of a ``kreg.optimizers.DecoupledWeightDecay`` is set so that the decay per step
      at the initial learning rate is 1/(τ·S): wd = 1/(τ·S·f₀), f₀ = lr₀ with
      ``follow="learning_rate"`` and 1 with ``"schedule"``/``"none"``. E.g. τ = 10,
      S = 100: wd = 1e-3 ("schedule"); with "learning_rate" and lr₀ = 0.01: wd = 0.1.
      With ``targets=None`` this rule targets the weight-decay strengths only. τ is the
      timescale of a weight whose ``weight_decay_multiplier`` is 1 (a multiplier m
      gives τ/m); the optimizer needs ``mode="decoupled"`` and a float weight decay.
    * a callable ``rule(base, step, epoch, batch_size, num_examples, epochs)`` -> float
      (arguments that cannot be determined are None).

    b, N, S and T: T and S come from ``fit`` (``self.params``); ``fit`` never reports
    b or N, so pass ``batch_size`` and ``num_examples`` when the rule needs them
    ("minibatch" with "sum" and "normalized" need both; "minibatch" with a mean needs N).
    When an epoch is one pass (S = ceil(N/b)) the last batch of each epoch has
    N − (S−1)·b examples; otherwise every batch is taken to be full. When ``fit`` cannot
    tell S (a dataset of unknown length) it is ceil(N/b). An epoch of S = ceil(N/b) steps
    is taken to be one pass, whose last batch is partial: to train a repeated dataset
    of full batches with ``steps_per_epoch = ceil(N/b)``, pass ``num_examples=S·b``.
    Gradient accumulation (``gradient_accumulation_steps = k``) makes S/k the updates
    per epoch for "timescale". Anything a rule needs and
    that cannot be determined raises a ValueError naming it. With
    ``steps_per_execution > 1`` Keras runs batch callbacks once per chunk, so the value
    computed for a chunk's first batch holds for the whole chunk.

    A strength is assigned only when its value changes (on JAX each assignment
    synchronizes the model state). The values set for the last batch of each epoch
    are added to the epoch logs under the strength names, and kept in ``values``.
    The strengths keep their last values after training.

    Args:
        rule: "minibatch", "normalized", "timescale" or a callable (see above).
        targets: None (every penalty strength of the model and its optimizer: kinds
            "regularizer", "weight_decay" and "l1"; dropout rates and noise σ are not
            λs and are left alone unless named) or a name, kind ("regularizers",
            "weight_decay", "l1", "noise", "dropout") or glob pattern, or a list of them.
        batch_size: b, the batch size given to ``fit``.
        num_examples: N, the number of training examples per epoch.
        epochs: T; default the ``epochs`` of ``fit``.
        schedule: an optional multiplier over training: a callable of the global step
            or a ``keras.optimizers.schedules.LearningRateSchedule``.
        reduction: the loss reduction for "minibatch" ("sum" or
            "sum_over_batch_size"); default read from the compiled loss.
        verbose: 1 prints, at the start of training, the b, N, S, T and reduction it
            determined; 2 also prints every value it assigns.

    Example:

    >>> import numpy as np, keras, kreg
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
    ...     1, kernel_regularizer=kreg.regularizers.L2(1.0), name="d")])
    >>> model.compile("sgd", "mse")
    >>> scaler = kreg.callbacks.RegularizationScaler("minibatch", num_examples=100)
    >>> x, y = np.zeros((100, 4), "float32"), np.zeros((100, 1), "float32")
    >>> _ = model.fit(x, y, batch_size=32, epochs=1, callbacks=[scaler], verbose=0)
    >>> scaler.values
    {'d.kernel_regularizer.l2': 0.01}

    References:
        Bengio, "Practical recommendations for gradient-based training of deep
        architectures", 2012. Loshchilov & Hutter, "Decoupled weight decay
        regularization", ICLR 2019. Wang & Aitchison, "How to set AdamW's weight decay
        as you scale model and dataset size", 2024.
    """

    def __init__(
        self,
        rule,
        *,
        targets=None,
        batch_size=None,
        num_examples=None,
        epochs=None,
        schedule=None,
        reduction=None,
        verbose=0,
    ):
        super().__init__()
        if not (rule in RULES or (callable(rule) and not isinstance(rule, str))):
            raise ValueError(
                "Invalid value for argument `rule`: expected 'minibatch', 'normalized', "
                f"'timescale' or a callable. Received: rule={rule!r}"
            )
        self.rule = rule
        if isinstance(targets, str):
            targets = [targets]
        if targets is not None:
            targets = list(targets) if isinstance(targets, (list, tuple)) else [targets]
            if not targets or not all(isinstance(t, str) for t in targets):
                raise ValueError(
                    "Invalid value for argument `targets`: expected None, or a name, kind "
                    f"or pattern, or a non-empty list of them. Received: targets={targets!r}"
                )
        self.targets = targets
        self.batch_size = _check_count(batch_size, "batch_size")
        self.num_examples = _check_count(num_examples, "num_examples")
        self.epochs = _check_count(epochs, "epochs")
        if schedule is not None and not callable(schedule):
            raise ValueError(
                "Invalid value for argument `schedule`: expected a callable of the step or "
                f"a LearningRateSchedule. Received: schedule={schedule!r}"
            )
        self.schedule = schedule
        if reduction is not None and not (isinstance(reduction, str) and reduction in REDUCTIONS):
            raise ValueError(
                "Invalid value for argument `reduction`: expected 'sum', "
                f"'sum_over_batch_size' or None. Received: reduction={reduction!r}"
            )
        self.reduction = reduction
        self.verbose = check_verbose(verbose)
        self.values = {}
        self._targets = {}

    def get_config(self):
        """The constructor arguments; a callable rule or schedule is serialized by Keras."""
        serialize = keras.saving.serialize_keras_object
        return {
            "rule": self.rule if isinstance(self.rule, str) else serialize(self.rule),
            "targets": self.targets,
            "batch_size": self.batch_size,
            "num_examples": self.num_examples,
            "epochs": self.epochs,
            "schedule": None if self.schedule is None else serialize(self.schedule),
            "reduction": self.reduction,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        deserialize = keras.saving.deserialize_keras_object
        if not isinstance(config["rule"], str):
            config["rule"] = deserialize(config["rule"])
        if config.get("schedule") is not None:
            config["schedule"] = deserialize(config["schedule"])
        return cls(**config)

    def __repr__(self):
        return call_repr(self, "kreg.callbacks.RegularizationScaler")

    # ------------------------------------------------------------- set-up
    def on_train_begin(self, logs=None):
        params = self.params or {}
        self._targets = resolve_targets(live_strengths(self.model), self.targets, self.rule)
        fixed = fixed_penalties(self.model) if self.targets is None else []
        if fixed and self.rule != "timescale":
            warnings.warn(
                f"RegularizationScaler leaves {fixed} unscaled: Keras keeps them as fixed "
                "numbers in the train step. Use kreg.regularizers and "
                "kreg.optimizers.DecoupledWeightDecay for penalties to scale.",
                stacklevel=2,
            )
        b, n = self.batch_size, self.num_examples
        self._epochs = self.epochs or params.get("epochs")
        self._steps = steps_per_epoch(params.get("steps"), b, n)
        self._sizes = batch_sizes(b, n, self._steps) if b is not None else (None, None)
        self._reduction = None
        if self.rule == "minibatch":
            self._reduction = (
                REDUCTIONS[self.reduction]
                if self.reduction is not None
                else loss_reduction(getattr(self.model, "loss", None))
            )
        known = {"batch_size": b, "num_examples": n, "epochs": self._epochs, "steps": self._steps}
        check_known(self.rule, requirements(self.rule, self._reduction), known)
        if self.rule == "timescale":
            check_timescale_targets(self._targets)
            optimizer = timescale_optimizer(getattr(self.model, "optimizer", None))
            self._unit, self._accumulation = decay_of_unit(optimizer)
        self._last = {}
        self.values = {}
        self._seen = 0  # real train steps of the finished epochs (data of unknown length)
        self._epoch_seen = 0
        if self.verbose > 0:
            print(
                f"RegularizationScaler(rule={rule_name(self.rule)!r}): b={b}, "
                f"last batch={self._sizes[1]}, N={n}, steps per epoch={self._steps}, "
                f"T={self._epochs}, reduction={self._reduction}, targets={list(self._targets)}"
            )

    # --------------------------------------------------------------- values
    def _multiplier(self, step):
        if self.schedule is None:
            return 1.0
        return float(keras.ops.convert_to_numpy(self.schedule(step)))

    def value(self, base, step, epoch, batch_size):
        """The value the rule gives ``base`` at this step (before the schedule)."""
        n, t = self.num_examples, self._epochs
        if self.rule == "minibatch":
            return minibatch_value(base, batch_size, n, self._reduction)
        if self.rule == "normalized":
            return normalized_value(base, batch_size, n, t)
        if self.rule == "timescale":
            return timescale_value(base, self._steps / self._accumulation, self._unit)
        return float(self.rule(base, step, epoch, batch_size, n, t))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        uses_step = self.schedule is not None or callable(self.rule)
        if epoch > 0 and self._steps is None and self._seen == 0 and uses_step:
            raise ValueError(
                f"RegularizationScaler could not determine the global step of a resumed "
                f"fit (initial_epoch={epoch}): `fit` does not know the steps per epoch "
                "(data of unknown length). Pass batch_size= and num_examples=, or "
                "steps_per_epoch to fit."
            )
        # On JAX a write made in a batch hook that ran no step (the end-of-data probe of
        # a dataset of unknown length) is undone by the trainer's end-of-epoch sync:
        # check the cache against the strengths (one read per epoch).
        for name, stored in list(getattr(self, "_last", {}).items()):
            if np.float32(float(self._targets[name])) != stored:
                del self._last[name]
        self._epoch_seen = 0

    def on_train_batch_begin(self, batch, logs=None):
        epoch = getattr(self, "_epoch", 0)
        if self._steps is not None:
            step = epoch * self._steps + batch
            last = batch == self._steps - 1
        else:
            step = self._seen + batch
            last = False
        size = self._sizes[1] if last else self._sizes[0]
        multiplier = self._multiplier(step)
        for name, strength in self._targets.items():
            value = float(self.value(strength.base, step, epoch, size) * multiplier)
            stored = np.float32(value)
            if self._last.get(name) != stored:
                strength.assign(value)
                self._last[name] = stored
                if self.verbose > 1:
                    print(f"step {step}: {name} = {value:.6g}")
            self.values[name] = value

    def on_train_batch_end(self, batch, logs=None):
        self._epoch_seen = batch + 1  # only steps that ran reach here

    def on_epoch_end(self, epoch, logs=None):
        self._seen += self._epoch_seen
        if logs is not None:
            logs.update(self.values)
