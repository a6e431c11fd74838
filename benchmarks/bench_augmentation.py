"""Images per second of kreg.layers.RandomAffine vs Keras' geometric augmentation chain.

Batch of 128 float32 32x32x3 images, training mode, matching ranges:
    Keras: RandomFlip("horizontal") -> RandomRotation(R) -> RandomTranslation(T, T) -> RandomZoom(Z)
    kreg:  RandomAffine(rotation=R, translation=T, zoom=Z, flip="horizontal")
measured side by side in one run: both in graph mode (tf.function), kreg also under XLA
(tf.function(jit_compile=True); Keras' layers cannot be XLA-compiled). With the JAX
backend both run under jax.jit (the chain as a Sequential, through stateless_call).

With resampler="affine_transform" (TensorFlow only here), RandomAffine reads the image
through keras.ops.image.affine_transform: TensorFlow's C++ kernel (ImageProjectiveTransformV3,
what each Keras layer runs), one resampling with the same matrices; it cannot be
XLA-compiled, so that row is graph mode only.

Fidelity: white-noise images (std 1) go through the same transforms once; the pixel
standard deviation that survives (away from the borders) measures the blur of the
resampling: one bilinear resampling vs three.

Run:  python benchmarks/bench_augmentation.py [--seconds 4] [--batch 128]
      KERAS_BACKEND=jax python benchmarks/bench_augmentation.py
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


def surviving_std(out, border=6):
    out = keras.ops.convert_to_numpy(out)
    return float(out[:, border:-border, border:-border, :].std())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timing per variant")
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    backend = keras.backend.backend()
    x = np.random.RandomState(0).rand(args.batch, 32, 32, 3).astype("float32")
    chain, affine = keras_chain(), kreg_layer()
    print(f"backend={backend} keras={keras.__version__} batch={args.batch} images 32x32x3 float32")
    print(
        f"ranges: rotation={ROTATION} turn, translation={TRANSLATION}, zoom={ZOOM}, flip=horizontal"
    )

    fns = {}
    if backend == "tensorflow":
        import tensorflow as tf

        fns["keras chain, graph"] = tf.function(lambda v: apply_chain(chain, v))
        fns["kreg RandomAffine, graph"] = tf.function(lambda v: affine(v, training=True))
        fns["kreg RandomAffine, XLA"] = tf.function(
            lambda v: affine(v, training=True), jit_compile=True
        )
        native = kreg_layer(seed=1, resampler="affine_transform")
        fns["kreg RandomAffine(resampler='affine_transform'), graph"] = tf.function(
            lambda v: native(v, training=True)
        )
    elif backend == "jax":
        # Keras' layers are jittable on JAX (supports_jit only matters on TensorFlow).
        fns["keras chain, jax.jit"] = jax_jitted(keras.Sequential(chain))
        fns["kreg RandomAffine, jax.jit"] = jax_jitted(affine)
    else:
        fns["keras chain, eager"] = lambda v: apply_chain(chain, v)
        fns["kreg RandomAffine, eager"] = lambda v: affine(v, training=True)
    results = measure(fns, keras.ops.convert_to_tensor(x), args.seconds)
    base_best, base_median = results[next(iter(results))]
    width = max(map(len, results))
    print(f"images/s, best and median of 10 interleaved rounds ({args.seconds:g} s per variant):")
    for name, (best, median) in results.items():
        print(
            f"  {name:<{width}}  best {best:9,.0f}  median {median:9,.0f}   "
            f"{best / base_best:5.2f}x / {median / base_median:5.2f}x the Keras chain"
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
