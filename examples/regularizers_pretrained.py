"""Regularize a pretrained model: L2-SP toward the pretrained weights, strength changed live.

`kreg.regularizers.apply` attaches a penalty to an already-built model (biases and
normalization parameters excluded by default); with `L2SP` each weight is pulled toward
its value at the moment of attaching (the pretrained weights), not toward zero (Li et al.
2018). Every strength is live: `kreg.strengths(model)[...].assign(v)` changes it between
epochs without recompiling. Set KREG_SMOKE=1 for a seconds-long run.
"""

import os

import keras
from sklearn.datasets import load_digits

import kreg

SMOKE = os.environ.get("KREG_SMOKE") == "1"


def main():
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target
    n = 200 if SMOKE else len(y)
    x, y = x[:n], y[:n]
    x_a, y_a, x_b, y_b = x[y < 5], y[y < 5], x[y >= 5], y[y >= 5] - 5  # two "tasks"

    # 1. "Pretrain" a small CNN on task A (a stand-in for loading a pretrained backbone).
    backbone = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
        ],
        name="backbone",
    )
    pretrain = keras.Sequential([backbone, keras.layers.Dense(5)])
    pretrain.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pretrain.fit(x_a, y_a, epochs=1 if SMOKE else 10, verbose=0)

    # 2. Fine-tune on task B with L2-SP on the backbone's kernels.
    attached = kreg.regularizers.apply(backbone, kreg.regularizers.L2SP(1e-2))
    print("L2-SP on:", attached)
    model = keras.Sequential([backbone, keras.layers.Dense(5, name="new_head")])
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )

    # 3. Halve the strengths every epoch, live, from a callback.
    handles = kreg.strengths(model)
    print("live strengths:", sorted(handles))

    def halve(epoch, logs):
        for s in handles.values():
            s.assign(float(s) * 0.5)

    history = model.fit(
        x_b,
        y_b,
        epochs=2 if SMOKE else 10,
        validation_split=0.2,
        verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=halve)],
    )
    print(
        f"fine-tuned accuracy: {history.history['val_accuracy'][-1]:.3f}; "
        f"strengths now {[round(float(s), 6) for s in handles.values()]}"
    )
    return history


if __name__ == "__main__":
    main()
