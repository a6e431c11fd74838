"""The studies' one helper: options, the verdict table, figures.

A study holds the multi-seed evidence behind one lesson's claim (grids, paired tests,
bootstrap intervals, large test sets) and ends by printing its verdict table::

    import _study  # puts tutorials/ on sys.path: _data, _train, _report are importable

    args = _study.options("01_weight_decay_vs_l2")
    seeds = _study.pick(args, smoke=1, quick=2, full=12)
    ...
    _study.verdicts(args, rows)   # rows: [claim, measure, seeds, estimate, interval / test, verdict]
    _study.figure(args, fig)

Flags: ``--smoke`` (seconds, for tests), ``--quick`` (minutes), none for the full run;
``--out DIR`` (default ./report/studies; the study writes into ``DIR/<name>``), ``--seed N``
(default 0, which reproduces the committed results).

Only a full run writes what is committed: ``studies/results/<name>.md`` (the verdict
table, with the backend, date, commit and run time) and ``docs/img/<name>.png`` (the
figure the README and the lesson show). Smoke and quick runs write into ``<out>/<name>``.
"""

import argparse
import dataclasses
import datetime
import os
import subprocess
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TUTORIALS = os.path.join(ROOT, "tutorials")
RESULTS = os.path.join(HERE, "results")
IMAGES = os.path.join(ROOT, "docs", "img")
HEADERS = ["claim", "measure", "seeds", "estimate", "interval / test", "verdict"]
VERDICTS = ("reproduced", "not reproduced", "inconclusive at this size")

for _path in (TUTORIALS, HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import _data  # noqa: E402,F401  (puts the repository on sys.path)
import _report  # noqa: E402


@dataclasses.dataclass
class Options(_report.RunMode):
    """What a study was asked to do; ``smoke`` / ``quick`` / ``dataset`` serve _data.from_args."""

    name: str
    mode: str
    out: str
    seed: int
    dataset: str = None
    start: float = dataclasses.field(default_factory=time.perf_counter)


def parser(description=None):
    p = argparse.ArgumentParser(description=description)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--smoke", action="store_true", help="seconds: for tests")
    group.add_argument("--quick", action="store_true", help="a small run, minutes")
    p.add_argument(
        "--out",
        default=os.path.join("report", "studies"),
        help="folder for smoke and quick runs (default ./report/studies)",
    )
    p.add_argument("--seed", type=int, default=0, help="default 0: the committed results")
    return p


def options(name, argv=None, description=None):
    """Parse a study's flags (``argv`` default ``sys.argv[1:]``) -> :class:`Options`."""
    args = parser(description or f"study {name}").parse_args(sys.argv[1:] if argv is None else argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    out = os.path.join(args.out, name)
    os.makedirs(out, exist_ok=True)
    import keras

    print(f"=== study {name} ({mode} run, backend {keras.backend.backend()}) ===", flush=True)
    return Options(name=name, mode=mode, out=out, seed=args.seed)


def pick(args, smoke, quick, full):
    """The value for the study's mode."""
    return args.pick(smoke, quick, full)


def markdown(headers, rows):
    """A markdown table of ``rows`` (floats formatted as in the tutorials' tables)."""
    cells = [[_report._fmt(value).replace("|", "\\|") for value in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def table(args, name, headers, rows, caption=""):
    """Print a detail table and write it to ``<out>/<name>.md``; returns its markdown."""
    text = markdown(headers, rows)
    with open(os.path.join(args.out, name + ".md"), "w", encoding="utf-8") as f:
        f.write((f"**{caption}**\n\n" if caption else "") + text + "\n")
    print((f"{caption}\n" if caption else "") + text + "\n", flush=True)
    return text


def _commit():
    try:
        return subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def verdicts(args, rows, title=None, variant=None, note=""):
    """Print the verdict table; on a full run write ``studies/results/<name>.md``.

    Args:
        rows: one row per verdict: claim, measure, seeds, estimate, interval / test,
            verdict ("reproduced", "not reproduced" or "inconclusive at this size";
            _report's capitalized forms are accepted and written in lower case).
        title: the heading of the results file (default: the study's name).
        variant: writes ``<name>.<variant>.md`` instead (a replication, e.g. on another
            backend, kept beside the main results).
        note: a paragraph written under the table.
    Returns the markdown written.
    """
    import keras

    rows = [list(row) for row in rows]
    for row in rows:
        if len(row) != len(HEADERS):
            raise ValueError(
                f"A verdict row needs {len(HEADERS)} cells ({', '.join(HEADERS)}). "
                f"Received: {row!r}"
            )
        if str(row[-1]).lower() in VERDICTS:
            row[-1] = str(row[-1]).lower()
    seconds = time.perf_counter() - args.start
    heading = f"### {title or args.name}" + (f" ({variant})" if variant else "")
    run = (
        f"{args.mode} run, backend {keras.backend.backend()}, "
        f"{datetime.date.today().isoformat()}"
        + (f", commit {_commit()}" if _commit() else "")
        + f", {seconds / 60:.1f} min; `python studies/{args.name}.py`"
    )
    text = (
        "\n\n".join(part for part in (heading, markdown(HEADERS, rows), note, f"_{run}._") if part)
        + "\n"
    )
    with open(os.path.join(args.out, "verdicts.md"), "w", encoding="utf-8") as f:
        f.write(text)
    if args.full:
        os.makedirs(RESULTS, exist_ok=True)
        name = args.name + (f".{variant}" if variant else "")
        with open(os.path.join(RESULTS, name + ".md"), "w", encoding="utf-8") as f:
            f.write(text)
    print("\n" + text, flush=True)
    return text


def figure(args, fig, name=None):
    """Save a figure: ``docs/img/<study>.png`` on a full run (the README's and the lesson's
    figure), ``<out>/<name or study>.png`` always. Returns the path written last."""
    import matplotlib.pyplot as plt

    if fig.get_layout_engine() is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig.tight_layout()
    path = os.path.join(args.out, (name or args.name) + ".png")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    if args.full and name is None:
        path = os.path.join(IMAGES, args.name + ".png")
        fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    print(f"[figure] {path}", flush=True)
    return path
