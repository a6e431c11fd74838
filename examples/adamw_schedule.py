"""AdamW-style training with a learning-rate schedule: kreg.optimizers.DecoupledWeightDecay.

`DecoupledWeightDecay(optimizer, weight_decay)` wraps any Keras optimizer. By default
it decays by lr_t·λ per step, as Keras' AdamW, torch.optim.AdamW and optax do. Here
follow="schedule" (Loshchilov & Hutter 2019) makes the decay per step η_t·λ with
η_t = lr_t / lr_0: it follows the schedule's shape but not the base learning rate, so
the best λ does not move when the learning rate is tuned. Biases and
normalization parameters are excluded by default. `RegularizationMonitor` logs the
weight norm and the decay's timescale in epochs. Set KREG_SMOKE=1 for a short run.
"""

import os

import keras
import numpy as np
from mnist1d.data import get_dataset_args, make_dataset

import kreg

SMOKE = os.environ.get("KREG_SMOKE") == "1"


def main():
    args = get_dataset_args()
    if SMOKE:
        args.num_samples = 500
    data = make_dataset(args)  # generated offline, no download
    x, y = data["x"].astype("float32"), data["y"]
    x_test, y_test = data["x_test"].astype("float32"), data["y_test"]
    epochs, batch = (2, 100) if SMOKE else (60, 100)
    steps = epochs * int(np.ceil(len(y) / batch))

    model = keras.Sequential(
        [
            keras.Input((40,)),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, decay_steps=steps, warmup_steps=0)
    optimizer = kreg.optimizers.DecoupledWeightDecay(
        keras.optimizers.Adam(schedule), weight_decay=1e-4, follow="schedule"
    )
    model.compile(
        optimizer,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        x,
        y,
        batch_size=batch,
        epochs=epochs,
        verbose=0,
        validation_data=(x_test, y_test),
        callbacks=[kreg.callbacks.RegularizationMonitor()],
    )
    last = {k: v[-1] for k, v in history.history.items()}
    print("last epoch:", {k: round(float(v), 4) for k, v in last.items()})
    print("live:", kreg.strengths(model))
    return history


if __name__ == "__main__":
    main()
