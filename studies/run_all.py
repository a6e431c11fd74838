"""Run every study and print every verdict table.

    python studies/run_all.py                 # full runs: write studies/results/*.md and docs/img/*.png
    python studies/run_all.py --quick         # minutes each, nothing committed is written
    python studies/run_all.py --smoke --only 1 3
    KERAS_BACKEND=jax python studies/run_all.py --only 1   # the backend of the committed results

Each study runs in its own process (a fresh Keras and backend, as when run alone), in
order; a study that fails is reported and the others go on (exit status 1 if any failed).
At the end the verdict tables of the studies that ran are printed together, with the time
each took. studies/README.md gives the full-run times.
"""

import argparse
import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def studies():
    """[(number, path)] of the study scripts, in order."""
    paths = sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.py")))
    return [(int(os.path.basename(p)[:2]), p) for p in paths]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = p.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="small runs")
    modes.add_argument("--smoke", action="store_true", help="near-nothing runs, for tests")
    p.add_argument("--only", type=int, nargs="*", help="study numbers (default: all)")
    p.add_argument(
        "--out",
        default=os.path.join("report", "studies"),
        help="folder for smoke and quick runs (default ./report/studies)",
    )
    args = p.parse_args(argv)
    flags = (["--smoke"] if args.smoke else ["--quick"] if args.quick else []) + ["--out", args.out]
    selected = [(n, path) for n, path in studies() if not args.only or n in args.only]
    start, results = time.perf_counter(), []
    for i, (_, path) in enumerate(selected, 1):
        name = os.path.basename(path)[:-3]
        print(f"\n[{i}/{len(selected)}] {name}", flush=True)
        began = time.perf_counter()
        code = subprocess.call([sys.executable, path, *flags])
        results.append((name, code, time.perf_counter() - began))
    print("\n\n# Verdicts\n")
    for name, code, _ in results:
        verdicts = os.path.join(args.out, name, "verdicts.md")
        if code == 0 and os.path.exists(verdicts):
            with open(verdicts, encoding="utf-8") as f:
                print(f.read())
        else:
            print(f"### {name}: FAILED (exit status {code})\n")
    print("| study | status | minutes |\n|---|---|---|")
    for name, code, seconds in results:
        print(f"| {name} | {'ok' if code == 0 else 'FAILED'} | {seconds / 60:.1f} |")
    print(f"\nAll: {(time.perf_counter() - start) / 60:.1f} min")
    return 1 if any(code for _, code, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
