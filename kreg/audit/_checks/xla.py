"""XLA: a random augmentation layer that turns XLA off for the whole model."""

from kreg.audit._codes import finding


def _is_augmentation(layer):
    cls = type(layer).__name__
    return cls.startswith("Random") or "image_preprocessing" in type(layer).__module__


def check_xla(ctx):
    """augmentation-disables-xla: a random augmentation layer with supports_jit=False."""
    return [
        finding("augmentation-disables-xla", path, layer=layer, layer_path=path)
        for path, layer in ctx.paths
        if not getattr(layer, "supports_jit", True) and _is_augmentation(layer)
    ]
