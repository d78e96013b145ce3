"""Griffe extension for the docs build: Sphinx-flavoured docstrings as mkdocstrings Markdown.

The docstrings of ``evokeras`` are Google style with Sphinx cross-reference roles and
doctest examples. mkdocstrings renders Markdown, where a role is literal text and a
``>>>`` line is a triple blockquote (and ``>>> # comment`` a heading). Once griffe has
loaded the whole package, this extension rewrites every docstring of it, in memory only:

* a role becomes an autorefs link when its target is an object the site renders
  (``:class:`~a.b.C``` -> ``[`C`][a.b.C]``, ``:func:`a.b.f``` -> ``[`a.b.f`][a.b.f]``,
  ``:meth:`title <a.b.C.m>``` -> ``[`title`][a.b.C.m]``), and plain inline code otherwise
  (private, external or unknown names), so a strict build has no unresolved link. A name
  that is not fully qualified is looked up the way Sphinx does: in the docstring's own
  object, its class, its module, the packages above, and the package's lazy re-exports
  (the ``_LAZY`` table of its ``__init__``).
* a doctest block (``>>>``/``...`` lines and their output, up to a blank line) becomes a
  fenced ``pycon`` code block; a reST literal-block marker (``text::``) becomes ``text:``.
* an ``a, b: text`` item of an ``Args:`` or ``Attributes:`` section becomes one item per
  name (griffe's Google parser reads one name an item).

"Rendered" follows the site's mkdocstrings options: the ``::: identifier`` directives of
the Markdown pages under ``docs_dir``, their members except submodules, private names
(filter ``!^_``), members without docstrings and imported names not exported.

Used in ``mkdocs.yml`` (``plugins: mkdocstrings: handlers: python: options:``)::

    extensions:
      - scripts/griffe_docstrings.py:SphinxRoles
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import griffe

__all__ = ["SphinxRoles", "fence_doctests", "rewrite_docstring", "rewrite_roles", "split_grouped_items"]

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
DOCTEST_LANGUAGE = "pycon"  # Pygments' Python console lexer: prompts and output told apart

ROLE = re.compile(
    r":(?:py:)?(?P<role>func|class|meth|mod|data|attr|exc|obj|const|any|ref):"
    r"`(?P<body>[^`]+)`")
CODE_SPAN = re.compile(r"(`{2,})(?:(?!\n[ \t]*\n).)+?\1(?!`)", re.S)  # ``literal`` text
TITLED = re.compile(r"(?P<title>.+?)\s*<(?P<target>[^<>]+)>$", re.S)
DIRECTIVE = re.compile(r"^:::\s+(?P<identifier>[\w.]+)\s*$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})")
SECTION = re.compile(
    r"^\s*(?:args|arguments|params|parameters|attributes|keyword args|keyword arguments"
    r"|other args|other arguments|other params|other parameters):\s*$", re.I)
GROUPED_ITEM = re.compile(r"^(?P<pad>\s*)(?P<names>\w+(?:\s*,\s*\w+)+)(?P<rest>\s*(?:\([^()]*\))?:(?:\s.*)?)$")
DOCTEST_START = ">>>"

#: The griffe kinds each role's target should be, most likely first.
ROLE_KINDS = {
    "func": ("function",), "meth": ("function",), "class": ("class",), "exc": ("class",),
    "mod": ("module",), "data": ("attribute",), "const": ("attribute",),
    "attr": ("attribute", "function"),
}

Found = griffe.Object | griffe.Alias


# -- doctest blocks -----------------------------------------------------------------------------
def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _previous_text(out: list[str]) -> tuple[str | None, bool]:
    """The last non-blank line written so far, and whether blank lines follow it."""
    for back, line in enumerate(reversed(out)):
        if line.strip():
            return line, back > 0
    return None, bool(out)


def _doctest_block(lines: list[str], start: int) -> int:
    """The end (exclusive) of the doctest block that starts at ``lines[start]``: its
    prompts, continuation and output lines, up to a blank or less indented line."""
    indent = _indent(lines[start])
    end = start + 1
    while end < len(lines) and lines[end].strip() and _indent(lines[end]) >= indent:
        end += 1
    return end


def _fenced(block: list[str], out: list[str]) -> list[str]:
    """``block`` (doctest lines) as a fenced code block, placed after ``out``.

    Inside a section or item (the block follows a less indented line directly) the
    indentation stays: griffe dedents the section. After ``text::`` and a blank line,
    where reST has a literal block, the fence moves out to that paragraph's level."""
    indent = _indent(block[0])
    previous, blank_before = _previous_text(out)
    if previous is not None and blank_before and _indent(previous) < indent \
            and previous.rstrip().endswith(":"):
        indent = _indent(previous)
    pad = " " * indent
    body = [pad + line[_indent(block[0]):] for line in block]
    lead = [""] if out and out[-1].strip() and _indent(out[-1]) >= indent else []
    return [*lead, f"{pad}```{DOCTEST_LANGUAGE}", *body, f"{pad}```"]


def _literal_marker(line: str, following: Iterable[str]) -> str:
    """``text::`` -> ``text:`` (and a lone ``::`` -> nothing) when an indented block
    follows, as reST displays it."""
    stripped = line.rstrip()
    if not stripped.endswith("::") or stripped.endswith(":::"):
        return line
    nxt = next((f for f in following if f.strip()), None)
    if nxt is None or _indent(nxt) <= _indent(line):
        return line
    return "" if stripped.strip() == "::" else stripped[:-1]


def fence_doctests(text: str) -> str:
    """``text`` with its doctest blocks as fenced code and reST ``::`` markers as ``:``.

    Lines inside existing fenced code blocks are left alone."""
    lines = text.split("\n")
    out: list[str] = []
    fence: str | None = None
    i = 0
    while i < len(lines):
        line, stripped = lines[i], lines[i].strip()
        opening = FENCE.match(stripped)
        if fence is not None:
            fence = None if stripped.startswith(fence) and not stripped.strip("`~") else fence
            out.append(line)
        elif opening:
            fence = opening["fence"]
            out.append(line)
        elif stripped.startswith(DOCTEST_START):
            end = _doctest_block(lines, i)
            out.extend(_fenced(lines[i:end], out))
            if end < len(lines) and lines[end].strip():
                out.append("")  # a less indented line right after the block
            i = end
            continue
        else:
            out.append(_literal_marker(line, lines[i + 1:i + 3]))
        i += 1
    return "\n".join(out)


# -- grouped items ------------------------------------------------------------------------------
def _item_end(lines: list[str], start: int, indent: int) -> int:
    """The end (exclusive) of the item at ``lines[start]``: its more indented lines."""
    end = start + 1
    while end < len(lines) and lines[end].strip() and _indent(lines[end]) > indent:
        end += 1
    return end


def split_grouped_items(text: str) -> str:
    """``a, b: text`` items of ``Args:``/``Attributes:`` sections as one item per name
    (griffe reads one name an item, and would show ``a,`` with the type ``b``)."""
    lines = text.split("\n")
    out: list[str] = []
    section: int | None = None  # the indentation of the current section's items
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() and section is not None and _indent(line) < section:
            section = None
        if SECTION.match(line):
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            section = _indent(nxt) if nxt.strip() and _indent(nxt) > _indent(line) else None
        grouped = GROUPED_ITEM.match(line) if section is not None and _indent(line) == section else None
        if grouped is None:
            out.append(line)
            i += 1
            continue
        end = _item_end(lines, i, section)  # type: ignore[arg-type]
        for name in re.split(r"\s*,\s*", grouped["names"]):
            out.extend([f"{grouped['pad']}{name}{grouped['rest']}", *lines[i + 1:end]])
        i = end
    return "\n".join(out)


# -- Sphinx roles -------------------------------------------------------------------------------
def _final(found: Found) -> griffe.Object | None:
    if not found.is_alias:
        return found  # type: ignore[return-value]
    try:
        return found.final_target  # type: ignore[union-attr]
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None  # imported from a package griffe did not load


def _scopes(owner: griffe.Object) -> Iterator[griffe.Object]:
    """Where a short name is looked up: the docstring's object, then each parent up to
    the top-level package (its class, its module, the packages above)."""
    scope: griffe.Object | None = owner
    while scope is not None:
        yield scope
        scope = scope.parent


def _member(scope: griffe.Object, name: str) -> Found | None:
    try:
        return scope[name]
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _lazy_exports(package: griffe.Object) -> dict[str, str]:
    """The package's ``_LAZY`` table (public name -> module), when it has a literal one."""
    table = package.members.get("_LAZY")
    if table is None or table.is_alias or getattr(table, "value", None) is None:
        return {}
    try:
        value = ast.literal_eval(str(table.value))
    except (ValueError, SyntaxError):
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


class Resolver:
    """Role targets -> the identifiers of rendered objects (or ``None``)."""

    def __init__(self, package: griffe.Module, rendered: set[str]) -> None:
        self.package = package
        self.rendered = rendered
        self.lazy = _lazy_exports(package)

    def _candidates(self, target: str, owner: griffe.Object) -> Iterator[Found]:
        name = target.lstrip(".")
        head = name.split(".", 1)[0]
        if head == self.package.name:
            found = _member(self.package, name.partition(".")[2]) if "." in name else self.package
            if found is not None:
                yield found
        for scope in _scopes(owner):
            found = _member(scope, name)
            if found is not None:
                yield found
        if head in self.lazy:
            module = _member(self.package, self.lazy[head].partition(".")[2])
            found = _member(module, name) if module is not None else None
            if found is not None:
                yield found

    def _identifier(self, found: Found) -> str | None:
        final = _final(found)
        for path in (final.path if final is not None else None, found.path):
            if path in self.rendered:
                return path
        return None

    def resolve(self, role: str, target: str, owner: griffe.Object) -> str | None:
        """The identifier to link ``target`` (a ``role`` in ``owner``'s docstring) to:
        the first candidate of the role's kind, else the first candidate at all. A
        module found for a function or class role stands for its namesake member
        (``pkg.decode`` is the function that ``pkg/__init__`` imports from ``pkg/decode``)."""
        kinds = ROLE_KINDS.get(role, ())
        matches: list[Found] = []
        for found in self._candidates(target, owner):
            final = _final(found)
            if final is not None and final.is_module and kinds and "module" not in kinds:
                found = _member(final, final.name) or found
                final = _final(found)
            if final is not None and (not kinds or final.kind.value in kinds):
                return self._identifier(found)
            matches.append(found)
        return self._identifier(matches[0]) if matches else None


def _display(body: str) -> tuple[str, str]:
    """A role's text and target: ``title <a.b>`` -> (title, a.b); ``~a.b.C`` -> (C, a.b.C)."""
    body = " ".join(body.split())
    titled = TITLED.match(body)
    if titled:
        return titled["title"], titled["target"].lstrip("~!")
    target = body.lstrip("!")
    if target.startswith("~"):
        target = target[1:]
        return target.rsplit(".", 1)[-1], target
    return target.lstrip("."), target


def rewrite_roles(text: str, link: Any) -> str:
    """``text`` with each Sphinx role outside ````literal```` spans replaced by
    ``[`title`][identifier]`` where ``link(role, target)`` returns an identifier, and by
    ```title``` where it returns ``None``."""

    def one(match: re.Match[str]) -> str:
        title, target = _display(match["body"])
        identifier = None if match["role"] == "ref" else link(match["role"], target)
        return f"[`{title}`][{identifier}]" if identifier else f"`{title}`"

    pieces: list[str] = []
    last = 0
    for span in CODE_SPAN.finditer(text):
        pieces.extend((ROLE.sub(one, text[last:span.start()]), span.group()))
        last = span.end()
    pieces.append(ROLE.sub(one, text[last:]))
    return "".join(pieces)


def rewrite_docstring(text: str, link: Any) -> str:
    """Doctests fenced, grouped items split, then roles rewritten (not inside fences)."""
    text = split_grouped_items(fence_doctests(text))
    parts = re.split(r"(^[ \t]*```[\s\S]*?^[ \t]*```[ \t]*$)", text, flags=re.M)
    return "".join(part if i % 2 else rewrite_roles(part, link) for i, part in enumerate(parts))


# -- what the site renders ----------------------------------------------------------------------
def directives(docs_dir: Path) -> list[str]:
    """The identifiers of the ``::: identifier`` lines of the Markdown pages."""
    found: list[str] = []
    for page in sorted(docs_dir.rglob("*.md")):
        for line in page.read_text(encoding="utf-8").splitlines():
            match = DIRECTIVE.match(line)
            if match:
                found.append(match["identifier"])
    return found


def _shown(member: Found) -> bool:
    """Whether mkdocstrings shows ``member`` of a rendered object with the site's options
    (``filters: ["!^_"]``, ``show_if_no_docstring: false``, no submodules)."""
    try:
        return (not member.name.startswith("_") and not member.is_module
                and not member.inherited and member.has_docstrings
                and (not member.is_alias or member.is_public))
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False


def _collect(obj: Found, out: set[str]) -> None:
    out.add(obj.path)
    final = _final(obj)
    if final is None:
        return
    out.add(final.path)
    try:
        members = list(obj.members.values())
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return
    for member in members:
        if _shown(member):
            _collect(member, out)


def rendered_paths(package: griffe.Module, identifiers: Iterable[str]) -> set[str]:
    """The paths (and canonical paths) of the objects of ``package`` that the site renders."""
    out: set[str] = set()
    for identifier in identifiers:
        head, _, rest = identifier.partition(".")
        if head != package.name:
            continue
        obj = _member(package, rest) if rest else package
        if obj is not None:
            _collect(obj, out)
    return out


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)  # type: ignore[arg-type]


class SphinxRoles(griffe.Extension):
    """Rewrite the docstrings of ``package`` once griffe has loaded it (see the module)."""

    def __init__(self, package: str = "evokeras", docs_dir: str | None = None) -> None:
        super().__init__()
        self.package = package
        self.docs_dir = Path(docs_dir) if docs_dir else DOCS_DIR
        self.done: set[int] = set()

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != self.package or id(pkg) in self.done:
            return
        self.done.add(id(pkg))
        resolver = Resolver(pkg, rendered_paths(pkg, directives(self.docs_dir)))
        for obj in _objects(pkg):
            docstring = obj.docstring
            if docstring is None:
                continue
            docstring.value = rewrite_docstring(
                docstring.value, lambda role, target, owner=obj: resolver.resolve(role, target, owner))
            docstring.__dict__.pop("parsed", None)  # parse the new text, should it be cached

    on_package_loaded = on_package  # the same event in older griffe versions
