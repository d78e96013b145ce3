"""Tests for :mod:`evokeras.results.html`: ``evokeras report DIR --html``, one page that
needs nothing but itself (no network, no other file)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import fake_for, small_config  # noqa: E402

from evokeras.app.cli import main  # noqa: E402
from evokeras.engine.search import Search  # noqa: E402
from evokeras.results.html import architecture_svg, html_report  # noqa: E402
from evokeras.results.plotting import short_key  # noqa: E402
from evokeras.results.report import read_front  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    cfg = small_config(generations=2)
    out = tmp_path_factory.mktemp("html") / "run"
    with Search(cfg, out, evaluate=fake_for(cfg)) as search:
        search.run()
    return out


class Page(HTMLParser):
    """What a browser would fetch, and the page's anchors and links."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name in ("src", "href", "data", "poster"):
            if a.get(name) is not None:
                (self.links if tag == "a" and name == "href" else self.sources).append(a[name] or "")
        if a.get("id"):
            self.ids.add(a["id"] or "")
        self.tables += tag == "table"


def test_page_is_self_contained_and_links_every_member(run_dir: Path) -> None:
    page_text = html_report(run_dir)
    page = Page()
    page.feed(page_text)
    page.close()
    assert page_text.startswith("<!DOCTYPE html>") and page_text.rstrip().endswith("</html>")
    # nothing to fetch: no URL scheme, no stylesheet import, url() only to the page's own marker
    assert not re.search(r"\b(https?|ftp|file):", page_text, re.I) and "@import" not in page_text
    assert set(re.findall(r"url\(([^)]*)\)", page_text)) <= {"#arrow"}
    assert len(page.sources) == 3 and all(s.startswith("data:image/png;base64,") for s in page.sources)
    assert all(link.startswith("#") for link in page.links)
    for src in page.sources:
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    members = read_front(run_dir)["members"]
    assert members
    for m in members:
        assert f"#m-{m['key']}" in page.links and f"m-{m['key']}" in page.ids
        assert short_key(m["key"]) in page_text
    assert page.tables >= 2 + len(members)  # run summary, front, one figure table per member


def test_architecture_drawing_has_a_box_per_layer() -> None:
    genome = {"layers": [{"kind": "block", "units": 16, "kernel_size": 3, "strides": 1, "activation": "relu",
                          "residual": True}, {"kind": "pool", "pool_type": "max", "pool_size": 2}],
              "reduce": "flatten", "training": {}}
    svg = architecture_svg(genome)
    assert svg.count("<rect") == 2 + 2 + 1  # input, two layers, reduce, head
    assert "block units=16 kernel_size=3 strides=1 activation=relu residual" in svg
    assert svg.count("<line") == 4
    program = architecture_svg({"cut": 3, "drop": [1], "head": "ridge"})
    assert program.count("<rect") == 4 and "cut: 3" in program


def test_cli_report_html(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert main(["report", str(copy), "--html"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(copy / "report.html")
    assert (copy / "report.html").read_text() == html_report(copy)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _render(page: Path, shot: Path, profile: Path) -> tuple[list[str], subprocess.CompletedProcess]:
    """Screenshot ``page`` with headless Chromium, offline; return its console lines."""
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--host-resolver-rules=MAP * ~NOTFOUND",  # no network
         f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line], proc


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium")
def test_page_renders_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    """Chromium loads the page offline without a console message, and its screenshot is
    a real picture (not blank); a broken page shows that console errors are caught."""
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><script>throw new Error('boom')</script></body></html>")
    console, _ = _render(broken, tmp_path / "broken.png", tmp_path / "profile")
    assert any("boom" in line for line in console)
    page = tmp_path / "report.html"
    page.write_text(html_report(run_dir))
    shot = tmp_path / "shot.png"
    console, proc = _render(page, shot, tmp_path / "profile")
    assert shot.is_file(), proc.stderr[-2000:]
    assert console == [], "\n".join(console)
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (2000, 1200) and pixels.std() > 0.05  # text, tables and figures drawn
