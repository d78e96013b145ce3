"""The tutorials (``docs/tutorials/``), executed as written.

* Slow: each "your ..." page (your arrays, text, environment, trained model) -- its
  ```` ```python ```` blocks in order in one namespace, in a scratch directory (``tmp_path``,
  holding a copy of the files the page reads), then the ``evokeras report|plot|resume``
  lines of its ```` ```bash ```` blocks (in this process, :func:`evokeras.app.cli.main`).
  Each runs a one-minute search (the specialization a small configuration): one to two
  minutes on 2 CPU cores.
* Fast: the blocks of the other pages that need no training -- the DEAP operators
  (``deap.md``), the task of ``custom-task.md``, the callback and the Optuna export of
  ``watching.md``, the ``evokeras report|plot|resume`` lines of ``mnist.md`` -- the last two
  on a copy of a small stored run directory (``tests/data/run_v030``) standing in for the
  study's ``runs/mnist-default-seed0``. The blocks that start studies or long searches are
  not executed (:data:`NOT_EXECUTED` says why); every Python block of every page compiles.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO_ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = REPO_ROOT / "docs" / "tutorials"
STORED_RUN = REPO_ROOT / "tests" / "data" / "run_v030"

#: The "your ..." pages: the run directory each leaves, the files it reads (name in the
#: scratch directory -> the repository's file copied there), the figure it promises.
YOUR_PAGES = {
    "your-arrays": ("runs/my-images", {}, "plots/pareto.png"),
    "your-text": ("runs/my-text", {"my_text.txt": "docs/architecture.md"}, "plots/cell.png"),
    "your-environment": ("runs/my-control", {}, "plots/policy.gif"),
    "your-trained-model": ("runs/my-specialized", {}, "base.keras"),
}
NAV_TITLES = {"your-arrays": "Your arrays", "your-text": "Your text", "your-environment": "Your environment",
              "your-trained-model": "Your trained model"}

#: Blocks of the other pages that the tests do not execute, and why (``page: [(kind,
#: index among that kind's blocks, why)]``).
NOT_EXECUTED = {
    "mnist.md": [("bash", 0, "installs, then runs the MNIST study (smoke: about a minute; default: 30 minutes)"),
                 ("python", 0, "a search of 8 x 5 candidates on all of MNIST (tens of minutes)")],
    "language.md": [("bash", 0, "installs, runs the char_lm and word_lm studies, installs the Brown corpus")],
    "cartpole.md": [("bash", 0, "installs, runs the CartPole study")],
    "specialization.md": [("bash", 0, "three specialization studies (each trains its base first)"),
                          ("python", 0, "needs the objects study's position_net.keras; 12 x 6 programs")],
    "watching.md": [("bash", 0, "starts the TensorBoard server"), ("bash", 1, "starts the Optuna dashboard")],
}


def blocks(page: str | Path, kind: str = "python") -> list[str]:
    """The fenced ```` ```kind ```` blocks of a tutorial page, in order."""
    path = page if isinstance(page, Path) else TUTORIALS / page
    return re.findall(rf"^```{kind}\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)


def run_python(page: str) -> dict[str, Any]:
    """Execute the page's Python blocks in order in one namespace; return it."""
    namespace: dict[str, Any] = {"__name__": "__tutorial__"}
    for i, code in enumerate(blocks(page)):
        exec(compile(code, f"{page} python block {i + 1}", "exec"), namespace)
    return namespace


def cli_lines(page: str) -> list[list[str]]:
    """The ``evokeras report|plot|resume ...`` lines of the page's bash blocks, as argument lists."""
    out = []
    for code in blocks(page, "bash"):
        for line in code.splitlines():
            args = shlex.split(line, comments=True)
            if args[:1] == ["evokeras"] and args[1:2] and args[1] in ("report", "plot", "resume"):
                out.append(args[1:])
    return out


def run_cli(page: str) -> list[list[str]]:
    from evokeras.app.cli import main

    lines = cli_lines(page)
    for args in lines:
        assert main(args) == 0, args
    return lines


# -- every page ---------------------------------------------------------------------------------
def test_every_python_block_compiles() -> None:
    pages = sorted(TUTORIALS.glob("*.md"))
    assert len(pages) >= 11
    for page in pages:
        for i, code in enumerate(blocks(page)):
            compile(code, f"{page.name} python block {i + 1}", "exec")


def test_no_tutorial_calls_the_private_search_loop() -> None:
    """``Search.run()`` is private (``Search._run``) since 0.14: runs end with ``evokeras.search``."""
    for page in TUTORIALS.glob("*.md"):
        for code in blocks(page):
            assert not re.search(r"\bsearch\.run\(|\bSearch\([^)]*\)\.run\(", code), page.name


def test_not_executed_blocks_are_listed_where_they_are() -> None:
    for page, skipped in NOT_EXECUTED.items():
        for kind, index, _why in skipped:
            assert index < len(blocks(page, kind)), (page, kind, index)


def test_your_pages_are_in_the_nav_first() -> None:
    nav = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:\n", 1)[1]
    section = nav.split("- Tutorials:\n", 1)[1]
    entries = re.findall(r"^ {6}- (.+?): (tutorials/\S+)$", section, flags=re.M)
    assert entries[:4] == [(NAV_TITLES[p], f"tutorials/{p}.md") for p in YOUR_PAGES]


def test_your_pages_have_code_and_a_next_section() -> None:
    for page, (run_dir, _files, _figure) in YOUR_PAGES.items():
        text = (TUTORIALS / f"{page}.md").read_text(encoding="utf-8")
        assert blocks(f"{page}.md") and "\n## Next\n" in text and run_dir in text, page
        assert cli_lines(f"{page}.md"), page


# -- the "your ..." pages: one search each (slow) ----------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("page", list(YOUR_PAGES))
def test_your_page_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str) -> None:
    pytest.importorskip("keras")
    if page == "your-environment":
        pytest.importorskip("gymnasium")
    from evokeras.data import DatasetNotFoundError

    run_dir, files, figure = YOUR_PAGES[page]
    for name, source in files.items():
        shutil.copy(REPO_ROOT / source, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    try:
        run_python(f"{page}.md")
    except DatasetNotFoundError as exc:  # MNIST / Fashion-MNIST: .ci/run installs them where it can
        pytest.skip(f"a data set the page reads is not installed ({exc})")
    out = tmp_path / run_dir
    hall = json.loads((out / "hall_of_fame.json").read_text(encoding="utf-8"))
    models = [out / m["model"] for m in hall["members"] if m.get("status") == "ok" and "model" in m]
    assert models and all(m.is_file() for m in models)
    assert (out / figure).is_file()
    run_cli(f"{page}.md")
    assert (out / "report.html").is_file()


# -- the other pages' cheap blocks (fast) ------------------------------------------------------
def test_deap_operators_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    namespace = run_python("deap.md")
    front = namespace["front"]
    assert len(front) >= 1 and capsys.readouterr().out.startswith(front[0].key)


def test_specialization_prune_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("keras")
    monkeypatch.chdir(tmp_path)
    code = blocks("specialization.md")[1]
    namespace: dict[str, Any] = {"__name__": "__tutorial__"}
    exec(compile(code, "specialization.md python block 2", "exec"), namespace)
    small, model = namespace["small"], namespace["model"]
    assert small.pruning["macs"][1] <= 0.25 * small.pruning["macs"][0]
    assert small.count_params() < model.count_params() and (tmp_path / "small.keras").is_file()


def test_custom_task_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evokeras.engine.config import SearchConfig
    from evokeras.tasks import registry

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # "blobs" stays in this test
    run_python("custom-task.md")
    task: Any = SearchConfig.from_dict({"task": "blobs"}).make_task()
    split = task.data(train_size=100, val_limit=50, test_limit=10)
    assert task.input_shape == (8,) and split.x_train.shape == (100, 8) and set(split.y_train) <= {0, 1, 2}


def test_watching_callback_example(capsys) -> None:
    import evokeras

    code = blocks("watching.md")[0]
    namespace: dict[str, Any] = {"__name__": "__tutorial__"}
    exec(compile(code, "watching.md python block 1", "exec"), namespace)
    callback = namespace["Progress"]()
    assert isinstance(callback, evokeras.Callback)
    front: list[Any] = [object(), object()]  # the hook reads only its length
    callback.on_generation({"gen": 3, "val_error": {"min": 0.0125}}, front)
    assert capsys.readouterr().out == "generation 3: best val_error 0.0125, front of 2\n"


@pytest.fixture
def study_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of a small stored MNIST run directory where the pages expect the study's."""
    out = tmp_path / "runs" / "mnist-default-seed0"
    shutil.copytree(STORED_RUN, out)
    monkeypatch.chdir(tmp_path)
    return out


def test_watching_optuna_example(study_run: Path) -> None:
    optuna = pytest.importorskip("optuna")
    run_python("watching.md")  # both blocks, in order: the second uses the first's import
    studies = optuna.get_all_study_summaries("sqlite:///mnist.optuna.db")
    assert len(studies) == 1 and studies[0].n_trials >= 2


def test_mnist_report_lines(study_run: Path) -> None:
    pytest.importorskip("keras")
    lines = run_cli("mnist.md")
    assert [args[0] for args in lines] == ["report", "report", "plot", "resume"]
    assert (study_run / "report.html").is_file() and (study_run / "plots" / "pareto.png").is_file()
