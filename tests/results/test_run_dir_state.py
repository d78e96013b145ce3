"""Reading a run leaves its directory as it was found, and a run directory can move.

``evokeras report`` (table, ``--json``, ``--html``) opens the run store read-only and
creates neither ``run.db-wal``/``run.db-shm`` nor a ``.lock`` that stays; a report on a
run another process holds does not disturb that process. The data a run keeps in its
directory (``data.npz``) is recorded relative to it, so ``mv runs/x runs/y`` keeps the
run reportable and resumable; an absolute path (written up to 0.13) still reads. The
snippet of the HTML report loads the saved model it names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import REPO_ROOT, FakeEvaluator  # noqa: E402

import evokeras  # noqa: E402
from evokeras.app.cli import main  # noqa: E402
from evokeras.engine.config import SearchConfig  # noqa: E402
from evokeras.engine.run import Run, RunError, lock_run_dir  # noqa: E402
from evokeras.engine.search import Search  # noqa: E402
from evokeras.engine.store import RunStore  # noqa: E402
from evokeras.results.html import html_report  # noqa: E402
from evokeras.results.report import read_front  # noqa: E402

SQLITE_FILES = ("run.db-wal", "run.db-shm")


def _arrays(n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype(int)


def _config(generations: int) -> SearchConfig:
    return SearchConfig.from_dict({"task": "arrays", "population": 4, "offspring": 4, "generations": generations,
                                   "objectives": {"val_error": -1.0, "flops": -1.0}, "seed": 0})


@pytest.fixture(scope="module")
def arrays_run(tmp_path_factory) -> Path:
    """A searched run (fake evaluator) of arrays given in memory: the run directory
    keeps them as ``data.npz``."""
    cfg = _config(generations=1)
    task = cfg.build_task(evokeras.from_arrays(*_arrays()))
    out = tmp_path_factory.mktemp("arrays") / "run"
    with Search(cfg, out, evaluate=FakeEvaluator(task.space, cfg.objectives), task=task) as search:
        search._run()
    return out


def _files(run_dir: Path) -> dict[str, bytes]:
    """Every file under ``run_dir`` (hidden ones included) and its bytes."""
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _config_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "config.json").read_text())


def _set_task_option(run_dir: Path, **options: object) -> None:
    stored = _config_json(run_dir)
    stored["config"]["task_options"].update(options)
    (run_dir / "config.json").write_text(json.dumps(stored, indent=2))


# -- reading leaves the run directory as it was -------------------------------------------------

@pytest.mark.parametrize("leftovers", [False, True], ids=["clean", "with-wal-shm-lock"])
def test_reports_leave_the_run_directory_as_found(arrays_run: Path, tmp_path: Path, leftovers: bool,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Every file, hidden ones included, is there before and after ``report``, ``report
    --json`` and ``report --html``, byte for byte; the only new file is ``report.html``,
    which ``--html`` writes into the run directory. Also where an older release left
    ``run.db-wal``, ``run.db-shm`` and ``.lock`` behind."""
    run_dir = tmp_path / "run"
    shutil.copytree(arrays_run, run_dir)
    assert not {".lock", *SQLITE_FILES} & set(_files(run_dir))  # the search removed its lock and logs
    if leftovers:
        import sqlite3

        db = sqlite3.connect(f"file:{run_dir / 'run.db'}?mode=ro", uri=True)  # as 0.13's reports did
        db.execute("SELECT COUNT(*) FROM evaluations").fetchone()
        db.close()
        (run_dir / ".lock").touch()
        assert {".lock", *SQLITE_FILES} <= set(_files(run_dir))
    before = _files(run_dir)
    for args in (["report", str(run_dir)], ["report", "--json", str(run_dir)], ["report", str(run_dir), "--html"]):
        assert main(args) == 0
    assert capsys.readouterr().out.strip().endswith(str(run_dir / "report.html"))
    after = _files(run_dir)
    assert after.pop("report.html").startswith(b"<!DOCTYPE html>")
    assert after == before


_WRITER = """
import sys
from pathlib import Path
from evokeras.engine.run import lock_run_dir
from evokeras.engine.store import RunStore
run_dir = Path(sys.argv[1])
lock = lock_run_dir(run_dir)
store = RunStore(run_dir / "run.db", create=False)
store.set_meta("probe", "first")
print("holding", flush=True)
sys.stdin.readline()
store.set_meta("probe", "second")
store.close()
lock.close()
print("done", flush=True)
"""


def test_report_of_a_run_another_process_holds(arrays_run: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """While another process holds the run (its lock, the store open for writing):
    ``report --html`` refuses, naming the holder, and removes nothing of it; ``report``
    reads the store as it is (the writer's log included); the holder goes on writing and
    closes cleanly, leaving the directory as it found it."""
    run_dir = tmp_path / "run"
    shutil.copytree(arrays_run, run_dir)
    before = _files(run_dir)
    holder = subprocess.Popen([sys.executable, "-c", _WRITER, str(run_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "holding"
        assert {".lock", *SQLITE_FILES} <= set(_files(run_dir))
        assert main(["report", str(run_dir), "--html"]) == 2
        assert "in use by another evokeras process" in capsys.readouterr().err
        assert not (run_dir / "report.html").exists() and (run_dir / ".lock").exists()
        assert main(["report", str(run_dir)]) == 0
        assert read_front(run_dir)["members"]
        with RunStore(run_dir / "run.db", readonly=True) as store:
            assert store.get_meta("probe") == "first"  # in the writer's log, not yet in run.db
        holder.stdin.write("go on\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "done"
    finally:
        holder.stdin.close()  # type: ignore[union-attr]
        assert holder.wait(timeout=60) == 0
    with RunStore(run_dir / "run.db", readonly=True) as store:
        assert store.get_meta("probe") == "second"
    after = _files(run_dir)
    assert set(after) == set(before)  # no .lock, run.db-wal or run.db-shm left behind


def test_a_lock_file_is_removed_by_the_lock_that_made_it(tmp_path: Path) -> None:
    lock = lock_run_dir(tmp_path)
    assert lock.made and (tmp_path / ".lock").is_file()
    stale = open(tmp_path / ".lock")  # noqa: SIM115 - opened by a process just before the file goes
    with pytest.raises(RunError, match="in use"):
        lock_run_dir(tmp_path)
    lock.close()
    lock.close()  # twice is harmless
    assert not (tmp_path / ".lock").exists()
    again = lock_run_dir(tmp_path)  # a new file: whoever locks the stale one sees it is not the path's
    try:
        assert os.fstat(stale.fileno()).st_ino != os.stat(tmp_path / ".lock").st_ino
    finally:
        again.close()
        stale.close()
    (tmp_path / ".lock").touch()  # a lock file found is left
    kept = lock_run_dir(tmp_path)
    assert not kept.made
    kept.close()
    assert (tmp_path / ".lock").is_file()


# -- a run directory that moved ----------------------------------------------------------------

def test_data_of_the_run_is_recorded_relative_to_it(arrays_run: Path) -> None:
    options = _config_json(arrays_run)["config"]["task_options"]
    assert options["path"] == "data.npz" and (arrays_run / "data.npz").is_file()


def test_a_moved_run_directory_reports_and_resumes_with_its_data(arrays_run: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runs").mkdir()
    shutil.copytree(arrays_run, tmp_path / "runs" / "x")
    moved = tmp_path / "elsewhere" / "y"
    moved.parent.mkdir()
    shutil.move(tmp_path / "runs" / "x", moved)
    assert main(["report", str(moved)]) == 0 and main(["report", str(moved), "--html"]) == 0
    capsys.readouterr()
    assert Run.read_config(moved).task_options["path"] == str((moved / "data.npz").resolve())
    stored = _config_json(moved)
    stored["config"]["strategy"]["generations"] = 2  # one more generation to run
    (moved / "config.json").write_text(json.dumps(stored, indent=2))
    with Search.resume(moved) as probe:  # the task is rebuilt from data.npz (sha256 checked)
        assert probe.task.path == (moved / "data.npz").resolve()
        assert len(probe.task.data().y_train) + len(probe.task.data().y_val) + len(probe.task.data().y_test) == 80
        space, objectives = probe.task.space, probe.config.objectives
    with Search.resume(moved, evaluate=FakeEvaluator(space, objectives)) as search:
        search._run()
        assert search.store.count_evaluations(2) > 0
    assert read_front(moved)["members"]
    assert _config_json(moved)["config"]["task_options"]["path"] == "data.npz"  # still relative


def test_old_absolute_data_paths_still_read(arrays_run: Path, tmp_path: Path) -> None:
    """A path recorded absolute (up to 0.13): kept where it exists; the run directory's
    own file of that name where the directory has moved since; a missing relative file
    is named."""
    run_dir = tmp_path / "run"
    shutil.copytree(arrays_run, run_dir)
    outside = tmp_path / "mine.npz"
    shutil.copy(run_dir / "data.npz", outside)
    _set_task_option(run_dir, path=str(outside))
    assert Run.read_config(run_dir).task_options["path"] == str(outside)
    _set_task_option(run_dir, path=str(tmp_path / "gone" / "run" / "data.npz"))
    assert Run.read_config(run_dir).task_options["path"] == str((run_dir / "data.npz").resolve())
    with Search.resume(run_dir) as search:
        assert search.task.path == (run_dir / "data.npz").resolve()
    (run_dir / "data.npz").unlink()
    _set_task_option(run_dir, path="data.npz")
    with pytest.raises(RunError, match=re.escape(str(run_dir.resolve() / "data.npz"))):
        Search.resume(run_dir)


# -- the snippet of the HTML report ------------------------------------------------------------

@pytest.mark.slow
def test_html_snippet_loads_the_saved_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real run (one tiny network trained and saved): the snippet its report shows,
    pasted into a fresh Python in the directory the report was made from, loads it."""
    x, y = _arrays()
    run = evokeras.search(evokeras.from_arrays(x, y), tmp_path / "vec", config={
        "population": 2, "offspring": 1, "generations": 1, "max_val_error": 1.0, "final_members": 1,
        "final_epochs": 1, "evaluation": {"epochs": 1, "train_samples": None, "val_samples": None, "time_repeats": 1}})
    member = run.front[0]
    monkeypatch.chdir(tmp_path)
    page_text = html_report("vec")
    snippets = [unescape(s) for s in re.findall(r'<pre class="snippet"><code>(.*?)</code></pre>', page_text, re.S)]
    assert len(snippets) == 1
    assert f'keras.saving.load_model("vec/models/{member["key"]}.keras")' in snippets[0]
    code = snippets[0] + "print('loaded', model.count_params(), model.output_shape)\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"loaded {member['metrics']['params']} (None, 2)" in proc.stdout
