"""The README's quick start runs as written, and kreg.audit finds nothing wrong in it."""

import contextlib
import io
import pathlib
import re

import kreg

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_quick_start_runs_and_audits_clean():
    (quick_start,) = _python_blocks()
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
    assert "for backend in tensorflow jax torch;" in ci
    for backend in ("tensorflow", "jax", "torch"):
        assert f"KERAS_BACKEND={backend} pytest -q" in commands[1]
    assert "tutorials/tour.py --quick" in commands[0]
    assert (README.parent / "tutorials" / "tour.py").exists()
