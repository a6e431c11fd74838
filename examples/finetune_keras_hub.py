"""Fine-tune a keras-hub model: L2-SP toward the starting weights, decoupled decay, audit, save.

L2-SP (Li et al. 2018) pulls the pretrained backbone toward its starting weights, not
toward zero; decoupled weight decay regularizes what L2-SP leaves free (the new head).
As timm does for ViT, the class token and position embedding get no regularization, and
biases and normalization parameters none by default. `kreg.audit` checks the set-up; the
saved model keeps every penalty. Set KREG_SMOKE=1 for a seconds-long run.
"""

import os
import re
import tempfile

import keras
import keras_hub
import numpy as np
from sklearn.datasets import load_digits

import kreg

SMOKE = os.environ.get("KREG_SMOKE") == "1"


def main():
    digits = load_digits()  # 8×8 digits, upsampled to 16×16 RGB: no download
    x = np.repeat(np.kron(digits.images / 16.0, np.ones((2, 2)))[..., None], 3, axis=-1)
    x, y = x.astype("float32")[: 256 if SMOKE else None], digits.target[: 256 if SMOKE else None]

    # With internet: keras_hub.models.ViTBackbone.from_preset("vit_base_patch16_224_imagenet").
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(16, 16, 3), patch_size=4, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    skip = [r"class_token", r"position_embedding"]  # as timm's no_weight_decay()
    anchored = kreg.regularizers.apply(backbone, kreg.regularizers.L2SP(1e-3), exclude=skip)
    print(f"L2-SP toward the starting weights on {len(anchored)} backbone weights")
    model = keras_hub.models.ViTImageClassifier(backbone, num_classes=10, preprocessor=None)

    # Decay toward zero only where L2-SP does not pull toward the start: the new head.
    optimizer = kreg.optimizers.DecoupledWeightDecay(
        keras.optimizers.SGD(0.05, momentum=0.9),
        weight_decay=1e-2,
        exclude=[re.escape(path) + "$" for path in anchored] + skip,
    )
    model.compile(
        optimizer,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    decayed = [v.path for v in model.trainable_weights if optimizer.weight_decay_multiplier(v)]
    print("decayed toward zero:", decayed)
    print(kreg.audit(model))

    history = model.fit(
        x, y, batch_size=32, epochs=1 if SMOKE else 10, validation_split=0.2, verbose=0
    )
    print(f"validation accuracy: {history.history['val_accuracy'][-1]:.3f}")

    path = os.path.join(tempfile.mkdtemp(), "vit.keras")
    model.save(path)
    # A keras-hub task overrides `compile`: Keras does not compile it from the file (it
    # warns); compile the loaded task again to train on.
    loaded = keras.saving.load_model(path)
    kept = sorted(v.path for v in loaded.weights if v.regularizer is not None)
    assert len(kept) == len(anchored), (kept, anchored)
    np.testing.assert_allclose(
        loaded.predict(x[:8], verbose=0), model.predict(x[:8], verbose=0), atol=1e-6
    )
    print(f"saved and loaded: {len(kept)} penalties kept, the same predictions")
    return history


if __name__ == "__main__":
    main()
