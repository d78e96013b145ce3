"""The Keras cell of a :class:`~evokeras.genomes.cell.CellGenome` (``keras.ops`` only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import ops

from evokeras.genomes.cell import NODE_GATES, CellGenome

__all__ = ["SkipStepCell"]


@keras.saving.register_keras_serializable(package="evokeras")
class SkipStepCell(keras.layers.Layer):
    """A skip-step recurrent cell, to be wrapped in ``keras.layers.RNN``.

    The node computations and links are those of :mod:`evokeras.genomes.cell`. Each input of a
    node has its own kernel, created in :meth:`CellGenome.node_inputs` order and named
    ``node{j}_kernel`` (the main input), ``node{j}_ff{i}_kernel``,
    ``node{j}_rec{i}_lag{k}_kernel``, then ``node{j}_bias`` (shape ``(units,)`` for
    tanh, ``(4 * units,)`` for lstm, ``(2, 3 * units)`` for gru). A one-node cell with
    the link ``(0, 1, 0)`` therefore has the weights of a SimpleRNNCell, LSTMCell or
    GRUCell (``reset_after=True``), in the same order.

    State: a list of ``(batch, units)`` tensors described by
    :meth:`CellGenome.state_layout`: for each node by index, its outputs 1, 2, ...,
    ``register_depths[i]`` steps back (a shift register, newest first), then the memory
    of each lstm node. Shifting a register only reorders the list; nothing is copied.

    Args:
        genome: a :class:`CellGenome` or its :meth:`~CellGenome.to_dict` form.
        **kwargs: base layer arguments (``name``, ``dtype``, ...).

    Example:
        >>> import numpy as np
        >>> from evokeras.genomes.cell import CellGenome
        >>> cell = CellGenome(8, ("lstm", "tanh"), rec_links=((1, 3, 0),))
        >>> rnn = keras.layers.RNN(SkipStepCell(cell))
        >>> tuple(rnn(np.zeros((2, 5, 3), "float32")).shape)
        (2, 8)
    """

    def __init__(self, genome: CellGenome | Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(genome, CellGenome):
            genome.validate()
        elif isinstance(genome, Mapping):
            genome = CellGenome.from_dict(genome)
        else:
            raise TypeError(
                f"SkipStepCell: `genome` must be a CellGenome or its dict, got {type(genome).__name__}"
            )
        self.genome = genome
        self.units = genome.units
        self.state_layout = genome.state_layout()
        self.state_size = [genome.units] * len(self.state_layout)
        self.output_size = genome.units

    def build(self, input_shape: Sequence[int | None]) -> None:
        genome, units = self.genome, self.units
        position = {entry: s for s, entry in enumerate(self.state_layout)}
        plan = []
        for j, node in enumerate(genome.nodes):
            width = NODE_GATES[node.type] * units
            main = None
            ff_list, rec_list = [], []
            for spec in genome.node_inputs(j):
                if spec[0] in ("x", "prev"):
                    rows = input_shape[-1] if spec[0] == "x" else units
                    main = self.add_weight(
                        shape=(rows, width), name=f"node{j}_kernel", initializer="glorot_uniform"
                    )
                elif spec[0] == "ff":
                    kernel = self.add_weight(
                        shape=(units, width), name=f"node{j}_ff{spec[1]}_kernel",
                        initializer="glorot_uniform",
                    )
                    ff_list.append((spec[1], kernel))
                else:
                    _, src, lag = spec
                    kernel = self.add_weight(
                        shape=(units, width), name=f"node{j}_rec{src}_lag{lag}_kernel",
                        initializer="orthogonal",
                    )
                    rec_list.append((position[("h", src, lag)], kernel))
            if node.type == "gru":
                bias = self.add_weight(shape=(2, width), name=f"node{j}_bias", initializer="zeros")
                extra = position[("h", j, 1)]  # the node's own previous output
            elif node.type == "lstm":
                bias = self.add_weight(
                    shape=(width,), name=f"node{j}_bias", initializer=_lstm_bias_initializer(units)
                )
                extra = position[("c", j)]
            else:
                bias = self.add_weight(shape=(width,), name=f"node{j}_bias", initializer="zeros")
                extra = -1
            plan.append((node.type, main, tuple(ff_list), tuple(rec_list), bias, extra))
        self._plan = tuple(plan)
        # Where each new state comes from: ("out", node) this step's output,
        # ("old", s) the previous state s (a register shifts by one), ("c", node) a memory.
        sources = []
        for entry in self.state_layout:
            if entry[0] == "c":
                sources.append(("c", entry[1]))
            elif entry[2] == 1:
                sources.append(("out", entry[1]))
            else:
                sources.append(("old", position[("h", entry[1], entry[2] - 1)]))
        self._sources = tuple(sources)

    def call(self, inputs: Any, states: Any) -> tuple[Any, list[Any]]:
        if not isinstance(states, list | tuple):
            states = [states]
        units = self.units
        outs: list[Any] = []
        memories: dict[int, Any] = {}
        for j, (kind, main, ff, rec, bias, extra) in enumerate(self._plan):
            z = ops.matmul(inputs if j == 0 else outs[-1], main)
            for src, kernel in ff:
                z = z + ops.matmul(outs[src], kernel)
            if kind == "gru":
                zx = z + bias[0]
                zr = bias[1]
                for s, kernel in rec:
                    zr = zr + ops.matmul(states[s], kernel)
                gate_z = ops.sigmoid(zx[:, :units] + zr[..., :units])
                gate_r = ops.sigmoid(zx[:, units : 2 * units] + zr[..., units : 2 * units])
                cand = ops.tanh(zx[:, 2 * units :] + gate_r * zr[..., 2 * units :])
                h = gate_z * states[extra] + (1.0 - gate_z) * cand
            else:
                for s, kernel in rec:
                    z = z + ops.matmul(states[s], kernel)
                z = z + bias
                if kind == "tanh":
                    h = ops.tanh(z)
                else:  # lstm, Keras' gate order i, f, g, o
                    c = ops.sigmoid(z[:, units : 2 * units]) * states[extra] + ops.sigmoid(
                        z[:, :units]
                    ) * ops.tanh(z[:, 2 * units : 3 * units])
                    h = ops.sigmoid(z[:, 3 * units :]) * ops.tanh(c)
                    memories[j] = c
            outs.append(h)
        new_states = [
            outs[i] if how == "out" else states[i] if how == "old" else memories[i]
            for how, i in self._sources
        ]
        return outs[-1], new_states

    def get_initial_state(self, batch_size: Any = None) -> list[Any]:
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype) for _ in self.state_size]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "genome": self.genome.to_dict()}


def _lstm_bias_initializer(units: int) -> Any:
    """Zeros with the forget gate's block at one (Keras' ``unit_forget_bias=True``)."""

    def init(shape: Any, dtype: Any = None) -> Any:
        return ops.concatenate(
            [ops.zeros((units,), dtype), ops.ones((units,), dtype), ops.zeros((2 * units,), dtype)]
        )

    return init
