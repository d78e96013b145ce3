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

from evokeras._io import write_json_atomic  # noqa: E402
from evokeras.app.cli import main  # noqa: E402
from evokeras.engine.search import Search  # noqa: E402
from evokeras.results.html import architecture_svg, html_report, member_figures  # noqa: E402
from evokeras.results.plotting import short_key  # noqa: E402
from evokeras.results.report import format_figure, front_table, read_front  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    cfg = small_config(generations=2)
    out = tmp_path_factory.mktemp("html") / "run"
    with Search(cfg, out, evaluate=fake_for(cfg)) as search:
        search._run()
    return out


@pytest.fixture(scope="module")
def finished_run(run_dir: Path, tmp_path_factory) -> Path:
    """``run_dir`` with a hall of fame as final models write it (search metrics, test
    figures, ``models/KEY.keras``; the model files are placeholders)."""
    out = tmp_path_factory.mktemp("html-finished") / "finished"
    shutil.copytree(run_dir, out)
    front = read_front(out)
    (out / "models").mkdir()
    members = []
    for i, m in enumerate(front["members"]):
        key = m["key"]
        metrics = {"val_error": m["objectives"]["val_error"], "flops": m["objectives"]["flops"], "params": 12_345 + i,
                   "exec_time": 2.5e-5, "val_loss": 0.71, "epochs": 1}
        (out / "models" / f"{key}.keras").write_bytes(b"placeholder")
        members.append({**m, "metrics": metrics, "status": "ok", "test_accuracy": 0.9, "test_error": 0.1,
                        "test_loss": 0.3, "test_exec_time": 3.2e-4, "final_fit_seconds": 12.5,
                        "model": f"models/{key}.keras"})
    write_json_atomic(out / "hall_of_fame.json", {"objectives": front["objectives"], "members": members})
    return out


def _section(page_text: str, key: str) -> str:
    return page_text.split(f'id="m-{key}"', 1)[1].split("</section>", 1)[0]


#: What a figure's value looks like, by the end of its name (others: a plain number or text).
_UNITS = [(("_error", "accuracy"), r"\d+\.\d\d %"), (("exec_time", "seconds"), r"\d+\.\d\d (us|ms|s|min|h)"),
          (("params", "flops"), r"\d+|\d+\.\d+ [kMG]")]


def _unit_pattern(name: str) -> str | None:
    return next((pattern for ends, pattern in _UNITS if name.endswith(ends)), None)


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


def test_figures_have_units_and_each_appears_once(finished_run: Path) -> None:
    """The member table shows each figure once (an objective is also a search metric),
    every one with its unit, as the front table does."""
    page_text = html_report(finished_run)
    data = read_front(finished_run)
    for m in data["members"]:
        groups = member_figures(m)
        names = [name for _, rows in groups for name, _ in rows]
        assert len(names) == len(set(names)), names
        assert {"val_error", "flops", "exec_time", "params", "test_error", "test_exec_time",
                "final_fit_seconds"} <= set(names)
        assert "model" not in names  # the snippet shows it
        section = _section(page_text, m["key"])
        for _, rows in groups:
            for name, value in rows:
                assert section.count(f"<td>{name}</td>") == 1, name
                pattern = _unit_pattern(name)
                assert pattern is None or re.fullmatch(pattern, value), (name, value)
        assert "<td>exec_time</td><td>25.00 us</td>" in section
        assert "<td>test_exec_time</td><td>320.00 us</td>" in section
        assert "<td>test_error</td><td>10.00 %</td>" in section
        assert "<td>final_fit_seconds</td><td>12.50 s</td>" in section
        assert re.search(r"<td>params</td><td>12\.3 k</td>", section)
    cols, rows = front_table(data)
    assert len(cols) == len(set(cols))
    for row in rows:
        for name, value in zip(cols, row, strict=True):
            pattern = _unit_pattern(name)
            assert pattern is None or re.fullmatch(pattern, value), (name, value)


def test_figure_formats() -> None:
    assert [format_figure("val_error", 0.2222), format_figure("test_accuracy", 1.0)] == ["22.22 %", "100.00 %"]
    assert [format_figure("exec_time", 1.568e-5), format_figure("test_exec_time", 0.0042),
            format_figure("final_fit_seconds", 83.0), format_figure("lineage_seconds", 4000.0)] == \
        ["15.68 us", "4.20 ms", "83.00 s", "66.67 min"]
    assert [format_figure("params", 950), format_figure("params", 64_327), format_figure("flops", 3_200_000)] == \
        ["950", "64.3 k", "3.20 M"]
    assert [format_figure("val_bpc", 1.23456), format_figure("test_perplexity", 87.1), format_figure("epochs", 3)] == \
        ["1.235", "87.1", "3"]
    assert [format_figure("test_solved", True), format_figure("x", None), format_figure("train_path", "stock")] == \
        ["yes", "-", "stock"]


def test_title_names_the_run_and_its_task(finished_run: Path) -> None:
    page_text = html_report(finished_run)
    assert "<title>evokeras run finished: mnist</title>" in page_text
    assert "<h1>evokeras run finished: mnist</h1>" in page_text
    assert "Pareto front of" not in page_text


def test_plots_of_fewer_than_two_points_are_left_out(tmp_path: Path) -> None:
    """One generation: no line by generation (stats, hypervolume), a sentence says why;
    the candidates' scatter is drawn."""
    cfg = small_config(generations=0)
    with Search(cfg, tmp_path / "run", evaluate=fake_for(cfg)) as search:
        search._run()
    page_text = html_report(tmp_path / "run")
    page = Page()
    page.feed(page_text)
    assert len(page.sources) == 1
    assert 'alt="every candidate and the Pareto front (labels: key)"' in page_text
    assert ("Not drawn, as a plot of fewer than 2 points shows nothing: objectives by generation: 1 generation; "
            "hypervolume: 1 generation with a front.") in page_text


def test_load_snippet_of_each_saved_model(finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snippet names the model as the report's caller gave the run directory; a
    member without its model file says so. (That the snippet loads the model:
    tests/results/test_run_dir_state.py.)"""
    monkeypatch.chdir(finished_run.parent)
    page_text = html_report("finished")
    members = read_front(finished_run)["members"]
    for m in members:
        section = _section(page_text, m["key"])
        assert "import evokeras.nets.layers  # registers" in section
        assert f"model = keras.saving.load_model(&quot;finished/models/{m['key']}.keras&quot;)" in section
    (finished_run / members[0]["model"]).rename(tmp_path / "away.keras")
    try:
        section = _section(html_report(finished_run), members[0]["key"])
        assert "load_model" not in section and "is missing from the run directory" in section
    finally:
        (tmp_path / "away.keras").rename(finished_run / members[0]["model"])


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


class _Text(HTMLParser):
    """The text a reader sees: the document's title and its body text, the text of each
    ``<pre>`` block also apart."""

    def __init__(self) -> None:
        super().__init__()
        self.title, self.body, self.pre = "", [], []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("br", "img", "meta", "rect", "line", "path", "hr", "input", "link"):
            self._open.append(tag)
        if tag == "pre":
            self.pre.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            while self._open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if "title" in self._open:
            self.title += data
        elif "style" not in self._open:
            self.body.append(data)
            if "pre" in self._open:
                self.pre[-1] += data


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium")
def test_page_text_in_headless_chromium(finished_run: Path, tmp_path: Path) -> None:
    """What Chromium makes of the page (its DOM, dumped offline): the run's title, the
    figures with their units, the snippet that loads a model."""
    page = tmp_path / "report.html"
    page.write_text(html_report(finished_run))
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "</html>" in proc.stdout, proc.stderr[-2000:]
    text = _Text()
    text.feed(proc.stdout)
    assert text.title == "evokeras run finished: mnist"
    body = " ".join(" ".join(text.body).split())
    assert "evokeras run finished: mnist" in body and "Pareto front of" not in body
    assert "exec_time 25.00 us" in body and "test_error 10.00 %" in body and "params 12.3 k" in body
    key = read_front(finished_run)["members"][0]["key"]
    snippets = [p for p in text.pre if "load_model" in p]
    assert snippets and snippets[0].startswith("import evokeras.nets.layers")
    assert f'model = keras.saving.load_model("{finished_run.as_posix()}/models/{key}.keras")' in snippets[0]


class _OnlyFirst:
    """``fail_if`` of a :class:`FakeEvaluator`: every candidate but the first fails."""

    def __init__(self) -> None:
        self.first: str | None = None

    def __call__(self, key: str) -> bool:
        self.first = self.first or key
        return key != self.first


def test_a_single_candidate_draws_no_plot(tmp_path: Path) -> None:
    """One successful candidate, one member on the front, one generation: every plot
    would be a single point or flat at 1 (the hypervolume); none is drawn, and the
    page says why."""
    cfg = small_config(generations=0, population=4, offspring=4)
    with Search(cfg, tmp_path / "run", evaluate=fake_for(cfg, fail_if=_OnlyFirst())) as search:
        search._run()
    page_text = html_report(tmp_path / "run")
    page = Page()
    page.feed(page_text)
    assert page.sources == []
    assert "candidates and front: 1 successful candidate" in page_text
    assert "hypervolume: one member on the front" in page_text
    assert "objectives by generation: 1 generation" in page_text
