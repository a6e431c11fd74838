"""The report folder and the statistics that lessons and studies share.

* :func:`write_index` rebuilds ``<out>/index.md``, linking every table and figure of every
  lesson (or study) folder in ``<out>`` (each with a README.md whose first line is its
  title); :class:`Report` is one such folder, written by the studies that print their
  details as they go (study 1).
* Statistics over seeds: :func:`paired_test` (a paired two-sided t-test at 5%),
  :func:`interval`, :func:`equivalence` (two one-sided tests against a margin),
  :func:`bootstrap` (a paired percentile interval over seeds) and the verdicts
  :func:`verdict` and :func:`interval_verdict` ("Reproduced", "Not reproduced",
  "Inconclusive at this size").

``pick(args, smoke, quick, full)`` and ``mode(args)`` read any object with ``smoke`` and
``quick`` attributes (a lesson's or a study's options).
"""

import glob
import os
import re
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def in_notebook():
    """Whether this code runs in a Jupyter kernel (whose sys.argv is not a script's)."""
    shell = sys.modules.get("IPython")
    ipython = shell.get_ipython() if shell is not None and hasattr(shell, "get_ipython") else None
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


import matplotlib  # noqa: E402

if not in_notebook():  # a notebook keeps its inline backend
    matplotlib.use("Agg")

import _data  # noqa: E402,F401  (puts the repository on sys.path)
import matplotlib.pyplot as plt  # noqa: E402,F401  (re-exported for the tutorials)

MODES = ("smoke", "quick", "full")


def mode(args):
    return "smoke" if args.smoke else "quick" if args.quick else "full"


def pick(args, smoke, quick, full):
    """The value for the current mode."""
    return {"smoke": smoke, "quick": quick, "full": full}[mode(args)]


class RunMode:
    """What a lesson's and a study's options share: ``mode`` is smoke, quick or full."""

    mode: str

    @property
    def smoke(self):
        return self.mode == "smoke"

    @property
    def quick(self):
        return self.mode == "quick"

    @property
    def full(self):
        return self.mode == "full"

    def pick(self, smoke, quick, full):
        """The value for this mode."""
        return {"smoke": smoke, "quick": quick, "full": full}[self.mode]


def _fmt(value):
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value == 0:
            return "0"
        if abs(value) >= 1e4 or abs(value) < 1e-3:
            return f"{value:.2e}"
        return f"{value:.4g}"
    return str(value)


def _title_of(readme):
    try:
        with open(readme, encoding="utf-8") as f:
            first = f.readline().strip()
        return first.lstrip("# ").strip() or os.path.basename(os.path.dirname(readme))
    except OSError:
        return os.path.basename(os.path.dirname(readme))


def write_index(out, extra=None):
    """Rebuild ``<out>/index.md``: every tutorial folder, with links to its tables and figures."""
    lines = ["# kreg tutorials: report", ""]
    if extra:
        lines += [extra, ""]
    for folder in sorted(glob.glob(os.path.join(out, "*", ""))):
        slug = os.path.basename(os.path.dirname(folder))
        readme = os.path.join(folder, "README.md")
        if not os.path.exists(readme):
            continue
        lines.append(f"## [{_title_of(readme)}]({slug}/README.md)")
        lines.append("")
        tables = sorted(glob.glob(os.path.join(folder, "*.md")))
        for path in tables:
            if os.path.basename(path) != "README.md":
                name = os.path.basename(path)
                lines.append(f"- table: [{name}]({slug}/{name})")
        for path in sorted(glob.glob(os.path.join(folder, "*.png"))):
            name = os.path.basename(path)
            lines.append(f"- figure: [{name}]({slug}/{name})")
        lines.append("")
    with open(os.path.join(out, "index.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


class Report:
    """One tutorial's part of the report folder: ``<out>/<slug>/``."""

    def __init__(self, out, slug, title, quiet=False):
        self.out = out
        self.slug = slug
        self.title = title
        self.dir = os.path.join(out, slug)
        os.makedirs(self.dir, exist_ok=True)
        for old in glob.glob(os.path.join(self.dir, "*")):
            if old.endswith((".md", ".png")):
                os.remove(old)
        self.body = [f"# {title}", ""]
        self.quiet = quiet
        self.tables = []
        self.figures = []
        self.skipped = []

    def say(self, text):
        """Print ``text`` and add it to the tutorial's README.md as a paragraph."""
        if not self.quiet:
            print(text, flush=True)
        self.body += [text, ""]

    def skip(self, part, reason):
        """Record (and print) that a part was skipped, and why (e.g. data it does not apply to)."""
        text = f"**Skipped: {part}.** {reason}"
        self.skipped.append(part)
        self.say(text)

    def table(self, name, headers, rows, caption=""):
        """Print a table and write it as ``<name>.md``; returns its markdown."""
        cells = [[_fmt(v) for v in row] for row in rows]
        widths = [
            max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
            for i, h in enumerate(headers)
        ]
        md = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        md += ["| " + " | ".join(r) + " |" for r in cells]
        text = "\n".join(md)
        path = os.path.join(self.dir, f"{name}.md")
        with open(path, "w", encoding="utf-8") as f:
            f.write((f"**{caption}**\n\n" if caption else "") + text + "\n")
        if not self.quiet:
            if caption:
                print(caption)
            print("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths)))
            for r in cells:
                print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
            print(flush=True)
        self.tables.append(name)
        self.body += ([f"**{caption}**", ""] if caption else []) + md + [""]
        return text

    def figure(self, fig, name, caption=""):
        """Save a matplotlib figure as ``<name>.png`` (small: 90 dpi) and close it."""
        path = os.path.join(self.dir, f"{name}.png")
        if fig.get_layout_engine() is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig.tight_layout()
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        if not self.quiet:
            print(f"  [figure] {path}", flush=True)
        self.figures.append(name)
        self.body += [f"![{caption or name}]({name}.png)", ""]
        if caption:
            self.body += [f"*{caption}*", ""]
        return path

    def finish(self, seconds=None):
        if seconds is not None:
            self.body += [f"_Run time: {seconds:.1f} s._", ""]
        with open(os.path.join(self.dir, "README.md"), "w", encoding="utf-8") as f:
            f.write("\n".join(self.body))
        write_index(self.out)


def slug_of(path):
    return re.sub(r"\.py$", "", os.path.basename(path))


# Two-sided 5% critical values of Student's t for 1..30 degrees of freedom (beyond: 1.96).
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def mean_std(values):
    """(mean, sample std) of ``values``; std 0 for a single value."""
    import numpy as np

    values = np.asarray(values, dtype="float64").ravel()
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def pm(values, digits=3):
    """'mean ± std (n=k)' of ``values``."""
    m, s = mean_std(values)
    return f"{m:.{digits}f} ± {s:.{digits}f} (n={len(values)})"


def paired_test(a, b):
    """Paired two-sided t-test at 5% of mean(a − b) ≠ 0 over seeds.

    Returns a dict: diff (mean of a − b), std, n, t, t_crit, significant (|t| > t_crit),
    and text, one sentence naming the test. With one seed nothing is significant.
    """
    import numpy as np

    d = np.asarray(a, "float64").ravel() - np.asarray(b, "float64").ravel()
    n = d.size
    m, s = mean_std(d)
    if n < 2:
        t, crit = float("nan"), float("inf")
    else:
        crit = _T975[min(n - 1, len(_T975)) - 1] if n - 1 <= len(_T975) else 1.96
        t = m / (s / np.sqrt(n)) if s > 0 else (float("inf") if m else 0.0) * np.sign(m or 1)
    sig = bool(n > 1 and abs(t) > crit)
    text = (
        f"difference {m:+.4f} ± {s:.4f} over {n} seed(s) (paired t-test, two-sided 5%: "
        + (f"|t| = {abs(t):.2f} vs {crit:.2f}" if n > 1 else "needs 2 seeds or more")
        + ")"
    )
    return {"diff": m, "std": s, "n": n, "t": t, "t_crit": crit, "significant": sig, "text": text}


def verdict(test, expect_positive=True, min_effect=0.0):
    """'Reproduced' / 'Not reproduced' / 'Inconclusive at this size' from a paired test.

    Reproduced: significant in the expected direction and at least ``min_effect``;
    not reproduced: significant the other way; inconclusive otherwise.
    """
    d = test["diff"] if expect_positive else -test["diff"]
    if test["significant"] and d > 0 and d >= min_effect:
        return "Reproduced"
    if test["significant"] and d < 0:
        return "Not reproduced"
    return "Inconclusive at this size"


def interval(test):
    """The 95% confidence interval (lo, hi) of the mean difference of :func:`paired_test`."""
    import numpy as np

    if test["n"] < 2:
        return float("-inf"), float("inf")
    half = test["t_crit"] * test["std"] / np.sqrt(test["n"])
    return test["diff"] - half, test["diff"] + half


def equivalence(test, margin):
    """Verdict on a claim that two methods are *equal* within ``margin``, from a paired test.

    Reproduced: the 95% interval of the difference lies inside (−margin, margin) (the two
    one-sided tests of equivalence testing, at 2.5% each); not reproduced: it lies wholly
    outside; inconclusive when it straddles a bound.
    """
    lo, hi = interval(test)
    if -margin < lo and hi < margin:
        return "Reproduced"
    if lo > margin or hi < -margin:
        return "Not reproduced"
    return "Inconclusive at this size"


def bootstrap(statistic, n, resamples=2000, seed=0):
    """95% percentile interval (lo, hi) of ``statistic(indices)`` over seeds resampled.

    ``statistic`` takes an index array (``n`` indices drawn with replacement from
    ``range(n)``); the same draw serves every method compared inside it (paired).
    Fewer than 3 seeds give no interval: (-inf, inf).
    """
    import numpy as np

    if n < 3:
        return float("-inf"), float("inf")
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n, n)) for _ in range(resamples)]
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def interval_verdict(lo, hi):
    """Reproduced when a 95% interval of (expected-positive) difference lies above 0,
    not reproduced when it lies below, inconclusive when it contains 0."""
    if lo > 0:
        return "Reproduced"
    if hi < 0:
        return "Not reproduced"
    return "Inconclusive at this size"
