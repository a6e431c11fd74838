"""The public API: registration, docstring examples, and the backend-agnostic core."""

import ast
import doctest
import importlib
import inspect
import pathlib
import pkgutil

import keras
import pytest

import kreg

ROOT = pathlib.Path(kreg.__file__).parent
ALLOWED_IMPORTS = {"keras", "numpy", "kreg"}


def _modules():
    names = ["kreg"] + [m.name for m in pkgutil.walk_packages([str(ROOT)], prefix="kreg.")]
    return [importlib.import_module(n) for n in names if not n.endswith("__main__")]


def test_version():
    assert isinstance(kreg.__version__, str) and kreg.__version__.count(".") == 2


def test_every_public_class_is_registered_under_kreg():
    classes = set()
    for module in _modules():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) and obj.__module__.startswith("kreg"):
                classes.add(obj)
    classes.discard(kreg.Strength)  # a handle, never serialized
    assert classes, "no public classes found"
    for cls in classes:
        assert keras.saving.get_registered_name(cls) == f"kreg>{cls.__name__}", cls


def test_core_imports_only_keras_numpy_and_stdlib():
    import sys

    stdlib = set(sys.stdlib_module_names)
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in ALLOWED_IMPORTS or top in stdlib, f"{path}: imports {name}"
                assert not name.startswith("keras.src"), f"{path}: imports {name}"


@pytest.mark.parametrize("module", [m.__name__ for m in _modules()])
def test_docstring_examples_run(module):
    result = doctest.testmod(
        importlib.import_module(module),
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.failed == 0
