"""Every kreg piece on the models people bring: tiny keras-hub models built from constructors.

ResNet, ViT, BERT, GPT-2 and Llama backbones and a BERT classifier with keras-hub's own
head (``_hub_models.py``; random weights, no downloads), on the backend CI runs. The
main test is one fine-tuning session a user would run: attach penalties (L2 and L2-SP),
decay weights (DecoupledWeightDecay's default selection), audit, train, save, load,
train on; then weight files and BackupAndRestore, and Monte-Carlo dropout through the
models' own dropout. The audit's findings on these models are checked one by one in
test_audit.py, and mc_predict's refusals in test_mc_predict.py, with the same builders.
"""

import keras
import numpy as np
import pytest

import kreg
from kreg._walk import walk_layers

keras_hub = pytest.importorskip("keras_hub")

import _hub_models  # noqa: E402  (needs keras_hub)

ARCHITECTURES = list(_hub_models.BUILDERS)


def _build(name, dropout=0.0):
    keras.utils.set_random_seed(7)
    return _hub_models.BUILDERS[name](dropout)


def _compile(model, name, weight_decay=0.01):
    # Default selection: biases, normalization parameters and rank <= 1 weights not decayed.
    optimizer = kreg.optimizers.DecoupledWeightDecay(keras.optimizers.Adam(1e-3), weight_decay)
    if name == "bert_classifier":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        loss = keras.tree.map_structure(lambda _: "mse", model.output)
    model.compile(optimizer=optimizer, loss=loss)
    return optimizer


def _fit(model, inputs, targets):
    model.fit(inputs, targets, batch_size=_hub_models.BATCH, epochs=1, shuffle=False, verbose=0)


def _penalties(model):
    """``{weight path: (regularizer config, penalty value)}``."""
    found = {}
    for variable in model.weights:
        regularizer = getattr(variable, "regularizer", None)
        if regularizer is not None:
            key = variable.path
            value = float(keras.ops.convert_to_numpy(regularizer(variable)))
            found[key] = (keras.saving.serialize_keras_object(regularizer), value)
    return found


def _strength_values(model):
    return {name: float(handle) for name, handle in kreg.strengths(model).items()}


def _weights(model):
    """``{path: value}`` of every weight (live strengths included)."""
    return {v.path: np.asarray(keras.ops.convert_to_numpy(v)) for v in model.weights}


def _assert_same_weights(model, other, **tolerance):
    mine, theirs = _weights(model), _weights(other)
    assert sorted(mine) == sorted(theirs)
    for path, value in mine.items():
        np.testing.assert_allclose(theirs[path], value, err_msg=path, **(tolerance or {"rtol": 0}))


#: Weights of attention and MLP blocks get L2-SP, the others (embeddings, convolutions,
#: heads, ResNet's first stack) plain L2: both kinds of `apply` on every architecture, in one compiled model.
TOWARD_START = r"attention|mha|query|key|value|dense|mlp|ffn|feedforward|stack1"


def _attach(model):
    l2 = kreg.regularizers.apply(model, kreg.regularizers.L2(1e-4), exclude=TOWARD_START)
    l2sp = kreg.regularizers.apply(
        model,
        kreg.regularizers.L2SP(1e-3),
        exclude=lambda variable: variable.path in l2,
    )
    return l2, l2sp


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_fine_tune_save_load_and_train_on_keeps_every_penalty_and_strength(name, tmp_path):
    model, inputs, targets = _build(name)
    l2, l2sp = _attach(model)
    assert l2 and l2sp, (l2, l2sp)
    assert len(_penalties(model)) == len(l2) + len(l2sp) == len(model.losses)
    optimizer = _compile(model, name)
    # Default selection: every weight of rank >= 2 outside normalization layers, no bias.
    decayed = [v.path for v in model.trainable_weights if optimizer.weight_decay_multiplier(v)]
    assert set(decayed) >= set(l2 + l2sp) - {p for p in l2 + l2sp if "class_token" in p}
    assert not [p for p in decayed if p.endswith(("bias", "gamma", "beta", "scale"))]
    # Adam rescales a penalty's gradient, and the default selection also decays the
    # penalized kernels: true, and all the audit has to say.
    report = kreg.audit(model)
    assert {f.code for f in report.findings if f.severity in ("error", "warning")} <= {
        "l2-with-adaptive-optimizer",
        "l2-and-weight-decay",
    }, str(report)
    strengths = kreg.strengths(model)  # live before the first step: one trace
    _fit(model, inputs, targets)
    penalty = next(k for k in strengths if k.endswith(".l2"))
    strengths[penalty].assign(0.25)
    strengths["optimizer.weight_decay"].assign(0.02)
    model.save(tmp_path / "model.keras")

    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert type(loaded).__name__ == type(model).__name__
    assert isinstance(loaded, type(model).__mro__[1])  # the keras-hub class
    assert _penalties(loaded) == _penalties(model)
    kreg.strengths(loaded)  # live, as the saved model's: the same weights
    _assert_same_weights(model, loaded)
    if isinstance(model, keras_hub.models.Task):
        # A keras-hub task overrides `compile`, so Keras does not compile it from the
        # saved settings (it warns): the user compiles the loaded task again.
        loaded_optimizer = _compile(loaded, name, weight_decay=0.02)
        loaded_optimizer.build(loaded.trainable_variables)
        for mine, theirs in zip(optimizer.variables, loaded_optimizer.variables):
            theirs.assign(keras.ops.convert_to_numpy(mine))  # a copy: JAX donates buffers
    assert _strength_values(loaded) == _strength_values(model)
    # Training on: the loaded model takes the step the saved one takes (no dropout here).
    # Eagerly: the compiled step of a model with these penalties is the saved one's, and
    # tracing it again costs seconds per model.
    _fit(model, inputs, targets)
    loaded.run_eagerly = True
    loaded.make_train_function(force=True)
    _fit(loaded, inputs, targets)
    # Graph and eager round differently, and Adam scales a difference of the gradients up
    # to a fraction of lr = 1e-3: 1e-5 is 1 % of a step.
    _assert_same_weights(model, loaded, rtol=1e-5, atol=1e-5)
    # Saved again, the loaded model keeps them too.
    loaded.save(tmp_path / "again.keras")
    again = keras.saving.load_model(tmp_path / "again.keras", safe_mode=True)
    assert _penalties(again) == _penalties(loaded)
    # A weights file restores weights and strengths into the model built anew in code.
    loaded.save_weights(tmp_path / "model.weights.h5")
    rebuilt, _, _ = _build(name)
    _attach(rebuilt)
    kreg.strengths(rebuilt)
    rebuilt.load_weights(tmp_path / "model.weights.h5")
    assert list(_penalties(rebuilt).values()) == list(_penalties(loaded).values())
    # In model order (a task built again here names its backbone "..._1").
    assert list(_strength_values(rebuilt).values()) == [
        v for k, v in _strength_values(loaded).items() if not k.startswith("optimizer.")
    ]


class _SetPenalties(keras.callbacks.Callback):
    """Sets every penalty strength to 0.125 at the end of each epoch (before the backup)."""

    def on_epoch_end(self, epoch, logs=None):
        for name, handle in kreg.strengths(self.model).items():
            if name.endswith(".l2"):
                handle.assign(0.125)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("interrupted")


class _StrengthsAtStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seen = _strength_values(self.model)


@pytest.mark.parametrize("name", ["llama", "bert_classifier"])
def test_backup_and_restore_resumes_with_the_strengths_set_before_the_interruption(name, tmp_path):
    backup = str(tmp_path / "backup")
    model, inputs, targets = _build(name)
    _attach(model)
    _compile(model, name)
    kreg.strengths(model)
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(
            inputs,
            targets,
            epochs=2,
            verbose=0,
            callbacks=[_SetPenalties(), keras.callbacks.BackupAndRestore(backup), _Interrupt()],
        )
    resumed, _, _ = _build(name)  # a new process builds the model anew
    _attach(resumed)
    _compile(resumed, name)
    seen = _StrengthsAtStart()
    resumed.fit(
        inputs,
        targets,
        epochs=2,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(backup), seen],
    )
    penalties = {k: v for k, v in seen.seen.items() if k.endswith(".l2")}
    assert penalties and set(penalties.values()) == {0.125}


def _dropouts(model):
    """The model's Keras Dropout layers that draw (rate > 0), nested ones included."""
    return [
        layer
        for _, layer in walk_layers(model)
        if isinstance(layer, keras.layers.Dropout) and layer.rate > 0
    ]


@pytest.mark.parametrize("name", ["vit", "bert", "gpt2", "bert_classifier"])
def test_mc_predict_samples_the_models_own_dropout(name):
    model, inputs, _ = _build(name, dropout=0.1)
    # BERT and GPT-2: embeddings + 3 per transformer layer; ViT: 2 per block + 1 (its
    # attention dropout is 0); the classifier adds its head's.
    assert len(_dropouts(model)) == {"bert": 7, "gpt2": 7, "vit": 5, "bert_classifier": 8}[name]
    with pytest.raises(ValueError, match=r"\(pass keras_dropout=True to sample them\)$"):
        kreg.mc_predict(model, inputs, samples=2)
    mean, std = kreg.mc_predict(model, inputs, samples=4, keras_dropout=True)
    for m, s in zip(keras.tree.flatten(mean), keras.tree.flatten(std)):
        assert m.shape == s.shape and np.all(np.isfinite(m))
        assert np.all(s.max(axis=-1) > 0)  # every example's output varies
