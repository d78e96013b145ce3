"""The configuration: its sections, the one checker (every error names the full key path),
the one migration of earlier shapes, and the JSON Schema made from the same declarations."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import re
import runpy
from pathlib import Path
from typing import Any

import pytest

from evokeras.engine.config import (
    FINAL_RUNG_DEFAULTS,
    FLAT_KEYS,
    LEGACY_RESUME_DEFAULTS,
    MULTI_FIDELITY_DEFAULTS,
    SECTIONS,
    ConfigError,
    EvaluationConfig,
    FinalConfig,
    ParallelConfig,
    SearchConfig,
    StrategyConfig,
    config_schema,
    load_stored,
    migrate,
)
from evokeras.engine.fields import BOUNDS
from evokeras.studies import (
    cartpole,
    char_lm,
    mnist,
    specialize_lstm,
    specialize_objects,
    specialize_resnet,
    word_lm,
)
from evokeras.training.records import Budget

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"

#: A configuration as 0.10 wrote it to a run directory's config.json (31 flat keys).
FLAT_0_10: dict[str, Any] = {
    "study": "mnist", "task": "mnist", "budget_name": "default", "seed": 3, "population": 12, "offspring": 10,
    "generations": 60, "cxpb": 0.2, "mutpb": 0.7, "wall_seconds": 900, "objectives": {"val_error": -1.0, "exec_time": -1.0},
    "evaluation": {"epochs": 2, "train_samples": 10000, "val_samples": 5000, "patience": 0, "seconds": 30, "timeout": 120,
                   "time_batch": 256, "time_repeats": 5, "episodes": 5, "anneal": False},
    "space": {"max_params": 200000}, "final_epochs": 10, "final_train_samples": None, "final_seconds": 240,
    "workers": 2, "backend": "process", "scheduler": None, "recycle_after": 20, "inherit_weights": True,
    "fast_path": True, "deterministic": False, "reference_architectures": True, "max_val_error": 0.5,
    "final_members": 4, "final_schedule": "cosine", "final_augment": 2, "multi_fidelity": {"eta": 2},
    "final_rung": {"candidates": 3, "factor": 2}, "task_options": {},
}


def _raises(data: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        SearchConfig.from_dict(data)


# -- shape ---------------------------------------------------------------------------------
def test_at_most_twelve_top_level_keys_and_frozen_sections() -> None:
    cfg = SearchConfig()
    assert list(cfg.to_dict()) == ["study", "task", "task_options", "budget_name", "seed", "objectives",
                                   "max_val_error", "strategy", "evaluation", "final", "parallel", "space"]
    assert len(dataclasses.fields(SearchConfig)) <= 12
    assert SECTIONS == {"strategy": StrategyConfig, "evaluation": EvaluationConfig, "final": FinalConfig,
                        "parallel": ParallelConfig}
    for section in (cfg, cfg.strategy, cfg.evaluation, cfg.final, cfg.parallel):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(section, dataclasses.fields(section)[0].name, 1)
    assert not hasattr(SearchConfig, "_TYPES")
    # every Budget field is an evaluation key, with the same default
    assert {f.name: f.default for f in dataclasses.fields(Budget)}.items() <= {
        f.name: f.default for f in dataclasses.fields(EvaluationConfig)}.items()


def test_python_access_by_section() -> None:
    cfg = SearchConfig.from_dict({
        "strategy": {"population": 5, "wall_seconds": 60},
        "evaluation": {"epochs": 2, "fast_path": True, "multi_fidelity": {"eta": 2}, "final_rung": {}},
        "final": {"epochs": 4, "schedule": "constant", "augment": 1},
        "parallel": {"workers": 2, "recycle_after": None},
    })
    assert (cfg.strategy.name, cfg.strategy.population, cfg.strategy.offspring) == ("nsga2", 5, 8)
    assert cfg.strategy.wall_seconds == 60 and cfg.evaluation.fast_path and cfg.evaluation.deterministic
    assert cfg.evaluation.multi_fidelity == {"eta": 2, "fraction": 0.25}  # defaults filled in
    assert cfg.evaluation.final_rung == FINAL_RUNG_DEFAULTS == {"candidates": 4, "factor": 4}
    assert MULTI_FIDELITY_DEFAULTS == {"eta": 3, "fraction": 0.25}
    assert (cfg.final.epochs, cfg.final.schedule, cfg.final.augment) == (4, "constant", 1)
    assert (cfg.parallel.workers, cfg.parallel.backend, cfg.parallel.recycle_after) == (2, None, None)
    assert cfg.budget() == Budget(epochs=2) and type(cfg.budget()) is Budget
    assert cfg.train_settings().fast and cfg.train_settings().deterministic
    assert cfg.augment(object()) == 1


def test_sections_merge_key_by_key_over_the_base() -> None:
    base = SearchConfig.from_dict({"strategy": {"population": 4, "generations": 9}, "space": {"max_layers": 3},
                                   "evaluation": {"epochs": 5}})
    cfg = SearchConfig.from_dict({"strategy": {"population": 6}, "space": {"max_params": 10},
                                  "evaluation": {"patience": 0}}, base=base)
    assert (cfg.strategy.population, cfg.strategy.generations) == (6, 9)
    assert cfg.space == {"max_layers": 3, "max_params": 10}
    assert (cfg.evaluation.epochs, cfg.evaluation.patience) == (5, 0)
    assert dataclasses.replace(cfg, seed=7).seed == 7
    with pytest.raises(ConfigError, match=re.escape("config key 'seed': must be >= 0, got -1")):
        dataclasses.replace(cfg, seed=-1)
    with pytest.raises(ConfigError, match=re.escape("config key 'strategy.population'")):
        dataclasses.replace(cfg.strategy, population=1)


def test_round_trip_through_json() -> None:
    cfg = SearchConfig.from_dict(FLAT_0_10)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert SearchConfig.from_dict(data) == cfg
    assert SearchConfig.from_dict(data, base=SearchConfig()) == cfg
    assert SearchConfig.from_dict({"$schema": "../docs/config.schema.json", **data}) == cfg


# -- the checker: every error names the full key path --------------------------------------
@pytest.mark.parametrize(("data", "message"), [
    ({"strategy": {"population": 1}}, "config key 'strategy.population': must be >= 2, got 1"),
    ({"strategy": {"offspring": 0}}, "config key 'strategy.offspring': must be >= 1, got 0"),
    ({"strategy": {"generations": 1.5}}, "config key 'strategy.generations': expected an integer, got float 1.5"),
    ({"strategy": {"name": "random"}}, "config key 'strategy.name': expected one of 'nsga2', 'steady_state'"),
    ({"strategy": {"cxpb": -0.1}}, "config key 'strategy.cxpb': must be >= 0"),
    ({"strategy": {"cxpb": 0.8, "mutpb": 0.8}}, "config key 'strategy.cxpb': cxpb + mutpb must be <= 1"),
    ({"strategy": {"reference_architectures": 1}}, "config key 'strategy.reference_architectures': expected a boolean"),
    ({"strategy": {"wall_seconds": 0}}, "config key 'strategy.wall_seconds': must be > 0, got 0"),
    ({"strategy": {"wall_seconds": math.nan}}, "config key 'strategy.wall_seconds': expected a finite number"),
    ({"evaluation": {"epochs": "1"}}, "config key 'evaluation.epochs': expected an integer, got str '1'"),
    ({"evaluation": {"train_samples": -5}}, "config key 'evaluation.train_samples': must be >= 1, got -5"),
    ({"evaluation": {"patience": -1}}, "config key 'evaluation.patience': must be >= 0"),
    ({"evaluation": {"timeout": math.inf}}, "config key 'evaluation.timeout': expected a finite number"),
    ({"evaluation": {"seconds": None}}, "config key 'evaluation.seconds': expected a number, got null"),
    ({"evaluation": {"fast_path": "yes"}}, "config key 'evaluation.fast_path': expected a boolean"),
    ({"evaluation": {"multi_fidelity": {"eta": 1}}}, "config key 'evaluation.multi_fidelity.eta': must be >= 2"),
    ({"evaluation": {"multi_fidelity": {"fraction": 1}}}, "config key 'evaluation.multi_fidelity.fraction': must be < 1"),
    ({"evaluation": {"multi_fidelity": [1]}}, "config key 'evaluation.multi_fidelity': expected an object or null"),
    ({"evaluation": {"final_rung": {"factor": True}}}, "config key 'evaluation.final_rung.factor': expected a number"),
    ({"evaluation": {"final_rung": {"candidates": 0}}}, "config key 'evaluation.final_rung.candidates': must be >= 1"),
    ({"final": {"epochs": 0}}, "config key 'final.epochs': must be >= 1, got 0"),
    ({"final": {"train_samples": 2.5}}, "config key 'final.train_samples': expected an integer or null"),
    ({"final": {"seconds": -1}}, "config key 'final.seconds': must be > 0"),
    ({"final": {"members": 0}}, "config key 'final.members': must be >= 1"),
    ({"final": {"schedule": "linear"}}, "config key 'final.schedule': expected one of 'cosine', 'constant', got 'linear'"),
    ({"final": {"augment": -1}}, "config key 'final.augment': must be >= 0"),
    ({"parallel": {"workers": 0}}, "config key 'parallel.workers': must be >= 1, got 0"),
    ({"parallel": {"backend": "mpi"}}, "config key 'parallel.backend': expected one of 'serial', 'process', 'dask'"),
    ({"parallel": {"backend": "serial", "workers": 2}}, "config key 'parallel.backend': 'serial' runs one evaluation"),
    ({"parallel": {"scheduler": "127.0.0.1:1"}}, "config key 'parallel.scheduler': expected an address like tcp://HOST:PORT"),
    ({"parallel": {"scheduler": "tcp://h:1", "backend": "process"}}, "config key 'parallel.scheduler': a scheduler address needs backend 'dask'"),
    ({"parallel": {"recycle_after": 0}}, "config key 'parallel.recycle_after': must be >= 1"),
    ({"evaluation": {"inherit_weights": True}, "parallel": {"scheduler": "tcp://h:1"}},
     "config key 'evaluation.inherit_weights': needs workers that share the run directory's disk"),
    ({"seed": -1}, "config key 'seed': must be >= 0, got -1"),
    ({"max_val_error": 0}, "config key 'max_val_error': must be > 0, got 0"),
    ({"max_val_error": 1.5}, "config key 'max_val_error': must be <= 1, got 1.5"),
    ({"objectives": {}}, "config key 'objectives': expected {name: non-zero weight}"),
    ({"objectives": {"val_error": 0}}, "config key 'objectives': expected {name: non-zero weight}"),
    ({"objectives": {"val_error": "min"}}, "config key 'objectives': expected an object of numbers"),
    ({"objectives": {"val_error": math.nan}}, "config key 'objectives.val_error': expected a finite number"),
    ({"task": 3}, "config key 'task': expected a string, got int 3"),
    ({"space": [1]}, "config key 'space': expected an object, got list [1]"),
    ({"task_options": {"x": [0.0, math.inf]}}, "config key 'task_options.x[1]': expected a finite number"),
    ({"strategy": [1]}, "config key 'strategy': expected an object, got list"),
    ([1, 2], "config: expected a JSON object, got list"),
])
def test_bad_values_name_the_full_key_path(data: Any, message: str) -> None:
    _raises(data, message)


@pytest.mark.parametrize("section", ["strategy", "evaluation", "final", "parallel"])
def test_unknown_keys_of_a_section(section: str) -> None:
    known = ", ".join(sorted(f.name for f in dataclasses.fields(SECTIONS[section])))
    _raises({section: {"bogus": 1}}, f"unknown config key '{section}.bogus' (known: {known})")


def test_unknown_keys_elsewhere() -> None:
    _raises({"populaton": 4}, "unknown config key 'populaton' (known: budget_name, evaluation, final, max_val_error,")
    _raises({"strategy": {"populaton": 4}}, "unknown config key 'strategy.populaton' (known: cxpb, es, generations,")
    _raises({"evaluation": {"multi_fidelity": {"speed": 2}}},
            "unknown config key 'evaluation.multi_fidelity.speed' (known: eta, fraction)")
    _raises({"final_rung": {"speed": 2}}, "unknown config key 'evaluation.final_rung.speed' (known: candidates, factor)")
    _raises({"budgets": {}}, "unknown config key 'budgets'")  # `evokeras run` pops it before


def test_bounds_are_declared_not_coded() -> None:
    """Every field's bounds are metadata in JSON Schema's words (the checker and the schema read them)."""
    allowed = set(BOUNDS) | {"enum", "pattern", "expected", "shape"}
    for cls in (SearchConfig, *SECTIONS.values()):
        for f in dataclasses.fields(cls):
            assert set(f.metadata) <= allowed, (cls.__name__, f.name, dict(f.metadata))


# -- the migration -------------------------------------------------------------------------
@pytest.mark.parametrize("flat", sorted(FLAT_KEYS))
def test_every_flat_key_moves_into_its_section(flat: str) -> None:
    section, key = FLAT_KEYS[flat]
    assert migrate({flat: "x"}) == {section: {key: "x"}}
    assert migrate({flat: "x", section: {"other": 1}}) == {section: {key: "x", "other": 1}}
    with pytest.raises(ConfigError, match=rf"'{section}.{key}'.*given twice|given twice.*'{flat}'"):
        migrate({flat: "x", section: {key: "y"}})  # the one would hide the other


def test_a_flat_0_10_config_migrates() -> None:
    cfg = SearchConfig.from_dict(FLAT_0_10)
    assert cfg.strategy == StrategyConfig(population=12, offspring=10, generations=60, cxpb=0.2, mutpb=0.7,
                                          reference_architectures=True, wall_seconds=900)
    assert cfg.final == FinalConfig(epochs=10, train_samples=None, seconds=240, members=4, schedule="cosine", augment=2)
    assert cfg.parallel == ParallelConfig(workers=2, backend="process", scheduler=None, recycle_after=20)
    assert cfg.evaluation.fast_path and not cfg.evaluation.deterministic and cfg.evaluation.inherit_weights
    assert cfg.evaluation.multi_fidelity == {"eta": 2, "fraction": 0.25}
    assert cfg.evaluation.final_rung == {"candidates": 3, "factor": 2}
    assert cfg.budget() == Budget(**FLAT_0_10["evaluation"])
    assert (cfg.seed, cfg.max_val_error, cfg.space) == (3, 0.5, {"max_params": 200000})
    stored = load_stored(FLAT_0_10)  # the keys it has keep their values; where to evaluate is dropped;
    # its final models start from scratch, as before final.from_search existed
    assert stored == dataclasses.replace(cfg, parallel=ParallelConfig(workers=2, backend=None, scheduler=None),
                                         final=dataclasses.replace(cfg.final, from_search=False))
    assert migrate(cfg.to_dict()) == cfg.to_dict()  # today's shape is left as it is


def test_the_evaluation_keys_of_0_3_move() -> None:
    cfg = SearchConfig.from_dict({"evaluation": {"fast": True, "deterministic": False, "epochs": 2}})
    assert cfg.evaluation.fast_path and not cfg.evaluation.deterministic and cfg.budget().epochs == 2
    assert not SearchConfig.from_dict({"fast_path": False, "evaluation": {"fast": True}}).evaluation.fast_path
    assert not SearchConfig.from_dict({"evaluation": {"fast": True, "fast_path": False}}).evaluation.fast_path


def test_the_committed_0_3_run_directory_config() -> None:
    stored = json.loads((DATA / "run_v030" / "config.json").read_text())["config"]
    assert stored["population"] == 2 and "final_schedule" not in stored  # still the old flat shape
    cfg = load_stored(stored)
    assert (cfg.strategy.population, cfg.strategy.offspring, cfg.strategy.generations) == (2, 2, 0)
    assert cfg.budget() == Budget(epochs=1, train_samples=128, val_samples=64, patience=0, time_repeats=1)
    assert (cfg.final.epochs, cfg.final.train_samples) == (1, 128)
    # keys added after 0.3 keep the behaviour the run started with
    assert cfg.max_val_error == LEGACY_RESUME_DEFAULTS["max_val_error"] == 1.0
    assert (cfg.final.schedule, cfg.final.augment) == ("constant", 0)
    # ... while a new configuration gets today's defaults
    fresh = SearchConfig.from_dict(stored)
    assert (fresh.max_val_error, fresh.final.schedule, fresh.final.augment) == (None, "cosine", None)
    partial = load_stored(json.loads((DATA / "run_v030_partial" / "config.json").read_text())["config"])
    assert partial.strategy.generations == 1


def test_a_stored_config_never_says_where_to_evaluate() -> None:
    stored = SearchConfig.from_dict({"parallel": {"workers": 3, "backend": "dask", "scheduler": "tcp://h:1"}}).to_dict()
    cfg = load_stored(stored)
    assert cfg.parallel == ParallelConfig(workers=3, backend=None, scheduler=None)
    flat = load_stored({"workers": 2, "backend": "dask", "scheduler": "tcp://h:1"})  # 0.10's flat keys too
    assert flat.parallel == ParallelConfig(workers=2, backend=None, scheduler=None)
    with pytest.raises(ConfigError, match="config key 'parallel'"):
        load_stored({"parallel": [1]})


# -- presets -------------------------------------------------------------------------------
STUDY_MODULES = (cartpole, char_lm, mnist, specialize_lstm, specialize_objects, specialize_resnet, word_lm)


def _presets() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for module in STUDY_MODULES:
        for name, preset in module.BUDGETS.items():
            out.append((f"{module.__name__.rsplit('.', 1)[-1]}:{name}", preset.get("search", preset)))
    return out


@pytest.mark.parametrize(("name", "preset"), _presets(), ids=[n for n, _ in _presets()])
def test_study_presets_are_sectioned(name: str, preset: dict[str, Any]) -> None:
    assert not set(preset) & set(FLAT_KEYS), f"{name}: flat keys {sorted(set(preset) & set(FLAT_KEYS))}"
    cfg = SearchConfig.from_dict(preset)
    assert migrate(preset) == preset
    _validate(json.loads(json.dumps(preset)), config_schema())
    _validate(cfg.to_dict(), config_schema())


# -- the JSON Schema -----------------------------------------------------------------------
SCHEMA_FILE = REPO / "docs" / "config.schema.json"
WRITER = REPO / "scripts" / "write_config_schema.py"


def test_the_committed_schema_is_up_to_date() -> None:
    expected = runpy.run_path(str(WRITER))["schema_text"]()
    assert SCHEMA_FILE.read_text() == expected, f"out of date: run `python {WRITER.relative_to(REPO)}`"


def _sections_of(schema: dict[str, Any], cls: type, where: str) -> None:
    assert schema["additionalProperties"] is False, where
    assert list(schema["properties"]) == [f.name for f in dataclasses.fields(cls)], where
    for f in dataclasses.fields(cls):
        prop = schema["properties"][f.name]
        assert "type" in prop and prop.get("description"), f"{where}.{f.name}"
        shape = f.metadata.get("shape") or (SECTIONS.get(f.name) if cls is SearchConfig else None)
        if shape is not None:
            _sections_of(prop, shape, f"{where}.{f.name}")
        for bound in (*BOUNDS, "pattern"):
            assert prop.get(bound) == f.metadata.get(bound), f"{where}.{f.name}: {bound}"


def test_schema_structure() -> None:
    schema = config_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {"$schema", "budgets"} | {f.name for f in dataclasses.fields(SearchConfig)}
    body = {**schema, "properties": {k: v for k, v in schema["properties"].items() if k not in ("$schema", "budgets")}}
    _sections_of(body, SearchConfig, "config")
    strategy = schema["properties"]["strategy"]["properties"]
    assert strategy["population"] == {"type": "integer", "minimum": 2, "default": 8,
                                      "description": "mu, the population kept."}
    assert strategy["name"]["enum"] == ["nsga2", "steady_state", "lineage", "es"]
    assert strategy["es"]["properties"]["sigma"]["default"] == 0.1
    assert schema["properties"]["parallel"]["properties"]["backend"]["enum"][-1] is None
    assert schema["properties"]["evaluation"]["properties"]["multi_fidelity"]["type"] == ["object", "null"]


def test_every_default_validates_and_bad_values_do_not() -> None:
    schema = config_schema()
    _validate(SearchConfig().to_dict(), schema)
    _validate({"$schema": "x.json", **SearchConfig.from_dict(FLAT_0_10).to_dict()}, schema)
    _validate({"budgets": {"smoke": {"strategy": {"generations": 1}}}}, schema)
    for bad in ({"strategy": {"population": 1}}, {"strategy": {"populaton": 4}}, {"population": 4},
                {"final": {"schedule": "linear"}}, {"evaluation": {"multi_fidelity": {"eta": 1}}},
                {"parallel": {"scheduler": "h:1"}}, {"budgets": {"x": {"seed": -1}}}):
        with pytest.raises(AssertionError):
            _validate(bad, schema)


def _validate(value: Any, schema: dict[str, Any]) -> None:
    """Assert ``value`` is valid: by ``jsonschema`` where it is installed, else by the few
    keywords the configuration's schema uses."""
    if importlib.util.find_spec("jsonschema") is not None:
        import jsonschema

        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(value))
        assert not errors, [e.message for e in errors]
        return
    _check(value, schema, schema, "$")


_TYPES = {"object": dict, "string": str, "boolean": bool, "null": type(None), "number": (int, float), "integer": int}


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str) -> None:
    if schema.get("$ref") == "#":
        schema = root
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    assert not kinds or any(isinstance(value, _TYPES[k]) and not (isinstance(value, bool) and k in ("number", "integer"))
                            for k in kinds), f"{where}: {value!r} is not {kinds}"
    assert "enum" not in schema or value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    ops = {"minimum": float.__ge__, "maximum": float.__le__, "exclusiveMinimum": float.__gt__,
           "exclusiveMaximum": float.__lt__}
    for name, holds in ops.items():
        if name in schema and isinstance(value, int | float) and not isinstance(value, bool):
            assert holds(float(value), float(schema[name])), f"{where}: {value!r} violates {name} {schema[name]}"
    if "pattern" in schema and isinstance(value, str):
        assert re.search(schema["pattern"], value), f"{where}: {value!r} does not match {schema['pattern']}"
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                _check(item, props[key], root, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                raise AssertionError(f"{where}: unknown key {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                _check(item, schema["additionalProperties"], root, f"{where}.{key}")


def test_overlay_merges_sections_key_by_key_and_migrates_flat_keys() -> None:
    """An ``evokeras run`` file's budget over the file's other keys: a budget that names
    ``evaluation`` keeps the file's other ``evaluation`` keys."""
    from evokeras.engine.config import overlay

    base = {"task": "mnist", "evaluation": {"epochs": 2, "train_samples": 1000}, "population": 6,
            "objectives": {"val_error": -1.0, "flops": -1.0}}
    top = {"evaluation": {"epochs": 1}, "strategy": {"generations": 1}, "objectives": {"val_error": -1.0}}
    merged = overlay(base, top)
    assert merged["evaluation"] == {"epochs": 1, "train_samples": 1000}
    assert merged["strategy"] == {"population": 6, "generations": 1}
    assert merged["objectives"] == {"val_error": -1.0}
    cfg = SearchConfig.from_dict(merged)
    assert (cfg.evaluation.epochs, cfg.evaluation.train_samples, cfg.strategy.population) == (1, 1000, 6)


@pytest.mark.parametrize(("data", "hint"), [
    ({"generation": 2}, "did you mean 'strategy.generations'?"),
    ({"strategy": {"populaton": 4}}, "did you mean 'strategy.population'?"),
    ({"evaluaton": {}}, "did you mean 'evaluation'?"),
    ({"final": {"epoch": 3}}, "did you mean 'final.epochs'?"),
])
def test_an_unknown_key_gets_the_closest_known_one(data: dict, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        SearchConfig.from_dict(data)
    assert str(info.value).startswith("unknown config key") and str(info.value).endswith(hint)


def test_an_unknown_key_far_from_any_gets_no_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        SearchConfig.from_dict({"zzqx": 1})
    assert "did you mean" not in str(info.value)
