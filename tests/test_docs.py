"""The documentation site (mkdocs.yml, docs/): every public name has an API entry, every
relative link resolves, the README and Getting started agree, and the pages docs/hooks.py
makes at build time come out right. The site itself is built by CI (`mkdocs build
--strict`, .ci/run), not here."""

import contextlib
import importlib
import importlib.util
import inspect
import io
import pathlib
import re

import pytest
from conftest import tf_only

import kreg

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.rglob("*.md"))
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", flags=re.M | re.S)

pytestmark = tf_only  # the same files whatever the backend: checked once in CI


def _public():
    """(dotted name, object) for every name in kreg.__all__ and its subpackages' __all__."""
    names = []
    for name in kreg.__all__:
        obj = getattr(kreg, name)
        if not inspect.ismodule(obj) and name != "__version__":
            names.append((f"kreg.{name}", obj))
    for module_name in (
        "kreg.regularizers",
        "kreg.optimizers",
        "kreg.layers",
        "kreg.callbacks",
        "kreg.audit",
    ):
        module = importlib.import_module(module_name)
        names += [(f"{module_name}.{name}", getattr(module, name)) for name in module.__all__]
    audit = importlib.import_module("kreg.audit").audit
    names += [
        (f"kreg.audit.{name}", getattr(audit, name))  # reachable from the function
        for name in ("Report", "Finding", "AuditError")
    ]
    return names


def _resolve(path):
    """The object a ``::: path`` line documents (the longest importable module prefix)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(path)


def _entries():
    return {
        path: page
        for page in PAGES
        for path in re.findall(r"^::: ([\w.]+)\s*$", page.read_text(), flags=re.M)
    }


def test_every_public_name_has_an_api_entry():
    entries = _entries()
    documented = {id(_resolve(path)) for path in entries}
    missing = [name for name, obj in _public() if id(obj) not in documented]
    assert not missing, f"no `::: name` line in docs/components/*.md for {missing}"
    assert len({id(obj) for _, obj in _public()}) == len(entries)  # and nothing twice


def _printed(block):
    """What a block says it prints: ``print(...)  # out`` or a ``# out`` line after a print."""
    expected, lines = [], block.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("print("):
            inline = line.partition("  # ")[2]
            after = lines[i + 1] if i + 1 < len(lines) else ""
            expected.append(inline or (after[2:] if after.startswith("# ") else ""))
    return [e for e in expected if e]


@pytest.mark.parametrize("page", sorted((DOCS / "components").glob("*.md")), ids=lambda p: p.name)
def test_component_pages_examples_run_and_print_what_they_say(page):
    for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            exec(compile("import keras, kreg\n" + block, str(page), "exec"), {})
        for expected in _printed(block):
            assert expected in out.getvalue(), (page.name, expected, out.getvalue())


def _links(path):
    text = FENCE.sub("", path.read_text())
    return [
        target for target in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:|^#", target)
    ]


@pytest.mark.parametrize("page", [README] + PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_on_github(page):
    """Every page renders on GitHub as it is: its relative links point at files that exist."""
    for target in _links(page):
        assert (page.parent / target.partition("#")[0]).exists(), f"{page.name}: {target}"


def test_readme_links_into_every_docs_page():
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in _links(README)}
    hand_written = [p for p in PAGES if p.parent.name != "css"]
    assert not [p for p in hand_written if p.resolve() not in linked]


def test_getting_started_has_the_readme_s_commands_and_quick_start():
    readme, page = README.read_text(), (DOCS / "getting-started.md").read_text()
    for kind in ("bash", "python"):
        blocks = re.findall(rf"```{kind}\n(.*?)```", readme, flags=re.S)
        assert blocks and all(block in page for block in blocks), kind
    assert 'pip install -e ".[docs]" && mkdocs serve' in readme


def test_the_docs_extra_and_ci_build_the_site_strictly():
    setup = (ROOT / "setup.cfg").read_text()
    extra = re.search(r"^docs =\n((?:    .*\n)+)", setup, flags=re.M).group(1)
    assert "mkdocs" in extra and "mkdocs-material" in extra and "mkdocstrings[python]" in extra
    ci = (ROOT / ".ci" / "run").read_text()
    assert '".[docs]"' in ci and "mkdocs build --strict" in ci
    config = (ROOT / "mkdocs.yml").read_text()
    assert "font: false" in config  # no web fonts: the site reads offline
    assert "arithmatex" not in config  # formulas in Unicode: MathJax would need the network


# --- the pages docs/hooks.py makes --------------------------------------------------------


@pytest.fixture(scope="module")
def hooks():
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("kreg_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STAND_IN = '''"""
Title: A stand-in lesson
Author: kreg contributors
Date created: 2026/12/07
Last modified: 2026/12/07
Description: Two cells and a study.
Accelerator: None
"""

"""
## Introduction

Prose, with [lesson 1](01_weight_decay_vs_l2.py) and [the docs](../docs/claims.md).
"""

import _lesson

options = _lesson.options("99_stand_in")

"""
## What the full study shows
"""

_lesson.study(options, "99_stand_in")
'''


@pytest.fixture
def stand_in(hooks, tmp_path, monkeypatch):
    """A lesson in tutorials/ (a temporary copy of the folder's name) with a committed study."""
    results, images = tmp_path / "results", tmp_path / "img"
    results.mkdir()
    images.mkdir()
    (results / "99_stand_in.md").write_text(
        "### 99_stand_in\n\n| claim | verdict |\n|---|---|\n| it holds | reproduced |\n"
    )
    (images / "99_stand_in.png").write_bytes(b"")
    monkeypatch.setattr(hooks, "RESULTS", results)
    monkeypatch.setattr(hooks, "IMAGES", images)
    lesson = ROOT / "tutorials" / "99_stand_in.py"  # links in it are relative to tutorials/
    return lesson


def test_a_lesson_page_shows_its_cells_and_what_its_study_shows(
    hooks, stand_in, tmp_path, monkeypatch
):
    source = tmp_path / "99_stand_in.py"
    source.write_text(STAND_IN)
    page = hooks.lesson_markdown(source)
    assert page.startswith("# A stand-in lesson\n")
    assert "python tutorials/99_stand_in.py --quick" in page
    assert '```python\n_lesson.study(options, "99_stand_in")\n```' in page
    after = page.split('_lesson.study(options, "99_stand_in")')[1]
    assert "| it holds | reproduced |" in after and "99_stand_in.png)" in after
    site = hooks.rewrite_links(page, stand_in, DOCS / "lessons" / "99_stand_in.md")
    assert "[lesson 1](01_weight_decay_vs_l2.md)" in site
    assert "[the docs](../claims.md)" in site


def test_links_are_rewritten_for_the_site(hooks):
    readme = (
        "[a](docs/scaling-out.md) [b](tutorials/03_early_stopping.py) "
        "![c](docs/img/03_early_stopping.png) [`examples/finetune_keras_hub.py`]"
        "(examples/finetune_keras_hub.py) [e](https://keras.io) [f](#quick-start) "
        "[g](benchmarks/README.md)\n\n```text\n[h](tutorials/tour.py)\n```\n"
    )
    site = hooks.rewrite_links(readme, README, DOCS / "index.md")
    assert site == (
        "[a](scaling-out.md) [b](lessons/03_early_stopping.md) "
        "![c](img/03_early_stopping.png) `examples/finetune_keras_hub.py` "
        "[e](https://keras.io) [f](#quick-start) [g](benchmarks.md)\n\n"
        "```text\n[h](tutorials/tour.py)\n```\n"
    )
    nested = hooks.rewrite_links(
        "[x](../../tutorials/05_dropout.py) [y](../nowhere.md)",
        DOCS / "components" / "layers.md",
        DOCS / "components" / "layers.md",
    )
    assert nested == "[x](../lessons/05_dropout.md) [y](../nowhere.md)"  # mkdocs reports y


def test_the_audit_codes_table_is_the_one_help_shows(hooks):
    from kreg.audit import _codes

    table = hooks.audit_codes().splitlines()
    assert table[:2] == ["| code | severity | meaning |", "|---|---|---|"]
    expected = [
        f"| `{code}` | {entry.severity} | {entry.summary.replace('``', '`')} |"
        for code, entry in _codes.CODES.items()
    ]
    assert table[2:] == expected
    for code, entry in _codes.CODES.items():  # the same table as help(kreg.audit)
        assert re.search(rf"^{re.escape(code)} +{entry.severity} +", _codes.table(), flags=re.M)


def test_claims_come_from_the_committed_results(hooks, stand_in, monkeypatch):
    (hooks.RESULTS / "01_weight_decay_vs_l2.md").write_text("### 01\n\n| a | reproduced |\n")
    page = hooks.claims((DOCS / "claims.md").read_text())
    first = page.split("## 1. ")[1].split("## 2. ")[0]
    second = page.split("## 2. ")[1].split("## 3. ")[0]
    assert "| a | reproduced |" in first and "paired t-test, |t| = 5.71" not in first
    assert "[The lesson](../tutorials/02_l1_l2_elastic_net.py)" in second  # no results: as written
    assert "## 99_stand_in" in page  # a study without a lesson gets a section too


def test_docstrings_are_read_as_mkdocstrings_renders_them():
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("kreg_docs_griffe", DOCS / "griffe_kreg.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    docstring = (
        "Intro, see :func:`kreg.strengths` and :meth:`get_state`.\n\nArgs:\n    rate: a float.\n\n"
        "Call arguments:\n    inputs: a tensor\n        of any rank.\n\nExample:\n\n>>> 1 + 1\n2\n\n"
        "References:\n    Bishop 1995.\n"
    )
    text = module.plain_sections(module.indent_examples(docstring))
    assert "Examples:\n    >>> 1 + 1\n    2\n" in text  # indented under its title: a section
    assert "**Call arguments:**\n\n- `inputs`: a tensor\n  of any rank.\n" in text
    assert "**References:**\n\nBishop 1995.\n" in text
    extension = module.KregDocstrings()
    roles = module.ROLE.sub(extension._role, text)
    assert "[`kreg.strengths`][kreg.strengths] and `get_state`." in roles
