"""kreg._strength: one strength record, one protocol, one handle."""

import pytest

from kreg._strength import LiveStrengths, Strength, record
from kreg._validate import check_fraction


class _Owner(LiveStrengths):
    """The smallest owner: a dict of floats."""

    def __init__(self):
        self._records = {"rate": record("rate", "dropout", 0.5, check_fraction)}
        self.values = {"rate": 0.5}

    def strength_records(self):
        return self._records

    def read_strength(self, key):
        return self.values[key]

    def write_strength(self, key, value):
        self.values[key] = value


def test_a_handle_reads_and_writes_through_the_protocol_with_the_record_s_check():
    owner = _Owner()
    handle = Strength(owner, "rate", "drop.rate")
    assert (handle.kind, handle.base, float(handle)) == ("dropout", 0.5, 0.5)
    handle.assign(0.25)
    assert owner.values["rate"] == 0.25 and float(handle) == 0.25
    with pytest.raises(ValueError, match=r"argument `drop.rate`: expected a float in \[0, 1\]"):
        handle.assign(1.5)
    assert repr(handle) == "<Strength drop.rate=0.25 (kind=dropout, base=0.5)>"
    assert owner.make_live() is False  # an owner without a variable to create


def test_a_record_checks_its_base():
    with pytest.raises(ValueError, match=r"argument `l2`: expected a finite float >= 0"):
        record("l2", "regularizer", -1.0)


def test_variable_strengths_are_read_by_name_in_the_step_and_on_the_host():
    import keras
    import numpy as np

    from kreg.optimizers import DecoupledWeightDecay

    opt = DecoupledWeightDecay(keras.optimizers.SGD(0.1), 0.25, l1=0.125)
    opt.write_strength("l1", 0.5)
    tensors = opt.strength_tensors()
    assert list(tensors) == ["weight_decay", "l1"]
    assert [float(keras.ops.convert_to_numpy(t)) for t in tensors.values()] == [0.25, 0.5]
    assert opt.read_strength("weight_decay") == 0.25 and opt.read_strength("l1") == 0.5
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(opt._strengths), [0.25, 0.5])
