"""``python -m kreg.audit path/to/model.keras``: print the audit of a saved model.

Exit status: 0 when no finding reaches ``--fail-on`` (default "error"), 1 when one does,
2 when the file cannot be read.
"""

import argparse
import sys

import keras
import numpy as np

import kreg  # noqa: F401 (registers kreg's classes before the model is loaded)
from kreg.audit import audit
from kreg.audit._report import SEVERITIES


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m kreg.audit",
        description="Find regularization mistakes in a saved Keras model (.keras).",
    )
    parser.add_argument("path", help="a model saved with model.save('....keras')")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="training batch size (with --num-examples: λ per epoch)",
    )
    parser.add_argument(
        "--num-examples", type=int, default=None, help="training examples per epoch"
    )
    parser.add_argument(
        "--sample", default=None, help="a .npy file with a batch of inputs (checks noise scale)"
    )
    parser.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default="error",
        help="exit with status 1 when a finding is this severe (default: error)",
    )
    return parser


def main(argv=None):
    """Run the command line; returns the exit status.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Example:

    >>> import kreg.audit.__main__ as cli
    >>> cli.main(["missing.keras"])  # doctest: +SKIP
    2
    """
    args = _parser().parse_args(argv)
    loading = args.path
    try:
        model = keras.saving.load_model(args.path)
        loading = args.sample
        sample = None if args.sample is None else np.load(args.sample)
    except Exception as err:  # a missing, unsafe or corrupt file: say which and why
        print(f"kreg.audit: cannot load {loading!r}: {err}", file=sys.stderr)
        return 2
    try:
        report = audit(
            model,
            batch_size=args.batch_size,
            num_examples=args.num_examples,
            sample=sample,
        )
    except ValueError as err:
        print(f"kreg.audit: {err}", file=sys.stderr)
        return 2
    print(report)
    return 1 if report.filter(args.fail_on) else 0


if __name__ == "__main__":
    sys.exit(main())
