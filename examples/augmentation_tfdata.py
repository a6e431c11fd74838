"""Augmentation in a tf.data pipeline with kreg.layers.RandomAffine.

RandomAffine draws a rotation, translation, zoom, shear and flips per image and applies
them in one resampling. Mapped over a tf.data pipeline it runs on the CPU input workers,
in parallel with training, through TensorFlow's C++ kernel (resampler="affine_transform"). With another backend than TensorFlow, kreg layers refuse
tf.data's symbolic tensors, so the layer goes into the model instead (where it also
compiles under XLA). Set KREG_SMOKE=1 for a short run.
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

    in_pipeline = keras.backend.backend() == "tensorflow"
    # tf.data runs the map in graph mode, never under XLA: there TensorFlow's C++ kernel
    # (resampler="affine_transform") is faster than the default gathers, same result.
    augment = kreg.layers.RandomAffine(rotation=0.05, translation=0.15, zoom=0.1,
                                       fill_mode="constant", seed=0,
                                       resampler="affine_transform" if in_pipeline else "gather")
    train = tf.data.Dataset.from_tensor_slices((x[:split], y[:split])).shuffle(split, seed=0)
    train = train.batch(64)
    if in_pipeline:
        train = train.map(lambda images, labels: (augment(images, training=True), labels),
                          num_parallel_calls=tf.data.AUTOTUNE)
    train = train.prefetch(tf.data.AUTOTUNE)

    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        *([] if in_pipeline else [augment]),  # in the model: active in fit, identity in predict
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(train, epochs=1 if SMOKE else 30, verbose=0, shuffle=False,
                        validation_data=(x[split:], y[split:]))  # the dataset shuffles
    print(f"augmentation {'in tf.data' if in_pipeline else 'in the model'}; "
          f"validation accuracy: {history.history['val_accuracy'][-1]:.3f}")
    return history


if __name__ == "__main__":
    main()
