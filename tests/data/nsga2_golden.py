"""Write ``nsga2_golden.json``: NSGA-II runs with the analytic evaluator, as 0.10 ran them.

``python tests/data/nsga2_golden.py OUT.json`` records, for each scenario, every
generation's population and front (keys and fitness) and the order in which keys were
evaluated. The file committed beside this script was written by evokeras 0.10.0 (the
search loop before strategies existed); ``tests/engine/test_strategies.py`` checks that
the NSGA-II strategy reproduces it exactly.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import KeyMod, fake_for, small_config  # noqa: E402

from evokeras.engine.search import Search  # noqa: E402
from evokeras.engine.store import RunStore  # noqa: E402

#: name -> (flat configuration overrides, FakeEvaluator options)
SCENARIOS: dict[str, tuple[dict, dict]] = {
    "seed0": ({}, {}),
    "seed1": ({"seed": 1}, {}),
    "constrained": ({"seed": 2, "max_val_error": 0.1}, {}),
    "failures": ({"seed": 3, "cxpb": 0.5, "mutpb": 0.4}, {"fail_if": KeyMod(4)}),
}


def record(name: str, overrides: dict, options: dict, tmp: Path) -> dict:
    cfg = small_config(**overrides)
    fake = fake_for(cfg, **options)
    with Search(cfg, tmp / name, evaluate=fake) as search:
        result = search._run()
    with RunStore(tmp / name / "run.db", create=False) as store:
        rows = store._db.execute("SELECT state FROM checkpoints ORDER BY gen").fetchall()
    gens = []
    for (text,) in rows:
        state = json.loads(text)
        population = state["population"] if "population" in state else state["state"]["population"]

        def keys(items: list) -> list:
            return [[json.dumps(i["genome"], sort_keys=True), i["fitness"]] for i in items]

        gens.append({"population": keys(population), "front": sorted(keys(state["front"]))})
    return {"generations": gens, "calls": fake.calls,
            "front": sorted(ind.key for ind in result.front)}


def main(out: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = {name: record(name, o, f, Path(tmp)) for name, (o, f) in SCENARIOS.items()}
    Path(out).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
