"""Tiny keras-hub models built from constructor arguments (random weights, no downloads).

The architectures people bring to kreg: every kreg piece is tried on them in
``test_real_models.py``. Each builder takes the model's dropout rate and returns
``(model, inputs, targets)``: a batch the model takes and targets for a regression (or
classification, for the task model) loss.
Sizes are the smallest each constructor accepts, so a fit step takes well under a second.
"""

import numpy as np

try:
    import keras_hub
except ImportError:  # keras-hub needs Keras >= 3.15: the oldest-Keras CI leg has none
    keras_hub = None

BATCH = 4
SEQUENCE = 8
VOCABULARY = 32


def _tokens(with_segments=False):
    rng = np.random.RandomState(0)
    inputs = {
        "token_ids": rng.randint(1, VOCABULARY, (BATCH, SEQUENCE)).astype("int32"),
        "padding_mask": np.ones((BATCH, SEQUENCE), "int32"),
    }
    if with_segments:
        inputs["segment_ids"] = np.zeros((BATCH, SEQUENCE), "int32")
    return inputs


def _images(size=16):
    return np.random.RandomState(0).rand(BATCH, size, size, 3).astype("float32")


def resnet(dropout=0.0):  # no dropout in a ResNet backbone
    # ResNetBackbone insists on 64 filters in its first stack.
    model = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        image_shape=(16, 16, 3),
    )
    return model, _images(), np.zeros((BATCH, 2, 2, 16), "float32")


def vit(dropout=0.1):
    model = keras_hub.models.ViTBackbone(
        image_shape=(16, 16, 3),
        patch_size=4,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        mlp_dim=16,
        dropout_rate=dropout,
    )
    return model, _images(), np.zeros((BATCH, 17, 8), "float32")


def bert(dropout=0.1):
    model = keras_hub.models.BertBackbone(
        vocabulary_size=VOCABULARY,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=SEQUENCE,
        dropout=dropout,
    )
    targets = {
        "sequence_output": np.zeros((BATCH, SEQUENCE, 8), "float32"),
        "pooled_output": np.zeros((BATCH, 8), "float32"),
    }
    return model, _tokens(with_segments=True), targets


def gpt2(dropout=0.1):
    model = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCABULARY,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=SEQUENCE,
        dropout=dropout,
    )
    return model, _tokens(), np.zeros((BATCH, SEQUENCE, 8), "float32")


def llama(dropout=0.0):
    model = keras_hub.models.LlamaBackbone(
        vocabulary_size=VOCABULARY,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
        dropout=dropout,
    )
    return model, _tokens(), np.zeros((BATCH, SEQUENCE, 8), "float32")


def bert_classifier(dropout=0.1):
    """A task model: BERT with keras-hub's own classification head (and its dropout)."""
    backbone, inputs, _ = bert(dropout)
    model = keras_hub.models.BertTextClassifier(
        backbone, num_classes=3, preprocessor=None, dropout=dropout
    )
    return model, inputs, np.array([0, 1, 2, 1], "int32")


#: name -> builder, the architectures every real-models test runs on.
BUILDERS = {
    "resnet": resnet,
    "vit": vit,
    "bert": bert,
    "gpt2": gpt2,
    "llama": llama,
    "bert_classifier": bert_classifier,
}
