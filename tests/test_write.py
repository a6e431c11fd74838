"""kreg._write: the write channel of DecoupledWeightDecay."""

import keras
import numpy as np
import pytest
from conftest import BACKEND

from kreg import _decay
from kreg._write import Writer


def test_writes_each_transform_with_its_multiplier_and_constraint():
    kernel = keras.Variable(np.full((2, 2), 2.0, "float32"), name="kernel")
    clipped = keras.Variable(np.array([-4.0, 4.0], "float32"), name="clipped")
    clipped.constraint = keras.constraints.NonNeg()
    anchored = keras.Variable(np.full((2,), 3.0, "float32"), name="anchored")
    writer = Writer("write")
    writer.build([kernel, clipped, anchored])
    rows = [
        (kernel, 1.0, None, None),
        (clipped, 0.5, None, None),
        (anchored, 1.0, np.ones(2, "float32"), None),
    ]
    writer.write(_decay.decay, keras.ops.convert_to_tensor(0.25), rows)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(kernel), np.full((2, 2), 1.5))
    # (1 − 0.25·0.5)·θ, then the constraint, as after the inner update.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clipped), [0.0, 3.5])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(anchored), [2.5, 2.5], rtol=1e-6)


@pytest.mark.skipif(BACKEND == "torch", reason="torch writes eagerly, without update_step")
def test_a_write_keras_does_not_make_is_an_error():
    class Dropped(Writer):
        def update_step(self, gradient, variable, learning_rate):
            pass  # as an optimizer whose backend bypasses update_step

    variable = keras.Variable(np.ones(2, "float32"), name="kernel")
    with pytest.raises(RuntimeError, match="did not call `update_step`.*kernel"):
        Dropped("dropped").write(_decay.decay, 0.5, [(variable, 1.0, None, None)])
