"""What a newcomer meets in the first minutes: a quick ``evokeras --help`` that imports no
Keras, the program names of the commands, and the failure modes that must be one line
saying what to do, leaving nothing behind that blocks a retry:

* a script without ``if __name__ == "__main__":`` that searches with process workers;
* the core install (no Keras backend) running a search;
* a typo'd configuration key, task, objective or search-space option;
* non-finite arrays given to :func:`evokeras.from_arrays`;
* the INFO lines of Dask's ``distributed`` and of Optuna (quiet unless logging asks).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import REPO_ROOT, fake_for, small_config  # noqa: E402

import evokeras  # noqa: E402
from evokeras.__main__ import main as evokeras_main  # noqa: E402
from evokeras.app.study import run_study  # noqa: E402
from evokeras.engine.config import ConfigError, SearchConfig  # noqa: E402
from evokeras.engine.parallel import UnguardedMainError  # noqa: E402
from evokeras.engine.parallel.base import (  # noqa: E402
    UNGUARDED_MAIN_EXIT,
    WORKER_NAME,
    refuse_while_bootstrapping,
)
from evokeras.engine.search import Search  # noqa: E402
from evokeras.studies import STUDIES  # noqa: E402
from evokeras.studies.mnist import BUDGETS as MNIST_BUDGETS  # noqa: E402

CORE_ONLY = REPO_ROOT / "tests" / "_core_only.py"
BACKEND_MODULES = ("keras", "tensorflow", "jax", "jaxlib", "torch")


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _python(*args: str, cwd: Path = REPO_ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


# -- the console script's help ---------------------------------------------------------------------
_HELP_PROBE = textwrap.dedent("""
    import json, runpy, sys
    for argv in ([], ["run"], ["resume"], ["report"], ["specialize"], ["study"], ["study", "mnist"]):
        sys.argv = ["evokeras", *argv, "--help"]
        try:
            runpy.run_module("evokeras", run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            assert exc.code == 0, (argv, exc.code)
    heavy = sorted(m for m in sys.modules if m.partition(".")[0] in MODULES)
    print(json.dumps(heavy))
""")


def test_help_imports_no_keras_or_backend() -> None:
    """``evokeras --help`` and every command's ``--help`` import neither Keras nor a
    backend (nor matplotlib, Dask, Optuna): the help comes at once."""
    modules = {*BACKEND_MODULES, "matplotlib", "distributed", "dask", "optuna"}
    proc = _python("-c", _HELP_PROBE.replace("MODULES", repr(sorted(modules))))
    assert proc.returncode == 0, proc.stderr[-3000:]
    *helps, last = proc.stdout.strip().splitlines()
    assert json.loads(last) == []
    text = "\n".join(helps)
    assert "usage: evokeras [-h] [--version]" in text and "usage: evokeras run " in text
    assert "usage: evokeras study mnist " in text and "--budget" in text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        evokeras_main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"evokeras {evokeras.__version__}"


def test_a_study_calls_itself_by_how_it_was_run(capsys: pytest.CaptureFixture[str]) -> None:
    """``evokeras study mnist`` names itself so in its usage and its errors; the script
    ``studies/mnist.py`` keeps its own name."""
    with pytest.raises(SystemExit):
        evokeras_main(["study", "mnist", "--help"])
    assert capsys.readouterr().out.startswith("usage: evokeras study mnist [-h]")
    with pytest.raises(SystemExit) as exit_info:
        evokeras_main(["study", "mnist", "--no-such-flag"])
    assert exit_info.value.code == 2
    assert "evokeras study mnist: error: unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_study("mnist", MNIST_BUDGETS, ["--help"])
    assert capsys.readouterr().out.startswith("usage: studies/mnist.py [-h]")
    with pytest.raises(SystemExit):
        evokeras_main(["study", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: evokeras study [-h] NAME ...") and all(name in out for name in STUDIES)


def test_saved_layers_load_once_the_package_is_imported(tmp_path: Path) -> None:
    """``evokeras.nets.layers`` imports no Keras, yet a model holding its layers loads in a
    fresh process that imported the package before or after Keras."""
    path = tmp_path / "m.keras"
    save = f"""
        import sys
        import evokeras.nets.layers as layers
        assert "keras" not in sys.modules
        import keras
        x = keras.Input((4, 3))
        keras.Model(x, layers.LastStep()(x)).save({str(path)!r})
    """
    load = """
        import {first}, {second}
        import keras
        assert keras.saving.load_model({path!r}).layers[-1].__class__.__name__ == "LastStep"
        print("loaded")
    """
    proc = _python("-c", textwrap.dedent(save))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for first, second in (("evokeras.nets.layers", "keras"), ("keras", "evokeras.nets.layers")):
        proc = _python("-c", textwrap.dedent(load.format(first=first, second=second, path=str(path))))
        assert proc.returncode == 0 and proc.stdout.strip() == "loaded", proc.stderr[-3000:]


# -- a script without `if __name__ == "__main__":` ------------------------------------------------------
_SEARCH_SCRIPT = """
import numpy as np
import evokeras

rng = np.random.default_rng(0)
x, y = rng.random((120, 6)).astype("float32"), rng.integers(0, 3, 120)
run = evokeras.search(evokeras.from_arrays(x, y), "runs/x", workers=2, config={{
    "max_val_error": 1.0, "strategy": {{"population": 2, "offspring": 2, "generations": 1}},
    "evaluation": {{"epochs": 1, "patience": 0, "time_repeats": 1, "train_samples": 80, "val_samples": 10}},
    "final": {{"members": 1, "epochs": 1, "train_samples": 80}}}})
print("front", len(run.front))
"""


@pytest.mark.slow
def test_unguarded_script_with_workers_gets_one_error_then_runs_once_guarded(tmp_path: Path) -> None:
    """Spawned workers import the main script: one whose top level searches gets one
    :class:`UnguardedMainError` naming the fix (not a search started again in each
    worker, "in use" errors and dying workers), and the same search under
    ``if __name__ == "__main__":`` then continues in the run directory."""
    script = tmp_path / "mine.py"
    script.write_text(_SEARCH_SCRIPT.format())
    proc = _python(str(script), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.count('if __name__ == "__main__":') == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("evokeras.engine.parallel.base.UnguardedMainError: ") and str(script) in last
    assert "in use" not in proc.stderr and "while starting" not in proc.stderr, proc.stderr
    guarded = 'if __name__ == "__main__":\n' + textwrap.indent(_SEARCH_SCRIPT.format(), "    ")
    script.write_text(guarded)
    proc = _python(str(script), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    word, count = proc.stdout.split()
    assert word == "front" and int(count) >= 1  # (its size depends on measured times)


def test_refused_while_a_spawned_process_imports_the_main_script(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself: nothing outside a child's bootstrap; a process backend's worker
    exits quietly with :data:`UNGUARDED_MAIN_EXIT` (its parent explains); any other
    child raises :class:`UnguardedMainError`."""
    refuse_while_bootstrapping()  # this process: nothing
    process = multiprocessing.current_process()
    monkeypatch.setattr(process, "_inheriting", True, raising=False)
    monkeypatch.setattr(process, "name", WORKER_NAME.format(0))
    with pytest.raises(SystemExit) as exit_info:
        refuse_while_bootstrapping()
    assert exit_info.value.code == UNGUARDED_MAIN_EXIT
    monkeypatch.setattr(process, "name", "SpawnProcess-1")
    with pytest.raises(UnguardedMainError, match=r'put the code that starts the search under `if __name__ == "__main__":`'):
        refuse_while_bootstrapping()


# -- the core install: no Keras backend ----------------------------------------------------------------
def test_core_install_search_names_the_extra_and_makes_no_run_directory(tmp_path: Path) -> None:
    """``evokeras.search`` without a Keras backend raises :class:`evokeras.MissingExtraError`
    (one message naming the extra) before it makes the run directory; ``evokeras run``
    says it in one line, exit status 2."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x_train=rng.random((60, 5)).astype("float32"), y_train=rng.integers(0, 2, 60))
    (tmp_path / "search.py").write_text(textwrap.dedent("""
        import numpy as np, evokeras
        data = np.load("data.npz")
        try:
            evokeras.search(evokeras.from_arrays(data["x_train"], data["y_train"]), "runs/api")
        except evokeras.MissingExtraError as exc:
            print(f"MissingExtraError: {exc}")
    """))
    (tmp_path / "config.json").write_text(json.dumps({"task": "arrays", "task_options": {"path": "data.npz"}}))
    (tmp_path / "cli.py").write_text("from evokeras.__main__ import main\n"
                                     "raise SystemExit(main(['run', 'config.json', '--out', 'runs/cli']))\n")
    proc = _python(str(CORE_ONLY), "search.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("MissingExtraError: ") and "is not installed: pip install 'evokeras[" in proc.stdout
    proc = _python(str(CORE_ONLY), "cli.py", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.startswith("error: ") and "pip install 'evokeras[" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


# -- typos -------------------------------------------------------------------------------------------
def _array_task() -> evokeras.Task:
    rng = np.random.default_rng(0)
    return evokeras.from_arrays(rng.random((60, 5)).astype("float32"), rng.integers(0, 2, 60))


@pytest.mark.parametrize(("data", "suggestion"), [
    ({"generation": 3}, "strategy.generations"),
    ({"strategy": {"generation": 3}}, "strategy.generations"),
    ({"evaluation": {"epoch": 1}}, "evaluation.epochs"),
    ({"parallel": {"worker": 2}}, "parallel.workers"),
    ({"final": {"member": 1}}, "final.members"),
    ({"evaluation": {"multi_fidelity": {"fractio": 0.5}}}, "evaluation.multi_fidelity.fraction"),
])
def test_a_typo_in_a_config_key_gets_a_suggestion(data: dict, suggestion: str) -> None:
    with pytest.raises(ConfigError, match=rf"\(known: [^)]*\); did you mean '{suggestion}'\?$"):
        SearchConfig.from_dict(data)


def test_a_typo_in_a_task_objective_or_space_option_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'mnsit' .*; did you mean 'mnist'\?$"):
        SearchConfig.from_dict({"task": "mnsit"}).make_task()
    task = _array_task()
    with pytest.raises(ConfigError, match=r"'val_eror' is not measured .*; did you mean 'val_error'\?$"):
        SearchConfig.from_dict({"objectives": {"val_eror": -1.0}}).build_task(task)
    with pytest.raises(ConfigError, match=r"config key 'space': .*'max_layer'.*; did you mean 'max_layers'\?$"):
        SearchConfig.from_dict({"space": {"max_layer": 4}}).build_task(task)
    with pytest.raises(ConfigError) as info:  # nothing close: no suggestion
        SearchConfig.from_dict({"task": "zzz"}).make_task()
    assert "did you mean" not in str(info.value)


# -- non-finite arrays ----------------------------------------------------------------------------------
_X, _Y = np.ones((50, 4), np.float32), np.arange(50) % 3


@pytest.mark.parametrize(("args", "options", "message"), [
    ((np.full((50, 4), np.nan), _Y), {}, r"x_train: 200 of 200 input values are NaN or infinite"),
    ((_X, np.full(50, np.nan)), {}, r"y_train: 50 of 50 labels are NaN or infinite"),
    ((_X, np.r_[np.zeros(49), np.inf]), {"regression": True}, r"y_train: 1 of 50 target values are NaN or infinite"),
    ((_X, _Y), {"validation_data": (np.full((5, 4), -np.inf), _Y[:5])}, r"x_val: 20 of 20 input values"),
    ((_X, _Y), {"test_data": (_X[:5], np.array([0, 1, np.nan, 1, 0]))}, r"y_test: 1 of 5 labels"),
])
def test_non_finite_arrays_are_refused(args: tuple, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evokeras.from_arrays(*args, **options)


# -- library logs -------------------------------------------------------------------------------------
_DASK_PROBE = textwrap.dedent("""
    import logging, sys
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from evokeras.engine.parallel import DaskBackend
    with DaskBackend(workers=1, threads_per_worker=1) as backend:
        assert backend.map(abs, [-1, -2]) == [1, 2]
    print("levels", logging.getLogger("distributed").level, file=sys.stderr)
    print("== verbose", file=sys.stderr)
    logging.getLogger().setLevel(logging.INFO)  # what `evokeras -v` asks for
    with DaskBackend(workers=1, threads_per_worker=1) as backend:
        assert backend.map(abs, [-3]) == [3]
""")


def test_dask_local_cluster_is_quiet_unless_logging_asks_for_info() -> None:
    """An embedded ``LocalCluster`` prints none of distributed's INFO lines (about 30 of
    them) while the root logger is at WARNING (``evokeras`` without ``-v``), and gives
    the ``distributed`` logger its level back; at INFO (``-v``) they are there."""
    pytest.importorskip("distributed")
    proc = _python("-c", _DASK_PROBE, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    quiet, _, verbose = proc.stderr.partition("== verbose")
    assert not [line for line in quiet.splitlines() if line.startswith("INFO ")], quiet
    assert f"levels {logging.INFO}" in quiet  # distributed's own default, back after close
    assert any(line.startswith("INFO distributed") for line in verbose.splitlines()), verbose


def test_export_optuna_is_quiet_unless_logging_asks_for_info(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    optuna = pytest.importorskip("optuna")
    cfg = small_config(generations=1)
    with Search(cfg, tmp_path / "run", evaluate=fake_for(cfg)) as search:
        search._run()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.addHandler(handler)
    try:
        evokeras.export_optuna(tmp_path / "run", study_name="quiet")
        assert [r.getMessage() for r in records if r.levelno == logging.INFO] == []
        assert logger.level == level
        caplog.set_level(logging.INFO)  # the user's logging asks for INFO
        evokeras.export_optuna(tmp_path / "run", study_name="told")
        assert any("told" in r.getMessage() for r in records if r.levelno == logging.INFO)
    finally:
        logger.removeHandler(handler)
    assert optuna.logging.get_verbosity() == level
