"""Dask evaluations equal serial ones.

Keras draws the seeds of unseeded layers (initializers, dropout) from Python's global
``random`` generator, which a Dask worker's own threads draw from too (retry jitter,
heartbeats) while a model is built; :func:`evokeras.training.evaluator.seed_keras`
gives Keras a generator of its own.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import SMALL_SPACE  # noqa: E402

from evokeras.engine.config import SearchConfig  # noqa: E402
from evokeras.engine.parallel import DaskBackend, SerialBackend  # noqa: E402
from evokeras.training.evaluator import Evaluator, release_keras_seed, seed_keras  # noqa: E402
from evokeras.variation.network import random_genome  # noqa: E402


def _initializer_seeds() -> list[int]:
    import keras

    return [keras.initializers.GlorotUniform().seed for _ in range(3)]


def test_keras_seeds_do_not_depend_on_other_draws_from_random() -> None:
    try:
        seed_keras(11)
        undisturbed = _initializer_seeds()
        seed_keras(11)
        random.random(), random.choice([1, 2, 3])  # another thread drawing meanwhile
        assert _initializer_seeds() == undisturbed
        seed_keras(12)
        assert _initializer_seeds() != undisturbed
    finally:
        release_keras_seed()
    import keras

    keras.utils.set_random_seed(11)  # released: the global generator governs Keras again
    first = _initializer_seeds()
    keras.utils.set_random_seed(11)
    assert _initializer_seeds() == first
    keras.utils.set_random_seed(11)
    random.random()
    assert _initializer_seeds() != first


@pytest.mark.slow
def test_dask_objectives_equal_serial_ones() -> None:
    """The same genomes, seed and budget: every objective and validation figure equal
    (a worker thread per task with a timeout, as searches run)."""
    pytest.importorskip("distributed")
    cfg = SearchConfig.from_dict({"task": "mnist", "space": dict(SMALL_SPACE), "objectives": {"val_error": -1, "flops": -1},
                                  "evaluation": {"epochs": 1, "train_samples": 300, "val_samples": 200, "timeout": 120}})
    task = cfg.build_task()
    evaluate = Evaluator(task, cfg.budget(), cfg.objectives, seed=3, settings=cfg.train_settings())
    rng = np.random.default_rng(5)
    genomes = [random_genome(rng, task.space) for _ in range(4)]

    def figures(backend) -> dict:
        with backend:
            return {r.key: (r.status, r.objectives, r.metrics.get("val_loss")) for r in backend(evaluate, genomes)}

    serial = figures(SerialBackend())
    assert figures(DaskBackend(workers=1, gpus=0, timeout=300)) == serial
    assert len({v[1] for v in serial.values()}) == len(genomes)  # distinct candidates
