"""MkDocs hooks: the pages made at build time from the repository's own files.

* ``index.md`` is README.md;
* ``lessons/NN_name.md`` is ``tutorials/NN_name.py`` through ``tutorials/notebook.py``'s
  ``to_markdown`` (the keras.io "tutobook" conversion that also makes the notebooks); after a
  code cell that calls ``_lesson.study(options, "NAME")`` comes what that call shows: the
  study's verdict table (``studies/results/NAME*.md``) and its figure (``docs/img/NAME.png``);
* ``benchmarks.md`` is benchmarks/README.md;
* ``<!-- kreg:claims -->`` in claims.md becomes one section per study with committed results;
* ``<!-- kreg:codes -->`` in components/audit.md becomes the audit's finding codes
  (``kreg.audit._codes.table()``, what ``help(kreg.audit)`` prints).

Relative links are written for GitHub (docs/*.md link to ``../tutorials/03_early_stopping.py``,
README.md to ``docs/scaling-out.md``); here each is rewritten for the site: a link to a lesson
script goes to its page, to a file under docs/ to that file, to another file of the repository
becomes its path in code (the site holds only docs/). A link to nothing stays as it is, and
``mkdocs build --strict`` fails on it.
"""

import ast
import importlib.util
import logging
import os
import pathlib
import re

from mkdocs.structure.files import File

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = ROOT / "studies" / "results"
IMAGES = DOCS / "img"
log = logging.getLogger("mkdocs.hooks.kreg")

# Generated page -> the repository file it is made from (links in it are relative to that file).
ORIGINS = {"index.md": ROOT / "README.md", "benchmarks.md": ROOT / "benchmarks" / "README.md"}
# Repository files that have a page of their own on the site.
PAGES = {
    ROOT / "README.md": "index.md",
    ROOT / "benchmarks" / "README.md": "benchmarks.md",
    ROOT / "tutorials" / "README.md": "lessons/index.md",
}

_notebook = None


def notebook():
    """tutorials/notebook.py, imported from its path (tutorials/ is no package)."""
    global _notebook
    if _notebook is None:
        path = ROOT / "tutorials" / "notebook.py"
        spec = importlib.util.spec_from_file_location("kreg_docs_notebook", path)
        _notebook = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_notebook)
    return _notebook


def lessons():
    """The lesson scripts, tutorials/NN_name.py, in order."""
    return sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))


def lesson_title(path):
    """A lesson's ``Title:`` (its file name when the header has none)."""
    try:
        return notebook().cells(str(path))[0][1]["Title"]
    except Exception:  # reported when the page is made
        return path.stem


for _lesson in lessons():
    ORIGINS[f"lessons/{_lesson.stem}.md"] = _lesson
    PAGES[_lesson] = f"lessons/{_lesson.stem}.md"


# --- nav -------------------------------------------------------------------------------------


def on_config(config):
    """ "Lessons: lessons/index.md" in mkdocs.yml's nav gains one entry per lesson."""
    for index, item in enumerate(config["nav"] or []):
        if isinstance(item, dict) and item.get("Lessons") == "lessons/index.md":
            entries = [{"Overview": "lessons/index.md"}]
            entries += [
                {f"{int(path.stem[:2])}. {lesson_title(path)}": f"lessons/{path.stem}.md"}
                for path in lessons()
            ]
            config["nav"][index] = {"Lessons": entries}
    return config


# --- generated pages -------------------------------------------------------------------------


def on_files(files, config):
    for src_uri, origin in ORIGINS.items():
        if files.get_file_from_path(src_uri) is not None:
            log.warning(f"docs/{src_uri} exists: it is made from {origin.relative_to(ROOT)}")
            continue
        files.append(File.generated(config, src_uri, content=_page_source(src_uri, origin)))
    return files


def _page_source(src_uri, origin):
    if src_uri.startswith("lessons/"):
        try:
            return lesson_markdown(origin)
        except Exception as err:  # a lesson that does not convert fails a strict build
            log.warning(f"{origin.relative_to(ROOT)} does not convert to a page: {err}")
            return f"# {origin.stem}\n\nThis lesson did not convert: {err}\n"
    return origin.read_text(encoding="utf-8")


_STUDY_CALL = re.compile(r"_lesson\.study\(\s*\w+\s*,\s*[\"']([\w.-]+)[\"']")


def lesson_markdown(path):
    """The lesson's page: to_markdown's cells, and what each ``_lesson.study`` call shows."""
    text = notebook().to_markdown(str(path))
    run = (
        f"Run it: `python tutorials/{path.name} --quick` (under a minute on a CPU), or as a "
        f"notebook: `python tutorials/notebook.py tutorials/{path.name}` writes "
        f"`tutorials/{path.stem}.ipynb`."
    )
    parts = re.split(r"(```python\n.*?\n```)", text, flags=re.S)
    out = []
    for part in parts:
        out.append(part)
        if part.startswith("```python"):
            for name in _STUDY_CALL.findall(part):
                shown = study_output(name, relative_to=path.parent).replace("\n", "\n    ")
                out.append(
                    f'\n\n!!! quote "What it shows: the study\'s last full run"\n\n    {shown}\n\n'
                )
    page = "".join(out)
    # The run line goes under the header (title and details), before the first prose.
    head, sep, rest = page.partition("\n\n")
    details, sep2, body = rest.partition("\n\n")
    return f'{head}\n\n{details}\n\n!!! tip ""\n    {run}\n\n{body}'


def study_results(name):
    """studies/results/NAME.md and NAME.<variant>.md, in order."""
    return sorted(RESULTS.glob(f"{name}.md")) + sorted(RESULTS.glob(f"{name}.*.md"))


def study_output(name, relative_to):
    """What ``_lesson.study(options, name)`` shows: the verdict tables and the figure."""
    paths = study_results(name)
    parts = []
    for results in paths:
        parts.append(
            rewrite_links(results.read_text(encoding="utf-8").strip(), results, relative_to / "_")
        )
    if not paths:
        parts.append(
            f"*(No committed results for study {name} yet: run `python studies/{name}.py`.)*"
        )
    image = IMAGES / f"{name}.png"
    if image.exists():
        parts.append(f"![The full run of study {name}]({os.path.relpath(image, relative_to)})")
    return "\n\n".join(parts)


# --- markers ---------------------------------------------------------------------------------


def on_page_markdown(markdown, page, config, files):
    src_uri = page.file.src_uri
    if "<!-- kreg:codes -->" in markdown:
        markdown = markdown.replace("<!-- kreg:codes -->", audit_codes())
    if "<!-- kreg:claims -->" in markdown:
        markdown = claims(markdown)
    origin = ORIGINS.get(src_uri, DOCS / src_uri)
    return rewrite_links(markdown, origin, DOCS / src_uri)


def audit_codes():
    """The audit's codes as a markdown table: code, severity, meaning — the table
    ``help(kreg.audit)`` shows (``kreg.audit._codes.table()``), read from the source with
    :mod:`ast`, so that the build imports neither kreg nor Keras (nor needs a backend);
    tests/test_docs.py checks it against the imported table."""
    rows = static_codes(ROOT / "kreg" / "audit" / "_codes.py")

    def cell(text):
        return text.replace("``", "`").replace("|", "\\|")

    table = ["| code | severity | meaning |", "|---|---|---|"]
    table += [f"| `{code}` | {severity} | {cell(meaning)} |" for code, severity, meaning in rows]
    return "\n".join(table)


def _module_file(module):
    path = ROOT / pathlib.Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _constants(tree, resolve_imports=True):
    """Module-level names bound to constants, also those imported from kreg modules."""
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            names.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
        elif (
            resolve_imports
            and isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("kreg.")
            and _module_file(node.module).exists()
        ):
            imported = _constants(
                ast.parse(_module_file(node.module).read_text(encoding="utf-8")),
                resolve_imports=False,
            )
            names.update(
                {a.asname or a.name: imported[a.name] for a in node.names if a.name in imported}
            )
    return names


def _literal(node, names):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name):
                spec = _literal(value.format_spec, names) if value.format_spec else ""
                parts.append(format(names[value.value.id], spec))
            else:
                parts.append(_literal(value, names))
        return "".join(parts)
    raise ValueError(
        f"line {node.lineno}: not a string the docs build can read: {ast.unparse(node)}"
    )


def static_codes(path):
    """[(code, severity, summary)] of ``CODES = {"code": Code(severity, summary, ...), ...}``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = _constants(tree)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "CODES" for t in targets) and isinstance(
            node.value, ast.Dict
        ):
            return [
                (
                    _literal(key, names),
                    _literal(value.args[0], names),
                    _literal(value.args[1], names),
                )
                for key, value in zip(node.value.keys, node.value.values)
            ]
    raise ValueError(f"{path}: no `CODES = {{...}}` dict")


def claims(markdown):
    """One section per lesson: its study's committed verdicts and figure; where a study has
    no results file yet, the section written under the marker (``## N. ...``) stays."""
    intro, _, fallback = markdown.partition("<!-- kreg:claims -->")
    written = {}
    for section in re.split(r"(?m)^(?=## )", fallback):
        number = re.match(r"## (\d+)\.", section)
        if number:
            written[int(number.group(1))] = section.strip()
    sections = []
    studied = set()
    for path in lessons():
        number, name = int(path.stem[:2]), path.stem
        studied.add(name)
        if study_results(name):
            sections.append(
                f"## {number}. {lesson_title(path)}\n\n"
                f"[The lesson](../tutorials/{path.name}) · the study: "
                f"`python studies/{name}.py`\n\n" + study_output(name, DOCS)
            )
        elif number in written:
            sections.append(written[number])
    others = sorted({p.name.split(".")[0] for p in RESULTS.glob("*.md")} - studied)
    for name in others:
        sections.append(f"## {name}\n\n`python studies/{name}.py`\n\n" + study_output(name, DOCS))
    return intro.rstrip() + "\n\n" + "\n\n".join(sections) + "\n"


# --- links -----------------------------------------------------------------------------------

_FENCE = re.compile(r"(^```.*?^```[ \t]*$)", flags=re.M | re.S)
_LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^()\s]+)(\s+\"[^\"]*\")?\)")


def rewrite_links(markdown, origin, page):
    """Links relative to ``origin`` (a repository file) made relative to ``page`` (under docs/)."""
    parts = _FENCE.split(markdown)
    for i in range(0, len(parts), 2):  # odd parts are fenced code
        parts[i] = _LINK.sub(lambda m: _rewrite(m, origin, page), parts[i])
    return "".join(parts)


def _rewrite(match, origin, page):
    bang, text, target, title = match.groups()
    if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
        return match.group(0)
    path_part, hash_, anchor = target.partition("#")
    path = (origin.parent / path_part).resolve()
    here = page.parent
    if path in PAGES:
        new = os.path.relpath(DOCS / PAGES[path], here)
    elif path == DOCS or DOCS in path.parents:
        new = os.path.relpath(path, here)
    elif ROOT in path.parents and path.exists() and not bang:
        # Not on the site: the file's path in the repository, as code.
        where = path.relative_to(ROOT).as_posix()
        plain = text.strip("`").rstrip("/")
        if path.is_dir():
            where += "/"
        same = plain in (where.rstrip("/"), path.name, path_part.rstrip("/"))
        return f"`{where}`" if same else f"{text} (`{where}`)"
    else:
        return match.group(0)  # left for mkdocs to report
    new = pathlib.PurePath(new).as_posix() + (hash_ + anchor if hash_ else "")
    return f"{bang}[{text}]({new}{title or ''})"
