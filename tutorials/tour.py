"""The kreg tour: run every tutorial and write one report folder.

    python tutorials/tour.py --quick            # a few minutes on a 2-core CPU
    python tutorials/tour.py                    # full-length runs (long)
    python tutorials/tour.py --only 3 6 --out /tmp/report

Each tutorial prints its tables and writes them as markdown, saves its figures as PNG,
and the tour writes ``<out>/index.md`` linking every table and figure, with the time each
tutorial took. A tutorial that fails is reported (with its traceback) and the tour goes
on; the exit status is 1 if any failed.
"""

import glob
import importlib.util
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _report  # noqa: E402


def tutorials():
    """[(number, path)] of the tutorial scripts, in order."""
    paths = sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.py")))
    return [(int(os.path.basename(p)[:2]), p) for p in paths]


def load(path):
    name = "kreg_tutorial_" + os.path.basename(path)[:-3]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    p = _report.parser(__doc__.splitlines()[0])
    p.add_argument("--only", type=int, nargs="*", help="tutorial numbers to run (default: all)")
    args = p.parse_args(argv)
    selected = [(n, path) for n, path in tutorials() if not args.only or n in args.only]
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    results = []
    for i, (n, path) in enumerate(selected, 1):
        print(f"\n[{i}/{len(selected)}] {os.path.basename(path)}  "
              f"(elapsed {time.perf_counter() - start:.0f} s)", flush=True)
        try:
            module = load(path)
            headline, seconds, report = _report.run_tutorial(module.run, module.SLUG, module.TITLE,
                                                             args)
            results.append((module.TITLE, module.SLUG, "ok", seconds, report.skipped))
        except Exception:  # noqa: BLE001 - one failure must not stop the tour
            traceback.print_exc()
            slug = os.path.basename(path)[:-3]
            results.append((slug, slug, "FAILED", float("nan"), []))
    total = time.perf_counter() - start
    lines = [f"Mode: {_report.mode(args)}. Total time: {total:.0f} s.", "",
             "| tutorial | status | time (s) | skipped parts |", "|---|---|---|---|"]
    for title, slug, status, seconds, skipped in results:
        lines.append(f"| [{title}]({slug}/README.md) | {status} | {seconds:.0f} | "
                     f"{'; '.join(skipped) or '-'} |")
    _report.write_index(args.out, extra="\n".join(lines))
    print("\n" + "\n".join(lines))
    print(f"\nReport: {os.path.join(args.out, 'index.md')}")
    failed = [r for r in results if r[2] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
