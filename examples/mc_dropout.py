"""Monte-Carlo dropout: kreg.layers.Dropout(mc=True) and kreg.mc_predict.

In Keras 3, `Dropout(...)(x, training=True)` inside a functional model is silently turned
off by `model.predict`. kreg's Dropout with mc=True stays stochastic at inference, and
`kreg.mc_predict(model, x, samples)` returns the mean and standard deviation of the output
over stochastic passes (it samples every kreg stochastic layer, whatever its mc setting).
Keep probabilities 0.8 for inputs and 0.5 for hidden units. KREG_SMOKE=1: short run.
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

    model = keras.Sequential(
        [
            keras.Input((40,)),
            kreg.layers.Dropout(0.2),
            keras.layers.Dense(256, activation="relu"),
            kreg.layers.Dropout(0.5),
            keras.layers.Dense(256, activation="relu"),
            kreg.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(x, y, batch_size=100, epochs=1 if SMOKE else 60, verbose=0)

    scaled = model.predict(x_test, verbose=0)  # mc=False: the weight-scaling rule
    mean, std = kreg.mc_predict(model, x_test, samples=5 if SMOKE else 50)
    for name, p in (("weight scaling", scaled), ("MC average", mean)):
        print(f"{name}: test accuracy {np.mean(p.argmax(-1) == y_test):.3f}")
    spread = std[np.arange(len(y_test)), mean.argmax(-1)]
    print(f"mean std of p(predicted class): {spread.mean():.3f}")
    return mean, std


if __name__ == "__main__":
    main()
