"""The one dataset helper every tutorial shares: offline by default, tensorflow-datasets on request.

``load(name)`` returns a :class:`Dataset` with train / validation / test splits as float32
NumPy arrays and integer labels:

* ``"mnist1d"`` (default for most tutorials): MNIST-1D (Greydanus 2020), 4000 train and
  1000 test sequences of length 40, 10 classes. It is *generated* offline by the
  ``mnist1d`` package (``make_dataset(get_dataset_args())``, seed 42: the paper's data);
  nothing is downloaded. The arrays are cached in ``$KREG_CACHE`` (default
  ``~/.cache/kreg``, or the temp dir when that is not writable) because generating them
  takes a few seconds. ``load("mnist1d", test_size=20000)`` swaps the paper's 1000 test
  examples for 20000 fresh ones from the same generator, to measure small differences.
* ``"digits"``: the 8x8 handwritten digits that scikit-learn ships (1797 images, 10
  classes), scaled to [0, 1], shape (8, 8, 1): the offline image data set.
* any other name: a tensorflow-datasets image classification set (``mnist``,
  ``fashion_mnist``, ``cifar10`` ...), loaded with ``tfds.load(name, as_supervised=True)``
  (this needs the internet the first time, or ``tfds.testing.mock_data`` in tests).

The validation split is carved from the training split (seeded, stratified by order);
the test split is never touched for model selection.
"""

import dataclasses
import os
import sys
import tempfile

import numpy as np

# Let `python tutorials/xx.py` import kreg from the repository without installing it.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:  # pragma: no cover - depends on how the script is started
    import kreg  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, _ROOT)

OFFLINE = ("mnist1d", "digits")


@dataclasses.dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    kind: str  # "sequence" (N, L) or "image" (N, H, W, C)

    @property
    def input_shape(self):
        return tuple(self.x_train.shape[1:])

    def __repr__(self):
        return (
            f"Dataset({self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, input_shape={self.input_shape}, "
            f"classes={self.num_classes})"
        )


def cache_dir():
    """``$KREG_CACHE``, else ``~/.cache/kreg``, else a folder in the temp dir."""
    for path in (
        os.environ.get("KREG_CACHE"),
        os.path.join(os.path.expanduser("~"), ".cache", "kreg"),
        os.path.join(tempfile.gettempdir(), "kreg-cache"),
    ):
        if not path:
            continue
        try:
            os.makedirs(path, exist_ok=True)
            if os.access(path, os.W_OK):
                return path
        except OSError:
            continue
    return tempfile.gettempdir()


def _mnist1d_arrays(seed=42, num_samples=None, train_split=None):
    """(x, y, x_test, y_test) of MNIST-1D, generated offline once and cached.

    The defaults are the paper's data (5000 examples of seed 42, 80% for training);
    another seed draws fresh examples from the same templates and transformations.
    """
    tag = "" if num_samples is None else f"_n{num_samples}_split{train_split}"
    path = os.path.join(cache_dir(), f"mnist1d_seed{seed}{tag}.npz")
    if os.path.exists(path):
        try:
            with np.load(path) as f:
                return f["x"], f["y"], f["x_test"], f["y_test"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file: generate again
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    if num_samples is not None:
        args.num_samples, args.train_split = num_samples, train_split
    data = make_dataset(args)  # pure NumPy, no download
    arrays = {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass
    return arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"]


def _digits_arrays(seed):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int64")
    order = np.random.RandomState(seed).permutation(len(y))
    x, y = x[order], y[order]
    n_test = 360
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


def _tfds_arrays(name, max_train, max_test):
    import tensorflow_datasets as tfds

    def take(split, limit):
        ds = tfds.load(name, split=split, as_supervised=True)
        if limit:
            ds = ds.take(limit)
        xs, ys = [], []
        # batch_size=-1 is not used: it is slower and tfds' mock_data does not support it.
        for x, y in ds.batch(1024).as_numpy_iterator():
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    x, y = take("train", max_train)
    x_test, y_test = take("test", max_test)
    try:
        num_classes = tfds.builder(name).info.features["label"].num_classes
    except Exception:  # noqa: BLE001 - any metadata problem: fall back on the labels
        num_classes = int(max(y.max(), y_test.max())) + 1
    return x, y, x_test, y_test, num_classes


def _scale(x):
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype("float32") / 255.0
    return x.astype("float32")


def load(name="mnist1d", *, seed=0, val_size=None, smoke=False, max_train=None, test_size=None):
    """Load a data set as a :class:`Dataset` (see the module docstring for the names).

    Args:
        name: "mnist1d", "digits" or a tensorflow-datasets name.
        seed: seeds the train/validation split (and the digits test split).
        val_size: number of validation examples (default: 500 for MNIST-1D, 20% of
            the training split otherwise).
        smoke: shrink every split to a few dozen examples (for tests).
        max_train: keep at most this many training examples (quick runs on big sets).
        test_size: MNIST-1D only: a test split of this many *fresh* examples (generated
            with seed 43, a multiple of 10) instead of the paper's 1000. At an error of
            0.3, 1000 examples measure it with a binomial std of 0.015, as large as the
            differences some tutorials test; 20000 bring that to 0.003.
    """
    if test_size is not None and name.lower() != "mnist1d":
        raise ValueError(f"`test_size` is for MNIST-1D only; received it for {name!r}.")
    if test_size is not None and (int(test_size) != test_size or test_size <= 0 or test_size % 10):
        # The generator draws test_size // 10 examples of each class.
        raise ValueError(
            "`test_size` must be a positive multiple of 10 (MNIST-1D draws "
            f"the same number of each of its 10 classes); received {test_size!r}."
        )
    name = name.lower()
    if name == "mnist1d":
        x, y, x_test, y_test = _mnist1d_arrays()
        if test_size is not None:
            # Each generated set is standardized by its own mean and std (make_dataset),
            # as the paper's: both are mean 0, std 1 over their examples.
            x_test, y_test = _mnist1d_arrays(43, test_size, 0.0)[2:]
        num_classes, kind = 10, "sequence"
        default_val = 500
    elif name == "digits":
        x, y, x_test, y_test = _digits_arrays(seed)
        num_classes, kind = 10, "image"
        default_val = len(y) // 5
    else:
        limit = 256 if smoke else (max_train * 2 if max_train else None)
        x, y, x_test, y_test, num_classes = _tfds_arrays(
            name, limit, 256 if smoke else (max_train and max(max_train // 4, 1000))
        )
        kind = "image" if np.asarray(x).ndim == 4 else "sequence"
        default_val = len(y) // 5 if smoke else min(len(y) // 5, 5000)
    x, x_test = _scale(x), _scale(x_test)
    y, y_test = np.asarray(y, "int64"), np.asarray(y_test, "int64")

    rng = np.random.RandomState(seed + 1)
    order = rng.permutation(len(y))
    n_val = default_val if val_size is None else val_size
    val, train = order[:n_val], order[n_val:]
    if max_train:
        train = train[:max_train]
    if smoke:
        train, val = train[:96], val[:48]
        x_test, y_test = x_test[:64], y_test[:64]
    return Dataset(name, x[train], y[train], x[val], y[val], x_test, y_test, num_classes, kind)


def from_args(args, default, mnist1d_test_size=None):
    """The tutorial's data set: ``--dataset`` or ``default``, shrunk for --smoke / --quick.

    A tensorflow-datasets set is capped at 10000 training examples under ``--quick`` (the
    offline sets are small already). ``mnist1d_test_size``: the ``test_size`` to load
    when the data set is MNIST-1D (other sets keep their own test split); --smoke keeps
    64 test examples of any split, so it loads the paper's and generates nothing.
    """
    name = args.dataset or default
    quick_cap = 10000 if getattr(args, "quick", False) and name.lower() not in OFFLINE else None
    test_size = mnist1d_test_size if name.lower() == "mnist1d" and not args.smoke else None
    return load(name, seed=args.seed, smoke=args.smoke, max_train=quick_cap, test_size=test_size)
