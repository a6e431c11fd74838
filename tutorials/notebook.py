"""Lessons as notebooks and as markdown: the keras.io "tutobook" conversion.

    python tutorials/notebook.py tutorials/03_early_stopping.py      # -> tutorials/03_early_stopping.ipynb
    python tutorials/notebook.py --all                               # every lesson
    python tutorials/notebook.py --all --out notebooks --execute     # run them too (smoke mode)

A lesson's header docstring (Title, Author, Date created, Last modified, Description,
Accelerator) becomes the title cell; every top-level triple-quoted string becomes a markdown
cell, and the code between two of them one code cell, as keras.io's ``tutobooks.py py2nb``
does. The blocks are found with :mod:`ast`, so a triple-quoted string *inside* code (a
docstring, an argument) stays code. Write the notebook next to the lesson (the default):
its first code cell imports ``_lesson`` from the lesson's folder. In a notebook the lesson
runs in the mode of ``KREG_LESSON_MODE`` (default "quick").

For the documentation site: :func:`to_markdown` renders the same cells as one markdown page
(code in ```python fences), :func:`to_notebook` returns the nbformat v4 dict.
"""

import argparse
import ast
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER_FIELDS = (
    "Title",
    "Author",
    "Authors",
    "Date created",
    "Last modified",
    "Description",
    "Accelerator",
)


def lessons():
    """Paths of the lessons (tutorials/NN_name.py), in order."""
    return sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.py")))


def parse_header(text):
    """{field: value} of a tutobook header ("Title: ...", one field per line)."""
    fields = {}
    for line in text.strip().splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in HEADER_FIELDS:
            fields[key.strip()] = value.strip()
        elif fields:  # a continuation line of the previous field
            last = next(reversed(fields))
            fields[last] += " " + line.strip()
    if "Title" not in fields:
        raise ValueError(
            f"A lesson's header docstring needs a `Title:` line. Received: {text.strip()[:80]!r}"
        )
    return fields


def cells(path):
    """The lesson at ``path`` as [(kind, text)]: ("header", {fields}), ("markdown", str),
    ("code", str), in order."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    lines = source.splitlines()
    module = ast.parse(source, filename=path)
    blocks = [
        node
        for node in module.body
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ]
    if not blocks or blocks[0] is not module.body[0]:
        raise ValueError(
            f"{path}: a lesson starts with its header docstring (Title, Author, "
            "Date created, Last modified, Description)."
        )
    out = [("header", parse_header(blocks[0].value.value))]
    previous_end = blocks[0].end_lineno
    for node in blocks[1:] + [None]:
        start = node.lineno if node is not None else len(lines) + 1
        code = "\n".join(lines[previous_end : start - 1]).strip("\n")
        if code.strip():
            out.append(("code", code.rstrip()))
        if node is not None:
            text = node.value.value.strip("\n")
            if text.strip():
                out.append(("markdown", text.rstrip()))
            previous_end = node.end_lineno
    return out


def _header_markdown(fields):
    lines = [f"# {fields['Title']}", ""]
    details = [f"**{key}:** {value}" for key, value in fields.items() if key != "Title"]
    return "\n".join(lines + ["<br>\n".join(details)])


def _source(text):
    """A cell's text as nbformat's list of lines."""
    parts = text.split("\n")
    return [line + "\n" for line in parts[:-1]] + [parts[-1]]


def to_notebook(path):
    """The lesson at ``path`` as a notebook: a dict in nbformat v4 (JSON-able)."""
    notebook_cells = []
    for index, (kind, text) in enumerate(cells(path)):
        cell = {"id": f"cell-{index}", "metadata": {}}
        if kind == "code":
            cell.update(cell_type="code", execution_count=None, outputs=[], source=_source(text))
        else:
            markdown = _header_markdown(text) if kind == "header" else text
            cell.update(cell_type="markdown", source=_source(markdown))
        notebook_cells.append(cell)
    return {
        "cells": notebook_cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {
                "name": "python",
                "file_extension": ".py",
                "mimetype": "text/x-python",
                "pygments_lexer": "ipython3",
                "codemirror_mode": {"name": "ipython", "version": 3},
            },
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def to_markdown(path):
    """The lesson at ``path`` as one markdown page: the header, its prose, code in fences."""
    parts = []
    for kind, text in cells(path):
        if kind == "header":
            parts.append(_header_markdown(text))
        elif kind == "code":
            parts.append(f"```python\n{text}\n```")
        else:
            parts.append(text)
    return "\n\n".join(parts) + "\n"


def write_notebook(path, out_dir=None):
    """Write ``<out_dir or the lesson's folder>/<lesson>.ipynb``; returns its path."""
    target = os.path.join(
        out_dir or os.path.dirname(os.path.abspath(path)), os.path.basename(path)[:-3] + ".ipynb"
    )
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as f:
        json.dump(to_notebook(path), f, indent=1, ensure_ascii=False)
        f.write("\n")
    return target


def execute(notebook_path, mode="smoke", timeout=600, out=None):
    """Run a notebook written next to its lesson with nbclient, in ``mode``; returns it.

    ``KREG_LESSON_MODE`` (and ``KREG_LESSON_OUT`` when ``out`` is given) reach the kernel
    through its environment; the kernel starts in the lessons' folder.
    """
    import nbclient
    import nbformat

    os.environ["KREG_LESSON_MODE"] = mode
    if out:
        os.environ["KREG_LESSON_OUT"] = out
    notebook = nbformat.read(notebook_path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": HERE}}
    )
    client.execute()
    return notebook


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("lessons", nargs="*", help="lesson scripts (tutorials/NN_name.py)")
    p.add_argument("--all", action="store_true", help="every lesson")
    p.add_argument(
        "--out",
        default=None,
        help="folder for the notebooks (default: beside "
        "each lesson, where its `import _lesson` works)",
    )
    p.add_argument("--markdown", action="store_true", help="write NN_name.md instead")
    p.add_argument(
        "--execute",
        action="store_true",
        help="run each notebook (nbclient) in KREG_LESSON_MODE, default smoke",
    )
    args = p.parse_args(argv)
    paths = lessons() if args.all else args.lessons
    if not paths:
        p.error("name a lesson, or pass --all")
    for path in paths:
        if args.markdown:
            target = os.path.join(
                args.out or os.path.dirname(os.path.abspath(path)),
                os.path.basename(path)[:-3] + ".md",
            )
            with open(target, "w", encoding="utf-8") as f:
                f.write(to_markdown(path))
        else:
            target = write_notebook(path, args.out)
            if args.execute:
                import nbformat

                notebook = execute(target, os.environ.get("KREG_LESSON_MODE", "smoke"))
                nbformat.write(notebook, target)
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
