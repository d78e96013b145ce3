"""The documentation site: its API pages render the docstrings' Sphinx roles as links or
code and their doctests as code (``scripts/griffe_docstrings.py``, a griffe extension
that ``mkdocs.yml`` loads), and the strict build passes.

The site is built once (``mkdocs build --strict`` into a temporary directory, a few
seconds); where Debian's headless Chromium is installed two API pages are screenshot.
The extension's rewriting and name resolution are also tested on their own, on a small
synthetic package written to ``tmp_path``.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXTENSION = REPO_ROOT / "scripts" / "griffe_docstrings.py"
ROLES = "func|class|meth|mod|data|attr|exc|obj|ref"
SCREENSHOT_PAGES = ("api/top/index.html", "api/engine/index.html")


def _extension() -> ModuleType:
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("evokeras_docs_griffe_docstrings", EXTENSION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# -- the built site -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO_ROOT / "mkdocs.yml"),
         "-d", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def api_pages(site: Path) -> dict[str, str]:
    pages = {str(p.relative_to(site)): p.read_text(encoding="utf-8")
             for p in sorted((site / "api").glob("*/index.html"))}
    assert len(pages) >= 10, sorted(pages)
    return pages


def _without_code(page: str) -> str:
    """``page`` with the text of its code spans and blocks blanked out (a role shown as
    code, e.g. in a docstring about the syntax, is not a leftover)."""
    return re.sub(r"<code>.*?</code>", "<code></code>", page, flags=re.S)


def literal_roles(page: str) -> list[str]:
    """The Sphinx roles left as text: ``:func:`` followed by its backquote, or by the
    ``<code>`` element Markdown made of the backquoted target."""
    return re.findall(rf":(?:py:)?(?:{ROLES}):(?:`|<code>)", _without_code(page))


def blockquoted_doctests(page: str) -> list[str]:
    """Blockquotes holding ``>>>`` text, and nested blockquotes (Markdown's reading of a
    ``>>>`` line: three quote levels, the prompt gone)."""
    quotes = re.findall(r"<blockquote>(.*?)</blockquote>", page, flags=re.S)
    nested = re.findall(r"<blockquote>\s*<blockquote>", page)
    return [q[:200] for q in quotes if "&gt;&gt;&gt;" in q] + nested


CODE_LIKE = re.compile(
    r"^(?:#|>>>|\.\.\.|(?:import|from)\s+\w"  # comment, prompts, imports
    r"|[\w.\[\]\"', ]+\s*=[^=]"  # an assignment
    r"|[\w.]+[(\[]"  # a call or subscript: f(...), a.b[0]...
    r"|.*\S\s+#\s)")  # code with a trailing comment


def code_headings(page: str) -> list[str]:
    """The ``<h2>``..``<h6>`` headings, other than mkdocstrings' object headings, whose
    text looks like code (a doctest's ``# comment`` line becomes one)."""
    out = []
    for attrs, inner in re.findall(r"<h[2-6]([^>]*)>(.*?)</h[2-6]>", page, flags=re.S):
        if "doc-heading" in attrs:
            continue
        text = html.unescape(re.sub(r"<[^>]+>", "", inner)).replace("\N{PILCROW SIGN}", "").strip()
        if CODE_LIKE.match(text):
            out.append(text)
    return out


def test_api_pages_have_no_literal_sphinx_roles(api_pages: dict[str, str]) -> None:
    left = {name: literal_roles(page) for name, page in api_pages.items()}
    assert {name: found for name, found in left.items() if found} == {}


def test_api_pages_have_no_blockquoted_doctests(api_pages: dict[str, str]) -> None:
    left = {name: blockquoted_doctests(page) for name, page in api_pages.items()}
    assert {name: found for name, found in left.items() if found} == {}


def test_api_pages_have_no_code_headings(api_pages: dict[str, str]) -> None:
    left = {name: code_headings(page) for name, page in api_pages.items()}
    assert {name: found for name, found in left.items() if found} == {}


def test_api_pages_link_roles_and_show_doctests_as_code(api_pages: dict[str, str]) -> None:
    """Roles became autorefs links, doctests highlighted console sessions."""
    every = "".join(api_pages.values())
    assert every.count('class="autorefs autorefs-internal"') > 300
    assert every.count('<span class="gp">&gt;&gt;&gt; </span>') > 20


def test_checks_catch_what_the_unfixed_markup_renders_to() -> None:
    """The three checks fire on the HTML that roles, doctests and doctest comments made."""
    assert literal_roles("<p>:func:<code>search</code> and :class:`x`</p>") == [":func:<code>", ":class:`"]
    assert literal_roles("<p><code>:role:`~a.b.Name`</code> is the syntax</p>") == []
    doctest = "<blockquote>\n<blockquote>\n<blockquote>\n<p>x = 1</p>"
    assert blockquoted_doctests(doctest) and blockquoted_doctests("<blockquote>&gt;&gt;&gt; 1</blockquote>")
    assert blockquoted_doctests("<blockquote><p>A quote.</p></blockquote>") == []
    headings = ('<h3 id="a">study.best_trials   # the Pareto front<a class="headerlink">&para;</a></h3>'
                '<h4 id="b">import evokeras, numpy as np</h4><h2 id="c" class="doc doc-heading">f(x)</h2>'
                '<h2 id="d">Usage</h2><h3 id="e">run = evokeras.search(x, "runs/mine",</h3>')
    assert code_headings(headings) == ["study.best_trials   # the Pareto front",
                                       "import evokeras, numpy as np", 'run = evokeras.search(x, "runs/mine",']


# -- screenshots --------------------------------------------------------------------------------
def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", head
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium")
@pytest.mark.parametrize("page", SCREENSHOT_PAGES)
def test_api_page_screenshot(site: Path, tmp_path: Path, page: str) -> None:
    """Headless Chromium draws the page offline: a full-size, non-blank picture."""
    shot = tmp_path / (page.split("/")[1] + ".png")
    proc = subprocess.run(
        [str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND",
         f"--screenshot={shot}", "--window-size=1200,1600", (site / page).as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    assert _png_size(shot) == (1200, 1600)
    assert shot.stat().st_size > 50_000  # a blank page compresses to ~9 kB
    try:
        from matplotlib.image import imread
    except ImportError:
        return
    assert imread(shot).std() > 0.05  # text, code blocks and the header drawn


# -- the extension on its own -------------------------------------------------------------------
def test_roles_become_links_or_code() -> None:
    ext = _extension()
    links = {"a.b.C": "a.b.C", "a.b.C.m": "a.b.C.m", "search": "p.api.search"}
    text = ("See :class:`~a.b.C`, :class:`a.b.C`, :meth:`title <a.b.C.m>`, :func:`search`,\n"
            ":data:`_PRIVATE`, :mod:`._impl`, :meth:`C.m\n    <a.b.C.m>` and ``:role:`~a.b.C```.")
    out = ext.rewrite_roles(text, lambda role, target: links.get(target))
    assert out == ("See [`C`][a.b.C], [`a.b.C`][a.b.C], [`title`][a.b.C.m], [`search`][p.api.search],\n"
                   "`_PRIVATE`, `_impl`, [`C.m`][a.b.C.m] and ``:role:`~a.b.C```.")


def test_doctests_become_fenced_code() -> None:
    ext = _extension()
    text = textwrap.dedent("""\
        Summary.

        Register one::

            >>> make("x")
            (1, 2)

        Example:
            >>> # a comment, not a heading
            >>> class A:
            ...     pass
        Returns:
            ``:func:`f``` as written, and :func:`f`.""")
    out = ext.rewrite_docstring(text, lambda role, target: "m.f")
    assert out == textwrap.dedent("""\
        Summary.

        Register one:

        ```pycon
        >>> make("x")
        (1, 2)
        ```

        Example:
            ```pycon
            >>> # a comment, not a heading
            >>> class A:
            ...     pass
            ```

        Returns:
            ``:func:`f``` as written, and [`f`][m.f].""")


def test_grouped_items_are_split() -> None:
    ext = _extension()
    text = textwrap.dedent("""\
        Not an item, a, b: text.

        Args:
            x_train, y_train: training arrays,
                two of them.
            seed (int): the seed.
        Attributes:
            cxpb, mutpb (float): probabilities.
        Returns:
            a, b: left as written.""")
    assert ext.split_grouped_items(text) == textwrap.dedent("""\
        Not an item, a, b: text.

        Args:
            x_train: training arrays,
                two of them.
            y_train: training arrays,
                two of them.
            seed (int): the seed.
        Attributes:
            cxpb (float): probabilities.
            mutpb (float): probabilities.
        Returns:
            a, b: left as written.""")


def _write_package(root: Path) -> None:
    files = {
        "src/pkg/__init__.py": '''
            """Top: :func:`search`."""
            _LAZY = {"search": "pkg.api"}
        ''',
        "src/pkg/api.py": '''
            """The API: :func:`search`, :meth:`~pkg.engine.Engine.run`,
            :meth:`go <pkg.engine.Engine.run>`, :data:`_PRIVATE`, :class:`pathlib.Path`,
            :mod:`pkg.hidden`, :class:`Engine`, :func:`pkg.decode`, :mod:`pkg.decode`.

            Example:
                >>> search(1)
                2
            """
            from pkg.engine import Engine
            _PRIVATE = 1
            def search(x):
                """Search with an :class:`Engine` (:meth:`Engine.run`)."""
        ''',
        "src/pkg/engine.py": '''
            """Engines."""
            class Engine:
                """An engine: :meth:`run` runs it, :meth:`_step` is private."""
                def run(self):
                    """Run; see :class:`Engine`, :func:`search` and :mod:`pkg.api`."""
                def _step(self):
                    """Private."""
        ''',
        "src/pkg/decode.py": '''
            """Decoding."""
            def decode(x):
                """Decode."""
        ''',
        "src/pkg/hidden.py": '''
            """Not in the docs: :func:`helper`."""
            def helper():
                """Help."""
        ''',
        "docs/api.md": "# API\n\n::: pkg.api\n::: pkg.engine\n::: pkg.decode\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def test_short_names_resolve_to_rendered_objects(tmp_path: Path) -> None:
    """Names are looked up in the object, its class, module, packages and the lazy
    re-exports; a link is made only to what the docs render, code is shown otherwise."""
    ext = _extension()
    import griffe

    _write_package(tmp_path)
    extension = ext.SphinxRoles(package="pkg", docs_dir=str(tmp_path / "docs"))
    pkg = griffe.load("pkg", search_paths=[str(tmp_path / "src")],
                      extensions=griffe.load_extensions(extension))

    def doc(path: str) -> str:
        return pkg.modules_collection[path].docstring.value

    assert doc("pkg.api").startswith(
        "The API: [`search`][pkg.api.search], [`run`][pkg.engine.Engine.run],\n"
        "[`go`][pkg.engine.Engine.run], `_PRIVATE`, `pathlib.Path`,\n"
        "`pkg.hidden`, [`Engine`][pkg.engine.Engine], [`pkg.decode`][pkg.decode.decode],"
        " [`pkg.decode`][pkg.decode].")
    assert "```pycon\n    >>> search(1)\n    2\n    ```" in doc("pkg.api")
    assert doc("pkg.api.search") == "Search with an [`Engine`][pkg.engine.Engine] ([`Engine.run`][pkg.engine.Engine.run])."
    assert doc("pkg.engine.Engine") == "An engine: [`run`][pkg.engine.Engine.run] runs it, `_step` is private."
    assert doc("pkg.engine.Engine.run") == (
        "Run; see [`Engine`][pkg.engine.Engine], [`search`][pkg.api.search] and [`pkg.api`][pkg.api].")
    assert doc("pkg") == "Top: [`search`][pkg.api.search]."
    assert doc("pkg.hidden") == "Not in the docs: `helper`."  # found, but not rendered
