"""kreg under the engines that scale Keras out: each trains a kreg model as one device does.

The model has kreg's L2 penalty on its kernels, DecoupledWeightDecay with proximal L1,
RegularizationScaler changing every live strength at every step and EarlyStopping
restoring the best weights, so a strength variable that is not replicated (or sharded)
right, or a callback that reads one device's copy, shows up as a difference.

JAX fixes its device count when it starts, so the keras.distribution tests run in
subprocesses (8 virtual CPU devices; two processes with 2 each for multi-host), only in
the JAX leg of the suite; MirroredStrategy runs in process over conftest's two logical
CPUs, in the TensorFlow leg.

The multi-host data set ends in a partial batch, as most do: fed with drop_remainder=True
the run equals one device; fed as it comes, Keras 3.15 splits that batch unevenly between
the processes (README, "Scaling out"; tutorial 10), which a test pins.
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
    # The data set: N examples in whole batches, then a partial batch of 12, more than the
    # BATCH // 2 = 8 each of two processes takes (with 8 or fewer left over, process 0 alone
    # would get a step that process 1 never joins, and the job would hang).
    RAGGED = N + 12


    def data():
        rng = np.random.RandomState(0)
        return rng.randn(RAGGED, 8).astype("float32"), rng.randint(0, 4, RAGGED)


    def uneven_weights(n):
        """Per-example weights under which one device trains as 2 processes fed n examples
        in tf.data batches of BATCH do under Keras 3.15: its DataParallel.distribute_dataset
        rebatches to BATCH // 2 and deals the pieces out in turn, so a partial last batch of
        r examples (BATCH / 2 < r < BATCH) reaches them as BATCH / 2 and r - BATCH / 2, and
        each process averages the loss over twice its share, not over r."""
        weights = np.ones(n, "float32")
        r, half = n % BATCH, BATCH // 2
        if r:
            assert half < r < BATCH, r
            weights[n - r:n - r + half] = r / BATCH
            weights[n - r + half:] = r / (2 * (r - half))
        return weights


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


    def fit(model, dataset=None, n=N, sample_weight=None):
        """Train on the first n examples, or on `dataset` holding them in the same batches."""
        x, y = data()
        x, y = x[:n], y[:n]
        steps = EPOCHS * -(-n // BATCH)
        callbacks = [
            kreg.callbacks.RegularizationScaler(
                keep, schedule=keras.optimizers.schedules.CosineDecay(1.0, steps, alpha=0.1)),
            kreg.callbacks.EarlyStopping(monitor="loss", patience=steps,
                                         restore_best_weights=True),
        ]
        inputs = (dict(x=x, y=y, batch_size=BATCH, sample_weight=sample_weight)
                  if dataset is None else dict(x=dataset))
        model.fit(**inputs, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
        return [keras.ops.convert_to_numpy(w) for w in model.weights]


    def max_difference(a, b):
        return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))
''')

SINGLE_HOST = textwrap.dedent("""
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
            # One device on the data with its partial last batch, weighted as Keras'
            # multi-process sharding weighs it, and not.
            uneven = fit(build(), n=RAGGED, sample_weight=uneven_weights(RAGGED))
            np.savez(sys.argv[2], *uneven)
            result["uneven_weighting"] = max_difference(uneven, fit(build(), n=RAGGED))
        for name, engine in engines.items():
            dist.set_distribution(engine)
            model = build(noise)
            kernel = model.get_layer("dense_0").kernel.value
            if name == "model_parallel":
                assert "model" in str(kernel.sharding.spec), kernel.sharding
            result[name + ("_noise" if noise else "")] = max_difference(one, fit(model))
    print("RESULT " + json.dumps(result))
""")

MULTI_HOST = textwrap.dedent("""
    import sys
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras

    port, process_id, (out, out_ragged) = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:5]
    keras.distribution.initialize(job_addresses=f"127.0.0.1:{port}", num_processes=2,
                                  process_id=process_id)
    import tensorflow as tf
    from model import *

    assert len(jax.devices()) == 4 and len(jax.local_devices()) == 2
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    examples = tf.data.Dataset.from_tensor_slices(data())
    # Global batches, the partial last one dropped: Keras gives each process half of each.
    weights = fit(build(), examples.batch(BATCH, drop_remainder=True))
    # Fed as it comes, the partial last batch of 12 reaches the processes as 8 + 4.
    ragged = fit(build(), examples.batch(BATCH), n=RAGGED)
    if process_id == 0:
        np.savez(out, *weights)
        np.savez(out_ragged, *ragged)
""")


def _scripts(folder):
    for name, text in (("model", MODEL), ("single_host", SINGLE_HOST), ("multi_host", MULTI_HOST)):
        (folder / f"{name}.py").write_text(text)


def _env(devices):
    return dict(
        os.environ,
        KERAS_BACKEND="jax",
        TF_CPP_MIN_LOG_LEVEL="2",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
    )


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
    proc = subprocess.run(
        [sys.executable, "single_host.py", str(folder / "one.npz"), str(folder / "one_uneven.npz")],
        cwd=folder,
        env=_env(8),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    _check(proc, proc.stdout + proc.stderr)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return folder, json.loads(line[len("RESULT ") :])


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


@pytest.fixture(scope="module")
def multi_host(single_host):
    """Two processes of 2 devices joined by keras.distribution.initialize (gloo), each
    training twice on a tf.data input that Keras shards per process: with and without
    drop_remainder. Returns the folder holding process 0's weights."""
    pytest.importorskip("tensorflow")
    folder, _ = single_host
    port = _free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "multi_host.py",
                str(port),
                str(i),
                str(folder / "multi_host.npz"),
                str(folder / "multi_host_ragged.npz"),
            ],
            cwd=folder,
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
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
    return folder


def _max_difference(a, b):
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))


@jax_only
def test_multi_host_matches_one_device(multi_host):
    """A data set with a partial last batch, batched with drop_remainder=True: the two
    processes train as one device does on its whole batches."""
    one, many = _load(multi_host / "one.npz"), _load(multi_host / "multi_host.npz")
    assert _max_difference(one, many) <= TOL


@jax_only
def test_multi_host_partial_last_batch_is_split_unevenly_by_keras(single_host, multi_host):
    """The same data set fed as it comes: Keras 3.15 hands the partial last batch of 12 to
    the processes as 8 + 4 and each averages over twice its share (16 and 8 examples), so
    the run equals one device that weighs those examples 0.75 and 1.5, not one device.
    README ("Scaling out") and tutorial 10 tell users so: if this fails, Keras changed its
    sharding, and both must say what it does now."""
    _, result = single_host
    uneven = _load(multi_host / "one_uneven.npz")
    assert _max_difference(uneven, _load(multi_host / "multi_host_ragged.npz")) <= TOL
    # The weighting matters: 1000x float rounding on the weights of this short run.
    assert result["uneven_weighting"] > 1000 * TOL


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
