"""Final models: each Pareto-front member is finished by its task
(:meth:`evokeras.tasks.Task.final_model`: supervised tasks train it on train +
validation -- continuing from the weights the search trained where the run keeps them,
``final.from_search`` -- and score it once on the test split), saved as ``models/<key>.keras`` and
listed in ``hall_of_fame.json``. This is the only place a search touches the test split.
"""

from __future__ import annotations

import logging
from typing import Any

from evokeras._io import write_json_atomic
from evokeras.engine.search import Search
from evokeras.training.context import FinalContext
from evokeras.training.evaluator import release_keras_seed, seed_keras
from evokeras.training.inheritance import WeightCache
from evokeras.training.records import FINAL_SEED_OFFSET, derive_seed, is_storage_error

__all__ = ["finalize", "missing_members", "spread"]

log = logging.getLogger(__name__)


def missing_members(search: Search, entries: list[dict[str, Any]]) -> list[str]:
    """Keys of the members of ``entries`` to finish whose final model is not done (failed,
    or its file is missing)."""
    return [e["key"] for e in entries if e.get("status") != "not_finalized" and not _complete(search, e)]


def _complete(search: Search, entry: Any) -> bool:
    """Whether a member's entry says its final model is done and the model file exists."""
    return (isinstance(entry, dict) and entry.get("status") == "ok" and isinstance(entry.get("model"), str)
            and (search.out_dir / entry["model"]).is_file())


def spread(n: int, k: int | None) -> set[int] | None:
    """Which of ``n`` front members (sorted by the first objective) to finish when at most
    ``k`` may be: both ends and evenly spaced ones between; ``None`` when all are."""
    if k is None or k >= n:
        return None
    if k == 1:
        return {0}
    return {round(j * (n - 1) / (k - 1)) for j in range(k)}


def _search_weights(search: Search, key: str) -> tuple[WeightCache, str] | None:
    """Where a member's final model continues from: the search's trained weights of
    ``key`` (``final.from_search``, where the run keeps weights and has ``key``'s)."""
    cache = search.weight_cache
    if not search.config.final.from_search or cache is None or not (cache.directory / f"{key}.npz").is_file():
        return None
    return cache, key


def finalize(search: Search, front: list[Any], *, progress: bool = False) -> list[dict[str, Any]]:
    """Retrain, test and save the front members of ``search``; write ``hall_of_fame.json``.

    Args:
        search: the (finished) search whose run directory receives the models.
        front: the Pareto-front individuals (``SearchResult.front``).
        progress: show a progress bar.

    Returns:
        The hall-of-fame entries (also written to ``hall_of_fame.json``), each with the
        genome, its search objectives and metrics (those of the final rung's longer
        evaluation when ``evaluation.final_rung`` chose the front), the test figures and the model path.

    Each finished member's entry is committed to the run store (meta ``final_entries``)
    as soon as its model is saved: a finish interrupted (a signal, a full disk) or with
    failed members is completed by the next call, which redoes only the members without
    an ``ok`` entry and a saved model. A disk that refuses a write
    (:func:`~evokeras.training.records.is_storage_error`) stops it with that ``OSError``.
    """
    import keras

    cfg = search.config
    task = search.task
    budget = cfg.budget()
    models_dir = search.out_dir / "models"
    models_dir.mkdir(exist_ok=True)
    entries = []
    members = sorted(front, key=lambda ind: tuple(-w for w in ind.fitness.wvalues))  # best first
    chosen = spread(len(members), cfg.final.members)
    iterator: Any = members
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(members, desc="final models", unit="model", leave=False)
    done: dict[str, Any] = search.store.get_meta("final_entries") or {}
    for i, ind in enumerate(iterator):
        search.check_stop()
        genome = ind.as_genome()
        record = search.rung_records.get(genome.key) or search.store.get_evaluation(genome.key)
        entry: dict[str, Any] = {
            "key": genome.key,
            "genome": genome.to_dict(),
            "objectives": dict(zip(cfg.objectives, ind.fitness.values, strict=True)),
            "metrics": record.metrics if record is not None else {},
        }
        if chosen is not None and i not in chosen:
            entry["status"] = "not_finalized"  # beyond final.members: kept in the front, not retrained
            entries.append(entry)
            continue
        previous = done.get(genome.key)
        if _complete(search, previous):
            entries.append({**entry, **{k: v for k, v in previous.items() if k not in entry}})
            continue
        try:
            keras.utils.clear_session(free_memory=True)
            seed = derive_seed(cfg.seed + FINAL_SEED_OFFSET, genome.key)
            seed_keras(seed)
            final = FinalContext(epochs=cfg.final.epochs, train_samples=cfg.final.train_samples, seed=seed,
                                 run_seed=cfg.seed, time_batch=budget.time_batch, time_repeats=budget.time_repeats,
                                 schedule=cfg.final.schedule, augment=cfg.augment(task),
                                 seconds=cfg.final.seconds, weights=_search_weights(search, genome.key))
            path = models_dir / f"{genome.key}.keras"
            entry.update(task.final_model(genome, final, path))
            entry["model"] = str(path.relative_to(search.out_dir))
            log.info("final model %s: %s", genome.key, {k: v for k, v in entry.items() if k.startswith("test_")})
        except Exception as exc:  # recorded in the entry; the other members go on
            if is_storage_error(exc):
                raise
            log.warning("final model %s failed: %s", genome.key, exc)
            entry["status"] = "failed"
            entry["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            done[genome.key] = {k: v for k, v in entry.items() if k not in ("key", "genome", "objectives", "metrics")}
            search.store.set_meta("final_entries", done)
        finally:
            release_keras_seed()
        entries.append(entry)
    keras.utils.clear_session(free_memory=True)
    write_json_atomic(search.out_dir / "hall_of_fame.json", {"objectives": cfg.objectives, "members": entries})
    return entries
