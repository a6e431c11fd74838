"""model.fit step time of kreg.optimizers.DecoupledWeightDecay vs bare Adam and Keras' options.

An MLP (``--layers`` Dense(``--width``, relu) layers and a Dense(1) head, MSE loss) is
trained with Adam under six set-ups, measured side by side in one run:

    adam       keras.optimizers.Adam                                    (the baseline)
    wrapper    DecoupledWeightDecay(Adam, λ)                            (decoupled decay)
    wrapper+l1 DecoupledWeightDecay(Adam, λ, l1=...)                    (decay + proximal L1)
    adamw      keras.optimizers.AdamW(weight_decay=λ)                   (Keras' built-in)
    mode_l2    DecoupledWeightDecay(Adam, λ, mode="l2")                 (coupled L2, in the step)
    loss_l2    Adam + keras.regularizers.L2(λ/2) on every kernel        (L2 penalty in the loss)

Every round runs one ``model.fit`` of ``--steps`` train steps for each set-up in turn
(after a warm-up fit that compiles), so drift in the machine's load hits all set-ups
alike; a callback times each step (end to end, waiting for its loss). Printed: per set-up
the 20th percentile and the median wall-clock step time and the median process CPU time
per step (the work done, all threads: on a shared CPU it is the least noisy figure;
meaningless for a GPU's work), and their ratios. The backend is whatever KERAS_BACKEND
says.

Targets: wrapper ≤ 1.01× adam on a GPU with JAX (8×4096 MLP, batch 256) and ≤ 1.03× on
CPU on every backend; mode_l2 ≤ 1.02× adam. On torch (eager) the wrapper writes all the
weights of one multiplier in one batched in-place call, as Keras' torch AdamW decays with
one ``_foreach_mul_``: AdamW, printed beside it, is the yardstick of what a decay costs.

Run:  python benchmarks/bench_weight_decay.py                 # CPU-sized defaults, ~1-2 min
      KERAS_BACKEND=jax python benchmarks/bench_weight_decay.py
      KERAS_BACKEND=torch python benchmarks/bench_weight_decay.py   # eager (jit_compile auto)
      python benchmarks/bench_weight_decay.py --setups adam,wrapper,adamw --rounds 5  # shorter
      KERAS_BACKEND=jax python benchmarks/bench_weight_decay.py --layers 8 --width 4096 \\
          --batch 256 --steps 50 --rounds 7                  # the GPU configuration
"""

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kreg  # noqa: E402

SETUPS = ("adam", "wrapper", "wrapper+l1", "adamw", "mode_l2", "loss_l2")
RATIOS = (
    ("wrapper", "adam", "wrapper / bare Adam"),
    ("wrapper+l1", "adam", "wrapper with l1 / bare Adam"),
    ("adamw", "adam", "Keras AdamW (built-in weight_decay) / bare Adam"),
    ("mode_l2", "adam", 'mode="l2" / bare Adam'),
    ("loss_l2", "adam", "L2 penalty in the loss / bare Adam"),
    ("mode_l2", "loss_l2", 'mode="l2" / L2 penalty in the loss'),
)


def build_model(args, setup):
    regularizer = keras.regularizers.L2(args.weight_decay / 2) if setup == "loss_l2" else None
    layers = [keras.Input((args.width,))]
    for i in range(args.layers):
        layers.append(
            keras.layers.Dense(
                args.width, activation="relu", kernel_regularizer=regularizer, name=f"dense_{i}"
            )
        )
    layers.append(keras.layers.Dense(1, kernel_regularizer=regularizer, name="head"))
    model = keras.Sequential(layers)
    lr, wd = args.learning_rate, args.weight_decay
    if setup in ("adam", "loss_l2"):
        optimizer = keras.optimizers.Adam(lr)
    elif setup == "adamw":
        optimizer = keras.optimizers.AdamW(lr, weight_decay=wd)
        optimizer.exclude_from_weight_decay(var_names=["bias"])
    elif setup == "wrapper":
        optimizer = kreg.optimizers.DecoupledWeightDecay(keras.optimizers.Adam(lr), wd)
    elif setup == "wrapper+l1":
        optimizer = kreg.optimizers.DecoupledWeightDecay(keras.optimizers.Adam(lr), wd, l1=1e-6)
    elif setup == "mode_l2":
        optimizer = kreg.optimizers.DecoupledWeightDecay(keras.optimizers.Adam(lr), wd, mode="l2")
    else:
        raise ValueError(setup)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    model.compile(optimizer=optimizer, loss="mse", jit_compile=jit)
    return model


class StepTimer(keras.callbacks.Callback):
    """Seconds between the ends of consecutive train steps.

    Each step's loss is fetched at its end, so the time is the step's computation on
    every backend (a JAX step is otherwise dispatched asynchronously, and the timer
    would measure the dispatch only).
    """

    def __init__(self):
        super().__init__()
        self.times, self.cpu_times, self._last = [], [], None

    def on_epoch_begin(self, epoch, logs=None):
        self._last = None

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            np.asarray(keras.ops.convert_to_numpy(logs["loss"]))
        now = (time.perf_counter(), time.process_time())
        if self._last is not None:
            self.times.append(now[0] - self._last[0])
            self.cpu_times.append(now[1] - self._last[1])
        self._last = now


def step_times(model, x, y, batch):
    timer = StepTimer()
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    return timer.times, timer.cpu_times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6, help="train steps per fit")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=1e-2)
    parser.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto")
    parser.add_argument(
        "--setups", default=",".join(SETUPS), help="comma-separated subset of " + ",".join(SETUPS)
    )
    args = parser.parse_args()
    setups = [s for s in args.setups.split(",") if s]
    unknown = set(setups) - set(SETUPS)
    if unknown:
        parser.error(f"unknown setups: {sorted(unknown)}")

    backend = keras.backend.backend()
    devices = keras.distribution.list_devices() if backend == "jax" else None
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        devices = [d.name for d in gpus] or ["CPU"]
    print(f"backend={backend} devices={devices} keras={keras.__version__}")
    print(
        f"MLP {args.layers}x{args.width} (+ head), batch {args.batch}, {args.steps} steps "
        f"per fit, {args.rounds} rounds, jit_compile={args.jit_compile}, "
        f"weight_decay={args.weight_decay}"
    )

    rng = np.random.RandomState(0)
    x = rng.randn(args.batch * args.steps, args.width).astype("float32")
    y = rng.randn(args.batch * args.steps, 1).astype("float32")

    models = {}
    for setup in setups:
        keras.utils.set_random_seed(0)
        models[setup] = build_model(args, setup)
        step_times(models[setup], x[: 3 * args.batch], y[: 3 * args.batch], args.batch)
    times = {s: [] for s in setups}
    cpu_times = {s: [] for s in setups}
    for _ in range(args.rounds):
        for setup in setups:
            wall, cpu = step_times(models[setup], x, y, args.batch)
            times[setup].extend(wall)
            cpu_times[setup].extend(cpu)

    # On a shared machine the low quantiles are the least disturbed steps: the ratio
    # of the 20th percentiles is the steadier wall-clock figure, the medians show the
    # typical step. The process CPU time per step (all threads) counts the work done,
    # not the time spent waiting for a core: on a CPU device it is the least noisy.
    stats = {
        s: (np.percentile(times[s], 20), np.median(times[s]), np.median(cpu_times[s]))
        for s in setups
    }
    print(
        f"\n{'set-up':<12}{'p20 ms/step':>13}{'median ms/step':>16}"
        f"{'median CPU ms/step':>20}{'steps':>7}"
    )
    for setup in setups:
        p20, median, cpu = stats[setup]
        print(
            f"{setup:<12}{p20 * 1e3:>13.2f}{median * 1e3:>16.2f}{cpu * 1e3:>20.2f}"
            f"{len(times[setup]):>7}"
        )
    print(f"\n{'ratio':<52}{'of p20':>8}{'of medians':>12}{'of CPU time':>13}")
    for top, bottom, label in RATIOS:
        if top in stats and bottom in stats:
            a, b = stats[top], stats[bottom]
            print(f"  {label:<50}{a[0] / b[0]:7.3f}x{a[1] / b[1]:11.3f}x{a[2] / b[2]:12.3f}x")


if __name__ == "__main__":
    main()
