"""Keras' own tests, run with kreg's drop-in classes in place of Keras' classes.

The keras wheel ships its test modules (``keras/src/**/*_test.py``). Each module in SUITES
is imported by its module path, and while each of its test methods runs, every reference
it makes to a swapped Keras class points at the kreg class instead: attributes of the
modules it imports (``from keras.src import layers`` then ``layers.Dropout``) and entries
of their module-level registries (``regularizers.get("l2")`` reads ``ALL_OBJECTS_DICT``).
Every test method of every TestCase class is one pytest test, with an id such as
``dropout_test::DropoutTest::test_dropout_basics``.

Only the wording of error messages may differ from Keras; the exception types may not. So
while these tests run, ``assertRaisesRegex(ExcType, regex)`` checks ``ExcType`` only (these
modules do not use ``pytest.raises(match=...)``). A method Keras skips stays skipped: its
unittest skip decorators and its pytest marks are kept. A keras wheel that does not ship a
module (keras 3.10 ships none) skips it. Tests that assert exactly the Keras behaviour kreg
changes on purpose are listed, with the reason, in DELIBERATE and skipped.
"""

import importlib
import importlib.util
import types
import unittest
import warnings

import keras
import pytest

import kreg

SUITES = {
    "keras.src.layers.regularization.dropout_test": {keras.layers.Dropout: kreg.layers.Dropout},
    "keras.src.layers.regularization.gaussian_noise_test": {
        keras.layers.GaussianNoise: kreg.layers.GaussianNoise
    },
    "keras.src.callbacks.early_stopping_test": {
        keras.callbacks.EarlyStopping: kreg.callbacks.EarlyStopping
    },
    "keras.src.regularizers.regularizers_test": {
        keras.regularizers.L1: kreg.regularizers.L1,
        keras.regularizers.L2: kreg.regularizers.L2,
        keras.regularizers.L1L2: kreg.regularizers.L1L2,
    },
}

# Keras test method name -> why kreg differs on purpose (the test is skipped with this reason).
DELIBERATE = {}


def _swap(monkeypatch, test_module, swaps):
    """Points each reference `test_module` makes to a Keras class in `swaps` at the kreg class."""

    def swapped(value):
        return isinstance(value, type) and value in swaps

    done = set()
    namespaces = [test_module] + [
        v for v in vars(test_module).values() if isinstance(v, types.ModuleType)
    ]
    for namespace in namespaces:
        for name, value in list(vars(namespace).items()):
            if swapped(value):
                monkeypatch.setattr(namespace, name, swaps[value])
                done.add(value)
            elif isinstance(value, dict) and namespace is not test_module:
                for key, entry in list(value.items()):
                    if swapped(entry):
                        monkeypatch.setitem(value, key, swaps[entry])
    assert done == set(swaps), f"{test_module.__name__} never refers to {set(swaps) - done}"


def _type_only_assert_raises_regex(self, expected_exception, expected_regex, *args, **kwargs):
    return self.assertRaises(expected_exception, *args, **kwargs)


def keras_tests(module_name, swaps):
    """Yields (id, marks, run) per test method; run(monkeypatch) runs it with `swaps` in place."""
    short = module_name.rsplit(".", 1)[-1]
    if importlib.util.find_spec(module_name) is None:  # older keras wheels ship no tests
        yield (
            short,
            [pytest.mark.skip(reason=f"keras {keras.__version__} does not ship {module_name}")],
            None,
        )
        return
    with (
        warnings.catch_warnings()
    ):  # Keras' own marks (requires_trainable_backend) are unregistered here
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        test_module = importlib.import_module(module_name)
    for case in unittest.TestLoader().loadTestsFromModule(test_module):
        for test in case:
            method = test._testMethodName

            def run(monkeypatch, test=test):
                _swap(monkeypatch, test_module, swaps)
                monkeypatch.setattr(
                    unittest.TestCase, "assertRaisesRegex", _type_only_assert_raises_regex
                )
                test.debug()  # raises the test's own failure, or unittest.SkipTest

            marks = list(getattr(getattr(type(test), method), "pytestmark", []))
            if method in DELIBERATE:
                marks.append(
                    pytest.mark.skip(reason=f"kreg differs on purpose: {DELIBERATE[method]}")
                )
            yield f"{short}::{type(test).__name__}::{method}", marks, run


CASES = [
    pytest.param(run, id=test_id, marks=marks)
    for module_name, swaps in SUITES.items()
    for test_id, marks, run in keras_tests(module_name, swaps)
]


@pytest.mark.parametrize("run", CASES)
def test_keras_suite(run, monkeypatch):
    run(monkeypatch)
