"""Early stopping with one of Prechelt's criteria: kreg.callbacks.EarlyStopping.

Drop-in for keras.callbacks.EarlyStopping, with `criterion="GL"` (generalization loss
above alpha percent), `"PQ"` (GL divided by the training progress over strips of
`strip_length` epochs) or `"UP"` (the validation loss rose over `strips` successive
strips) (Prechelt 1998). `restore_best_weights=True` restores however training ends;
`best_epoch`, `stopped_epoch` and `stop_reason` say what happened. KREG_SMOKE=1: short run.
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

    model = keras.Sequential(
        [
            keras.Input((40,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    stop = kreg.callbacks.EarlyStopping(
        monitor="val_loss",
        criterion="PQ",
        alpha=0.5,
        strip_length=5,
        restore_best_weights=True,
        verbose=1,
    )
    history = model.fit(
        x,
        y,
        validation_split=0.15,
        batch_size=128,
        epochs=6 if SMOKE else 200,
        verbose=0,
        callbacks=[stop],
    )
    print(
        f"trained {len(history.history['loss'])} epochs; kept epoch {stop.best_epoch + 1} "
        f"(val_loss {stop.best_value:.4f}); reason: {stop.stop_reason}"
    )
    print(
        "test accuracy:",
        round(model.evaluate(data["x_test"].astype("float32"), data["y_test"], verbose=0)[1], 3),
    )
    return history


if __name__ == "__main__":
    main()
