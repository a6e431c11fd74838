"""The README's quick start runs as written, and kreg.audit finds nothing wrong in it; the
examples moved from the README into the documentation (docs/) hold what they claim."""

import contextlib
import io
import pathlib
import re

import keras
import numpy as np

import kreg

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
DOCS = README.parent / "docs"


def _python_blocks(path=README):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_quick_start_runs_and_audits_clean():
    quick_start = _python_blocks()[0]
    namespace = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(quick_start, str(README), "exec"), namespace)
    assert "optimizer.weight_decay" in out.getvalue()
    report = kreg.audit(namespace["model"])
    assert not [f for f in report.findings if f.severity in ("error", "warning")], report


def test_readme_commands_are_the_ci_commands():
    text = README.read_text()
    commands = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    assert len(commands) == 2
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'pip install -e ".[cpu,jax,torch,test]"' in commands[1] and "[cpu,jax,torch,test]" in ci
    assert "KERAS_BACKEND=$1 python -m pytest -q" in ci  # the README's command, per leg
    for backend in ("tensorflow", "jax", "torch"):
        assert f"leg {backend} backend_leg {backend}" in ci, backend
    for backend in ("tensorflow", "jax", "torch"):
        assert f"KERAS_BACKEND={backend} pytest -q" in commands[1]
    assert "tutorials/tour.py --quick" in commands[0]
    assert (README.parent / "tutorials" / "tour.py").exists()


def _decayed_once(optimizer):
    """A kernel of ones after one step with a zero gradient: 1 − the decay per step."""
    kernel = keras.Variable(np.ones((2, 2), "float32"), name="kernel")
    optimizer.apply([keras.ops.zeros((2, 2))], [kernel])
    return keras.ops.convert_to_numpy(kernel)


def test_weight_decay_example_matches_the_peers_it_names():
    page = DOCS / "components" / "optimizers.md"
    (block,) = [b for b in _python_blocks(page) if 'follow="schedule"' in b]
    namespace = {"keras": keras, "kreg": kreg}
    exec(compile(block, str(page), "exec"), namespace)
    keras_adamw = keras.optimizers.AdamW(1e-3, weight_decay=0.05)
    expected = _decayed_once(keras_adamw)
    np.testing.assert_allclose(expected, 1 - 5e-5, rtol=1e-7)
    np.testing.assert_array_equal(_decayed_once(namespace["adamw"]), expected)
    np.testing.assert_allclose(_decayed_once(namespace["paper"]), expected, rtol=1e-7)


def test_fine_tuning_snippet_is_the_example_s_code():
    (block,) = [b for b in _python_blocks(DOCS / "fine-tuning.md") if "keras_hub" in b]
    example = README.parent / "examples" / "finetune_keras_hub.py"
    lines = {line.strip() for line in example.read_text().splitlines()}
    for line in block.splitlines():
        if line.strip() and not line.startswith("print("):
            assert line.strip() in lines, line
