"""Base network families for specialization: a plain CNN, a ResNet, an LSTM language model.

Each builder returns an uncompiled functional Keras model whose graph
:func:`evokeras.nets.surgery.structure` reads (a chain of layers and residual blocks) and
whose last layer, named ``"head"``, is the base task's output. The same builder with
another ``n_outputs``/``head`` gives the "full architecture" a specialized model is
compared with (trained from scratch on the new task).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evokeras.nets import layers as custom_layers

__all__ = ["lstm_model", "plain_cnn", "resnet"]


def _head(x: Any, n_outputs: int, activation: str | None) -> Any:
    import keras

    return keras.layers.Dense(n_outputs, activation=activation, name="head")(x)


def plain_cnn(input_shape: Sequence[int], n_outputs: int, *, widths: Sequence[int] = (16, 32, 64),
              dense: int = 256, activation: str | None = "softmax") -> Any:
    """A VGG-like plain CNN: per stage two 3x3 ReLU convolutions (``stage{i}_conv1``,
    ``stage{i}_conv2``) and a 2x2 max pool, then flatten, a ReLU dense layer of
    ``dense`` units (``fc``) and the head."""
    import keras

    inp = keras.Input(tuple(input_shape), name="image")
    x = inp
    for i, width in enumerate(widths, start=1):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"stage{i}_conv1")(x)
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"stage{i}_conv2")(x)
        x = keras.layers.MaxPooling2D(2, name=f"stage{i}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense, activation="relu", name="fc")(x)
    return keras.Model(inp, _head(x, n_outputs, activation), name="plain_cnn")


def resnet(input_shape: Sequence[int], n_outputs: int, *, widths: Sequence[int] = (16, 32, 64),
           blocks: int = 2, activation: str | None = "softmax") -> Any:
    """A small ResNet (v1): a 3x3 conv + batch norm + ReLU stem, then per stage
    ``blocks`` residual blocks of two 3x3 conv + batch norm (the first block of a later
    stage downsamples with stride 2 and a 1x1 conv + batch norm shortcut; the others
    have an identity shortcut), a ReLU after each addition, global average pooling and
    the head."""
    import keras

    layers = keras.layers
    inp = keras.Input(tuple(input_shape), name="image")
    x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem_conv")(inp)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for s, width in enumerate(widths, start=1):
        for b in range(1, blocks + 1):
            name = f"s{s}b{b}"
            stride = 2 if (s > 1 and b == 1) else 1
            h = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
            h = layers.BatchNormalization(name=f"{name}_bn1")(h)
            h = layers.Activation("relu", name=f"{name}_relu1")(h)
            h = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv2")(h)
            h = layers.BatchNormalization(name=f"{name}_bn2")(h)
            shortcut = x
            if stride != 1 or int(x.shape[-1]) != width:
                shortcut = layers.Conv2D(width, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
                shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
            x = layers.Add(name=f"{name}_add")([shortcut, h])
            x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inp, _head(x, n_outputs, activation), name="resnet")


def lstm_model(vocab_size: int, n_outputs: int, *, embedding: int = 64, units: Sequence[int] = (128, 128),
               per_step: bool = True, activation: str | None = None) -> Any:
    """Embedding (``embedding``), stacked LSTMs (``lstm1``, ``lstm2``, ... all returning
    sequences) and a Dense head: per time step (``per_step``, a language model over
    ``n_outputs`` tokens) or on the last step (a sequence classifier)."""
    import keras


    inp = keras.Input((None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, embedding, name="embedding")(inp)
    for i, u in enumerate(units, start=1):
        x = keras.layers.LSTM(u, return_sequences=True, name=f"lstm{i}")(x)
    if not per_step:
        x = custom_layers.LastStep(name="last")(x)
    return keras.Model(inp, _head(x, n_outputs, activation), name="lstm")
