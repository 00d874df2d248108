"""Print the import graph of the project's packages under `src/` (stdlib `ast` only, nothing
is imported or run).

    python tools/import_graph.py                  # modules, package summary, cycles
    python tools/import_graph.py --section cycles # one section: modules | packages | cycles
    python tools/import_graph.py --depth 3        # summary by 3-part names (presencesync.web.api)

Every `import` counts, wherever it is written: at module level, inside a function (marked
`lazy`), under `if TYPE_CHECKING:` (marked `typing`). A module that names another only for
its type annotations still knows about it, which is what the layering rules are about. The
parent package's `__init__` that Python runs before a submodule is not counted as an edge
(every package would then be a cycle); `from pkg import name` counts as an edge to `pkg.name`
when that is a module, else to `pkg` itself.

Cycles are the strongly connected components of the module graph with more than one module
(or a module importing itself).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# What an edge's `kind` says about where the import statement was written.
TOP, LAZY, TYPING = "top", "lazy", "typing"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # TOP | LAZY | TYPING
    line: int


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def targets(self, module: str) -> set[str]:
        return {e.target for e in self.edges if e.source == module}

    def adjacency(self) -> dict[str, set[str]]:
        adjacency: dict[str, set[str]] = {m: set() for m in self.modules}
        for edge in self.edges:
            adjacency[edge.source].add(edge.target)
        return adjacency

    def edges_between(self, source_prefix: str, target_prefix: str) -> list[Edge]:
        return [
            e
            for e in self.edges
            if within(e.source, source_prefix) and within(e.target, target_prefix)
        ]


def within(module: str, package: str) -> bool:
    """Is `module` the package itself or one of its submodules?"""
    return module == package or module.startswith(package + ".")


def top_packages(src: Path = SRC) -> list[str]:
    return sorted(p.name for p in src.iterdir() if (p / "__init__.py").is_file())


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def discover(src: Path = SRC, packages: Iterable[str] | None = None) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in packages or top_packages(src):
        for path in sorted((src / package).rglob("*.py")):
            modules[module_name(path, src)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with where it was written (TOP, LAZY, TYPING)."""

    def walk(node: ast.AST, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, kind
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), TYPING)
                for stmt in child.orelse:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), kind)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(child, LAZY if kind == TOP else kind)
            else:
                yield from walk(child, kind)

    yield from walk(tree, TOP)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` lives in (itself, or its nearest parent), if any."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def build(src: Path = SRC, packages: Iterable[str] | None = None) -> Graph:
    graph = Graph(discover(src, packages))
    modules = graph.modules
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        seen: set[tuple[str, str]] = set()
        for node, kind in _imports(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = _resolve(module, is_package, node)
                names = [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
                names = [n if n in modules else base for n in names] or [base]
            for name in names:
                target = _owner(name, modules)
                if target is None or target == module:
                    continue
                if (target, kind) in seen:
                    continue
                seen.add((target, kind))
                graph.edges.append(Edge(module, target, kind, node.lineno))
    # One edge per (source, target): the strongest kind wins (top > lazy > typing).
    rank = {TOP: 0, LAZY: 1, TYPING: 2}
    best: dict[tuple[str, str], Edge] = {}
    for edge in graph.edges:
        key = (edge.source, edge.target)
        if key not in best or rank[edge.kind] < rank[best[key].kind]:
            best[key] = edge
    graph.edges = sorted(best.values(), key=lambda e: (e.source, e.target))
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with a cycle in them (Tarjan, iterative)."""
    adjacency = graph.adjacency()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(adjacency):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(adjacency[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(adjacency[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in adjacency[node]:
                    found.append(sorted(component))
    return sorted(found)


def group(graph: Graph, module: str, depth: int) -> str:
    """The package `module` belongs to, at most `depth` name parts long (`presencesync.cli` ->
    `presencesync`, `presencesync.web.api.agents` -> `presencesync.web` at depth 2)."""
    parts = module.split(".")[:depth]
    while len(parts) > 1:
        name = ".".join(parts)
        if name in graph.modules and graph.modules[name].name == "__init__.py":
            break
        parts.pop()
    return ".".join(parts)


def package_summary(graph: Graph, depth: int = 2) -> dict[str, dict[str, int]]:
    """{package: {imported package: number of module edges}}, edges inside one left out."""
    summary: dict[str, dict[str, int]] = {}
    for module in graph.modules:
        summary.setdefault(group(graph, module, depth), {})
    for edge in graph.edges:
        source, target = group(graph, edge.source, depth), group(graph, edge.target, depth)
        if source != target:
            summary[source][target] = summary[source].get(target, 0) + 1
    return summary


def render(graph: Graph, sections: Iterable[str], depth: int) -> str:
    lines: list[str] = []
    if "modules" in sections:
        lines.append(f"# modules ({len(graph.modules)}) -> project modules they import")
        for module in sorted(graph.modules):
            edges = [e for e in graph.edges if e.source == module]
            shown = ", ".join(e.target + ("" if e.kind == TOP else f" ({e.kind})") for e in edges)
            lines.append(f"{module} -> {shown or '-'}")
        lines.append("")
    if "packages" in sections:
        lines.append(f"# packages (first {depth} name parts) -> packages they import [edges]")
        for source, targets in sorted(package_summary(graph, depth).items()):
            shown = ", ".join(f"{t} [{n}]" for t, n in sorted(targets.items()))
            lines.append(f"{source} -> {shown or '-'}")
        lines.append("")
    if "cycles" in sections:
        found = cycles(graph)
        lines.append(f"# import cycles (strongly connected components): {len(found)}")
        for component in found:
            members = set(component)
            inner = [e for e in graph.edges if e.source in members and e.target in members]
            lines.append(f"{len(component)} modules: " + ", ".join(component))
            for edge in inner:
                note = "" if edge.kind == TOP else f" ({edge.kind})"
                lines.append(f"    {edge.source} -> {edge.target}{note}  line {edge.line}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--section",
        action="append",
        choices=["modules", "packages", "cycles"],
        help="print only this section (repeatable; default: all three)",
    )
    parser.add_argument("--depth", type=int, default=2, help="name parts of a summary package")
    parser.add_argument("--src", type=Path, default=SRC, help="the source root (default: src/)")
    args = parser.parse_args(argv)
    graph = build(args.src)
    sections = args.section or ["modules", "packages", "cycles"]
    sys.stdout.write(render(graph, sections, args.depth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
