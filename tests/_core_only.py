"""Run a Python script as if only evokeras's core dependencies were installed.

``python tests/_core_only.py SCRIPT [ARGS...]``: the modules that only the extras
provide (a Keras backend, gymnasium, Dask, the data sets, TensorBoard, Optuna, the
benchmark tools) cannot be imported, exactly as in a fresh ``pip install evokeras``.
"""

from __future__ import annotations

import importlib.abc
import runpy
import sys

NOT_IN_CORE = frozenset({
    "tensorflow", "jax", "jaxlib", "gymnasium", "pygame", "dask", "distributed", "zarr",
    "pureml", "bible", "tensorboard", "optuna", "keras_tuner", "neat",
})


class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in NOT_IN_CORE:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, _NotInstalled())
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
