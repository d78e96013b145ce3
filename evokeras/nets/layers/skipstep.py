"""The Keras form of a :class:`~evokeras.genomes.cell.CellGenome` (``keras.ops`` only).

:class:`SkipStepRNN` is the recurrent layer :func:`evokeras.nets.decode.decode` builds;
:class:`SkipStepCell` is its cell, which also works inside a plain ``keras.layers.RNN``.

Speed. The weights stay one kernel per node input (named as below: mutations and weight
inheritance see the same names and shapes as before); :class:`SkipStepRNN` fuses them
once per call of the layer, outside the time loop: each node's inputs other than the
step input -- the previous node, feed-forward links and recurrent links -- are
concatenated so that the node does **one** matmul per step with its kernels stacked
row-wise (a gru node one more for its recurrent inputs, which its reset gate scales).
Gates are taken with one split, not one slice each (TensorFlow's gradient of a slice
writes a full-width zero tensor). A step therefore costs one matmul per node whatever
the number of links, as the stock LSTM costs one for ``h`` (and one for ``x``).

Node 0's step input is projected inside the loop, as Keras' LSTM does on CPU. Projecting
the whole sequence before the loop (what cuDNN does) was measured slower on CPU with
both backends at inputs of 16 and 128 features and 128 units
(``benchmarks/lm.py --part speed``): the projected sequence, ``gates x units`` wide, costs
more memory traffic than the small per-step matmul saves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import ops

# Keras has no public form of its RNN loop (masking, go_backwards, unroll and the
# backend's scan/while loop); its own LSTM and GRU layers call this one too.
from keras.src.backend import rnn as _backend_rnn

from evokeras.genomes.cell import NODE_GATES, CellGenome

__all__ = ["SkipStepCell", "SkipStepRNN"]

_FFInput = tuple[str, int]  # ("out", node) this step's output or ("state", index)


@keras.saving.register_keras_serializable(package="evokeras")
class SkipStepCell(keras.layers.Layer):
    """A skip-step recurrent cell (use :class:`SkipStepRNN`, or wrap it in ``keras.layers.RNN``).

    The node computations and links are those of :mod:`evokeras.genomes.cell`. Each input of a
    node has its own kernel, created in :meth:`CellGenome.node_inputs` order and named
    ``node{j}_kernel`` (the main input), ``node{j}_ff{i}_kernel``,
    ``node{j}_rec{i}_lag{k}_kernel``, then ``node{j}_bias`` (shape ``(units,)`` for
    tanh, ``(4 * units,)`` for lstm, ``(2, 3 * units)`` for gru). A one-node cell with
    the link ``(0, 1, 0)`` therefore has the weights of a SimpleRNNCell, LSTMCell or
    GRUCell (``reset_after=True``), in the same order. The kernels are stored apart (so
    weights keep their names and shapes across mutations) and fused when the cell is
    called (:meth:`fused_weights`; see the module docstring).

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
        kernels: list[tuple[list[Any], list[Any], Any]] = []  # per node: step kernels, recurrent kernels, bias
        plan = []
        for j, node in enumerate(genome.nodes):
            width = NODE_GATES[node.type] * units
            step_k: list[Any] = []
            rec_k: list[Any] = []
            step_in: list[_FFInput] = []  # what multiplies step_k (node 0's x has its own kernel)
            rec_in: list[_FFInput] = []
            for spec in genome.node_inputs(j):
                if spec[0] == "x":
                    self._x_kernel = self.add_weight(
                        shape=(input_shape[-1], width), name=f"node{j}_kernel", initializer="glorot_uniform"
                    )
                elif spec[0] == "prev":
                    step_k.append(self.add_weight(
                        shape=(units, width), name=f"node{j}_kernel", initializer="glorot_uniform"
                    ))
                    step_in.append(("out", j - 1))
                elif spec[0] == "ff":
                    step_k.append(self.add_weight(
                        shape=(units, width), name=f"node{j}_ff{spec[1]}_kernel", initializer="glorot_uniform"
                    ))
                    step_in.append(("out", spec[1]))
                else:
                    _, src, lag = spec
                    rec_k.append(self.add_weight(
                        shape=(units, width), name=f"node{j}_rec{src}_lag{lag}_kernel", initializer="orthogonal"
                    ))
                    rec_in.append(("state", position[("h", src, lag)]))
            if node.type == "gru":
                bias = self.add_weight(shape=(2, width), name=f"node{j}_bias", initializer="zeros")
                extra = position[("h", j, 1)]  # the node's own previous output
            else:
                bias = self.add_weight(
                    shape=(width,), name=f"node{j}_bias",
                    initializer=_lstm_bias_initializer(units) if node.type == "lstm" else "zeros",
                )
                extra = position[("c", j)] if node.type == "lstm" else -1
                # Not gated apart: the recurrent inputs join the step inputs' matmul.
                step_k, step_in, rec_k, rec_in = step_k + rec_k, step_in + rec_in, [], []
            kernels.append((step_k, rec_k, bias))
            plan.append((node.type, tuple(step_in), tuple(rec_in), extra))
        self._kernels = kernels
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

    # -- the fused computation ------------------------------------------------------------
    def fused_weights(self) -> tuple[Any, ...]:
        """The kernels as the step uses them, computed once per call of the layer.

        ``(x_kernel, x_bias, per_node)``: node 0's step-input kernel and the bias that goes
        with it (node 0's bias, or a gru node's input bias), then for each node
        ``(step_kernel, step_bias, rec_kernel, rec_bias)``: the row-wise concatenation of
        the kernels of its inputs (``None`` for node 0 without recurrent inputs), its bias
        (``None`` for node 0: it goes with ``x_kernel``), and for a gru node the same for
        its recurrent inputs (``rec_kernel`` ``None`` without any); ``None`` for others.
        """
        per_node = []
        x_bias = None
        for j, ((kind, _, _, _), (step_k, rec_k, bias)) in enumerate(zip(self._plan, self._kernels, strict=True)):
            step_bias = bias[0] if kind == "gru" else bias
            if j == 0:
                x_bias, step_bias = step_bias, None
            per_node.append((
                _stack(step_k),
                step_bias,
                _stack(rec_k),
                bias[1] if kind == "gru" else None,
            ))
        return self._x_kernel, x_bias, tuple(per_node)

    def step(self, inputs: Any, states: Sequence[Any], fused: tuple[Any, ...]) -> tuple[Any, list[Any]]:
        """One time step with the kernels of :meth:`fused_weights`: ``(output, new_states)``."""
        outs: list[Any] = []
        memories: dict[int, Any] = {}

        def gather(inputs: tuple[_FFInput, ...]) -> Any:
            parts = [outs[i] if how == "out" else states[i] for how, i in inputs]
            return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

        for j, ((kind, step_in, rec_in, extra), (step_k, step_b, rec_k, rec_b)) in enumerate(
            zip(self._plan, fused[2], strict=True)
        ):
            z = ops.matmul(inputs, fused[0]) + fused[1] if j == 0 else None
            if step_in:
                m = ops.matmul(gather(step_in), step_k)
                z = m if z is None else z + m
            if step_b is not None:
                z = z + step_b
            if kind == "gru":
                zr = rec_b if not rec_in else ops.matmul(gather(rec_in), rec_k) + rec_b
                x_z, x_r, x_h = ops.split(z, 3, axis=-1)
                r_z, r_r, r_h = ops.split(zr, 3, axis=-1)
                gate_z = ops.sigmoid(x_z + r_z)
                cand = ops.tanh(x_h + ops.sigmoid(x_r + r_r) * r_h)
                h = gate_z * states[extra] + (1.0 - gate_z) * cand
            elif kind == "tanh":
                h = ops.tanh(z)
            else:  # lstm, Keras' gate order i, f, g, o
                g_i, g_f, g_g, g_o = ops.split(z, 4, axis=-1)
                c = ops.sigmoid(g_f) * states[extra] + ops.sigmoid(g_i) * ops.tanh(g_g)
                h = ops.sigmoid(g_o) * ops.tanh(c)
                memories[j] = c
            outs.append(h)
        new_states = [
            outs[i] if how == "out" else states[i] if how == "old" else memories[i]
            for how, i in self._sources
        ]
        return outs[-1], new_states

    def call(self, inputs: Any, states: Any) -> tuple[Any, list[Any]]:
        if not isinstance(states, list | tuple):
            states = [states]
        return self.step(inputs, states, self.fused_weights())

    def get_initial_state(self, batch_size: Any = None) -> list[Any]:
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype) for _ in self.state_size]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "genome": self.genome.to_dict()}


@keras.saving.register_keras_serializable(package="evokeras")
class SkipStepRNN(keras.layers.RNN):
    """The recurrent layer of a skip-step cell: ``keras.layers.RNN(SkipStepCell(genome))``
    with the cell's kernels fused once per call, before the time loop.

    Same weights (on ``self.cell``), states, masking, ``return_sequences``,
    ``return_state``, ``stateful`` and ``go_backwards`` as the plain ``RNN`` wrapper, and
    the same outputs up to float rounding; faster because the loop body holds no kernel
    concatenation (nor, in the backward pass, its per-step split).

    Args:
        genome: a :class:`CellGenome` or its :meth:`~CellGenome.to_dict` form.
        **kwargs: the arguments of ``keras.layers.RNN`` other than ``cell``
            (``return_sequences``, ``stateful``, ``name``, ...).

    Example:
        >>> import numpy as np
        >>> from evokeras.genomes.cell import CellGenome
        >>> layer = SkipStepRNN(CellGenome(8, ("lstm", "tanh"), rec_links=((1, 3, 0),)), return_sequences=True)
        >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
        (2, 5, 8)
    """

    def __init__(self, genome: CellGenome | Mapping[str, Any], **kwargs: Any) -> None:
        cell = SkipStepCell(genome, dtype=kwargs.get("dtype"), trainable=kwargs.get("trainable", True),
                            name="skip_step_cell")
        super().__init__(cell, **kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=3)

    @property
    def genome(self) -> CellGenome:
        return self.cell.genome

    def inner_loop(self, sequences: Any, initial_state: Any, mask: Any, training: bool = False) -> Any:
        cell = self.cell
        fused = cell.fused_weights()
        if isinstance(mask, list | tuple):
            mask = mask[0]

        def step(inputs: Any, states: Any) -> tuple[Any, list[Any]]:
            return cell.step(inputs, list(states), fused)

        return _backend_rnn(
            step,
            sequences,
            list(initial_state),
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["cell"]
        return {**config, "genome": self.cell.genome.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SkipStepRNN:
        return cls(**config)


def _stack(kernels: list[Any]) -> Any:
    """Kernels read by one concatenated input: stacked row-wise (``None`` if none)."""
    if not kernels:
        return None
    return kernels[0] if len(kernels) == 1 else ops.concatenate(kernels, axis=0)


def _lstm_bias_initializer(units: int) -> Any:
    """Zeros with the forget gate's block at one (Keras' ``unit_forget_bias=True``)."""

    def init(shape: Any, dtype: Any = None) -> Any:
        return ops.concatenate(
            [ops.zeros((units,), dtype), ops.ones((units,), dtype), ops.zeros((2 * units,), dtype)]
        )

    return init
