"""kreg under the engines that scale Keras out: each trains a kreg model as one device does.

The model has kreg's L2 penalty on its kernels, DecoupledWeightDecay with proximal L1,
RegularizationScaler changing every live strength at every step and EarlyStopping
restoring the best weights, so a strength variable that is not replicated (or sharded)
right, or a callback that reads one device's copy, shows up as a difference.

JAX fixes its device count when it starts, so the keras.distribution tests run in
subprocesses (8 virtual CPU devices; two processes with 2 each for multi-host), only in
the JAX leg of the suite; MirroredStrategy runs in process over conftest's two logical
CPUs, in the TensorFlow leg.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import jax_only, tf_only

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 240  # seconds per subprocess; a run takes ~10-20 s on 2 cores
TOL = 1e-6

# The model, its data and its training, shared by the worker processes and the in-process
# MirroredStrategy test. SGD with momentum keeps float rounding at ~1e-7 (Adam divides
# by sqrt(v) and magnifies it where a gradient is near zero).
MODEL = textwrap.dedent('''
    import keras
    import numpy as np

    import kreg

    N, BATCH, EPOCHS = 64, 16, 2


    def data():
        rng = np.random.RandomState(0)
        return rng.randn(N, 8).astype("float32"), rng.randint(0, 4, N)


    def build(noise=False):
        keras.utils.set_random_seed(3)
        inputs = keras.Input((8,))
        x = kreg.layers.GaussianNoise(0.1, seed=1)(inputs) if noise else inputs
        x = keras.layers.Dense(8, activation="relu", name="dense_0",
                               kernel_regularizer=kreg.regularizers.L2(1e-2))(x)
        if noise:
            x = kreg.layers.Dropout(0.2, seed=2)(x)
        outputs = keras.layers.Dense(4, name="dense_1",
                                     kernel_regularizer=kreg.regularizers.L2(1e-2))(x)
        model = keras.Model(inputs, outputs)
        opt = kreg.optimizers.DecoupledWeightDecay(
            keras.optimizers.SGD(0.1, momentum=0.9), 1e-2, l1=1e-3)
        model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model


    def keep(base, step, epoch, batch_size, num_examples, epochs):
        return base


    def fit(model, dataset=None):
        x, y = data()
        steps = EPOCHS * N // BATCH
        callbacks = [
            kreg.callbacks.RegularizationScaler(
                keep, schedule=keras.optimizers.schedules.CosineDecay(1.0, steps, alpha=0.1)),
            kreg.callbacks.EarlyStopping(monitor="loss", patience=steps,
                                         restore_best_weights=True),
        ]
        inputs = dict(x=x, y=y, batch_size=BATCH) if dataset is None else dict(x=dataset)
        model.fit(**inputs, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
        return [keras.ops.convert_to_numpy(w) for w in model.weights]


    def max_difference(a, b):
        return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))
''')

SINGLE_HOST = textwrap.dedent('''
    import json, sys
    from model import *

    dist = keras.distribution
    devices = dist.list_devices()
    assert len(devices) == 8, devices
    mesh = dist.DeviceMesh((2, 4), ["batch", "model"], devices)
    layout = dist.LayoutMap(mesh)
    layout["dense_0.*kernel"] = (None, "model")
    layout["dense_0.*bias"] = ("model",)
    layout["dense_1.*kernel"] = ("model", None)
    engines = {"data_parallel": dist.DataParallel(devices=devices),
               "model_parallel": dist.ModelParallel(layout_map=layout, batch_dim_name="batch")}
    result = {}
    for noise in (False, True):
        dist.set_distribution(None)
        one = fit(build(noise))
        if not noise:
            np.savez(sys.argv[1], *one)
        for name, engine in engines.items():
            dist.set_distribution(engine)
            model = build(noise)
            kernel = model.get_layer("dense_0").kernel.value
            if name == "model_parallel":
                assert "model" in str(kernel.sharding.spec), kernel.sharding
            result[name + ("_noise" if noise else "")] = max_difference(one, fit(model))
    print("RESULT " + json.dumps(result))
''')

MULTI_HOST = textwrap.dedent('''
    import sys
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras

    port, process_id, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    keras.distribution.initialize(job_addresses=f"127.0.0.1:{port}", num_processes=2,
                                  process_id=process_id)
    import tensorflow as tf
    from model import *

    assert len(jax.devices()) == 4 and len(jax.local_devices()) == 2
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    x, y = data()
    # Global batches: Keras gives each process half of each one.
    weights = fit(build(), tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH))
    if process_id == 0:
        np.savez(out, *weights)
''')


def _scripts(folder):
    for name, text in (("model", MODEL), ("single_host", SINGLE_HOST),
                       ("multi_host", MULTI_HOST)):
        (folder / f"{name}.py").write_text(text)


def _env(devices):
    return dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2",
                XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
                PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))


def _check(proc, out):
    assert proc.returncode == 0, out[-3000:]


def _load(path):
    with np.load(path) as f:
        return [f[k] for k in f.files]


@pytest.fixture(scope="module")
def single_host(tmp_path_factory):
    """One device, DataParallel and ModelParallel on 8 virtual devices, in one subprocess."""
    pytest.importorskip("jax")
    folder = tmp_path_factory.mktemp("scaling_out")
    _scripts(folder)
    proc = subprocess.run([sys.executable, "single_host.py", str(folder / "one.npz")],
                          cwd=folder, env=_env(8), capture_output=True, text=True,
                          timeout=TIMEOUT)
    _check(proc, proc.stdout + proc.stderr)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return folder, json.loads(line[len("RESULT "):])


@jax_only
@pytest.mark.parametrize("engine", ["data_parallel", "model_parallel"])
@pytest.mark.parametrize("noise", [False, True], ids=["plain", "dropout_and_noise"])
def test_keras_distribution_matches_one_device(single_host, engine, noise):
    """Kernels sharded or not, kreg's strengths, callbacks and random layers (one random
    draw of the global batch's shape, split over the devices) give one device's weights."""
    _, result = single_host
    assert result[engine + ("_noise" if noise else "")] <= TOL


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@jax_only
def test_multi_host_matches_one_device(single_host):
    """Two processes of 2 devices joined by keras.distribution.initialize (gloo) with a
    tf.data input that Keras shards per process."""
    pytest.importorskip("tensorflow")
    folder, _ = single_host
    out = folder / "multi_host.npz"
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "multi_host.py", str(port), str(i), str(out)],
                              cwd=folder, env=_env(2), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=TIMEOUT)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, text in zip(procs, outputs):
        _check(proc, text)
    one, many = _load(folder / "one.npz"), _load(out)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(one, many)) <= TOL


@tf_only
def test_mirrored_strategy_with_callbacks_matches_one_device(mirrored, tmp_path):
    """MirroredStrategy over 2 logical CPUs: the live strengths (mirrored variables) that
    RegularizationScaler sets at every step, and EarlyStopping's restored weights, give one
    device's weights. (kreg's random layers draw per replica there, as Keras' do.)"""
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    spec = importlib.util.spec_from_file_location("scaling_out_model", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    one = m.fit(m.build())
    with mirrored.scope():
        model = m.build()
    assert m.max_difference(one, m.fit(model)) <= TOL
