"""Images per second of kreg.layers.RandomAffine vs Keras' geometric augmentation chain.

Batch of 128 float32 32x32x3 images, training mode, matching ranges:
    Keras: RandomFlip("horizontal") -> RandomRotation(R) -> RandomTranslation(T, T) -> RandomZoom(Z)
    kreg:  RandomAffine(rotation=R, translation=T, zoom=Z, flip="horizontal")
with RandomAffine's default resampler ("auto": TensorFlow's C++ kernel while tf.data
traces, the XLA-compatible gathers elsewhere), measured side by side in one run, in every
place the backend offers:
    TensorFlow: graph mode (tf.function), XLA (tf.function(jit_compile=True); Keras'
        layers cannot be XLA-compiled), and the explicit resampler="affine_transform";
    JAX: jax.jit (the chain as a Sequential, through stateless_call);
    torch: eager;
    every backend: a tf.data pipeline (from_tensors(batch).repeat(), map with
        num_parallel_calls=AUTOTUNE, prefetch), images/s at the consumer.

Fidelity: white-noise images (std 1) go through the same transforms once; the pixel
standard deviation that survives (away from the borders) measures the blur of the
resampling: one bilinear resampling vs three.

Run:  python benchmarks/bench_augmentation.py [--seconds 10] [--batch 128] [--quick]
      KERAS_BACKEND=jax python benchmarks/bench_augmentation.py
      KERAS_BACKEND=torch python benchmarks/bench_augmentation.py
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

ROTATION, TRANSLATION, ZOOM = 0.05, 0.1, 0.1


def keras_chain(seed=0):
    return [
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(ROTATION, fill_mode="reflect", seed=seed + 1),
        keras.layers.RandomTranslation(
            TRANSLATION, TRANSLATION, fill_mode="reflect", seed=seed + 2
        ),
        keras.layers.RandomZoom(ZOOM, fill_mode="reflect", seed=seed + 3),
    ]


def kreg_layer(seed=0, **overrides):
    kwargs = dict(rotation=ROTATION, translation=TRANSLATION, zoom=ZOOM, flip="horizontal")
    kwargs.update(overrides)
    return kreg.layers.RandomAffine(**kwargs, fill_mode="reflect", seed=seed)


def apply_chain(layers, x):
    for layer in layers:
        x = layer(x, training=True)
    return x


def measure(fns, x, seconds, rounds=10):
    """Images/s of each function, timed in interleaved rounds: (best round, median round).

    The variants alternate so that a change in machine load hits all of them alike.
    """
    for fn in fns.values():  # trace / compile
        keras.ops.convert_to_numpy(fn(x))
    rates = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            calls, start = 0, time.perf_counter()
            while True:
                out = fn(x)
                calls += 1
                keras.ops.convert_to_numpy(out)  # wait for the result
                elapsed = time.perf_counter() - start
                if elapsed >= seconds / rounds:
                    break
            rates[name].append(calls * x.shape[0] / elapsed)
    return {name: (max(r), float(np.median(r))) for name, r in rates.items()}


def jax_jitted(layer):
    import jax

    layer.build((None, 32, 32, 3))
    state = [v.value for v in layer.non_trainable_variables]

    @jax.jit
    def step(state, x):
        out, new_state = layer.stateless_call([], state, x, training=True)
        return out, new_state

    def run(x):
        out, state[:] = step(list(state), x)
        return out

    return run


def tf_data_rates(fns, x, seconds, rounds=5):
    """Images/s of a tf.data pipeline that maps each function over batches ``x``:
    (best round, median round), the pipelines interleaved round by round."""
    import tensorflow as tf

    pipelines = {}
    for name, fn in fns.items():
        dataset = tf.data.Dataset.from_tensors(x).repeat()
        dataset = dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
        pipelines[name] = iter(dataset)
        for _ in range(5):  # trace, fill the prefetch buffer
            next(pipelines[name])
    rates = {name: [] for name in fns}
    for _ in range(rounds):
        for name, batches in pipelines.items():
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds / rounds:
                next(batches).numpy()
                count += 1
            rates[name].append(count * x.shape[0] / (time.perf_counter() - start))
    return {name: (max(r), float(np.median(r))) for name, r in rates.items()}


def print_rates(title, results):
    base_best, base_median = results[next(iter(results))]
    width = max(map(len, results))
    print(title)
    for name, (best, median) in results.items():
        print(
            f"  {name:<{width}}  best {best:9,.0f}  median {median:9,.0f}   "
            f"{best / base_best:5.2f}x / {median / base_median:5.2f}x the Keras chain"
        )


def surviving_std(out, border=6):
    out = keras.ops.convert_to_numpy(out)
    return float(out[:, border:-border, border:-border, :].std())


def in_place_functions(backend, chain, affine):
    """The Keras chain and RandomAffine (default resampler) where this backend runs them."""
    if backend == "tensorflow":
        import tensorflow as tf

        native = kreg_layer(seed=1, resampler="affine_transform")
        return {
            "keras chain, graph": tf.function(lambda v: apply_chain(chain, v)),
            "kreg RandomAffine, graph": tf.function(lambda v: affine(v, training=True)),
            "kreg RandomAffine, XLA": tf.function(
                lambda v: affine(v, training=True), jit_compile=True
            ),
            "kreg RandomAffine(resampler='affine_transform'), graph": tf.function(
                lambda v: native(v, training=True)
            ),
        }
    if backend == "jax":
        # Keras' layers are jittable on JAX (supports_jit only matters on TensorFlow).
        return {
            "keras chain, jax.jit": jax_jitted(keras.Sequential(chain)),
            "kreg RandomAffine, jax.jit": jax_jitted(affine),
        }
    return {
        "keras chain, eager": lambda v: apply_chain(chain, v),
        "kreg RandomAffine, eager": lambda v: affine(v, training=True),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timing per variant")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="1 s per variant: a smoke run")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else args.seconds
    backend = keras.backend.backend()
    x = np.random.RandomState(0).rand(args.batch, 32, 32, 3).astype("float32")
    chain, affine = keras_chain(), kreg_layer()
    print(f"backend={backend} keras={keras.__version__} batch={args.batch} images 32x32x3 float32")
    print(
        f"ranges: rotation={ROTATION} turn, translation={TRANSLATION}, zoom={ZOOM}, flip=horizontal"
    )
    fns = in_place_functions(backend, chain, affine)
    results = measure(fns, keras.ops.convert_to_tensor(x), seconds)
    print_rates(
        f"images/s, best and median of 10 interleaved rounds ({seconds:g} s per variant):",
        results,
    )
    mapped_chain, mapped_affine = keras_chain(seed=10), kreg_layer(seed=10)
    pipelines = {
        "keras chain, tf.data": lambda v: apply_chain(mapped_chain, v),
        "kreg RandomAffine, tf.data": lambda v: mapped_affine(v, training=True),
    }
    print_rates(
        f"tf.data pipeline on the {backend} backend (map AUTOTUNE, prefetch), images/s, "
        f"best and median of 5 interleaved rounds ({seconds:g} s per pipeline):",
        tf_data_rates(pipelines, x, seconds),
    )

    # Fidelity: the std of white noise (std 1) that survives the transforms.
    noise = np.random.RandomState(1).randn(args.batch, 32, 32, 3).astype("float32")
    once = surviving_std(kreg_layer(seed=5)(noise, training=True))
    thrice = surviving_std(apply_chain(keras_chain(seed=5), noise))
    print("fidelity (white noise, std 1.000, interior pixels):")
    print(f"  kreg RandomAffine, one resampling:    std {once:.3f}")
    print(f"  Keras chain, three resamplings:       std {thrice:.3f}")
    print(f"  surviving-std ratio kreg / Keras:     {once / thrice:.2f}x")
    if backend == "tensorflow":
        native = kreg_layer(seed=5, resampler="affine_transform")(noise, training=True)
        print(f"  kreg, resampler='affine_transform':   std {surviving_std(native):.3f}")


if __name__ == "__main__":
    main()
