"""Study 10: a kreg model on 8 devices, 2 replicas or 2 hosts trains as on one device.

Claim: kreg adds no engine of its own. Its penalties are loss terms, its strengths are
ordinary (non-trainable) variables, its optimizer wrapper is a Keras optimizer and its
callbacks only read and assign variables, so the engines that already scale Keras out
scale kreg too, and give one device's weights to float precision:

* JAX, ``keras.distribution``: ``DataParallel`` over 8 virtual CPU devices and
  ``ModelParallel`` on a 2×4 mesh whose ``LayoutMap`` splits the hidden kernels by column
  and the output kernel by row (``XLA_FLAGS=--xla_force_host_platform_device_count=8``);
* JAX, two hosts: two processes with 2 virtual devices each, joined by
  ``keras.distribution.initialize`` over gloo, fed a ``tf.data`` input batched at the
  global batch size with ``drop_remainder=True``;
* TensorFlow: ``tf.distribute.MirroredStrategy`` over 2 logical CPUs.

The model: an MLP with ``kreg.regularizers.L2`` on every kernel, trained by
``kreg.optimizers.DecoupledWeightDecay`` (Adam, weight decay and proximal L1), with
``kreg.callbacks.RegularizationScaler`` annealing every strength by a cosine (the live
strengths change at every step, on every device) and ``kreg.callbacks.EarlyStopping``
restoring the best weights, with and without kreg's Dropout and GaussianNoise. Each engine
trains it from the same initial weights on the same batches as one device; the measure is
the largest difference of any weight after training. The yardstick: one device trained
with the L2 strength 1% larger (a strength that reached the devices wrong would show up
at that size).

And the pitfall, explained: fed the same data with a partial last batch, the two-host run
differs, because Keras 3.15 cuts a partial last batch into pieces of the per-process batch
size and hands them out in turn; each process averages its loss as over a full share. One
device weighting those examples the same way (r/BATCH and r/(2r − BATCH)) gives the
multi-host weights: the whole difference is Keras' split, not kreg.

The device count must be fixed before JAX starts and the logical CPUs before TensorFlow
does, so each engine runs in a subprocess of this script (``--part``), whatever backend
runs the study itself. Moved unchanged from tutorial 10 (commit c4b370b).

    python studies/10_scaling_out.py            # full run (3500 examples): 4.8 min, busy 2-core CPU
    python studies/10_scaling_out.py --quick    # 1024 examples
"""

import _study  # noqa: I001  (first: puts tutorials/ on sys.path)

import dataclasses
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile

import _data
import _report
import numpy as np

NAME = "10_scaling_out"

HIDDEN = (64, 64)  # divisible by the 4 devices of the mesh's "model" axis
BATCH = 32  # the global batch: 4 examples per device on 8 devices
# The multi-host run (2 processes, BATCH // 2 examples each) fed without drop_remainder
# gets a partial last batch of 28: process 0 takes 16 of it and process 1 the other 12.
# (With 16 or fewer left over, process 0 alone would get a last step that process 1 never
# joins: the job would hang.)
LAST = 28
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
        x = keras.layers.Dense(
            h, activation="relu", name=f"dense_{i}", kernel_regularizer=kreg.regularizers.L2(l2)
        )(x)
        if noise:
            x = kreg.layers.Dropout(0.2, seed=2 + i)(x)
    outputs = keras.layers.Dense(
        ds.num_classes, name="logits", kernel_regularizer=kreg.regularizers.L2(l2)
    )(x)
    model = keras.Model(inputs, outputs)
    optimizer = kreg.optimizers.DecoupledWeightDecay(
        keras.optimizers.Adam(LR), WEIGHT_DECAY, l1=L1, follow="schedule"
    )
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def keep(base, step, epoch, batch_size, num_examples, epochs):
    """A RegularizationScaler rule: the base value (the cosine schedule does the annealing)."""
    return base


def callbacks(steps):
    import keras

    import kreg

    anneal = keras.optimizers.schedules.CosineDecay(1.0, steps, alpha=0.1)
    return [
        kreg.callbacks.RegularizationScaler(keep, schedule=anneal),
        kreg.callbacks.EarlyStopping(monitor="loss", patience=steps, restore_best_weights=True),
    ]


def training_set(ds, ragged=False):
    """The training split cut to whole global batches (every engine sees the same batches,
    and no process of a multi-host run gets a partial one), or with ``ragged`` to whole
    batches but one plus a last batch of ``LAST`` examples."""
    n = len(ds.y_train) // BATCH * BATCH
    if ragged:
        n += LAST - BATCH
    return ds.x_train[:n], ds.y_train[:n]


def uneven_weights(n):
    """Per-example weights under which one device trains as the multi-host run does on
    ``n`` examples in batches of ``BATCH`` (Keras 3.15's tf.data sharding, 2 processes).

    Keras rebatches the data to ``BATCH // 2`` and gives the pieces to the processes in
    turn; each process builds a "global" batch twice its own piece and averages its loss
    over it. Full batches split evenly (weight 1). A partial last batch of r examples
    (BATCH/2 < r < BATCH) splits into BATCH/2 for process 0 and r - BATCH/2 for process 1:
    a mean over r examples would weigh each by 1/r, the processes weigh them by
    1/(2·BATCH/2) and 1/(2·(r - BATCH/2)), i.e. r/BATCH and r/(2r - BATCH) times 1/r.
    """
    weights = np.ones(n, "float32")
    r, half = n % BATCH, BATCH // 2
    if r:
        if not half < r < BATCH:
            raise ValueError(
                f"a last batch of {r} examples: one process alone would get a "
                f"step (the job hangs), not a weighted one"
            )
        weights[n - r : n - r + half] = r / BATCH
        weights[n - r + half :] = r / (2 * (r - half))
    return weights


def fit(model, ds, epochs, dataset=None, ragged=False, sample_weight=None):
    """Train in batch order (no shuffling), on the arrays of ``training_set(ds, ragged)``
    or on ``dataset`` holding the same batches; returns every weight as NumPy."""
    import keras

    x, y = training_set(ds, ragged)
    data = (
        dict(x=x, y=y, batch_size=BATCH, sample_weight=sample_weight)
        if dataset is None
        else dict(x=dataset)
    )
    steps = epochs * -(-len(y) // BATCH)
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
            layout_map=layout, batch_dim_name="batch"
        ),
    }
    rows = []
    for noise in (False, True):
        dist.set_distribution(None)
        one = fit(build(ds, noise=noise), ds, epochs)
        if not noise:
            np.savez(os.path.join(args.tmp, "one_device.npz"), *one)
            # The references of the multi-host run with a partial last batch: one device on
            # the same examples, and one device weighting them as the processes do.
            ragged = training_set(ds, ragged=True)[1]
            np.savez(
                os.path.join(args.tmp, "one_device_ragged.npz"),
                *fit(build(ds), ds, epochs, ragged=True),
            )
            np.savez(
                os.path.join(args.tmp, "one_device_uneven.npz"),
                *fit(build(ds), ds, epochs, ragged=True, sample_weight=uneven_weights(len(ragged))),
            )
            bigger = fit(build(ds, l2=L2 * 1.01), ds, epochs)
            rows.append(
                [
                    "yardstick: one device, L2 strength x1.01",
                    "jax",
                    1,
                    False,
                    max_difference(one, bigger),
                ]
            )
        for name, distribution in engines.items():
            dist.set_distribution(distribution)
            rows.append(
                [
                    name,
                    "jax",
                    len(devices),
                    noise,
                    max_difference(one, fit(build(ds, noise=noise), ds, epochs)),
                ]
            )
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
        rows.append(
            [
                "MirroredStrategy (2 logical CPUs)",
                "tensorflow",
                2,
                noise,
                max_difference(one, fit(model, ds, epochs)),
            ]
        )
    return rows


def part_host(args, ds, epochs):
    """One of two processes of a multi-host DataParallel run (JAX, gloo on localhost)."""
    import keras
    import tensorflow as tf

    distribution = keras.distribution.DataParallel()
    keras.distribution.set_distribution(distribution)

    def shares(dataset):
        """The batch sizes this process is fed: Keras' sharding, as fit applies it."""
        return [int(x.shape[0]) for x, _ in distribution.distribute_dataset(dataset)]

    # The recipe: the whole training split in global batches, the partial last one
    # dropped (drop_remainder=True); Keras gives each process one half of every batch.
    whole = tf.data.Dataset.from_tensor_slices((ds.x_train, ds.y_train))
    data = whole.batch(BATCH, drop_remainder=True)
    weights = fit(build(ds), ds, epochs, dataset=data)
    # The pitfall: a partial last batch of LAST examples, fed as it comes.
    x_ragged, y_ragged = training_set(ds, ragged=True)
    ragged = tf.data.Dataset.from_tensor_slices((x_ragged, y_ragged)).batch(BATCH)
    weights_ragged = fit(build(ds), ds, epochs, dataset=ragged, ragged=True)
    if args.process_id == 0:
        np.savez(os.path.join(args.tmp, "multi_host.npz"), *weights)
        np.savez(os.path.join(args.tmp, "multi_host_ragged.npz"), *weights_ragged)
    return {"shares": shares(data), "shares_ragged": shares(ragged)}


def worker(argv):
    p = _study.parser()
    p.add_argument("--part", choices=("jax", "mirrored", "host"), required=True)
    p.add_argument("--tmp", required=True)
    p.add_argument("--process-id", type=int, default=0)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    args.dataset = None  # MNIST-1D, as _data.from_args reads it
    if args.part == "host":
        import jax

        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        import keras

        keras.distribution.initialize(
            job_addresses=f"127.0.0.1:{args.port}", num_processes=2, process_id=args.process_id
        )
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
    # The JAX and MirroredStrategy parts return table rows; a host part, what it was fed.
    result = {"jax": part_jax, "mirrored": part_mirrored, "host": part_host}[args.part](
        args, ds, epochs
    )
    name = args.part if args.part != "host" else f"host{args.process_id}"
    with open(os.path.join(args.tmp, f"{name}.json"), "w", encoding="utf-8") as f:
        json.dump({"result": result, "data": str(ds), "epochs": epochs}, f)
    return 0


# ---------------------------------------------------------------------------------------
# The driver: launch the parts, gather their numbers.
# ---------------------------------------------------------------------------------------


def _command(args, part, tmp, extra=()):
    flags = ["--seed", str(args.seed)]
    flags += ["--smoke"] if args.smoke else ["--quick"] if args.quick else []
    return [sys.executable, os.path.abspath(__file__), "--part", part, "--tmp", tmp, *flags, *extra]


def _env(backend, devices):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    if devices:
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}"
        ).strip()
    return env


def _launch(commands, env, timeout):
    """Run processes side by side; (ok, the tail of the output of the first that failed)."""
    procs = [
        subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for c in commands
    ]
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


MULTI_HOST = "multi-host DataParallel (2 processes x 2 devices, tf.data)"
RAGGED_ROW = f"multi-host, tf.data with a partial last batch ({LAST} of {BATCH})"


def describe(sizes):
    """'109 batches of 16', or '108 batches of 16 and 1 batch of 12': what a process was fed."""
    counts = {}
    for size in sizes:
        counts[size] = counts.get(size, 0) + 1
    return " and ".join(f"{n} batch{'es' if n > 1 else ''} of {size}" for size, n in counts.items())


def multi_host_text(rows, host, uneven, yard):
    """The multi-host verdict in words: what each process was fed, and what the partial last
    batch did (``uneven``: its distance to one device weighting the examples as the
    processes do)."""
    diff = dict((r[0], r[4]) for r in rows)
    if host[0]["shares"] == host[1]["shares"]:
        fed = f"were each fed {describe(host[0]['shares'])}"
    else:
        fed = f"were fed {describe(host[0]['shares'])} and {describe(host[1]['shares'])}"
    text = [f"The multi-host processes {fed} per epoch (drop_remainder=True)"]
    if host[0]["shares"] != host[1]["shares"]:
        text.append(
            ": unequal shares of a batch, which is what the next row shows Keras "
            "doing to a partial last batch"
        )
    elif diff[MULTI_HOST] > TOL:
        text.append(
            f", equal halves of every batch, so the data split does not explain "
            f"their difference of {diff[MULTI_HOST]:.1e} from one device"
        )
    text.append(". ")
    last = [h["shares_ragged"][-1] for h in host]
    if diff[RAGGED_ROW] <= TOL:
        text.append(
            f"With a partial last batch of {LAST} the run equals one device too: "
            "this Keras splits a partial last batch evenly, so drop_remainder is "
            "no longer needed."
        )
        return "".join(text)
    weights = [LAST / (2 * k) for k in last]
    text.append(
        f"Fed the same data with a partial last batch of {LAST} instead, process 0 got "
        f"{last[0]} and process 1 {last[1]} of that batch's examples (Keras' DataParallel."
        f"distribute_dataset rebatches to {BATCH // 2} per process, then hands out the "
        f"pieces in turn), and each process averaged its loss over twice its share "
        f"({2 * last[0]} and {2 * last[1]} examples, where one device averages over "
        f"{LAST}): those examples counted {weights[0]:.3g}x and {weights[1]:.3g}x what they "
        f"count on one device, at the last step of every epoch. The weights moved by "
        f"{diff[RAGGED_ROW]:.1e} from one device's"
    )
    if yard:
        text.append(f" ({diff[RAGGED_ROW] / yard:.0%} of the yardstick)")
    if uneven <= TOL:
        text.append(
            f", and one device weighting those examples so gives the multi-host "
            f"weights to {uneven:.1e}: the whole difference is Keras' split, not "
            f"kreg. Batch with drop_remainder=True, or pad the data to whole global "
            f"batches; with {BATCH // 2} or fewer left over, process 0 alone gets a "
            f"last step that process 1 never joins, and the job hangs."
        )
    else:
        text.append(
            f"; one device weighting those examples as described is still "
            f"{uneven:.1e} away, so the uneven split is not the whole cause."
        )
    return "".join(text)


def run_engines(args):
    """Launch every engine's process; (rows, info, host, uneven, skipped)."""
    timeout = _study.pick(args, 180, 300, 900)
    rows, info, host, uneven, skipped = [], {}, [], float("nan"), []
    with tempfile.TemporaryDirectory() as tmp:

        def part(name, backend, devices, commands, needs):
            missing = [m for m in needs if not _has(m)]
            if missing:
                skipped.append(f"{name}: needs {', '.join(missing)} (not installed)")
                return False
            ok, tail = _launch(commands, _env(backend, devices), timeout)
            if not ok:
                skipped.append(f"{name}: its process failed")
                print(f"**Skipped: {name}.** Its process failed:\n\n```\n{tail}\n```", flush=True)
            return ok

        if part(
            "keras.distribution on JAX (8 virtual devices)",
            "jax",
            8,
            [_command(args, "jax", tmp)],
            ["jax"],
        ):
            with open(os.path.join(tmp, "jax.json"), encoding="utf-8") as f:
                info = json.load(f)
            rows += info["result"]
        if part(
            "tf.distribute.MirroredStrategy (2 logical CPUs)",
            "tensorflow",
            0,
            [_command(args, "mirrored", tmp)],
            ["tensorflow"],
        ):
            with open(os.path.join(tmp, "mirrored.json"), encoding="utf-8") as f:
                info = json.load(f)
            rows += info["result"]
        if not os.path.exists(os.path.join(tmp, "one_device.npz")):
            skipped.append("multi-host: needs the one-device weights of the JAX part")
        else:
            port = free_port()
            commands = [
                _command(args, "host", tmp, ["--process-id", str(i), "--port", str(port)])
                for i in range(2)
            ]
            if part(
                "multi-host: 2 processes x 2 virtual devices (gloo)",
                "jax",
                2,
                commands,
                ["jax", "tensorflow"],
            ):

                def weights(name):
                    with np.load(os.path.join(tmp, name)) as f:
                        return [f[k] for k in f.files]

                ragged = weights("multi_host_ragged.npz")
                rows.append(
                    [
                        MULTI_HOST,
                        "jax",
                        4,
                        False,
                        max_difference(weights("one_device.npz"), weights("multi_host.npz")),
                    ]
                )
                rows.append(
                    [
                        RAGGED_ROW,
                        "jax",
                        4,
                        False,
                        max_difference(weights("one_device_ragged.npz"), ragged),
                    ]
                )
                uneven = max_difference(weights("one_device_uneven.npz"), ragged)
                for i in range(2):
                    with open(os.path.join(tmp, f"host{i}.json"), encoding="utf-8") as f:
                        host.append(json.load(f)["result"])
    return rows, info, host, uneven, skipped


def engine_verdict(name, backend, noise, diff, uneven):
    """The verdict column of the engines' table (the words tutorial 10 used)."""
    if name.startswith("yardstick"):
        return "the size of a real change"
    if diff <= TOL:
        return "equal (float precision)"
    if noise and backend == "tensorflow":
        return "differs: each replica draws its own noise"
    if name == RAGGED_ROW and uneven <= TOL:
        return "differs: Keras splits the last batch unevenly"
    return "DIFFERS"


def verdict_rows(table, uneven, epochs, yard):
    """One verdict row per distributed run (claim | measure | seeds | estimate | test | verdict)."""
    bound = f"equal: ≤ {TOL:g} (float32 rounding)" + (f"; yardstick {yard:.2f}" if yard else "")
    measure = f"largest weight difference from one device after {epochs} epoch(s)"
    rows = []
    for name, backend, devices, noise, diff, _word in table:
        if name.startswith("yardstick"):
            continue
        if noise == "yes" and backend == "tensorflow":
            rows.append(
                [
                    (
                        "MirroredStrategy with Dropout + GaussianNoise: each replica draws "
                        "its own noise (the same law, not the same numbers), as Keras' "
                        "layers do"
                    ),
                    measure,
                    1,
                    f"{diff:.1e}",
                    bound,
                    "reproduced" if diff > TOL else "not reproduced",
                ]
            )
        elif name == RAGGED_ROW:
            rows.append(
                [
                    (
                        f"a partial last batch on 2 hosts: Keras splits it unevenly "
                        f"({LAST} = {BATCH // 2} + {LAST - BATCH // 2}), which alone moves "
                        f"the weights by {diff:.2g}"
                    ),
                    (
                        "largest weight difference from one device weighting the examples "
                        "as the processes do"
                    ),
                    1,
                    f"{uneven:.1e}",
                    bound,
                    "reproduced" if uneven <= TOL else "not reproduced",
                ]
            )
        else:
            rows.append(
                [
                    (
                        f"{name}{' with Dropout + GaussianNoise' if noise == 'yes' else ''}"
                        f" gives one device's weights ({backend}, {devices} devices)"
                    ),
                    measure,
                    1,
                    f"{diff:.1e}",
                    bound,
                    "reproduced" if diff <= TOL else "not reproduced",
                ]
            )
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--part" in argv:
        return worker(argv)
    args = _study.options(NAME, argv)
    rows, info, host, uneven, skipped = run_engines(args)
    if not rows:
        print("No engine ran: " + "; ".join(skipped), flush=True)
        return 1
    print(
        f"Data: {info['data']}, cut to whole batches of {BATCH} (the multi-host run: "
        f"batched with drop_remainder=True). Model: MLP {'-'.join(map(str, HIDDEN))}, kreg "
        f"L2({L2:g}) on the kernels, DecoupledWeightDecay(Adam({LR:g}), {WEIGHT_DECAY:g}, "
        f"l1={L1:g}, follow='schedule'), every strength annealed by RegularizationScaler, "
        f"EarlyStopping(restore_best_weights=True); {info['epochs']} epoch(s) in batch "
        "order.",
        flush=True,
    )
    table = [
        [
            name,
            backend,
            devices,
            "yes" if noise else "no",
            diff,
            engine_verdict(name, backend, noise, diff, uneven),
        ]
        for name, backend, devices, noise, diff in rows
    ]
    _study.table(
        args,
        "scaling_out",
        [
            "engine",
            "backend",
            "devices",
            "Dropout + GaussianNoise",
            "largest weight difference from one device",
            "verdict",
        ],
        table,
        caption=f"Every weight after training, against the same model trained on one "
        f"device (equal: at most {TOL:g}).",
    )
    plt = _report.plt
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.2))
    labels = [f"{r[0]}{' + noise' if r[3] == 'yes' else ''}" for r in table]
    colors = [
        "tab:gray"
        if r[0].startswith("yardstick")
        else "tab:green"
        if r[5].startswith("equal")
        else "tab:orange"
        for r in table
    ]
    ax.barh(range(len(table)), [max(r[4], 1e-9) for r in table], color=colors)
    ax.axvline(TOL, color="k", ls="--", lw=1, label=f"float precision bound {TOL:g}")
    ax.set_xscale("log")
    ax.set_yticks(range(len(table)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("max |w - w_one device| after training")
    ax.legend(fontsize=7)
    ax.set_title(
        "Largest weight difference from one device (green: equal; orange: differs; "
        "grey: a 1% change of λ)",
        fontsize=8,
    )
    _study.figure(args, fig)
    yard = [r[4] for r in table if r[0].startswith("yardstick")]
    yard = yard[0] if yard else None
    note = (
        "A distributed step adds the per-device sums in another order, so the weights part "
        "at the level of float32 rounding (~1e-7) and the gap grows slowly with the steps, "
        "as any perturbation of training does; a wrong strength on one device would be a "
        "perturbation of the yardstick's size"
        + (
            f" (one device with the L2 strength 1% larger moves the weights by {yard:.2g})"
            if yard
            else ""
        )
        + ". Under keras.distribution on JAX even kreg's Dropout and GaussianNoise draw "
        "the same numbers as on one device: the random draw has the global batch's shape "
        "and JAX splits it over the devices."
    )
    if host:
        note += "\n\n" + multi_host_text(rows, host, uneven, yard)
    if skipped:
        note += "\n\nSkipped: " + "; ".join(skipped) + "."
    _study.verdicts(
        args,
        verdict_rows(table, uneven, info["epochs"], yard),
        title="10. Scaling out: every engine gives one device's weights",
        note=note,
    )
    return 0


if __name__ == "__main__":
    if main():  # no engine ran
        sys.exit(1)
