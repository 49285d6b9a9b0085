"""Architecture rules of the petseg package, read from its source with :mod:`ast`.

Four rules, each a test:

- **No import cycle.** Every ``import petseg.x`` / ``from petseg.x import y`` in the package
  is an edge from the importing module to the module named (``y`` when ``petseg.x.y`` is
  itself a module). Module-level imports and imports deferred into a function body are
  reported separately, and a cycle through a deferred import counts too: deferring an
  import only postpones the cycle to the first call, it does not remove the two-way
  dependency. Imports under ``if TYPE_CHECKING:`` never run and are not edges. A
  package's ``__init__`` runs before its submodules, but an edge goes only to the module
  named; each ``__init__`` is checked as a module in its own right.
- **No private name crosses a module boundary**: no ``from petseg.a import _x`` outside
  ``petseg.a``, and no private module (``petseg.pkg._m``) imported from outside ``petseg.pkg``.
- **No function longer than** :data:`MAX_FUNCTION_LINES` lines (``def`` line to last line;
  nested functions and methods count on their own).
- **Every public function or class listed in a module's** ``__all__`` **documents its
  parameters** in a numpydoc ``Parameters`` section (``Attributes`` for a dataclass or
  named tuple), one ``name : type`` entry for each parameter.

The ``*_PENDING`` constants name what still breaks a rule in modules that are being
reworked elsewhere; each entry is an offender to fix, after which it is removed.

``python tests/test_architecture.py`` prints the docstring coverage of the package's
public top-level definitions: how many have a ``Parameters`` section, and how many of
those that take parameters document every one.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

import petseg

#: Longest function allowed, in lines (``def`` line to last line).
MAX_FUNCTION_LINES = 100

#: Import cycles (through module-level imports) still open, as sorted module tuples.
MODULE_LEVEL_CYCLES_PENDING: frozenset[tuple[str, ...]] = frozenset()

#: Import cycles that close only through an import deferred into a function.
DEFERRED_CYCLES_PENDING: frozenset[tuple[str, ...]] = frozenset()

#: ``importer: module.name`` for private names still imported across modules.
PRIVATE_IMPORTS_PENDING: frozenset[str] = frozenset()

#: ``module.function`` still longer than :data:`MAX_FUNCTION_LINES`.
LONG_FUNCTIONS_PENDING: frozenset[str] = frozenset()

#: ``module.name`` of public definitions whose parameters are not all documented.
UNDOCUMENTED_PENDING: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Module:
    """One source file of the package.

    Parameters
    ----------
    name : str
        Dotted module name (``petseg.io.nifti``; a package is named by its folder).
    path : Path
        The ``.py`` file.
    tree : ast.Module
        Its parsed source.
    """

    name: str
    path: Path
    tree: ast.Module

    @property
    def package(self) -> str:
        """The package the module's relative imports start from."""
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Edge:
    """One import of a petseg module by another.

    Parameters
    ----------
    source : str
        The importing module.
    target : str
        The imported module.
    names : tuple of str
        The names taken with ``from target import …`` (empty for ``import target``).
    line : int
        Line of the import statement in ``source``.
    deferred : bool
        True when the import sits inside a function body (runs at the first call).
    """

    source: str
    target: str
    names: tuple[str, ...]
    line: int
    deferred: bool


@cache
def package_modules() -> dict[str, Module]:
    """Every module of the installed petseg source tree, by dotted name."""
    root = Path(petseg.__file__).resolve().parent
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        modules[name] = Module(name, path, ast.parse(path.read_text(), str(path)))
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_statements(
    body: list[ast.stmt], deferred: bool = False
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Import statements that run, each with whether it sits inside a function."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, deferred
        elif isinstance(node, ast.If) and _is_type_checking(node):
            yield from _import_statements(node.orelse, deferred)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _import_statements(node.body, True)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    yield from _import_statements(children, deferred)  # type: ignore[arg-type]


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.package.split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _edges_of(module: Module, modules: dict[str, Module]) -> Iterator[Edge]:
    for node, deferred in _import_statements(module.tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield Edge(module.name, alias.name, (), node.lineno, deferred)
            continue
        origin = _absolute(module, node)
        if origin not in modules:
            continue
        for alias in node.names:
            submodule = f"{origin}.{alias.name}"
            target = submodule if submodule in modules else origin
            yield Edge(module.name, target, (alias.name,), node.lineno, deferred)


@cache
def import_edges() -> tuple[Edge, ...]:
    """Every import of one petseg module by another, in source order."""
    modules = package_modules()
    return tuple(
        edge
        for module in modules.values()
        for edge in _edges_of(module, modules)
        if edge.target != edge.source
    )


def import_cycles(edges: tuple[Edge, ...]) -> set[tuple[str, ...]]:
    """The strongly connected groups of modules (each a sorted tuple) in an import graph.

    Parameters
    ----------
    edges : tuple of Edge
        The graph; only ``source`` and ``target`` are read.

    Returns
    -------
    set of tuple of str
        Each group of two or more modules that import one another, directly or not.
    """
    names = sorted({e.source for e in edges} | {e.target for e in edges})
    index = {name: i for i, name in enumerate(names)}
    rows = [index[e.source] for e in edges]
    cols = [index[e.target] for e in edges]
    graph = coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(len(names), len(names)))
    _, group = connected_components(graph, directed=True, connection="strong")
    members: dict[int, list[str]] = {}
    for name, g in zip(names, group, strict=True):
        members.setdefault(int(g), []).append(name)
    return {tuple(sorted(m)) for m in members.values() if len(m) > 1}


def _describe(cycle: tuple[str, ...], edges: tuple[Edge, ...]) -> str:
    inside = set(cycle)
    lines = [
        f"  {e.source}:{e.line} -> {e.target}{' (deferred)' if e.deferred else ''}"
        for e in edges
        if e.source in inside and e.target in inside
    ]
    return " <-> ".join(cycle) + "\n" + "\n".join(dict.fromkeys(lines))


def test_no_import_cycle_through_module_level_imports() -> None:
    edges = tuple(e for e in import_edges() if not e.deferred)
    new = import_cycles(edges) - MODULE_LEVEL_CYCLES_PENDING
    assert not new, "import cycles:\n" + "\n".join(_describe(c, edges) for c in sorted(new))


def test_no_import_cycle_through_deferred_imports() -> None:
    edges = import_edges()
    module_level = import_cycles(tuple(e for e in edges if not e.deferred))
    new = import_cycles(edges) - module_level - DEFERRED_CYCLES_PENDING
    assert not new, "import cycles closed by a deferred import:\n" + "\n".join(
        _describe(c, edges) for c in sorted(new)
    )


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports() -> list[str]:
    """``importer: module.name`` for each private name or module imported across modules.

    Returns
    -------
    list of str
        A private name imported from another module, or a private module imported from
        outside the package that holds it.
    """
    found = []
    for edge in import_edges():
        for name in edge.names:
            if _is_private(name) and f"{edge.target}.{name}" not in package_modules():
                found.append(f"{edge.source}: {edge.target}.{name}")
        parent, _, last = edge.target.rpartition(".")
        inside = edge.source == parent or edge.source.startswith(parent + ".")
        if _is_private(last) and not inside:
            found.append(f"{edge.source}: {edge.target}")
    return sorted(set(found))


def test_no_private_name_imported_across_modules() -> None:
    new = [p for p in private_imports() if p not in PRIVATE_IMPORTS_PENDING]
    assert not new, (
        "private names imported across modules (make them public or move them):\n" + "\n".join(new)
    )


def _functions(
    node: ast.AST, prefix: str
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}.{child.name}", child
            yield from _functions(child, f"{prefix}.{child.name}")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}.{child.name}")
        else:
            yield from _functions(child, prefix)


def function_lengths() -> dict[str, int]:
    """Length in lines (``def`` line to last line) of every function and method.

    Returns
    -------
    dict of str to int
        ``module.qualified_name`` → number of lines.
    """
    return {
        name: (func.end_lineno or func.lineno) - func.lineno + 1
        for module in package_modules().values()
        for name, func in _functions(module.tree, module.name)
    }


def test_no_function_longer_than_the_limit() -> None:
    long = {
        name: n
        for name, n in function_lengths().items()
        if n > MAX_FUNCTION_LINES and name not in LONG_FUNCTIONS_PENDING
    }
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split along their seams): {long}"


_SECTION = re.compile(r"^\s*(\w[\w ]*)\n\s*-{3,}\s*$", re.MULTILINE)
_ENTRY = re.compile(r"^(\s*)(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*:\s*(\S.*)?$")


def docstring_sections(doc: str) -> dict[str, str]:
    """The numpydoc sections of a docstring, by title.

    Parameters
    ----------
    doc : str
        A docstring as :func:`ast.get_docstring` returns it (indentation removed).

    Returns
    -------
    dict of str to str
        Section title (``Parameters``, ``Returns``, …) → the section's text.
    """
    heads = list(_SECTION.finditer(doc))
    ends = [m.start() for m in heads[1:]] + [len(doc)] * bool(heads)
    return {m.group(1).strip(): doc[m.end() : end] for m, end in zip(heads, ends, strict=True)}


def documented_names(section: str) -> dict[str, str]:
    """Entries ``name : type`` of a Parameters or Attributes section.

    Parameters
    ----------
    section : str
        The section's text, without its title.

    Returns
    -------
    dict of str to str
        Each documented name (``*args`` spelt without stars) → its type text (may be empty).
    """
    lines = section.splitlines()
    indent = min((len(s) - len(s.lstrip()) for s in lines if s.strip()), default=0)
    entries = {}
    for line in lines:
        match = _ENTRY.match(line)
        if match and len(match.group(1)) == indent:
            for name in match.group(2).split(","):
                entries[name.strip().lstrip("*")] = (match.group(3) or "").strip()
    return entries


def _exported(module: Module) -> set[str]:
    for node in module.tree.body:
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = node.value  # type: ignore[attr-defined]
            if isinstance(value, ast.List | ast.Tuple):
                return {e.value for e in value.elts if isinstance(e, ast.Constant)}
    return set()


def _signature_names(func: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> list[str]:
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    if method and positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    names = [a.arg for a in (*positional, *args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return names


def _class_fields(node: ast.ClassDef) -> tuple[str, list[str]]:
    """The section a class documents and the names it must hold there."""
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            return "Parameters", _signature_names(item, method=True)
    record = any("dataclass" in ast.unparse(d) for d in node.decorator_list) or any(
        ast.unparse(b).endswith("NamedTuple") for b in node.bases
    )
    if not record:
        return "Parameters", []
    fields = [
        item.target.id
        for item in node.body
        if isinstance(item, ast.AnnAssign)
        and isinstance(item.target, ast.Name)
        and not item.target.id.startswith("_")
        and "ClassVar" not in ast.unparse(item.annotation)
    ]
    return "Attributes", fields


def missing_parameters(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[str]:
    """Parameters of a public function or class that its docstring does not document.

    Parameters
    ----------
    node : ast.FunctionDef or ast.ClassDef
        The definition.

    Returns
    -------
    list of str
        Names missing from the ``Parameters`` section (``Parameters`` or ``Attributes``
        for a dataclass or named tuple), or with an empty type; empty when all are there.
    """
    if isinstance(node, ast.ClassDef):
        section, names = _class_fields(node)
        allowed = {section, "Parameters"}
    else:
        names, allowed = _signature_names(node, method=False), {"Parameters"}
    if not names:
        return []
    sections = docstring_sections(ast.get_docstring(node) or "")
    documented: dict[str, str] = {}
    for title in allowed & sections.keys():
        documented |= documented_names(sections[title])
    return [n for n in names if not documented.get(n)]


def undocumented() -> dict[str, list[str]]:
    """Public definitions (in a module's ``__all__``) with undocumented parameters.

    Returns
    -------
    dict of str to list of str
        ``module.name`` → the parameters its docstring lacks.
    """
    found = {}
    for module in package_modules().values():
        exported = _exported(module)
        for node in module.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if node.name in exported and (missing := missing_parameters(node)):
                    found[f"{module.name}.{node.name}"] = missing
    return found


def test_public_definitions_document_their_parameters() -> None:
    new = {k: v for k, v in undocumented().items() if k not in UNDOCUMENTED_PENDING}
    assert not new, (
        "public definitions without a numpydoc entry for these parameters:\n"
        + "\n".join(f"  {k}: {', '.join(v)}" for k, v in sorted(new.items()))
    )


def test_the_docstring_reader_on_a_literal_docstring() -> None:
    doc = "Summary.\n\nParameters\n----------\nsuv : (Z, Y, X) ndarray\n    SUVbw in g/mL.\nx, y : float\n*args : Any\n\nReturns\n-------\nint\n    Count.\n"
    sections = docstring_sections(doc)
    assert list(sections) == ["Parameters", "Returns"]
    assert documented_names(sections["Parameters"]) == {
        "suv": "(Z, Y, X) ndarray",
        "x": "float",
        "y": "float",
        "args": "Any",
    }
    tree = ast.parse(f"def f(suv, x, y, *args, z=1):\n    '''{doc}'''\n")
    assert missing_parameters(tree.body[0]) == ["z"]  # type: ignore[arg-type]


def test_the_cycle_finder_on_a_hand_drawn_graph() -> None:
    edges = tuple(
        Edge(a, b, (), 1, False)
        for a, b in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("e", "e")]
    )
    assert import_cycles(edges) == {("a", "b", "c")}


def docstring_coverage() -> dict[str, int]:
    """Docstring counts over the package's public top-level functions and classes.

    Returns
    -------
    dict of str to int
        ``public``: all of them; ``parameters_section``: those with a ``Parameters``
        section; ``taking_parameters``: those that take parameters (class fields
        count); ``documented``: of the latter, those that document every one.
    """
    counts = dict.fromkeys(("public", "parameters_section", "taking_parameters", "documented"), 0)
    for module in package_modules().values():
        for node in module.tree.body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if node.name.startswith("_"):
                continue
            counts["public"] += 1
            counts["parameters_section"] += "Parameters" in docstring_sections(
                ast.get_docstring(node) or ""
            )
            if isinstance(node, ast.ClassDef):
                takes = bool(_class_fields(node)[1])
            else:
                takes = bool(_signature_names(node, method=False))
            counts["taking_parameters"] += takes
            counts["documented"] += takes and not missing_parameters(node)
    return counts


if __name__ == "__main__":
    c = docstring_coverage()
    print(
        f"{c['parameters_section']} of {c['public']} public definitions have a Parameters section"
    )
    print(f"{c['documented']} of {c['taking_parameters']} that take parameters document every one")
    print(f"{len(undocumented())} definitions in __all__ lack a parameter entry")
