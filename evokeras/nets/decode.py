"""Genome -> Keras functional model. The only module of the core that builds Keras layers.

Layer names are stable (``g{index}_{kind}``, merges ``g{index}_merge``, projections
``g{index}_proj{j}``), so weights can be matched between related models. A recurrent
gene is ``SkipStepRNN(cell, return_sequences=True)`` (``keras.layers.RNN`` around a
``SkipStepCell``, its kernels fused once per call, outside the time loop); tasks with
``sequence_output`` keep the time axis to the head (no reduction anywhere), and their
Conv1D genes use "causal" padding so that no output step sees a later input.
"""

from __future__ import annotations

from typing import Any, Protocol

from evokeras._meta import optional_dependency
from evokeras.genomes.network import Genome, LayerGene
from evokeras.nets import layers

__all__ = ["BN_MOMENTUM", "ModelSpec", "build_optimizer", "decode"]

#: Momentum of the moving statistics of batch normalisation. Keras' default (0.99) keeps
#: a fifth of the initial statistics after 160 steps, so a candidate trained a few hundred
#: steps is scored in inference mode with statistics that are not yet its own; 0.9
#: forgets them within 50 steps.
BN_MOMENTUM = 0.9


class ModelSpec(Protocol):
    """What :func:`decode` needs of a task: every :class:`evokeras.tasks.NetworkTask` is one
    (:meth:`~evokeras.tasks.NetworkTask.loss` and ``metrics`` only when compiling); a task of
    another genome type (a plain :class:`evokeras.tasks.Task`) need not be."""

    input_shape: tuple[int, ...]
    #: Keep the time axis to the head (next-token prediction): no reduction, causal Conv1D.
    sequence_output: bool

    def stem(self, inputs: Any) -> Any: ...

    def head(self, x: Any) -> Any: ...

    def loss(self) -> Any: ...

    def metrics(self) -> list[Any]: ...


def build_optimizer(genome: Genome, *, decay_steps: int | None = None) -> Any:
    """The Keras optimizer named by the genome's training genes; with ``decay_steps``
    its learning rate follows a cosine decay from the gene's value to 0 over that many
    steps (final training), else it is constant (search)."""
    import keras

    t = genome.training
    lr: Any = float(t.learning_rate)
    if decay_steps:
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=int(decay_steps))
    if t.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    if t.optimizer == "adamw":
        return keras.optimizers.AdamW(lr)
    if t.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True)


def _reduce(x: Any, how: str, name: str) -> Any:
    import keras

    rank = len(x.shape)
    if rank <= 2:
        return x
    if how == "flatten":
        return keras.layers.Flatten(name=name)(x)
    if how == "global_max":
        cls = keras.layers.GlobalMaxPooling1D if rank == 3 else keras.layers.GlobalMaxPooling2D
    else:
        cls = keras.layers.GlobalAveragePooling1D if rank == 3 else keras.layers.GlobalAveragePooling2D
    return cls(name=name)(x)


def _merge(x: Any, others: list[tuple[int, Any]], how: str, index: int) -> Any:
    import keras


    parts = [x]
    spatial = tuple(x.shape[1:-1])
    for j, y in others:
        if tuple(y.shape[1:-1]) != spatial:
            y = layers.SpatialResize(spatial, name=f"g{index}_resize{j}")(y)
        if how == "add" and y.shape[-1] != x.shape[-1]:
            y = keras.layers.Dense(x.shape[-1], use_bias=False, name=f"g{index}_proj{j}")(y)
        parts.append(y)
    layer = keras.layers.Add if how == "add" else keras.layers.Concatenate
    return layer(name=f"g{index}_merge")(parts)


def _apply(layer: LayerGene, x: Any, name: str, causal: bool = False) -> Any:
    import keras

    kind = layer.kind
    spatial_rank = len(x.shape) - 2
    if kind == "dense":
        return keras.layers.Dense(layer.units, activation=layer.activation, name=name)(x)
    if layer.is_conv:
        conv = keras.layers.Conv1D if spatial_rank == 1 else keras.layers.Conv2D
        padding = "causal" if causal and spatial_rank == 1 else "same"
        if kind == "conv":
            return conv(layer.units, layer.kernel_size, strides=layer.strides, padding=padding,
                        activation=layer.activation, name=name)(x)
        y = conv(layer.units, layer.kernel_size, strides=layer.strides, padding=padding, use_bias=False,
                 name=f"{name}_conv")(x)
        y = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(y)
        y = keras.layers.Activation(layer.activation, name=f"{name}_act")(y)
        if not layer.residual:
            return y
        shortcut = x
        if layer.strides != 1 or x.shape[-1] != layer.units:
            shortcut = conv(layer.units, 1, strides=layer.strides, padding="same", use_bias=False,
                            name=f"{name}_proj")(x)
        return keras.layers.Add(name=f"{name}_add")([y, shortcut])
    if kind == "pool":
        if layer.pool_type == "max":
            pool = keras.layers.MaxPooling1D if spatial_rank == 1 else keras.layers.MaxPooling2D
        else:
            pool = keras.layers.AveragePooling1D if spatial_rank == 1 else keras.layers.AveragePooling2D
        return pool(layer.pool_size, strides=layer.pool_size, padding="same", name=name)(x)
    if kind == "batchnorm":
        return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)(x)
    if kind == "dropout":
        return keras.layers.Dropout(layer.rate, name=name)(x)
    if kind == "recurrent":
        return layers.SkipStepRNN(layer.cell, return_sequences=True, name=name)(x)
    return keras.layers.Activation(layer.activation, name=name)(x)


def decode(genome: Genome, task: ModelSpec, *, compile: bool = True, name: str | None = None) -> Any:
    """Build the Keras functional model that ``genome`` describes for ``task``.

    Args:
        genome: a valid genome (individuals work too).
        task: a task object (:class:`ModelSpec`: a :class:`~evokeras.tasks.NetworkTask`); it
            provides the input, stem, head and loss. :func:`evokeras.decode` also takes a
            registered task name (and refuses a task that is not a ``NetworkTask``).
        compile: compile with the genome's optimizer and learning rate and the task's
            loss and metrics.
        name: the model name (default ``"evokeras_<key>"``).

    Returns:
        A ``keras.Model``; ``count_params()`` equals ``task.space.analyze(genome).params``
        (the stem's parameters included).

    Example:
        >>> from evokeras import Genome, LayerGene, make_task
        >>> model = decode(Genome((LayerGene("conv", units=8), LayerGene("pool"))), make_task("mnist"))
        >>> model.output_shape
        (None, 10)
    """
    with optional_dependency():  # Keras without a backend: name the extras
        import keras

    genome.validate()
    inputs = keras.Input(shape=task.input_shape, name="inputs")
    x0 = task.stem(inputs)
    per_step = bool(task.sequence_output)
    outputs: list[Any] = []
    for i, layer in enumerate(genome.layers):
        x = outputs[i - 1] if i else x0
        if layer.kind == "dense" and not per_step:
            x = _reduce(x, genome.reduce, name=f"g{i}_reduce")
        if layer.skips:
            x = _merge(x, [(j, outputs[j]) for j in layer.skips], layer.merge, i)
        outputs.append(_apply(layer, x, name=f"g{i}_{layer.kind}", causal=bool(task.sequence_output)))
    x = outputs[-1] if outputs else x0
    if not per_step:
        x = _reduce(x, genome.reduce, name="reduce")
    model = keras.Model(inputs, task.head(x), name=name or f"evokeras_{genome.key}")
    if compile:
        model.compile(optimizer=build_optimizer(genome), loss=task.loss(), metrics=task.metrics())
    return model
