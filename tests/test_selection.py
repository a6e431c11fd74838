"""kreg._selection: which weights DecoupledWeightDecay decays, by which multiplier."""

import keras
import numpy as np

from kreg._selection import Selection


def _dense():
    layer = keras.layers.Dense(2, name="dense")
    layer.build((None, 3))
    return layer


def test_multipliers_before_and_after_build_and_rows_with_gradients():
    dense = _dense()
    selection = Selection(exclude=None, multipliers={"kernel": 0.5})
    assert selection.multiplier(dense.kernel) == 0.5 and selection.multiplier(dense.bias) == 0.0
    anchors = []

    def make_anchor(variable, value):
        anchors.append(variable.path)
        return "θ₀"

    decayed = selection.build([dense.kernel, dense.bias], "initial", make_anchor)
    assert decayed == [dense.kernel] and anchors == ["dense/kernel"]
    assert selection.chosen(dense.kernel) == (0.5, "θ₀") and selection.chosen(dense.bias) == (
        0.0,
        None,
    )
    grads = [np.ones((3, 2)), np.ones(2)]
    assert selection.rows(grads, [dense.kernel, dense.bias]) == [(0, dense.kernel, 0.5, "θ₀")]
    assert selection.rows(grads[::-1], [dense.bias, dense.kernel]) == [(1, dense.kernel, 0.5, "θ₀")]
    assert selection.rows([None, np.ones(2)], [dense.kernel, dense.bias]) == []
    assert selection.config() == [["dense/kernel", 0.5], ["dense/bias", 0.0]]


def test_a_saved_selection_wins_where_paths_changed():
    dense = _dense()
    selection = Selection(exclude=r"kernel", multipliers=None)
    selection.restore([["dense/kernel", 1.0], ["dense/bias", 0.0]])
    selection.build([dense.kernel, dense.bias], None, None)
    assert selection.multiplier(dense.kernel) == 1.0  # saved, though the pattern excludes it
