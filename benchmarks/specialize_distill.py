"""Distillation or labels alone: front members of a specialization run rebuilt as final models both ways.

Each member's program is built by ``Specialization.build`` on the run's final training
examples, fine-tuned with the run's task options except ``distill_weight`` (0.0, then
0.5), and scored on the test split; its hall-of-fame test error is printed beside it.

Usage::

    python benchmarks/specialize_distill.py RUN_DIR KEY1,KEY2 OUT.json

Measured (issue 31, the objects and resnet studies' seed 0, ``runs/spec31/*-seed0/search``,
one run each, pinned to one core): ``benchmarks/results/specialize_distill.json``.
"""
import json
import sys
import time
from pathlib import Path

import keras

from evokeras.engine.config import load_stored
from evokeras.genomes.edits import EditProgram
from evokeras.tasks.specialize import Specialization

run = Path(sys.argv[1])
config = load_stored(json.loads((run / "config.json").read_text())["config"])
hof = json.loads((run / "hall_of_fame.json").read_text())
keys = sys.argv[2].split(",")
out = {}
for weight in (0.0, 0.5):
    task = Specialization(**{**config.task_options, "distill_weight": weight})
    x, y, data = task.final_data(config.final.train_samples)
    for m in hof["members"]:
        if m["key"] not in keys:
            continue
        keras.utils.clear_session(free_memory=True)
        keras.utils.set_random_seed(0)
        t0 = time.perf_counter()
        model = task.build(EditProgram.from_dict(m["genome"]), x, y)
        err = 1 - model.evaluate(data.x_test, data.y_test, batch_size=512, verbose=0, return_dict=True)["accuracy"]
        out[f"{m['key']} distill {weight}"] = {"test_error": err, "seconds": time.perf_counter() - t0,
                                               "hof_test_error": m["test_error"]}
        print(m["key"], weight, round(err, 4), "hof", round(m["test_error"], 4), round(time.perf_counter() - t0), flush=True)
Path(sys.argv[3]).write_text(json.dumps(out, indent=1))
