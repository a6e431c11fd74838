"""Shared test set-up: backend, two logical CPUs for MirroredStrategy, small helpers.

The backend is chosen with KERAS_BACKEND (tensorflow by default; CI also runs jax).
On TensorFlow the one physical CPU is split into two logical devices before anything
touches TF, so `mirrored` can train over two replicas.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

BACKEND = keras.backend.backend()

if BACKEND == "tensorflow":
    import tensorflow as tf

    _cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )

tf_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="needs the TensorFlow backend")
jax_only = pytest.mark.skipif(BACKEND != "jax", reason="needs the JAX backend")


@pytest.fixture(autouse=True)
def _fresh_session():
    """Each test starts from a clear Keras session and fixed seeds."""
    keras.backend.clear_session(free_memory=False)  # a full gc per test costs ~0.4 s
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def backend():
    return BACKEND


@pytest.fixture(scope="session")
def _mirrored_strategy():
    import tensorflow as tf

    # One strategy for the whole session: two strategies in one process reuse the same
    # collective instance keys and TensorFlow then aborts on a shape mismatch.
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture
def mirrored(request):
    """A tf.distribute.MirroredStrategy over two logical CPUs (TensorFlow backend only)."""
    if BACKEND != "tensorflow":
        pytest.skip("MirroredStrategy needs the TensorFlow backend")
    return request.getfixturevalue("_mirrored_strategy")


@pytest.fixture
def regression_data():
    """A small fixed regression problem: x (32, 4) float32, y (32, 1) float32."""
    rng = np.random.RandomState(0)
    x = rng.randn(32, 4).astype("float32")
    y = (x @ rng.randn(4, 1) + 0.1 * rng.randn(32, 1)).astype("float32")
    return x, y
