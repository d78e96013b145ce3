"""Run the README's DEAP-operator example, then check what needs a Keras backend.

``python tests/_readme_example.py``: runs the first Python block of the README section
"Reusing the operators in your own DEAP code" as written. Without a Keras backend (the
core install) it then checks that building a model raises ``evokeras.MissingExtraError``
naming the extras and that no backend was imported, and that a search raises it too
before it makes its run directory. Run by ``tests/test_packaging.py``
(core install simulated) and by ``.ci/run`` in a fresh core-only virtual environment.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def example() -> str:
    text = README.read_text()
    section = text[text.index("## Reusing the operators in your own DEAP code"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    if match is None:
        raise SystemExit("README: no Python example under 'Reusing the operators in your own DEAP code'")
    return match.group(1)


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


if __name__ == "__main__":
    namespace: dict[str, object] = {"__name__": "__readme__"}
    exec(compile(example(), f"{README}:operators example", "exec"), namespace)
    if not installed("tensorflow") and not installed("jax"):
        import evokeras

        try:
            namespace["tb"].decode(namespace["front"][0])  # type: ignore[attr-defined,index]
        except evokeras.MissingExtraError as exc:
            print(f"decode without a backend: {exc}")
        else:
            raise SystemExit("decode without a Keras backend did not raise MissingExtraError")
        backends = sorted(m for m in sys.modules if m.partition(".")[0] in ("tensorflow", "jax"))
        if backends:
            raise SystemExit(f"the core example imported a backend: {backends}")
        import numpy as np

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            try:
                evokeras.search(evokeras.from_arrays(np.zeros((40, 3)), np.arange(40) % 2), out)
            except evokeras.MissingExtraError as exc:
                print(f"search without a backend: {exc}")
            else:
                raise SystemExit("a search without a Keras backend did not raise MissingExtraError")
            if out.exists():
                raise SystemExit(f"a search without a Keras backend left {out} behind")
