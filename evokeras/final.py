"""Final models: retrain each Pareto-front member on train + validation, score it once on
the test split, save it as ``models/<key>.keras`` and list everything in
``hall_of_fame.json``. This is the only place a search touches the test split.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_path, write_json_atomic
from .evaluate import Evaluator, derive_seed
from .genome import Genome
from .search import Search

__all__ = ["finalize"]

log = logging.getLogger(__name__)


def finalize(search: Search, front: list[Any], *, progress: bool = False) -> list[dict[str, Any]]:
    """Retrain, test and save the front members of ``search``; write ``hall_of_fame.json``.

    Args:
        search: the (finished) search whose run directory receives the models.
        front: the Pareto-front individuals (``SearchResult.front``).
        progress: show a progress bar.

    Returns:
        The hall-of-fame entries (also written to ``hall_of_fame.json``), each with the
        genome, its search objectives and metrics, the test figures and the model path.
    """
    import keras

    cfg = search.config
    task = search.task
    budget = cfg.budget()
    data = task.data(train_size=None, val_limit=None, test_limit=None)
    n_train = cfg.final_train_samples
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    if n_train is not None:
        x, y = x[: int(n_train)], y[: int(n_train)]
    models_dir = search.out_dir / "models"
    models_dir.mkdir(exist_ok=True)
    timer = Evaluator(task, budget, cfg.objectives, seed=cfg.seed)
    entries = []
    members = sorted(front, key=lambda ind: tuple(ind.fitness.values))
    iterator: Any = members
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(members, desc="final models", unit="model", leave=False)
    for ind in iterator:
        genome = ind.as_genome()
        record = search.store.get_evaluation(genome.key)
        entry: dict[str, Any] = {
            "key": genome.key,
            "genome": genome.to_dict(),
            "objectives": dict(zip(cfg.objectives, ind.fitness.values, strict=True)),
            "metrics": record.metrics if record is not None else {},
        }
        try:
            entry.update(_final_model(genome, task, cfg, x, y, data, timer, models_dir))
            entry["model"] = str(Path(entry["model"]).relative_to(search.out_dir))
            log.info("final model %s: test accuracy %.4f", genome.key, entry["test_accuracy"])
        except Exception as exc:  # recorded in the entry; the other members go on
            log.warning("final model %s failed: %s", genome.key, exc)
            entry["status"] = "failed"
            entry["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        entries.append(entry)
    keras.utils.clear_session(free_memory=True)
    write_json_atomic(search.out_dir / "hall_of_fame.json", {"objectives": cfg.objectives, "members": entries})
    return entries


def _final_model(genome: Genome, task: Any, cfg: Any, x: np.ndarray, y: np.ndarray, data: Any,
                 timer: Evaluator, models_dir: Path) -> dict[str, Any]:
    """Retrain ``genome`` on ``(x, y)``, score it on the test split, save it."""
    import math

    import keras

    from .decode import decode

    keras.utils.clear_session(free_memory=True)
    keras.utils.set_random_seed(derive_seed(cfg.seed + 1, genome.key))
    model = decode(genome, task)
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=genome.training.batch_size, epochs=cfg.final_epochs, verbose=0)
    fit_seconds = time.perf_counter() - t0
    scores = model.evaluate(data.x_test, data.y_test, batch_size=512, verbose=0, return_dict=True)
    if not math.isfinite(scores["loss"]):
        raise FloatingPointError("the retrained model's test loss is not finite")
    exec_time = timer.time_inference(model, data.x_test)
    path = models_dir / f"{genome.key}.keras"
    with atomic_path(path) as tmp:
        model.save(tmp)
    return {
        "status": "ok",
        "test_accuracy": float(scores.get("accuracy", float("nan"))),
        "test_loss": float(scores["loss"]),
        "test_exec_time": exec_time,
        "final_fit_seconds": fit_seconds,
        "model": str(path),
    }
