"""The checks: each is a function ``check(ctx) -> list[Finding]`` over a read-only context.

A check reports only what it can establish from the model, the optimizer and the
arguments; when it cannot tell (a subclassed model has no graph to read, a custom
regularizer has no known strength) it says nothing, so that a clean model stays clean.
"""

import importlib
import math
import warnings

import keras
import numpy as np

from kreg._live import optimizer_chain, weight_owners
from kreg.audit import _facts as facts
from kreg.audit._report import Finding

_DROPOUT_LAYERS = tuple(
    getattr(keras.layers, n)
    for n in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
              "GaussianDropout", "AlphaDropout")
    if hasattr(keras.layers, n)
)
_BIAS_LAYERS = tuple(
    getattr(keras.layers, n)
    for n in ("Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
              "Conv3DTranspose", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
              "DepthwiseConv2D")
    if hasattr(keras.layers, n)
)
_SAMPLE_ROWS = 1024


def _kreg_class(module, name):
    """A kreg class by name, or None while it has not landed (imported lazily)."""
    try:
        return getattr(importlib.import_module(f"kreg.{module}"), name, None)
    except ImportError:
        return None


def _isinstance(obj, *classes):
    classes = tuple(c for c in classes if isinstance(c, type))
    return bool(classes) and isinstance(obj, classes)


class Context:
    """What every check reads: the model's layers and weights, the optimizer chain, arguments."""

    def __init__(self, model, optimizer, batch_size, num_examples, sample):
        self.model = model
        self.optimizer = optimizer
        self.chain = optimizer_chain(optimizer)
        self.stepper = facts.stepper(self.chain)
        self.batch_size = batch_size
        self.num_examples = num_examples
        self.sample = sample
        self.paths = facts.layer_paths(model)
        self.path_of = {id(layer): path for path, layer in self.paths}
        owners = weight_owners(model)
        self.weights = []  # (variable, owner path, owner layer)
        seen = set()
        for variable in model.trainable_weights:
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            _, path, layer = owners.get(id(variable), (variable, model.name, model))
            self.weights.append((variable, path, layer))
        self.decays = {id(v): facts.decays(self.chain, v) for v, _, _ in self.weights}

    @property
    def label(self):
        return facts.optimizer_label(self.optimizer) if self.optimizer is not None else None


def _short(variable):
    return variable.path.rsplit("/", 1)[-1]


def _attribute(variable, owner):
    """The layer attribute that holds this weight's regularizer ("kernel_regularizer")."""
    name = f"{_short(variable)}_regularizer"
    return name if hasattr(owner, name) else "the regularizer"


# ------------------------------------------------------------------ attached penalties


def check_attachment(ctx):
    """regularizer-not-attached: a layer's ``<weight>_regularizer`` that its weight lacks."""
    found = []
    for variable, path, owner in ctx.weights:
        attribute = f"{_short(variable)}_regularizer"
        regularizer = getattr(owner, attribute, None)
        if regularizer is None or getattr(variable, "regularizer", None) is not None:
            continue
        build_module = getattr(type(owner).build, "__module__", "") or ""
        if not build_module.startswith(("keras.", "kreg.")):
            continue  # a custom build() may apply the regularizer its own way
        found.append(
            Finding(
                "error",
                "regularizer-not-attached",
                variable.path,
                f"layer '{path}' has {attribute}={facts.describe_regularizer(regularizer)}, "
                f"but its weight '{variable.path}' has no regularizer: no penalty reaches the loss",
                f"Keras attaches a layer's regularizers to its weights when the layer is "
                f"built, so setting `{attribute}` afterwards changes nothing.",
                f"kreg.regularizers.apply(model, {_regularizer_code(regularizer)},\n"
                f"                        exclude=lambda v: v.path != {variable.path!r})"
                "  # attaches to the built weight\n"
                f"# or pass {attribute}= when the layer is created, before it is built",
            )
        )
    return found


def _regularizer_code(regularizer):
    """``keras.regularizers.L2(l2=0.0001)``: code that rebuilds a regularizer."""
    module = "kreg" if type(regularizer).__module__.startswith("kreg") else "keras"
    try:
        config = regularizer.get_config()
    except Exception:
        config = {}
    args = ", ".join(
        f"{k}={v!r}" for k, v in config.items() if isinstance(v, (int, float, str))
    )
    return f"{module}.regularizers.{type(regularizer).__name__}({args})"


# ----------------------------------------------------------------- penalties and decay

_WHY = {
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
_SEVERITY = {"bias": "warning", "normalization": "warning", "embedding": "info"}


def _why(kind, doing):
    return _WHY[kind].format(doing=doing, Doing=doing[0].upper() + doing[1:])


def _decay_fix(optimizer, kinds):
    if facts.is_kreg_decay(optimizer):
        return (
            "kreg.optimizers.DecoupledWeightDecay(..., exclude=[r\"embeddings$\"])  "
            "# or multipliers={\"embeddings\": 0.1} for a weaker decay"
            if kinds == {"embedding"}
            else "kreg.optimizers.DecoupledWeightDecay(...)  # excludes biases and "
            "normalization parameters by default; drop what re-included them"
        )
    names = sorted(
        {"bias": '"bias"', "normalization": '"gamma", "beta"', "embedding": '"embeddings"'}[k]
        for k in kinds
    )
    return (
        "optimizer.exclude_from_weight_decay(var_list=[\n"
        "    v for v in model.trainable_variables\n"
        f"    if v.path.rsplit(\"/\", 1)[-1] in {{{', '.join(names)}}}\n"
        "])  # before the first fit; variable.path is the same on every backend\n"
        "# or: kreg.optimizers.DecoupledWeightDecay(keras.optimizers."
        f"{facts.plain_name(facts.stepper(optimizer_chain(optimizer)))}(...), "
        "weight_decay=..."
        + (', exclude=[r"embeddings$"]' if "embedding" in kinds else "")
        + ")  # excludes biases and normalization by default"
    )


def check_penalties(ctx):
    """Penalties: on biases/normalization/embeddings, with adaptive optimizers, with decay."""
    found = []
    stepper = ctx.stepper
    adaptive = stepper is not None and facts.is_adaptive(stepper)
    for variable, path, owner in ctx.weights:
        regularizer = getattr(variable, "regularizer", None)
        if regularizer is None:
            continue
        kind = facts.category(variable, owner)
        described = facts.describe_regularizer(regularizer)
        attribute = _attribute(variable, owner)
        if kind != "weight":
            found.append(
                Finding(
                    _SEVERITY[kind],
                    f"penalty-on-{kind}",
                    variable.path,
                    f"{described} penalty on {kind} '{variable.path}'",
                    _why(kind, "penalizing"),
                    f"keras.layers.{type(owner).__name__}(..., {attribute}=None)"
                    if attribute != "the regularizer"
                    else f"# remove the regularizer of '{variable.path}'",
                )
            )
            continue
        l2 = facts.l2_of(regularizer)
        if not l2:
            continue
        decays = ctx.decays[id(variable)]
        if decays:
            optimizer, wd = decays[0]
            found.append(
                Finding(
                    "warning",
                    "l2-and-weight-decay",
                    variable.path,
                    f"'{variable.path}' has an {described} penalty and weight decay "
                    f"{wd:g} from {type(optimizer).__name__}",
                    "The weight is shrunk twice, by the penalty's gradient and by the "
                    "decay, so its regularization is neither value and tuning one silently "
                    "retunes the other.",
                    f"keras.layers.{type(owner).__name__}(..., {attribute}=None)  "
                    "# keep the optimizer's weight decay",
                )
            )
        elif adaptive:
            name = type(stepper).__name__
            found.append(
                Finding(
                    "warning",
                    "l2-with-adaptive-optimizer",
                    variable.path,
                    f"{described} penalty on '{variable.path}' trained with {ctx.label}",
                    f"{name} divides every gradient, the penalty's included, by a "
                    "per-weight running scale, so weights with large gradients are barely "
                    "regularized: for adaptive optimizers an L2 penalty is not weight decay "
                    "(Loshchilov & Hutter, 2019).",
                    f"# drop {attribute} from layer '{path}' and decay in the optimizer:\n"
                    + _decay_for_penalty(stepper, regularizer, variable, l2),
                )
            )
    return found


def _decay_for_penalty(stepper, regularizer, variable, l2):
    """DecoupledWeightDecay code whose per-step decay equals the penalty's under plain SGD.

    Under SGD, ``l2·Σw²`` shrinks w by ``2·lr_t·l2`` per step and ``l1·Σ|w|`` by
    ``lr_t·l1``; the wrapper's decay (``follow="schedule"``) is ``wd·lr_t/lr_0``, its
    proximal L1 ``l1·lr_t/lr_0``. So ``wd = 2·lr_0·l2`` and ``l1 = lr_0·l1``, with
    ``normalize="mean"`` dividing both by the weight's size. A schedule that starts at
    0 (a warm-up) gets ``initial_learning_rate`` = its peak, as the wrapper needs lr_0 > 0.
    """
    lr0 = facts.learning_rate(stepper)
    extra = ""
    if not lr0:
        lr0 = facts.peak_learning_rate(stepper) or 1e-3
        extra = f", initial_learning_rate={lr0:.3g}"
    size = math.prod(variable.shape) if getattr(regularizer, "normalize", "sum") == "mean" else 1
    l1 = facts._as_float(getattr(regularizer, "l1", None)) or 0.0
    if l1:
        extra += f", l1={lr0 * l1 / size:.3g}"
    if hasattr(regularizer, "reference"):
        extra += ", anchor='initial'"
    return (
        f"optimizer = kreg.optimizers.DecoupledWeightDecay(keras.optimizers."
        f"{facts.plain_name(stepper)}(...), weight_decay={2 * lr0 * l2 / size:.3g}{extra})"
        "  # the per-step decay the penalty gives under plain SGD"
    )


def check_decay(ctx):
    """Decay: on biases/normalization/embeddings, per-backend exclusions, schedule, strength."""
    found = []
    if ctx.optimizer is None:
        return [
            Finding(
                "info",
                "no-optimizer",
                ctx.model.name,
                "no optimizer: the model is not compiled and none was passed",
                "Weight decay and how penalties interact with it live in the optimizer, so "
                "those checks were skipped.",
                "kreg.audit(model, optimizer=optimizer)  # or audit after model.compile(...)",
            )
        ]
    by_optimizer = {}
    for variable, _, owner in ctx.weights:
        kind = facts.category(variable, owner)
        if kind == "weight":
            continue
        for optimizer, wd in ctx.decays[id(variable)]:
            by_optimizer.setdefault(id(optimizer), (optimizer, []))[1].append(
                (variable, kind, wd)
            )
    for optimizer, items in by_optimizer.values():
        kinds = {kind for _, kind, _ in items}
        fix = _decay_fix(optimizer, kinds)
        for variable, kind, wd in items:
            found.append(
                Finding(
                    _SEVERITY[kind],
                    f"decay-on-{kind}",
                    variable.path,
                    f"weight decay {wd:g} from {type(optimizer).__name__} acts on {kind} "
                    f"'{variable.path}'",
                    _why(kind, "decaying"),
                    fix,
                )
            )
    for optimizer in ctx.chain:
        if isinstance(optimizer, getattr(keras.optimizers, "MultiOptimizer", ())):
            found.append(
                Finding(
                    "info",
                    "optimizer-not-read",
                    "optimizer",
                    "the optimizers inside a MultiOptimizer are not read: their weight "
                    "decay and how it meets the penalties were not checked",
                    "The audit reads one optimizer (through LossScaleOptimizer and "
                    "DecoupledWeightDecay wrappers), not a map of them.",
                    "# audit with each inner optimizer: kreg.audit(model, optimizer=inner)",
                )
            )
        if facts.is_kreg_decay(optimizer):
            found.extend(_kreg_decay_findings(ctx, optimizer))
        elif facts.keras_weight_decay(optimizer):
            found.extend(_keras_decay_findings(ctx, optimizer))
    return found


def _kreg_decay_findings(ctx, optimizer):
    found = []
    amounts = [wd for v, _, _ in ctx.weights for o, wd in ctx.decays[id(v)] if o is optimizer]
    if not amounts:
        return found
    if getattr(optimizer, "mode", "decoupled") == "l2":
        if ctx.stepper is not None and facts.is_adaptive(ctx.stepper):
            name = type(ctx.stepper).__name__
            found.append(
                Finding(
                    "info",
                    "l2-mode-with-adaptive-optimizer",
                    "optimizer",
                    f"DecoupledWeightDecay(mode=\"l2\") adds λ·θ to the gradients of "
                    f"{name}",
                    f"{name} divides the added λ·θ by a per-weight running scale, so this "
                    "is 'Adam + L2', not weight decay: fine for a comparison, weaker for "
                    "weights with large gradients (Loshchilov & Hutter, 2019).",
                    "kreg.optimizers.DecoupledWeightDecay(..., mode=\"decoupled\")",
                )
            )
        return found
    follow = getattr(optimizer, "follow", "schedule")
    factor = 1.0
    if follow in ("learning_rate", "schedule"):
        # The largest learning rate of the schedule, not the one at step 0: a warm-up
        # from a small lr_0 multiplies a follow="schedule" decay by peak / lr_0.
        peak = facts.peak_learning_rate(ctx.stepper)
        if follow == "learning_rate":
            factor = peak or 0.0
        else:
            lr0 = facts._as_float(getattr(optimizer, "initial_learning_rate", None))
            factor = (peak / lr0) if (peak and lr0) else 1.0
    per_step = max(amounts) * factor
    if per_step >= 1:
        found.append(
            Finding(
                "error",
                "decay-too-strong",
                "optimizer",
                f"DecoupledWeightDecay(follow={follow!r}) removes {per_step:.3g} of each "
                "decayed weight per step",
                "A decay step θ ← θ − d·θ with d ≥ 1 zeroes every decayed weight or flips "
                "its sign at each step.",
                "kreg.optimizers.DecoupledWeightDecay(..., weight_decay="
                f"{1e-4 / (factor or 1):.3g})  # 1e-4 of each weight per step",
            )
        )
    return found


def _keras_decay_findings(ctx, optimizer):
    found = []
    wd = facts.keras_weight_decay(optimizer)
    name = type(optimizer).__name__
    differs = [v.path for v, _, _ in ctx.weights if facts.exclusion_differs(optimizer, v)]
    if differs:
        on_tf = [p for p in differs if facts.keras_excludes(optimizer, _var(ctx, p), "tensorflow")]
        on_jax = [p for p in differs if p not in on_tf]
        pattern = getattr(optimizer, "_exclude_from_weight_decay_pattern", None)
        pattern_text = getattr(pattern, "pattern", str(pattern))
        parts = []
        if on_tf:
            parts.append(f"excludes {', '.join(on_tf)} on TensorFlow only")
        if on_jax:
            parts.append(f"excludes {', '.join(on_jax)} on JAX/torch only")
        found.append(
            Finding(
                "warning",
                "decay-exclusion-backend-dependent",
                "optimizer",
                f"{name}.exclude_from_weight_decay(var_names=...) (pattern "
                f"{pattern_text!r}) {'; '.join(parts)}",
                "Keras matches var_names against the TF variable's full name "
                "('dense/bias:0') on TensorFlow but against the short name ('bias') on JAX "
                "and torch, so the same code decays different weights on each backend.",
                "import re\n"
                "optimizer.exclude_from_weight_decay(var_list=[\n"
                f"    v for v in model.trainable_variables if re.search({pattern_text!r}, v.path)\n"
                "])  # variable.path is the same on every backend",
            )
        )
    schedule = facts.schedule_of(optimizer)
    if schedule is not None:
        profile = facts.schedule_profile(schedule)
        if profile is not None:
            start, peak, end, end_step, exact = profile
            peak_decay = peak * wd
            where = f"step {end_step}" + ("" if exact else " (the schedule has no end)")
            if start > 0:  # DecoupledWeightDecay's lr_0 defaults to the rate at step 0
                arguments = f"weight_decay={start * wd:.3g}"
            else:
                arguments = f"weight_decay={peak * wd:.3g}, initial_learning_rate={peak:g}"
            found.append(
                Finding(
                    "info",
                    "decay-follows-schedule",
                    "optimizer",
                    f"{name}(weight_decay={wd:g}) is multiplied by the scheduled learning "
                    f"rate: decay per step {start * wd:.3g} at step 0, {peak_decay:.3g} at "
                    f"its peak, {end * wd:.3g} at {where}",
                    "Keras' built-in decay is θ ← θ − lr_t·λ·θ, so these products, not λ, "
                    "act on the weights, and changing the base learning rate retunes the "
                    "decay.",
                    "kreg.optimizers.DecoupledWeightDecay(keras.optimizers."
                    f"{facts.plain_name(optimizer)}(learning_rate=schedule), {arguments})"
                    "  # the same decay, now independent of the base learning rate",
                )
            )
            lr_max = peak
        else:
            lr_max = None
    else:
        lr_max = facts.learning_rate(optimizer)
    if lr_max is not None and lr_max * wd >= 1:
        found.append(
            Finding(
                "error",
                "decay-too-strong",
                "optimizer",
                f"{name}: learning_rate × weight_decay = {lr_max:g} × {wd:g} = "
                f"{lr_max * wd:.3g} per step",
                "Keras applies θ ← θ − lr·λ·θ, so lr·λ ≥ 1 zeroes every decayed weight or "
                "flips its sign at each step.",
                f"keras.optimizers.{name}(learning_rate={lr_max:g}, weight_decay="
                f"{1e-4 / lr_max:.3g})  # lr·λ = 1e-4 per step",
            )
        )
    return found


def _var(ctx, path):
    for variable, _, _ in ctx.weights:
        if variable.path == path:
            return variable
    return None


# ---------------------------------------------------------------- BatchNormalization


def _bias_axis(layer, rank):
    if isinstance(layer, keras.layers.Dense):
        return rank - 1
    data_format = getattr(layer, "data_format", "channels_last")
    return 1 if data_format == "channels_first" else rank - 1


def _bn_axes(bn, rank):
    axis = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    return {a % rank for a in axis}


def check_batchnorm(ctx):
    """bias-before-batchnorm and dropout-before-batchnorm, inside every readable graph."""
    found = []
    for _, container in facts.containers(ctx.paths):
        graph = facts.edges(container)
        for producer, consumers, is_output in graph.values():
            path = ctx.path_of.get(id(producer), producer.name)
            if _isinstance(producer, *_DROPOUT_LAYERS, _kreg_class("layers", "Dropout")):
                rate = facts.live_value(producer, "rate")
                bns = [
                    n for n in facts.successors(graph, producer)
                    if isinstance(n, keras.layers.BatchNormalization)
                ]
                if rate and bns:
                    bn_path = ctx.path_of.get(id(bns[0]), bns[0].name)
                    found.append(
                        Finding(
                            "warning",
                            "dropout-before-batchnorm",
                            path,
                            f"{type(producer).__name__}(rate={rate:g}) '{path}' feeds "
                            f"BatchNormalization '{bn_path}'",
                            "Dropout changes the variance of its output between training "
                            "and inference, so the moving variance BatchNormalization "
                            "learns in training is wrong at inference (variance shift, "
                            "Li et al. 2019).",
                            "# move the dropout after the last BatchNormalization "
                            "(e.g. before the classifier):\n"
                            "x = keras.layers.BatchNormalization()(x)\n"
                            f"x = keras.layers.Dropout({rate:g})(x)",
                        )
                    )
            if (
                isinstance(producer, _BIAS_LAYERS)
                and getattr(producer, "use_bias", False)
                and facts.is_linear(getattr(producer, "activation", None))
                and not is_output
                and len(consumers) == 1
                and isinstance(consumers[0], keras.layers.BatchNormalization)
                and consumers[0].trainable  # a frozen BN uses fixed moving statistics
            ):
                finding = _bias_finding(ctx, producer, consumers[0], path)
                if finding is not None:
                    found.append(finding)
    return found


def _bias_finding(ctx, layer, bn, path):
    try:
        rank = len(layer.output.shape)
    except Exception:
        try:
            rank = len(layer.compute_output_shape(bn.input.shape))
        except Exception:
            return None
    if _bias_axis(layer, rank) not in _bn_axes(bn, rank):
        return None
    bn_path = ctx.path_of.get(id(bn), bn.name)
    cls = type(layer).__name__
    if isinstance(layer, keras.layers.Dense):
        args = f"{layer.units}"
    else:
        size = getattr(layer, "filters", None)
        kernel = getattr(layer, "kernel_size", None)
        args = ", ".join(str(a) for a in (size, kernel) if a is not None) + ", ..."
    return Finding(
        "info",
        "bias-before-batchnorm",
        path,
        f"{cls} '{path}' has a bias and feeds BatchNormalization '{bn_path}' directly",
        "BatchNormalization subtracts each feature's batch mean, which cancels a constant "
        "bias exactly: the bias gets no gradient and only costs parameters (the "
        "normalization's β plays its role).",
        f"keras.layers.{cls}({args}, use_bias=False)",
    )


# ----------------------------------------------------------------------------- noise


def _noise_layers(ctx):
    classes = (keras.layers.GaussianNoise, _kreg_class("layers", "GaussianNoise"))
    return [(p, l) for p, l in ctx.paths if _isinstance(l, *classes)]


def _to_numpy(value):
    return keras.tree.map_structure(
        lambda x: np.asarray(keras.ops.convert_to_numpy(x))[:_SAMPLE_ROWS], value
    )


def _model_inputs(model):
    """The symbolic inputs of ``model``'s own graph, in the structure ``model(sample)`` takes.

    None when unknown. (A Sequential model's ``.input`` is its first call's input.)
    """
    if not isinstance(model, keras.Sequential):
        try:
            return model.input  # functional models: a tensor, list or dict
        except Exception:
            pass
    try:
        inputs = list(model.inputs)  # a built Sequential model
    except Exception:
        return None
    return inputs[0] if len(inputs) == 1 else inputs


def _noise_inputs(ctx, layers):
    """``{id(layer): np.ndarray}``: the sample as it reaches each noise layer.

    A layer inside a nested Sequential or functional model is reached in two probes:
    the sample's value at the nested model's input, then inside the nested model.
    """
    if ctx.sample is None or not layers:
        return {}
    by_path = dict(ctx.paths)
    sample = _to_numpy(ctx.sample)
    cache = {}

    def value_at(path, layer):
        """The sample's value at ``layer``'s input (None when there is no graph to follow)."""
        if path in cache:
            return cache[path]
        cache[path] = None  # a cycle guard; replaced below
        parent_path = path.rpartition("/")[0] if "/" in path else None
        parent = ctx.model if parent_path is None else by_path.get(parent_path)
        if parent is None:
            return None
        if parent is ctx.model:
            inputs, value = _model_inputs(ctx.model), sample
        elif isinstance(parent, keras.Sequential) or facts._is_functional(parent):
            inputs, value = _model_inputs(parent), value_at(parent_path, parent)
        else:
            return None  # a subclassed container: its call is no graph
        if inputs is None or value is None:
            return None
        for tensor in facts.call_inputs(layer):  # the call inside `parent` is one of them
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = keras.Model(inputs, tensor)(value, training=False)
            except Exception:
                continue
            cache[path] = np.asarray(keras.ops.convert_to_numpy(result))
            break
        return cache[path]

    found = {}
    for path, layer in layers:
        value = value_at(path, layer)
        if value is not None:
            found[id(layer)] = value
    return found


def check_noise(ctx):
    """GaussianNoise on integer inputs, on unscaled images, or out of scale with the input."""
    found = []
    layers = _noise_layers(ctx)
    values = _noise_inputs(ctx, layers)
    for path, layer in layers:
        stddev = facts.live_value(layer, "stddev")
        if not stddev:
            continue
        cls = type(layer).__name__
        tensor = facts.input_tensor(layer)
        x = values.get(id(layer))
        dtype = str(getattr(tensor, "dtype", "")) if tensor is not None else ""
        if x is not None and np.issubdtype(x.dtype, np.integer):
            dtype = str(x.dtype)
        if "int" in dtype:
            found.append(
                Finding(
                    "error",
                    "noise-on-integer-input",
                    path,
                    f"{cls}(stddev={stddev:g}) '{path}' receives {dtype} inputs",
                    "Float noise cannot be added to an integer tensor: training fails or "
                    "the noise is rounded away, and integer inputs are usually unscaled "
                    "pixel values.",
                    "x = keras.layers.Rescaling(1 / 255)(inputs)  # float inputs in [0, 1]\n"
                    f"x = keras.layers.{cls}({stddev:g})(x)",
                )
            )
            continue
        if x is None or getattr(layer, "relative", False) or x.size < 2:
            continue
        x = x.astype("float64")
        spread = float(np.std(x))
        if not math.isfinite(spread) or spread == 0:
            continue
        ratio = stddev / spread
        unscaled = x.ndim >= 4 and float(np.max(x)) > 1.5 and np.all(x == np.round(x))
        if unscaled and ratio < 0.05:  # kreg.layers.GaussianNoise(10.0) on 0-255 is fine
            found.append(
                Finding(
                    "warning",
                    "noise-on-unscaled-input",
                    path,
                    f"{cls}(stddev={stddev:g}) '{path}' receives unscaled images "
                    f"(integer values up to {float(np.max(x)):g}, std {spread:.3g}): σ is "
                    f"{ratio:.3g}× the signal",
                    "On pixel values in 0–255 noise of σ ≤ 1 (the most Keras' GaussianNoise "
                    "accepts) changes a grey level or two, so it regularizes nothing.",
                    f"keras.layers.Rescaling(1 / 255)  # before '{path}'\n"
                    "# or: kreg.layers.GaussianNoise(0.1, relative=True)  # σ in units of "
                    "each feature's std",
                )
            )
            continue
        if 0.01 <= ratio <= 1.0:
            continue
        suggest = 0.1 * spread
        noise_cls = f"keras.layers.{cls}" if cls == "GaussianNoise" and suggest <= 1 else (
            "kreg.layers.GaussianNoise"
        )
        found.append(
            Finding(
                "warning",
                "noise-out-of-scale",
                path,
                f"{cls}(stddev={stddev:g}) '{path}' on inputs with standard deviation "
                f"{spread:.3g}: σ is {ratio:.3g}× the signal",
                "Noise larger than the signal drowns it: the network learns from inputs "
                "that are mostly noise."
                if ratio > 1
                else "Noise under 1% of the signal's spread leaves the inputs practically "
                "unchanged, so it regularizes nothing (its effect scales with σ², Bishop "
                "1995).",
                f"{noise_cls}({suggest:.3g})  # 0.1 × the input's standard deviation\n"
                "# or: kreg.layers.GaussianNoise(0.1, relative=True)",
            )
        )
    return found


# --------------------------------------------------------------------------- XLA

_AFFINE_ARGS = {  # Keras layer -> (RandomAffine argument, Keras config key)
    "RandomRotation": ("rotation", "factor"),
    "RandomTranslation": ("translation", "height_factor"),
    "RandomZoom": ("zoom", "height_factor"),
    "RandomShear": ("shear", "x_factor"),
}


def _affine_fix(layer):
    cls = type(layer).__name__
    lines = []
    if getattr(layer, "resampler", None) == "affine_transform":  # kreg's, on TensorFlow
        lines.append(
            "kreg.layers.RandomAffine(..., resampler='gather')"
            "  # the default: XLA-compatible, the same result"
        )
    elif cls in _AFFINE_ARGS:
        argument, key = _AFFINE_ARGS[cls]
        try:
            value = layer.get_config().get(key)
        except Exception:
            value = None
        value = tuple(value) if isinstance(value, list) else value
        lines.append(
            f"kreg.layers.RandomAffine({argument}={'...' if value is None else repr(value)})"
            "  # XLA-compatible; one resampling for all geometric transforms"
        )
    lines.append(
        "# or augment in the input pipeline: "
        "dataset.map(lambda x, y: (augment(x, training=True), y))"
    )
    return "\n".join(lines)


def check_xla(ctx):
    """augmentation-disables-xla: a random augmentation layer with supports_jit=False."""
    found = []
    for path, layer in ctx.paths:
        if getattr(layer, "supports_jit", True):
            continue
        cls = type(layer).__name__
        if not (cls.startswith("Random") or "image_preprocessing" in type(layer).__module__):
            continue
        found.append(
            Finding(
                "warning",
                "augmentation-disables-xla",
                path,
                f"{cls} '{path}' cannot be XLA-compiled (supports_jit=False), so Keras "
                "compiles the whole model without XLA",
                "One layer without XLA support turns jit_compile='auto' off for every "
                "layer of the model (and jit_compile=True falls back with a warning), "
                "which makes each training step slower.",
                _affine_fix(layer),
            )
        )
    return found


# ----------------------------------------------------------------------- batch size


def _per_step_decay(optimizer, wd, stepper):
    """The fraction of a weight a decay removes at step 0 (None if unknown)."""
    if facts.is_kreg_decay(optimizer):
        follow = getattr(optimizer, "follow", "schedule")
        if follow == "learning_rate" or getattr(optimizer, "mode", None) == "l2":
            lr = facts.learning_rate(stepper)
            return None if lr is None else lr * wd
        return wd
    lr = facts.learning_rate(optimizer)
    return None if lr is None else lr * wd


def check_batch_size(ctx):
    """lambda-batch-size: how strong each λ is per epoch, and how to rescale it."""
    b, n = ctx.batch_size, ctx.num_examples
    if b is None or n is None:
        return []
    steps = max(1, math.ceil(n / b))
    found = []
    for variable, path, owner in ctx.weights:
        regularizer = getattr(variable, "regularizer", None)
        l2 = facts.l2_of(regularizer)
        if not l2:
            continue
        found.append(
            Finding(
                "info",
                "lambda-batch-size",
                variable.path,
                f"{facts.describe_regularizer(regularizer)} on '{variable.path}' is added "
                f"at each of {steps} steps per epoch (batch_size={b}, num_examples={n}): "
                f"l2 × steps = {l2 * steps:.3g} per epoch",
                "Keras adds the penalty once per step to a loss averaged over the batch, "
                "so the regularization per epoch grows as num_examples / batch_size and "
                "the same λ is a different regularizer at another batch size (Bengio 2012).",
                f"l2 = {l2:g} * new_batch_size / {b}  # keeps l2 × steps per epoch constant",
            )
        )
    seen = set()
    for optimizer in ctx.chain:
        if facts.is_kreg_decay(optimizer):
            wd = facts.kreg_weight_decay(optimizer)
        else:
            wd = facts.keras_weight_decay(optimizer)
        if not wd or id(optimizer) in seen:
            continue
        seen.add(id(optimizer))
        per_step = _per_step_decay(optimizer, wd, ctx.stepper)
        if not per_step:
            continue
        per_epoch = per_step * steps
        keras_rule = not facts.is_kreg_decay(optimizer) or (
            getattr(optimizer, "follow", None) == "learning_rate"
            or getattr(optimizer, "mode", None) == "l2"
        )
        note = (
            "; or scale the learning rate by new_batch_size / "
            f"{b} and keep weight_decay={wd:g}, since the decay is multiplied by it"
            if keras_rule
            else ""
        )
        found.append(
            Finding(
                "info",
                "lambda-batch-size",
                "optimizer",
                f"weight decay from {type(optimizer).__name__}: {per_step:.3g} per step × "
                f"{steps} steps per epoch (batch_size={b}, num_examples={n}) = "
                f"{per_epoch:.3g} per epoch, a timescale of {1 / per_epoch:.3g} epochs",
                "Decay acts once per step, so the shrinkage per epoch grows as "
                "num_examples / batch_size: at another batch size the same λ and learning "
                "rate regularize differently (Wang & Aitchison 2024 keep the timescale "
                "1/(decay per step × steps per epoch) fixed).",
                f"weight_decay = {wd:g} * new_batch_size / {b}  # the same decay per epoch"
                + note,
            )
        )
    return found


CHECKS = (
    check_attachment,
    check_penalties,
    check_decay,
    check_batchnorm,
    check_noise,
    check_xla,
    check_batch_size,
)
