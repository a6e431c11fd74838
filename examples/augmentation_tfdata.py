"""Augmentation in a tf.data pipeline with kreg.layers.RandomAffine, on any Keras backend.

RandomAffine draws a rotation, translation, zoom, shear and flips per image and applies
them in one resampling. Mapped over a tf.data pipeline it runs on the CPU input workers,
in parallel with training. On JAX and torch too: there it computes with Keras'
TensorFlow ops, as Keras' own preprocessing layers do. Its default resampler is the
fastest for where it runs: TensorFlow's C++ kernel in tf.data, the XLA-compatible
gathers inside a model. Set KREG_SMOKE=1 for a short run.
"""

import os

import keras
import tensorflow as tf
from sklearn.datasets import load_digits

import kreg

SMOKE = os.environ.get("KREG_SMOKE") == "1"


def main():
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int64")
    n = 256 if SMOKE else len(y)
    x, y = x[:n], y[:n]
    split = int(0.8 * n)

    augment = kreg.layers.RandomAffine(
        rotation=0.05, translation=0.15, zoom=0.1, fill_mode="constant", seed=0
    )
    train = tf.data.Dataset.from_tensor_slices((x[:split], y[:split])).shuffle(split, seed=0)
    train = train.batch(64)
    train = train.map(
        lambda images, labels: (augment(images, training=True), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    train = train.prefetch(tf.data.AUTOTUNE)

    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    history = model.fit(
        train,
        epochs=1 if SMOKE else 30,
        verbose=0,
        shuffle=False,
        validation_data=(x[split:], y[split:]),
    )  # the dataset shuffles
    print(
        f"augmentation in tf.data on {keras.backend.backend()}; "
        f"validation accuracy: {history.history['val_accuracy'][-1]:.3f}"
    )
    return history


if __name__ == "__main__":
    main()
