"""kreg._walk: a model's layers and an optimizer's chain of wrappers."""

import keras

import kreg
from kreg._walk import (
    accumulation_steps,
    find_in_chain,
    optimizer_chain,
    updating_optimizer,
    walk_layers,
    weight_owners,
)


def _model():
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="a")], name="inner")
    return keras.Sequential(
        [
            keras.Input((3,)),
            inner,
            keras.layers.Dense(1, name="b", kernel_regularizer=kreg.regularizers.L2(0.1)),
        ],
        name="outer",
    )


def test_walk_layers_gives_paths_parents_first_and_skips_strength_states():
    prefixes = [
        prefix
        for prefix, layer in walk_layers(_model())
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    assert prefixes == ["outer", "inner", "inner/a", "b"]  # not b's kernel_regularizer


def test_weight_owners_are_the_deepest_layers_frozen_ones_included():
    model = _model()
    model.get_layer("inner").trainable = False
    owners = {v.path: prefix for v, prefix, _ in weight_owners(model).values()}
    assert owners == {"outer/b/kernel": "b", "outer/b/bias": "b"}
    frozen = {v.path: prefix for v, prefix, _ in weight_owners(model, include_frozen=True).values()}
    assert frozen["inner/a/kernel"] == "inner/a" and len(frozen) == 4


def test_the_optimizer_chain_and_the_one_that_updates():
    core = keras.optimizers.SGD(0.1, gradient_accumulation_steps=3)
    wrapper = kreg.optimizers.DecoupledWeightDecay(core, 0.1)
    outer = keras.optimizers.LossScaleOptimizer(wrapper)
    assert optimizer_chain(outer) == [outer, wrapper, core] and optimizer_chain(None) == []
    assert updating_optimizer(outer) is core and updating_optimizer(None) is None
    assert accumulation_steps(outer) == 3 and accumulation_steps(keras.optimizers.SGD()) == 1
    assert find_in_chain(outer, kreg.optimizers.DecoupledWeightDecay) is wrapper
    assert find_in_chain(core, kreg.optimizers.DecoupledWeightDecay) is None
