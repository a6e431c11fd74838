"""Scale λ to the batch: kreg.callbacks.RegularizationScaler.

A penalty λ meant for the full-batch objective Σᵢ ℓᵢ + λ·R(w) must be shared out over the
minibatch steps (Bengio 2012): λ·b/N per step when the loss sums over the batch, λ/N when
it averages (Keras' default). The scaler sets every targeted live strength to its base
value × that rule before each batch, the last partial batch included, so the same λ works
at any batch size. Other rules: "normalized" (Loshchilov & Hutter 2019) and "timescale"
(Wang & Aitchison 2024) for weight decay. KREG_SMOKE=1: short run.
"""

import os

import keras
from mnist1d.data import get_dataset_args, make_dataset

import kreg

SMOKE = os.environ.get("KREG_SMOKE") == "1"


def main():
    args = get_dataset_args()
    if SMOKE:
        args.num_samples = 500
    data = make_dataset(args)  # generated offline, no download
    x, y = data["x"].astype("float32"), data["y"]

    reg = lambda: kreg.regularizers.L2(20.0)  # noqa: E731  λ for the full-batch summed loss
    model = keras.Sequential(
        [
            keras.Input((40,)),
            keras.layers.Dense(100, activation="relu", kernel_regularizer=reg()),
            keras.layers.Dense(100, activation="relu", kernel_regularizer=reg()),
            keras.layers.Dense(10, kernel_regularizer=reg()),
        ]
    )
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    model.compile(keras.optimizers.Adam(2e-3), loss, metrics=["accuracy"])
    for batch_size in (32, 256):
        scaler = kreg.callbacks.RegularizationScaler(
            "minibatch", targets="regularizers", batch_size=batch_size, num_examples=len(y)
        )
        history = model.fit(
            x,
            y,
            batch_size=batch_size,
            epochs=1 if SMOKE else 20,
            verbose=0,
            validation_split=0.0,
            callbacks=[scaler],
        )
        strengths = {k: round(float(s), 6) for k, s in kreg.strengths(model).items()}
        print(f"batch {batch_size}: λ set for the last (partial) batch: {strengths}")
    return history


if __name__ == "__main__":
    main()
