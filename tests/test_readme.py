"""The README's "Your own data" examples, executed as written (in a scratch directory
holding a copy of the README, which the text example reads)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _examples() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Your own data\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_three_examples() -> None:
    assert len(_examples()) == 3


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1, 2], ids=["arrays", "text file", "gymnasium id"])
def test_your_own_data_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, index: int) -> None:
    shutil.copy(REPO_ROOT / "README.md", tmp_path / "README.md")
    monkeypatch.chdir(tmp_path)
    exec(compile(_examples()[index], f"README example {index + 1}", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out.split()
    assert printed and float(printed[0]) == float(printed[0])  # a number, not NaN
    run_dir = tmp_path / "runs" / ["my-images", "my-text", "my-control"][index]
    assert (run_dir / "hall_of_fame.json").is_file() and (run_dir / "plots" / "pareto.png").is_file()
