"""A search's budget from the one knob a user has: the time, and the data's size.

:func:`time_budget_config` derives the strategy, evaluation and final-training keys from
a time budget (``"15min"``, ``"2h"``, ``900``) and the size of the task's data, as the
studies' ``default`` budgets are set by hand (``evokeras/studies/mnist.py``,
``char_lm.py``): a lineage search whose children continue their parents' training
(``strategy.name: "lineage"``, ``evaluation.inherit_weights``) for about three quarters
of the time, then the final models continuing from their search weights for the rest.
:func:`fit_to_data` caps every sample count of a configuration at what the data holds
(one logged line per capped key), so any budget runs on 500 examples as on 5 million.

A search given no time budget and no budget section (``strategy``, ``evaluation``,
``final``) gets :data:`DEFAULT_TIME_BUDGET`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evokeras.engine.config import SearchConfig, migrate, overlay
from evokeras.engine.fields import ConfigError
from evokeras.tasks import SupervisedTask
from evokeras.tasks.language import LanguageModel

if TYPE_CHECKING:
    from evokeras.tasks import Task

__all__ = ["DEFAULT_TIME_BUDGET", "fit_to_data", "parse_time_budget", "time_budget_config", "wants_time_budget", "with_time_budget"]

log = logging.getLogger(__name__)

#: The time budget of a search that names none and sets no budget section.
DEFAULT_TIME_BUDGET = "15min"
#: The population (and offspring) of a control task's weight ES under a time budget.
CONTROL_POPULATION = 32
#: The sections a time budget sets (a configuration that names one keeps its own budget).
BUDGET_SECTIONS = ("strategy", "evaluation", "final")

_UNITS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60,
          "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}
#: Share of the time kept for what is not search or final training: start-up, data
#: loading, the final models' test figures, the plots.
_MARGIN = 0.15
#: Share of the rest that trains the final models.
_FINAL_SHARE = 0.22
#: Seconds an evaluation spends beyond its training (build, validation, timing), as a
#: factor of its training seconds: what the search's last generation is planned with.
_EVAL_OVERHEAD = 1.3
#: Training examples an evaluation reads at most (a seeded window of the whole split
#: under inheritance, so the lineage still sees all of it) and validation examples.
_EVAL_WINDOW, _VAL_WINDOW = 20_000, 5_000


def parse_time_budget(value: str | float | int) -> float:
    """Seconds of a time budget: a number of seconds, or a string such as ``"90s"``,
    ``"15m"``, ``"15min"``, ``"1.5h"``; raises :class:`ConfigError` naming ``time_budget``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([a-z]*)\s*", str(value).lower())
        if match is None or match.group(2) not in ("", *_UNITS):
            raise ConfigError(f"time_budget: cannot read {value!r} (write e.g. '90s', '15min', '2h' or seconds)")
        seconds = float(match.group(1)) * _UNITS.get(match.group(2), 1)
    if not math.isfinite(seconds) or seconds < 60:
        raise ConfigError(f"time_budget: {value!r} is under a minute (a search needs at least '1min')")
    return seconds


def data_sizes(task: Task) -> tuple[int, int] | None:
    """``(training, validation)`` examples (windows, for text) of ``task``'s data, loaded
    as the first evaluation loads it; ``None`` for a task without a train/validation split
    (control). Data that cannot be loaded raises :class:`ConfigError`."""
    try:
        split = task.data(test_limit=1)
    except NotImplementedError:
        return None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"config key 'task': its data: {exc}") from exc
    if not (hasattr(split, "x_train") and hasattr(split, "x_val")):
        return None
    return len(split.x_train), len(split.x_val)


def time_budget_config(seconds: float, task: Task) -> dict[str, Any]:
    """The budget keys (``strategy``, ``evaluation``, ``final``) of a search that should
    end within ``seconds`` on ``task``, from the size of its data.

    * population and offspring 6 up to 20 minutes (4 or 5 under two minutes, so that the
      first generation fits), 12 up to 2 hours, then 16;
    * each evaluation trains ``seconds / 60`` seconds (8 to 60), one epoch on a window
      of at most 20,000 examples (more epochs on small data, up to 50), validated on at
      most 5,000; text (a language model) trains on all its windows with an annealed
      rate for those seconds, validated on at most 300 windows;
    * the search's wall clock ends so that its last generation ends near 78% of
      what is left after a 15% margin; the final models (1 up to 20 minutes, 2 up to an
      hour, then 4) continue from their search weights on all the training data for the
      remaining 22%.

    A control task (one whose genomes carry their weights) gets strategy ``"es"``
    (:mod:`evokeras.engine.strategies.es`) with :data:`CONTROL_POPULATION` candidates a
    generation for the wall clock; another task that is not a
    :class:`~evokeras.tasks.SupervisedTask` with a data split (your own task that trains
    its own way) gets the wall clock only."""
    usable = seconds * (1 - _MARGIN)
    evaluation_seconds = min(60.0, max(8.0, seconds / 60))
    fits = int(usable * (1 - _FINAL_SHARE) / (evaluation_seconds * _EVAL_OVERHEAD))  # first generation in the search's time
    population = min(6, max(4, fits)) if seconds <= 1200 else 12 if seconds <= 7200 else 16
    generation = population * evaluation_seconds * _EVAL_OVERHEAD
    wall = max(evaluation_seconds, usable * (1 - _FINAL_SHARE) - 0.75 * generation)
    sizes = data_sizes(task) if isinstance(task, SupervisedTask) else None
    if hasattr(task, "weight_vector"):  # evolved weights (control): the weight ES, until solved or the clock ends
        return {"strategy": {"name": "es", "population": CONTROL_POPULATION, "offspring": CONTROL_POPULATION,
                             "wall_seconds": round(usable), "generations": 10_000}}
    if sizes is None:  # a task that trains its own way: the wall clock only
        return {"strategy": {"wall_seconds": round(usable), "generations": 10_000}}
    n_train, n_val = sizes
    members = 1 if seconds <= 1200 else 2 if seconds <= 3600 else 4
    if isinstance(task, LanguageModel):  # the language studies' evaluation: all windows, an annealed rate, a short validation
        evaluation: dict[str, Any] = {"epochs": 50, "train_samples": None, "val_samples": min(n_val, 300),
                                      "anneal": True, "time_batch": 32, "time_repeats": 3}
    else:
        epochs = min(50, max(1, math.ceil(_EVAL_WINDOW / max(1, n_train))))
        evaluation = {"epochs": epochs, "patience": 0 if epochs == 1 else 3,
                      "train_samples": n_train if n_train <= _EVAL_WINDOW else _EVAL_WINDOW,
                      "val_samples": min(n_val, _VAL_WINDOW), "fast_path": True}
    evaluation.update({"seconds": round(evaluation_seconds, 1), "timeout": max(120.0, 6 * evaluation_seconds),
                       "inherit_weights": True})
    strategy = {"name": "lineage", "population": population, "offspring": population, "generations": 10_000,
                "wall_seconds": round(wall), "cxpb": 0.1, "mutpb": 0.5,
                "reference_architectures": bool(task.reference_genomes())}
    final = {"epochs": 1000, "seconds": round(usable * _FINAL_SHARE / members, 1), "members": members,
             "train_samples": None}
    return {"strategy": strategy, "evaluation": evaluation, "final": final}


def wants_time_budget(config: Mapping[str, Any]) -> bool:
    """Whether a configuration leaves its budget to a time budget (it sets no budget
    section nor any of their flat keys of earlier versions)."""
    return not any(key in migrate(config) for key in BUDGET_SECTIONS)


def fit_to_data(config: SearchConfig, task: Task) -> SearchConfig:
    """``config`` with every sample count capped at what ``task``'s data holds, one
    logged line per capped key: ``evaluation.train_samples`` at the training examples,
    ``evaluation.val_samples`` at the validation examples, ``final.train_samples`` at
    both (a final model trains on training + validation). Loads the data as the first
    evaluation does, so data that cannot be loaded raises :class:`ConfigError` before
    anything is written."""
    sizes = data_sizes(task)
    if sizes is None:
        return config
    capped: dict[str, dict[str, int]] = {}
    for section, key, available in (("evaluation", "train_samples", sizes[0]), ("evaluation", "val_samples", sizes[1]),
                                    ("final", "train_samples", sizes[0] + sizes[1])):
        value = getattr(getattr(config, section), key)
        if value is not None and value > available:
            log.info("%s.%s=%d capped to the %d examples available", section, key, value, available)
            capped.setdefault(section, {})[key] = available
    return SearchConfig.from_dict(capped, base=config) if capped else config


def with_time_budget(data: Mapping[str, Any], time_budget: str | float | None, task: Task) -> dict[str, Any]:
    """The configuration ``data`` over the keys a time budget derives for ``task``
    (:data:`DEFAULT_TIME_BUDGET` when ``time_budget`` is ``None``): keys ``data`` gives win."""
    seconds = parse_time_budget(DEFAULT_TIME_BUDGET if time_budget is None else time_budget)
    derived = time_budget_config(seconds, task)
    s, f = derived["strategy"], derived.get("final", {})
    log.info("time budget %.0f s: population %s, wall clock %s s, evaluations of %s s, %s final model(s) of %s s",
             seconds, s.get("population", "default"), s["wall_seconds"], derived.get("evaluation", {}).get("seconds", "default"),
             f.get("members", "default"), f.get("seconds", "default"))
    return overlay(derived, data)
