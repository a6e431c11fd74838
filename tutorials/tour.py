"""The kreg tour: run every lesson and write one report folder.

    python tutorials/tour.py --quick            # the ten lessons, a few minutes on a 2-core CPU
    python tutorials/tour.py                    # the lessons at full length
    python tutorials/tour.py --only 3 6 --out /tmp/report

Each lesson runs in this process (``runpy``, with its flags in ``sys.argv``), prints its
tables and writes them as markdown, saves its figures as PNG, and shows the verdict table
of the study behind it (``studies/``, run separately: ``python studies/run_all.py``). The
tour writes ``<out>/index.md`` linking every table and figure, with the wall and CPU time
each lesson took. A lesson that fails is reported (with its traceback) and the tour goes
on; the exit status is 1 if any failed.
"""

import time

START = time.perf_counter()  # noqa: E402  (the tour's wall time counts its imports)

import argparse  # noqa: E402
import glob  # noqa: E402
import os  # noqa: E402
import runpy  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _lesson  # noqa: E402
import _report  # noqa: E402


def lessons():
    """[(number, path)] of the lesson scripts, in order."""
    paths = sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.py")))
    return [(int(os.path.basename(p)[:2]), p) for p in paths]


tutorials = lessons  # the name before the lessons were split from the studies


def run_lesson(path, flags):
    """Run one lesson in this process with ``flags`` as its command line.

    Returns (status, wall seconds, CPU seconds); CPU time is this process's, all threads.
    """
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    argv = sys.argv
    sys.argv = [path] + flags
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        runpy.run_path(path, run_name="__main__")
        status = "ok"
    except (Exception, SystemExit):  # noqa: BLE001 - one failure must not stop the tour
        traceback.print_exc()
        status = "FAILED"
    finally:
        sys.argv = argv
        _report.plt.close("all")
    return status, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = p.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="each lesson in under a minute")
    modes.add_argument("--smoke", action="store_true", help="near-nothing runs, for tests")
    p.add_argument("--out", default="report", help="report folder (default ./report)")
    p.add_argument(
        "--dataset",
        default=None,
        help="a tensorflow-datasets name for every lesson instead of its offline data",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", type=int, nargs="*", help="lesson numbers to run (default: all)")
    args = p.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    # Full mode through the environment (a lesson without a mode flag reads it), so a
    # script that knows only --smoke and --quick runs at full length too.
    flags = ([f"--{mode}"] if mode != "full" else []) + [
        "--out",
        args.out,
        "--seed",
        str(args.seed),
    ]
    saved_mode = os.environ.get("KREG_LESSON_MODE")
    os.environ["KREG_LESSON_MODE"] = mode
    if args.dataset:
        flags += ["--dataset", args.dataset]
    selected = [(n, path) for n, path in lessons() if not args.only or n in args.only]
    os.makedirs(args.out, exist_ok=True)
    results = []
    for i, (_, path) in enumerate(selected, 1):
        print(
            f"\n[{i}/{len(selected)}] {os.path.basename(path)}  "
            f"(elapsed {time.perf_counter() - START:.0f} s)",
            flush=True,
        )
        results.append((os.path.basename(path)[:-3], *run_lesson(path, flags)))
    if saved_mode is None:
        os.environ.pop("KREG_LESSON_MODE")
    else:
        os.environ["KREG_LESSON_MODE"] = saved_mode
    # From the start of this process: imports (TensorFlow's included) count.
    total_wall, total_cpu = time.perf_counter() - START, time.process_time()
    import keras

    lines = [
        f"Tour: {len(results)} lesson(s), {mode} mode, backend "
        f"{keras.backend.backend()}: {total_wall:.0f} s wall, {total_cpu:.0f} s CPU "
        "(the whole process, all threads, imports included).",
        "",
        "| lesson | status | wall (s) | CPU (s) | skipped parts |",
        "|---|---|---|---|---|",
    ]
    for slug, status, seconds, cpu_seconds in results:
        title = _lesson.title_of(slug)
        options = _lesson.Options(slug, "", os.path.join(args.out, slug), "", 0, args.out)
        skipped = "; ".join(_lesson.skipped(options)) or "-"
        lines.append(
            f"| [{title}]({slug}/README.md) | {status} | {seconds:.0f} | "
            f"{cpu_seconds:.0f} | {skipped} |"
        )
    _report.write_index(args.out, extra="\n".join(lines))
    print("\n" + "\n".join(lines))
    print(f"\nReport: {os.path.join(args.out, 'index.md')}")
    return 1 if any(r[1] != "ok" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
