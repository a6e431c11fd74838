"""The lessons' one helper: options, tables, figures and the study behind each lesson.

A lesson is a top-level script in the keras.io code-example format (a header docstring,
prose in triple-quoted blocks between short code cells). It uses five functions::

    import _lesson  # first: it puts the repository on sys.path when kreg is not installed

    options = _lesson.options("03_early_stopping")
    epochs = _lesson.pick(options, smoke=2, quick=40, full=300)
    _lesson.table(options, "criteria", ["criterion", "epochs"], rows)
    _lesson.figure(options, figure, "learning_curves")
    _lesson.study(options, "03_early_stopping")

``options`` reads the command line: ``--smoke`` (seconds, for tests), ``--quick`` (under a
minute on a 2-core CPU), ``--full``, ``--out DIR`` (default ./report; the lesson writes into
``DIR/<lesson>``), ``--dataset NAME`` and ``--seed N``. Without a mode flag (and always in a
notebook, where ``sys.argv`` belongs to the kernel) the mode comes from the environment
variable ``KREG_LESSON_MODE`` (default "quick") and the folder from ``KREG_LESSON_OUT``.

Every table and figure lands in ``<out>/<lesson>/`` with a README.md listing them, and
``<out>/index.md`` links every lesson that has run there (the tour's report).
"""

import argparse
import dataclasses
import glob
import os
import shutil
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STUDIES = os.path.join(ROOT, "studies")
RESULTS = os.path.join(STUDIES, "results")
IMAGES = os.path.join(ROOT, "docs", "img")
MODES = ("smoke", "quick", "full")

if HERE not in sys.path:  # imported from elsewhere (tests, the docs build)
    sys.path.insert(0, HERE)


import _data  # noqa: E402,F401  (puts the repository on sys.path)
import _report  # noqa: E402  (matplotlib without a display, except in a notebook)

in_notebook = _report.in_notebook


@dataclasses.dataclass
class Options(_report.RunMode):
    """What a lesson was asked to do. ``smoke`` / ``quick`` let ``_data.from_args`` read it."""

    name: str
    mode: str
    out: str
    dataset: str
    seed: int
    report: str


def parser(description=None):
    """The lessons' command line (the tour passes the same flags)."""
    p = argparse.ArgumentParser(description=description)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--smoke", action="store_true", help="near-nothing run, for tests")
    group.add_argument("--quick", action="store_true", help="under a minute on a 2-core CPU")
    group.add_argument("--full", action="store_true", help="the lesson at full length")
    p.add_argument(
        "--out", default=None, help="report folder (default $KREG_LESSON_OUT or ./report)"
    )
    p.add_argument(
        "--dataset",
        default=None,
        help="a tensorflow-datasets name (mnist, fashion_mnist, cifar10 ...) "
        "instead of the lesson's offline data",
    )
    p.add_argument("--seed", type=int, default=0)
    return p


def title_of(name):
    """The ``Title:`` of a lesson's header docstring (the name itself when there is none)."""
    path = os.path.join(HERE, name + ".py")
    try:
        with open(path, encoding="utf-8") as f:
            for line in f.read().split('"""')[1].splitlines():
                if line.startswith("Title:"):
                    return line[len("Title:") :].strip()
    except (OSError, IndexError):
        pass
    return name


def options(name, dataset="mnist1d", argv=None):
    """Parse the lesson's flags -> :class:`Options`; prepare ``<out>/<name>``.

    Args:
        name: the lesson's file name without ``.py`` ("03_early_stopping").
        dataset: the lesson's offline data set, used unless ``--dataset`` names another.
        argv: the flags (default: ``sys.argv[1:]``, or none at all in a notebook).
    """
    if argv is None:
        argv = [] if in_notebook() else sys.argv[1:]
    args = parser(title_of(name)).parse_args(argv)
    mode = (
        "smoke"
        if args.smoke
        else "quick"
        if args.quick
        else "full"
        if args.full
        else os.environ.get("KREG_LESSON_MODE", "quick")
    )
    if mode not in MODES:
        raise ValueError(
            f"Invalid value for KREG_LESSON_MODE: expected one of {MODES}. Received: {mode!r}"
        )
    report = args.out or os.environ.get("KREG_LESSON_OUT") or "report"
    out = os.path.join(report, name)
    os.makedirs(out, exist_ok=True)
    for old in glob.glob(os.path.join(out, "*")):
        if old.endswith((".md", ".png", ".txt")):
            os.remove(old)
    result = Options(
        name=name,
        mode=mode,
        out=out,
        dataset=args.dataset or dataset,
        seed=args.seed,
        report=report,
    )
    _write_readme(result)
    print(f"{title_of(name)} ({mode} mode; tables and figures in {out})", flush=True)
    return result


def pick(options, smoke, quick, full):
    """The value for the lesson's mode."""
    return options.pick(smoke, quick, full)


def _show_markdown(text):
    if in_notebook():
        from IPython.display import Markdown, display

        display(Markdown(text))
    else:
        print(text + "\n", flush=True)


def table(options, name, headers, rows, caption=""):
    """Print a markdown table and write it to ``<out>/<name>.md``; returns the markdown."""
    cells = [[_report._fmt(value).replace("|", "\\|") for value in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    text = "\n".join(lines)
    with open(os.path.join(options.out, name + ".md"), "w", encoding="utf-8") as f:
        f.write((f"**{caption}**\n\n" if caption else "") + text + "\n")
    _write_readme(options)
    _show_markdown((f"**{caption}**\n\n" if caption else "") + text)
    return text


def figure(options, fig, name):
    """Save a matplotlib figure as ``<out>/<name>.png`` (shown inline in a notebook)."""
    import matplotlib.pyplot as plt

    path = os.path.join(options.out, name + ".png")
    if fig.get_layout_engine() is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    if in_notebook():
        from IPython.display import Image, display

        display(Image(filename=path))
    plt.close(fig)
    print(f"[figure] {path}", flush=True)
    _write_readme(options)
    return path


def study(options, name):
    """Print the verdict table of study ``name`` (its last full run) and its figure's path.

    The table is ``studies/results/<name>.md`` (and ``<name>.<variant>.md``, e.g. a
    replication on another backend); the figure ``docs/img/<name>.png``. Both are copied
    into the lesson's report folder. Returns the markdown shown.
    """
    paths = sorted(
        glob.glob(os.path.join(RESULTS, name + ".md"))
        + glob.glob(os.path.join(RESULTS, name + ".*.md"))
    )
    if paths:
        text = "\n\n".join(open(p, encoding="utf-8").read().strip() for p in paths)
    else:
        text = f"(No committed results for study {name} yet: run `python studies/{name}.py`.)"
    with open(os.path.join(options.out, f"study_{name}.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    image = os.path.join(IMAGES, name + ".png")
    _show_markdown(text)
    if os.path.exists(image):
        shutil.copyfile(image, os.path.join(options.out, f"study_{name}.png"))
        if in_notebook():
            from IPython.display import Image, display

            display(Image(filename=image))
        print(f"[study figure] {os.path.relpath(image, os.getcwd())}", flush=True)
    _write_readme(options)
    return text


def skip(options, part, reason):
    """Say that a part of the lesson does not apply here (e.g. to the chosen data), and why."""
    text = f"**Skipped: {part}.** {reason}"
    with open(os.path.join(options.out, "skipped.txt"), "a", encoding="utf-8") as f:
        f.write(part + "\n")
    _show_markdown(text)
    _write_readme(options)
    return text


def skipped(options):
    """The parts :func:`skip` recorded for this run of the lesson."""
    path = os.path.join(options.out, "skipped.txt")
    if not os.path.exists(path):
        return []
    return [line.strip() for line in open(path, encoding="utf-8") if line.strip()]


def _write_readme(options):
    """``<out>/<name>/README.md`` (the title, every table, every figure) and the index."""
    lines = [
        f"# {title_of(options.name)}",
        "",
        f"Mode: {options.mode}. Lesson: `tutorials/{options.name}.py`.",
        "",
    ]
    for part in skipped(options):
        lines += [f"**Skipped: {part}.**", ""]
    for path in sorted(glob.glob(os.path.join(options.out, "*.md"))):
        if os.path.basename(path) != "README.md":
            lines += [open(path, encoding="utf-8").read().strip(), ""]
    for path in sorted(glob.glob(os.path.join(options.out, "*.png"))):
        base = os.path.basename(path)
        lines += [f"![{base[:-4]}]({base})", ""]
    with open(os.path.join(options.out, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    _report.write_index(options.report)
