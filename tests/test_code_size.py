"""The package's size limits, checked on its source with :mod:`ast` (nothing is imported).

* no module over :data:`MAX_MODULE_LINES` lines (its lines, blank and comment lines included);
* no class over :data:`MAX_CLASS_LINES` lines, nested classes included;
* no function or method over :data:`MAX_FUNCTION_LINES` lines, nested functions included.

A class or function counts from its ``class``/``def`` line to its last line
(``end_lineno - lineno + 1``: docstring included, decorators not). Every offence is
listed as ``path:line name (N lines)``, the name qualified by the classes and functions
around it. Split an offender by meaning (helpers whose names say what they do), not at
the limit. The checker is tested on a small synthetic package written to ``tmp_path``.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "evokeras"

MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 80


# -- the checker --------------------------------------------------------------------------------
def _definitions(
    node: ast.AST, prefix: str = ""
) -> Iterator[tuple[str, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every class and function inside ``node`` (at any depth, in source order) with its
    name qualified by the classes and functions around it."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{child.name}"
            yield name, child
            yield from _definitions(child, f"{name}.")
        else:
            yield from _definitions(child, prefix)


def _lines(node: ast.AST) -> int:
    end = getattr(node, "end_lineno", None)
    assert end is not None, ast.dump(node)
    return int(end) - int(getattr(node, "lineno", end)) + 1


def size_offences(src_root: Path, package: str, *, max_module: int = MAX_MODULE_LINES,
                  max_class: int = MAX_CLASS_LINES, max_function: int = MAX_FUNCTION_LINES
                  ) -> dict[str, list[str]]:
    """The offences of every module of ``package`` (a directory under ``src_root``) by
    kind (``"module"``, ``"class"``, ``"function"``), each ``path:line name (N lines)``."""
    out: dict[str, list[str]] = {"module": [], "class": [], "function": []}
    for path in sorted((src_root / package).rglob("*.py")):
        rel = path.relative_to(src_root)
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n > max_module:
            module = ".".join(rel.with_suffix("").parts)
            out["module"].append(f"{rel}:1 {module} ({n} lines)")
        tree = ast.parse(text, filename=str(path))
        for name, node in _definitions(tree):
            kind, limit = ("class", max_class) if isinstance(node, ast.ClassDef) else ("function", max_function)
            n = _lines(node)
            if n > limit:
                out[kind].append(f"{rel}:{node.lineno} {name} ({n} lines)")
    return out


def _fail(title: str, offences: list[str]) -> None:
    if offences:
        pytest.fail(f"{title} ({len(offences)}):\n" + "\n".join(offences), pytrace=False)


# -- the package ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def offences() -> dict[str, list[str]]:
    assert (REPO_ROOT / PACKAGE / "genomes" / "network.py").is_file()
    return size_offences(REPO_ROOT, PACKAGE)


def test_no_module_over_the_limit(offences: dict[str, list[str]]) -> None:
    _fail(f"modules over {MAX_MODULE_LINES} lines (split them by role)", offences["module"])


def test_no_class_over_the_limit(offences: dict[str, list[str]]) -> None:
    _fail(f"classes over {MAX_CLASS_LINES} lines", offences["class"])


def test_no_function_over_the_limit(offences: dict[str, list[str]]) -> None:
    _fail(f"functions and methods over {MAX_FUNCTION_LINES} lines (docstring included)",
          offences["function"])


# -- the checker on a synthetic package -------------------------------------------------------------
def _write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_checker_finds_every_kind_of_offence(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/small.py": '''\
            def f():
                """Three lines."""
                return 1
            ''',
        "pkg/sub/big.py": '''\
            import functools


            class Big:
                """A class of seven lines."""

                @functools.cache
                def method(self):
                    x = 1
                    return x


            def outer():
                def inner():
                    a = 1
                    b = 2
                    return a + b
                return inner
            ''',
    })
    found = size_offences(tmp_path, "pkg", max_module=17, max_class=6, max_function=3)
    assert found == {
        "module": ["pkg/sub/big.py:1 pkg.sub.big (18 lines)"],
        "class": ["pkg/sub/big.py:4 Big (7 lines)"],
        # the method's decorator does not count: 3 lines, not 4
        "function": ["pkg/sub/big.py:13 outer (6 lines)", "pkg/sub/big.py:14 outer.inner (4 lines)"],
    }
    # at the limits nothing is reported
    assert size_offences(tmp_path, "pkg", max_module=18, max_class=7, max_function=6) == {
        "module": [], "class": [], "function": [],
    }
    assert size_offences(tmp_path, "pkg", max_function=2)["function"] == [
        "pkg/small.py:1 f (3 lines)",
        "pkg/sub/big.py:8 Big.method (3 lines)",
        "pkg/sub/big.py:13 outer (6 lines)",
        "pkg/sub/big.py:14 outer.inner (4 lines)",
    ]
