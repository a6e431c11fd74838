"""XLA: what augmentation-disables-xla says, with the XLA-compatible replacement."""

_AFFINE_ARGS = {  # Keras layer -> (RandomAffine argument, Keras config key)
    "RandomRotation": ("rotation", "factor"),
    "RandomTranslation": ("translation", "height_factor"),
    "RandomZoom": ("zoom", "height_factor"),
    "RandomShear": ("shear", "x_factor"),
}


def augmentation_disables_xla(*, layer, layer_path):
    return (
        f"{type(layer).__name__} '{layer_path}' cannot be XLA-compiled (supports_jit=False), so "
        "Keras compiles the whole model without XLA",
        "One layer without XLA support turns jit_compile='auto' off for every "
        "layer of the model (and jit_compile=True falls back with a warning), "
        "which makes each training step slower.",
        _affine_fix(layer),
    )


def _affine_fix(layer):
    cls = type(layer).__name__
    lines = []
    if getattr(layer, "resampler", None) == "affine_transform":  # kreg's, on TensorFlow
        lines.append(
            "kreg.layers.RandomAffine(..., resampler='gather')"
            "  # the default: XLA-compatible, the same result"
        )
    elif cls in _AFFINE_ARGS:
        argument, key = _AFFINE_ARGS[cls]
        try:
            value = layer.get_config().get(key)
        except Exception:
            value = None
        value = tuple(value) if isinstance(value, list) else value
        lines.append(
            f"kreg.layers.RandomAffine({argument}={'...' if value is None else repr(value)})"
            "  # XLA-compatible; one resampling for all geometric transforms"
        )
    lines.append(
        "# or augment in the input pipeline: "
        "dataset.map(lambda x, y: (augment(x, training=True), y))"
    )
    return "\n".join(lines)
