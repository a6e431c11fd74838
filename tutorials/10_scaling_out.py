"""Tutorial 10: scaling out — a kreg model on 8 devices, 2 replicas or 2 hosts trains as on one.

Claim: kreg adds no engine of its own. Its penalties are loss terms, its strengths are
ordinary (non-trainable) variables, its optimizer wrapper is a Keras optimizer and its
callbacks only read and assign variables, so the engines that already scale Keras out
scale kreg too, and give one device's result to float precision:

* **JAX: ``keras.distribution``.** ``DataParallel`` replicates the weights and splits
  every batch over the devices; ``ModelParallel`` with a ``LayoutMap`` also splits the
  kernels (here: the hidden kernels by column, the output kernel by row, on a 2×4 mesh).
  The same code runs on several GPUs, a TPU slice or several hosts; on a CPU,
  ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` makes 8 virtual devices.
* **JAX, several hosts.** ``keras.distribution.initialize`` joins the processes (here
  two on localhost, with 2 virtual devices each, talking through gloo); a ``tf.data``
  input is sharded per process by Keras.
* **TensorFlow: ``tf.distribute``.** ``MirroredStrategy`` (here over 2 logical CPUs;
  on GPUs the same code) — build and compile the model inside ``strategy.scope()``.

The model: an MLP with ``kreg.regularizers.L2`` on every kernel, trained by
``kreg.optimizers.DecoupledWeightDecay`` (Adam, weight decay and proximal L1), with
``kreg.callbacks.RegularizationScaler`` annealing every strength by a cosine (so the live
strengths change at every step, on every device) and ``kreg.callbacks.EarlyStopping``
restoring the best weights. Each engine trains it from the same initial weights on the
same batches as one device does, and the table gives the largest difference of any
weight after training. As a yardstick, one device also trains with the L2 strength
1% larger: a strength that reached the devices wrong would show up at that size.

The device count must be fixed before JAX starts, and the logical CPUs before TensorFlow
does, so each engine runs in a subprocess of this script (``--part``), whatever backend
runs the script itself.

Run: ``python tutorials/10_scaling_out.py --quick``
"""

import dataclasses
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _data  # noqa: E402
import _report  # noqa: E402
import numpy as np  # noqa: E402

SLUG = "10_scaling_out"
TITLE = "10. Scaling out: keras.distribution and tf.distribute give one device's result"

HIDDEN = (64, 64)  # divisible by the 4 devices of the mesh's "model" axis
BATCH = 32  # the global batch: 4 examples per device on 8 devices
LR = 1e-2
L2, WEIGHT_DECAY, L1 = 1e-3, 1e-2, 1e-4
TOL = 1e-5  # float32 rounding, grown over a few hundred Adam steps, stays far below this


# ---------------------------------------------------------------------------------------
# The model and its training: identical for every engine. Only *where* it is built
# (inside a tf.distribute scope or under a keras.distribution) changes.
# ---------------------------------------------------------------------------------------


def build(ds, *, noise=False, l2=L2, seed=0):
    import keras

    import kreg

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(ds.input_shape)
    x = keras.layers.Flatten()(inputs)
    if noise:
        x = kreg.layers.GaussianNoise(0.1, seed=1)(x)
    for i, h in enumerate(HIDDEN):
        x = keras.layers.Dense(h, activation="relu", name=f"dense_{i}",
                               kernel_regularizer=kreg.regularizers.L2(l2))(x)
        if noise:
            x = kreg.layers.Dropout(0.2, seed=2 + i)(x)
    outputs = keras.layers.Dense(ds.num_classes, name="logits",
                                 kernel_regularizer=kreg.regularizers.L2(l2))(x)
    model = keras.Model(inputs, outputs)
    optimizer = kreg.optimizers.DecoupledWeightDecay(keras.optimizers.Adam(LR), WEIGHT_DECAY,
                                                     l1=L1)
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def keep(base, step, epoch, batch_size, num_examples, epochs):
    """A RegularizationScaler rule: the base value (the cosine schedule does the annealing)."""
    return base


def callbacks(steps):
    import keras

    import kreg

    anneal = keras.optimizers.schedules.CosineDecay(1.0, steps, alpha=0.1)
    return [kreg.callbacks.RegularizationScaler(keep, schedule=anneal),
            kreg.callbacks.EarlyStopping(monitor="loss", patience=steps,
                                         restore_best_weights=True)]


def training_set(ds):
    """The training split cut to whole global batches: every engine sees the same batches."""
    n = len(ds.y_train) // BATCH * BATCH
    return ds.x_train[:n], ds.y_train[:n]


def fit(model, ds, epochs, dataset=None):
    """Train in batch order (no shuffling), on the arrays or on ``dataset`` holding the same
    batches; returns every weight as NumPy."""
    import keras

    x, y = training_set(ds)
    data = dict(x=x, y=y, batch_size=BATCH) if dataset is None else dict(x=dataset)
    steps = epochs * len(y) // BATCH
    model.fit(**data, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks(steps))
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def max_difference(a, b):
    return float(max(np.max(np.abs(np.asarray(u) - np.asarray(v))) for u, v in zip(a, b)))


# ---------------------------------------------------------------------------------------
# The engines. Each runs in its own process (see main), writes <tmp>/<part>.json.
# ---------------------------------------------------------------------------------------


def part_jax(args, ds, epochs):
    """One device, DataParallel over 8 devices and ModelParallel on a 2x4 mesh (JAX)."""
    import keras

    dist = keras.distribution
    devices = dist.list_devices()
    mesh = dist.DeviceMesh((2, 4), ["batch", "model"], devices)
    layout = dist.LayoutMap(mesh)
    # Megatron-style: the hidden kernels split by column, the output kernel by row, so
    # each device holds a quarter of every kernel and of its optimizer state.
    layout["dense_.*kernel"] = (None, "model")
    layout["dense_.*bias"] = ("model",)
    layout["logits.*kernel"] = ("model", None)
    engines = {
        f"DataParallel ({len(devices)} devices)": dist.DataParallel(devices=devices),
        "ModelParallel (2x4 mesh, kernels sharded)": dist.ModelParallel(
            layout_map=layout, batch_dim_name="batch"),
    }
    rows = []
    for noise in (False, True):
        dist.set_distribution(None)
        one = fit(build(ds, noise=noise), ds, epochs)
        if not noise:
            np.savez(os.path.join(args.tmp, "one_device.npz"), *one)
            bigger = fit(build(ds, l2=L2 * 1.01), ds, epochs)
            rows.append(["yardstick: one device, L2 strength x1.01", "jax", 1, False,
                         max_difference(one, bigger)])
        for name, distribution in engines.items():
            dist.set_distribution(distribution)
            rows.append([name, "jax", len(devices), noise,
                         max_difference(one, fit(build(ds, noise=noise), ds, epochs))])
        dist.set_distribution(None)
    return rows


def part_mirrored(args, ds, epochs):
    """One device and tf.distribute.MirroredStrategy over 2 logical CPUs (TensorFlow)."""
    import tensorflow as tf

    # One strategy per process: a second one would reuse the collective keys.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rows = []
    for noise in (False, True):
        one = fit(build(ds, noise=noise), ds, epochs)
        with strategy.scope():
            model = build(ds, noise=noise)
        rows.append(["MirroredStrategy (2 logical CPUs)", "tensorflow", 2, noise,
                     max_difference(one, fit(model, ds, epochs))])
    return rows


def part_host(args, ds, epochs):
    """One of two processes of a multi-host DataParallel run (JAX, gloo on localhost)."""
    import keras
    import tensorflow as tf

    keras.distribution.set_distribution(keras.distribution.DataParallel())
    x_train, y_train = training_set(ds)
    # The global batch: Keras splits each into one half per process.
    data = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(BATCH)
    weights = fit(build(ds), ds, epochs, dataset=data)
    if args.process_id == 0:
        np.savez(os.path.join(args.tmp, "multi_host.npz"), *weights)
    return []


def worker(argv):
    p = _report.parser()
    p.add_argument("--part", choices=("jax", "mirrored", "host"), required=True)
    p.add_argument("--tmp", required=True)
    p.add_argument("--process-id", type=int, default=0)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    if args.part == "host":
        import jax

        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        import keras

        keras.distribution.initialize(job_addresses=f"127.0.0.1:{args.port}",
                                      num_processes=2, process_id=args.process_id)
    if args.part == "mirrored":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        two = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, two)
    ds = _data.from_args(args, "mnist1d")
    # Equality needs no large run: --quick trains 1024 examples (the cost is mostly
    # starting processes and compiling).
    keep_train = _report.pick(args, None, 1024, None)
    ds = dataclasses.replace(ds, x_train=ds.x_train[:keep_train], y_train=ds.y_train[:keep_train])
    # Longer training adds nothing to an equality check: rounding differences only grow
    # with the steps (as any perturbation does), so full runs differ in data size only.
    epochs = _report.pick(args, 1, 3, 3)
    rows = {"jax": part_jax, "mirrored": part_mirrored, "host": part_host}[args.part](
        args, ds, epochs)
    name = args.part if args.part != "host" else f"host{args.process_id}"
    with open(os.path.join(args.tmp, f"{name}.json"), "w", encoding="utf-8") as f:
        json.dump({"rows": rows, "data": str(ds), "epochs": epochs}, f)
    return 0


# ---------------------------------------------------------------------------------------
# The driver: launch the parts, gather their numbers.
# ---------------------------------------------------------------------------------------


def _command(args, part, tmp, extra=()):
    flags = ["--seed", str(args.seed)] + (["--dataset", args.dataset] if args.dataset else [])
    flags += ["--smoke"] if args.smoke else ["--quick"] if args.quick else []
    return [sys.executable, os.path.abspath(__file__), "--part", part, "--tmp", tmp,
            *flags, *extra]


def _env(backend, devices):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    if devices:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            f" --xla_force_host_platform_device_count={devices}").strip()
    return env


def _launch(commands, env, timeout):
    """Run processes side by side; (ok, the tail of the output of the first that failed)."""
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for c in commands]
    outputs, ok = [], True
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            out, _ = proc.communicate()
            out += f"\n(killed after {timeout} s)"
        outputs.append(out)
        ok = ok and proc.returncode == 0
    failed = [o for o, p in zip(outputs, procs) if p.returncode != 0]
    return ok, (failed[0][-1500:] if failed else "")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _has(module):
    return importlib.util.find_spec(module) is not None


def run(args, report):
    timeout = _report.pick(args, 180, 300, 900)
    rows, info = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        def part(name, backend, devices, commands, needs):
            missing = [m for m in needs if not _has(m)]
            if missing:
                report.skip(name, f"needs {', '.join(missing)} (not installed).")
                return False
            ok, tail = _launch(commands, _env(backend, devices), timeout)
            if not ok:
                report.skip(name, f"its process failed:\n\n```\n{tail}\n```")
            return ok

        if part("keras.distribution on JAX (8 virtual devices)", "jax", 8,
                [_command(args, "jax", tmp)], ["jax"]):
            with open(os.path.join(tmp, "jax.json"), encoding="utf-8") as f:
                info = json.load(f)
            rows += info["rows"]
        if part("tf.distribute.MirroredStrategy (2 logical CPUs)", "tensorflow", 0,
                [_command(args, "mirrored", tmp)], ["tensorflow"]):
            with open(os.path.join(tmp, "mirrored.json"), encoding="utf-8") as f:
                info = json.load(f)
            rows += info["rows"]
        one = os.path.join(tmp, "one_device.npz")
        if not os.path.exists(one):
            report.skip("multi-host", "needs the one-device weights of the JAX part.")
        else:
            port = free_port()
            commands = [_command(args, "host", tmp, ["--process-id", str(i), "--port", str(port)])
                        for i in range(2)]
            if part("multi-host: 2 processes x 2 virtual devices (gloo)", "jax", 2, commands,
                    ["jax", "tensorflow"]):
                a, b = np.load(one), np.load(os.path.join(tmp, "multi_host.npz"))
                rows.append(["multi-host DataParallel (2 processes x 2 devices, tf.data)",
                             "jax", 4, False,
                             max_difference([a[k] for k in a.files], [b[k] for k in a.files])])
    if not rows:
        return {}
    report.say(f"Data: {info['data']}, cut to whole batches of {BATCH}. Model: MLP "
               f"{'-'.join(map(str, HIDDEN))}, kreg L2({L2:g}) on the kernels, "
               f"DecoupledWeightDecay(Adam({LR:g}), {WEIGHT_DECAY:g}, l1={L1:g}), every "
               f"strength annealed by RegularizationScaler, EarlyStopping(restore_best_weights"
               f"=True); {info['epochs']} epoch(s) in batch order.")
    table = []
    for name, backend, devices, noise, diff in rows:
        if name.startswith("yardstick"):
            verdict = "the size of a real change"
        elif diff <= TOL:
            verdict = "equal (float precision)"
        elif noise and backend == "tensorflow":
            verdict = "differs: each replica draws its own noise"
        else:
            verdict = "DIFFERS"
        table.append([name, backend, devices, "yes" if noise else "no", diff, verdict])
    report.table("scaling_out", ["engine", "backend", "devices", "Dropout + GaussianNoise",
                                 "max |w - w_one device|", "verdict"], table,
                 caption=f"Every weight after training, against the same model trained on one "
                 f"device (equal: at most {TOL:g}).")
    plt = _report.plt
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.2))
    labels = [f"{r[0]}{' + noise' if r[3] == 'yes' else ''}" for r in table]
    colors = ["tab:gray" if r[0].startswith("yardstick") else "tab:green"
              if r[5].startswith("equal") else "tab:orange" for r in table]
    ax.barh(range(len(table)), [max(r[4], 1e-9) for r in table], color=colors)
    ax.axvline(TOL, color="k", ls="--", lw=1, label=f"float precision bound {TOL:g}")
    ax.set_xscale("log")
    ax.set_yticks(range(len(table)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("max |w - w_one device| after training")
    ax.legend(fontsize=7)
    report.figure(fig, "differences", "Largest weight difference from one device (log scale). "
                  "Green: equal to float precision; orange: differs; grey: what a 1% change of "
                  "the L2 strength does on one device.")
    exact = [r for r in table if r[5].startswith("equal")]
    wrong = [r for r in table if r[5] == "DIFFERS"]
    engines = [r for r in table if not r[0].startswith("yardstick")]
    yard = [r[4] for r in table if r[0].startswith("yardstick")]
    text = (f"{len(exact)} of {len(engines)} distributed runs equal one device "
            f"(largest difference {max((r[4] for r in exact), default=float('nan')):.1e})")
    if yard:
        text += f"; a 1% change of the L2 strength moves the weights by {yard[0]:.1e}"
    report.say(("Reproduced. " if not wrong else "NOT reproduced. ") + text + ". "
               "A distributed step adds the per-device sums in another order, so the "
               "weights part at the level of float32 rounding (~1e-7) and the gap grows "
               "slowly with the steps, as any perturbation of training does; a wrong "
               "strength on one device would be a perturbation of the yardstick's size. "
               "Under keras.distribution on JAX even kreg's Dropout and GaussianNoise draw "
               "the same numbers as on one device: the random draw has the global batch's "
               "shape and JAX splits it over the devices. Under MirroredStrategy each "
               "replica draws its own noise for its half of the batch (as Keras' own "
               "layers do), so with noise layers the run is an equally valid sample, not "
               "the same numbers; without them it equals one device.")
    return {"max_difference": max((r[4] for r in exact), default=float("nan")),
            "equal": not wrong and bool(exact)}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--part" in argv:
        return worker(argv)
    return _report.main(run, SLUG, TITLE, __doc__, argv)


if __name__ == "__main__":
    main()
