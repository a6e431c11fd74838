"""Gaussian noise: what noise-on-integer-input, noise-on-unscaled-input and
noise-out-of-scale say."""

import keras

from kreg.audit._explain import class_code


def noise_on_integer_input(*, layer, layer_class, stddev, layer_path, dtype):
    return (
        f"{layer_class}(stddev={stddev:g}) '{layer_path}' receives {dtype} inputs",
        "Float noise cannot be added to an integer tensor: training fails or "
        "the noise is rounded away, and integer inputs are usually unscaled "
        "pixel values.",
        "x = keras.layers.Rescaling(1 / 255)(inputs)  # float inputs in [0, 1]\n"
        f"x = {class_code(layer) or 'kreg.layers.GaussianNoise'}({stddev:g})(x)",
    )


def noise_on_unscaled_input(*, layer, layer_class, stddev, layer_path, largest, spread, ratio):
    """``largest``, ``spread``: the sample's maximum and standard deviation there."""
    return (
        f"{layer_class}(stddev={stddev:g}) '{layer_path}' receives unscaled images "
        f"(integer values up to {largest:g}, std {spread:.3g}): σ is "
        f"{ratio:.3g}× the signal",
        "On pixel values in 0–255 noise of σ ≤ 1 (the most Keras' GaussianNoise "
        "accepts) changes a grey level or two, so it regularizes nothing.",
        f"keras.layers.Rescaling(1 / 255)  # before '{layer_path}'\n"
        "# or: kreg.layers.GaussianNoise(0.1, relative=True)  # σ in units of "
        "each feature's std",
    )


def noise_out_of_scale(*, layer, layer_class, stddev, layer_path, spread, ratio):
    suggest = 0.1 * spread
    noise_cls = class_code(layer)
    if noise_cls is None or (isinstance(layer, keras.layers.GaussianNoise) and suggest > 1):
        noise_cls = "kreg.layers.GaussianNoise"  # Keras' GaussianNoise refuses σ > 1
    return (
        f"{layer_class}(stddev={stddev:g}) '{layer_path}' on inputs with standard deviation "
        f"{spread:.3g}: σ is {ratio:.3g}× the signal",
        "Noise larger than the signal drowns it: the network learns from inputs "
        "that are mostly noise."
        if ratio > 1
        else "Noise under 1% of the signal's spread leaves the inputs practically "
        "unchanged, so it regularizes nothing (its effect scales with σ², Bishop "
        "1995).",
        f"{noise_cls}({suggest:.3g})  # 0.1 × the input's standard deviation\n"
        "# or: kreg.layers.GaussianNoise(0.1, relative=True)",
    )
