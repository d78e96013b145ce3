"""The README: its "Your own data" examples, executed as written (in a scratch directory
holding a copy of the README, which the text example reads; slow), and its shape (fast):
at most 3,000 words, every relative link and image pointing to a file of the repository
(and to a heading there, for a Markdown file's section), no link leaving the repository."""

from __future__ import annotations

import re
import shutil
import unicodedata
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
MAX_WORDS = 3000
#: ``[text](target)`` and ``![alt](target)``, the target up to a space or ``)``.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _examples() -> list[str]:
    readme = README.read_text(encoding="utf-8")
    section = readme.split("\n## Your own data\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _prose(markdown: str) -> str:
    """``markdown`` without its fenced code blocks and code spans (their brackets are code)."""
    markdown = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", markdown, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "``", markdown)


def links(markdown: str) -> list[str]:
    """Every link and image target of ``markdown``'s prose."""
    return LINK.findall(_prose(markdown))


def slug(heading: str) -> str:
    """The anchor Python-Markdown's ``toc`` extension (mkdocs) gives a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(markdown: str) -> set[str]:
    """The anchors of ``markdown``'s headings (outside code blocks)."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", markdown, flags=re.S | re.M)
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M)}


def broken_links(page: Path, root: Path = REPO_ROOT) -> list[str]:
    """The relative links of ``page`` whose file (or Markdown heading) does not exist, and
    the links that leave ``root`` or the repository (a URL with a scheme)."""
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in links(text):
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target):
            broken.append(f"{target} (leaves the repository)")
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_relative_to(root.resolve()) or not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{target} (no such heading)")
    return broken


def test_three_examples() -> None:
    assert len(_examples()) == 3


def test_readme_is_short() -> None:
    words = len(README.read_text(encoding="utf-8").split())  # as `wc -w README.md` counts
    assert words <= MAX_WORDS, f"README.md has {words} words (at most {MAX_WORDS}): move detail to docs/"


def test_readme_links_point_into_the_repository() -> None:
    assert links(README.read_text(encoding="utf-8")), "no link found: the link pattern is broken"
    assert broken_links(README) == []


def test_link_checker_sees_broken_links(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A page\n\n## Its `first` section\n", encoding="utf-8")
    (tmp_path / "img.png").write_bytes(b"")
    page = tmp_path / "README.md"
    page.write_text("[ok](docs/page.md#its-first-section) ![ok](img.png) `[code](nowhere.md)`\n"
                    "```python\nx = [a](b)\n```\n[gone](missing.md) [bad](docs/page.md#nope) "
                    "![gone](plots/none.png) [out](https://example.org)\n", encoding="utf-8")
    assert broken_links(page, tmp_path) == ["missing.md (no such file)", "docs/page.md#nope (no such heading)",
                                            "plots/none.png (no such file)",
                                            "https://example.org (leaves the repository)"]


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1, 2], ids=["arrays", "text file", "gymnasium id"])
def test_your_own_data_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, index: int) -> None:
    shutil.copy(README, tmp_path / "README.md")
    monkeypatch.chdir(tmp_path)
    exec(compile(_examples()[index], f"README example {index + 1}", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out.split()
    assert printed and float(printed[0]) == float(printed[0])  # a number, not NaN
    run_dir = tmp_path / "runs" / ["my-images", "my-text", "my-control"][index]
    assert (run_dir / "hall_of_fame.json").is_file() and (run_dir / "plots" / "pareto.png").is_file()
