"""Sony MCT's structured pruning of a model, in MCT's own environment (issue 31).

MCT's Keras pruning refuses TensorFlow above 2.15 ("Tensorflow must be installed with a
version of 2.15 or lower"), so this script runs in a separate virtual environment, not
in evokeras's::

    python3.11 -m venv /tmp/mct && /tmp/mct/bin/pip install "tensorflow-cpu==2.15.*" model-compression-toolkit
    /tmp/mct/bin/python benchmarks/mct_prune.py DIR

tf.keras 2.15 cannot read a Keras 3 file (``.keras``, or ``.h5``: "Unrecognized keyword
arguments: ['batch_shape', 'optional']"), so ``benchmarks/specialize.py`` writes the model
as ``DIR/spec.json`` (each layer's class, the config keys tf.keras takes, its inputs) and
``DIR/weights.npz``, with ``DIR/data.npz`` (``x``, ``y``: the fine-tuning examples) and
``DIR/job.json`` (``levels``: shares of the parameters; ``seconds``: fine-tuning per pruned
model). For each level this script rebuilds the model in tf.keras, prunes it with
``mct.pruning.keras_pruning_experimental`` to that share of its weights memory
(Hessian-based channel scores on 64 representative examples, the imx500 platform's
channel groups), fine-tunes it on ``(x, y)`` with Adam (1e-3) for ``seconds``, and
writes ``DIR/mct_<level>.npz`` (each layer's weights by name) and ``DIR/mct_prune.json``
(versions, parameters, pruning and fine-tuning seconds; ``error`` for a level MCT refuses:
it keeps at least one channel group of 32 per layer on the imx500 platform, its memory
floor, and raises "Insufficient memory for the target resource utilization" below it). The caller rebuilds the pruned
model in Keras 3 from the weights' shapes, tests and times it beside its own.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path

import model_compression_toolkit as mct
import numpy as np
import tensorflow as tf
from tensorflow import keras


def _kwargs(cls: type, config: dict) -> dict:
    """The config keys ``cls`` takes (initializers etc. dropped: the weights are set)."""
    names = set(inspect.signature(cls.__init__).parameters) | {"name", "trainable"}
    skip = ("_initializer", "_regularizer", "_constraint")
    return {k: v for k, v in config.items() if k in names and not k.endswith(skip) and k != "dtype"}


def rebuild(spec: list[dict], weights: dict[str, np.ndarray]) -> keras.Model:
    """The tf.keras model of ``spec`` with ``weights``."""
    tensors: dict[str, tf.Tensor] = {}
    made = []
    for entry in spec:
        if entry["class"] == "InputLayer":
            tensors[entry["name"]] = keras.Input(tuple(entry["config"]["batch_shape"][1:]), name=entry["name"])
            continue
        cls = getattr(keras.layers, entry["class"])
        layer = cls(**_kwargs(cls, entry["config"]))
        inputs = [tensors[n] for n in entry["inbound"]]
        tensors[entry["name"]] = layer(inputs if len(inputs) > 1 else inputs[0])
        made.append(layer)
    model = keras.Model(tensors[spec[0]["name"]], tensors[spec[-1]["name"]])
    for layer in made:
        n = sum(1 for k in weights if k.startswith(layer.name + ":"))
        if n:
            layer.set_weights([weights[f"{layer.name}:{i}"] for i in range(n)])
    return model


class _Seconds(keras.callbacks.Callback):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds, self.start = seconds, None

    def on_train_batch_end(self, batch: int, logs: object = None) -> None:
        if self.start is None:
            self.start = time.perf_counter()  # after the first batch (tracing), as evokeras's clock
        elif time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dir", type=Path, help="the job directory written by benchmarks/specialize.py")
    p.add_argument("--approximations", type=int, default=8, help="PruningConfig.num_score_approximations")
    p.add_argument("--device", default="imx500", help="target platform capabilities' device_type")
    args = p.parse_args()
    spec = json.loads((args.dir / "spec.json").read_text())
    job = json.loads((args.dir / "job.json").read_text())
    weights = dict(np.load(args.dir / "weights.npz"))
    data = np.load(args.dir / "data.npz")
    x, y = data["x"], data["y"]
    result: dict = {"mct": mct.__version__, "tensorflow": tf.__version__, "device_type": args.device,
                    "approximations": args.approximations, "levels": {}}
    for level in job["levels"]:
        tf.keras.utils.set_random_seed(0)
        base = rebuild(spec, weights)

        def representative() -> object:
            for i in range(0, 64, 16):
                yield [x[i:i + 16]]

        target = mct.core.ResourceUtilization(weights_memory=base.count_params() * 4 * level)
        start = time.perf_counter()
        try:
            pruned, _ = mct.pruning.keras_pruning_experimental(
                model=base, target_resource_utilization=target, representative_data_gen=representative,
                pruning_config=mct.pruning.PruningConfig(num_score_approximations=args.approximations),
                target_platform_capabilities=mct.get_target_platform_capabilities(device_type=args.device))
        except Exception as exc:  # noqa: BLE001 - MCT raises a bare Exception when a target is out of reach
            result["levels"][f"{level:g}"] = {"error": str(exc).strip().splitlines()[-1]}
            print(json.dumps({f"{level:g}": result["levels"][f"{level:g}"]}), flush=True)
            continue
        prune_seconds = time.perf_counter() - start
        for layer in pruned.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False  # inference mode, as evokeras's fine-tuning keeps it
        pruned.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
        start = time.perf_counter()
        pruned.fit(x, y, batch_size=64, epochs=10_000, verbose=0, callbacks=[_Seconds(job["seconds"])])
        fit_seconds = time.perf_counter() - start
        np.savez(args.dir / f"mct_{level:g}.npz", **{f"{layer.name}:{i}": w for layer in pruned.layers
                                                     for i, w in enumerate(layer.get_weights())})
        result["levels"][f"{level:g}"] = {"params": [int(base.count_params()), int(pruned.count_params())],
                                          "prune_seconds": round(prune_seconds, 2),
                                          "finetune_seconds": round(fit_seconds, 2)}
        print(json.dumps({f"{level:g}": result["levels"][f"{level:g}"]}), flush=True)
    (args.dir / "mct_prune.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
