"""Layer order: what dropout-before-batchnorm and bias-before-batchnorm say."""

import keras

from kreg.audit._explain import class_code


def dropout_before_batchnorm(*, layer_class, rate, layer_path, bn_path):
    return (
        f"{layer_class}(rate={rate:g}) '{layer_path}' feeds BatchNormalization '{bn_path}'",
        "Dropout changes the variance of its output between training "
        "and inference, so the moving variance BatchNormalization "
        "learns in training is wrong at inference (variance shift, "
        "Li et al. 2019).",
        "# move the dropout after the last BatchNormalization "
        "(e.g. before the classifier):\n"
        "x = keras.layers.BatchNormalization()(x)\n"
        f"x = keras.layers.Dropout({rate:g})(x)",
    )


def bias_before_batchnorm(*, layer, layer_path, bn_path):
    cls = type(layer).__name__
    if isinstance(layer, keras.layers.Dense):
        args = f"{layer.units}"
    else:
        size = getattr(layer, "filters", None)
        kernel = getattr(layer, "kernel_size", None)
        args = ", ".join(str(a) for a in (size, kernel) if a is not None) + ", ..."
    name = class_code(layer)
    return (
        f"{cls} '{layer_path}' has a bias and feeds BatchNormalization '{bn_path}' directly",
        "BatchNormalization subtracts each feature's batch mean, which cancels a constant "
        "bias exactly: the bias gets no gradient and only costs parameters (the "
        "normalization's β plays its role).",
        f"{name}({args}, use_bias=False)"
        if name is not None
        else f"# build '{layer_path}' with use_bias=False",
    )
