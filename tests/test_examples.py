"""Each example runs end to end in its smoke mode (KREG_SMOKE=1: tiny data, 1-6 epochs)."""

import glob
import os
import runpy

import pytest
from conftest import BACKEND

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))
# The slowest to compile on JAX; their kreg pieces have JAX tests of their own.
TF_ONLY = {"regularizers_pretrained.py", "regularization_scaler.py"}
# keras-hub needs Keras >= 3.15 (the oldest-Keras CI leg has none).
NEEDS_KERAS_HUB = {"finetune_keras_hub.py"}


def test_examples_are_short():
    assert len(EXAMPLES) >= 5
    for path in EXAMPLES:
        with open(path, encoding="utf-8") as f:
            assert len(f.read().splitlines()) <= 80, path


@pytest.mark.parametrize("path", EXAMPLES, ids=[os.path.basename(p) for p in EXAMPLES])
def test_example_runs_in_smoke_mode(path, monkeypatch, capsys):
    if BACKEND != "tensorflow" and os.path.basename(path) in TF_ONLY:
        pytest.skip("slow to compile on this backend: run on TensorFlow only")
    if os.path.basename(path) in NEEDS_KERAS_HUB:
        pytest.importorskip("keras_hub")
    monkeypatch.setenv("KREG_SMOKE", "1")
    runpy.run_path(path, run_name="__main__")
    assert capsys.readouterr().out.strip()  # every example prints what it did
