"""Layer order: a bias or a dropout right before BatchNormalization, in every readable graph."""

import keras

import kreg.layers
from kreg.audit import _facts as facts
from kreg.audit import _graph as graphs
from kreg.audit._codes import finding

_DROPOUT_LAYERS = tuple(
    getattr(keras.layers, n)
    for n in (
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianDropout",
        "AlphaDropout",
    )
    if hasattr(keras.layers, n)
) + (kreg.layers.Dropout,)
_BIAS_LAYERS = tuple(
    getattr(keras.layers, n)
    for n in (
        "Dense",
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "SeparableConv1D",
        "SeparableConv2D",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
    )
    if hasattr(keras.layers, n)
)


def _bias_axis(layer, rank):
    if isinstance(layer, keras.layers.Dense):
        return rank - 1
    data_format = getattr(layer, "data_format", "channels_last")
    return 1 if data_format == "channels_first" else rank - 1


def _bn_axes(bn, rank):
    axis = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    return {a % rank for a in axis}


def _bias_is_cancelled(layer, bn):
    """True when ``bn`` normalizes along the axis of ``layer``'s bias (False if unknown)."""
    try:
        rank = len(layer.output.shape)
    except Exception:
        try:
            rank = len(layer.compute_output_shape(bn.input.shape))
        except Exception:
            return False
    return _bias_axis(layer, rank) in _bn_axes(bn, rank)


def _feeds_only_a_trainable_batchnorm(consumers, is_output):
    return (
        not is_output
        and len(consumers) == 1
        and isinstance(consumers[0], keras.layers.BatchNormalization)
        and consumers[0].trainable  # a frozen BN uses fixed moving statistics
    )


def check_batchnorm(ctx):
    """bias-before-batchnorm and dropout-before-batchnorm, inside every readable graph."""
    found = []
    for _, container in graphs.containers(ctx.paths):
        graph = graphs.edges(container)
        for producer, consumers, is_output in graph.values():
            path = ctx.path_of.get(id(producer), producer.name)
            if isinstance(producer, _DROPOUT_LAYERS):
                rate = facts.live_value(producer, "rate")
                bns = [
                    n
                    for n in graphs.successors(graph, producer)
                    if isinstance(n, keras.layers.BatchNormalization)
                ]
                if rate and bns:
                    bn_path = ctx.path_of.get(id(bns[0]), bns[0].name)
                    found.append(
                        finding(
                            "dropout-before-batchnorm",
                            path,
                            layer_class=type(producer).__name__,
                            rate=rate,
                            layer_path=path,
                            bn_path=bn_path,
                        )
                    )
            if (
                isinstance(producer, _BIAS_LAYERS)
                and getattr(producer, "use_bias", False)
                and facts.is_linear(getattr(producer, "activation", None))
                and _feeds_only_a_trainable_batchnorm(consumers, is_output)
                and _bias_is_cancelled(producer, consumers[0])
            ):
                bn = consumers[0]
                found.append(
                    finding(
                        "bias-before-batchnorm",
                        path,
                        layer=producer,
                        layer_path=path,
                        bn_path=ctx.path_of.get(id(bn), bn.name),
                    )
                )
    return found
