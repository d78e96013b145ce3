"""Sony MCT's structured pruning of a tf.keras model, in MCT's own environment (issue 31).

MCT's Keras pruning refuses TensorFlow above 2.15, so this script runs in a separate
virtual environment, not in evokeras's::

    python3.11 -m venv /tmp/mct && /tmp/mct/bin/pip install "tensorflow-cpu==2.15.*" model-compression-toolkit
    /tmp/mct/bin/python benchmarks/mct_prune.py --fraction 0.5 --out /tmp/mct-run

Without ``--model`` it trains, for one epoch, a small CNN (conv 32 - BN - conv 64 - BN -
pool - conv 64 - global pooling - dense 10) on random 28x28 images (the MNIST download
needs a network this machine lacks) and saves it as ``DIR/base.h5``; with ``--model
BASE.h5`` it prunes that model. It prunes to ``--fraction`` of the weights memory with
``mct.pruning.keras_pruning_experimental`` (Hessian-based channel scores), saves
``DIR/pruned.h5`` and writes ``DIR/mct_prune.json``: versions, parameters before and
after, each weighted layer's output channels, the pruning call's seconds.

Measured once (MCT 2.6.1, tensorflow-cpu 2.15.1, 2 cores): 56,778 -> 19,402 parameters
for a 0.5 target (channels go 32 at a time, the imx500 platform's SIMD width), in 2.9 s
with ``--approximations 1``, 13-15 s with 8, 57 s with 32 (the same channels each time);
``device_type="tflite"`` fails inside MCT 2.6.1.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import model_compression_toolkit as mct
import numpy as np
import tensorflow as tf
from tensorflow import keras


def small_cnn(x: np.ndarray, y: np.ndarray) -> keras.Model:
    """The CNN described above, trained one epoch on ``(x, y)``."""
    layers = keras.layers
    inp = keras.Input(x.shape[1:])
    h = layers.ReLU()(layers.BatchNormalization(name="bn1")(layers.Conv2D(32, 3, padding="same", name="conv1")(inp)))
    h = layers.ReLU()(layers.BatchNormalization(name="bn2")(layers.Conv2D(64, 3, padding="same", name="conv2")(h)))
    h = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(layers.MaxPooling2D()(h))
    model = keras.Model(inp, layers.Dense(10, name="fc")(layers.GlobalAveragePooling2D()(h)))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    return model


def channels(model: keras.Model) -> dict[str, int]:
    return {layer.name: int(layer.weights[0].shape[-1]) for layer in model.layers
            if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=None, help="a tf.keras .h5 model (default: train the small CNN)")
    p.add_argument("--fraction", type=float, default=0.5, help="target share of the weights memory")
    p.add_argument("--approximations", type=int, default=8, help="PruningConfig.num_score_approximations")
    p.add_argument("--device", default="imx500", help="target platform capabilities' device_type")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.random((2000, 28, 28, 1), dtype=np.float32)
    if args.model is None:
        base = small_cnn(x, rng.integers(0, 10, 2000))
        base.save(args.out / "base.h5")
    else:
        base = keras.models.load_model(args.model)
        x = rng.random((64, *base.input_shape[1:]), dtype=np.float32)

    def representative() -> object:
        for i in range(0, 64, 16):
            yield [x[i:i + 16]]

    target = mct.core.ResourceUtilization(weights_memory=base.count_params() * 4 * args.fraction)
    start = time.perf_counter()
    pruned, _ = mct.pruning.keras_pruning_experimental(
        model=base, target_resource_utilization=target, representative_data_gen=representative,
        pruning_config=mct.pruning.PruningConfig(num_score_approximations=args.approximations),
        target_platform_capabilities=mct.get_target_platform_capabilities(device_type=args.device))
    seconds = time.perf_counter() - start
    pruned.save(args.out / "pruned.h5")
    result = {"mct": mct.__version__, "tensorflow": tf.__version__, "device_type": args.device,
              "fraction": args.fraction, "approximations": args.approximations, "seconds": round(seconds, 2),
              "params": [base.count_params(), pruned.count_params()],
              "channels": {"base": channels(base), "pruned": channels(pruned)}}
    (args.out / "mct_prune.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
