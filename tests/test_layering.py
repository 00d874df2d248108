"""The import graph keeps its shape (tools/import_graph.py; `python tools/import_graph.py` prints
it). Every import counts, also one inside a function or under `if TYPE_CHECKING:`: a module that
names another only in its annotations still knows it.

- No import cycles, anywhere under src/.
- Within `presencesync.service`, the engine composes the parts; no part imports the engine.
- The product (`presencesync`) imports neither the emulator nor the sandbox; the emulator imports
  neither the product nor the sandbox (the sandbox glues the two).
- The product's layers: fastjson <- domain <- store, salesforce <- service <- web <- the
  top-level modules (bootstrap, cli, commands). A layer imports only itself and the layers below
  it, and a layer of two packages (store, salesforce) does not mix them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tools.import_graph import Edge, Graph, build, cycles, within

GRAPH = build()

PRODUCT, EMULATOR, SANDBOX = "presencesync", "presencesync_emulator", "presencesync_sandbox"
LAYERS = [
    # Helpers that import nothing of the project (the JSON codec of the store and the sockets).
    ["presencesync.fastjson"],
    ["presencesync.domain"],
    ["presencesync.store", "presencesync.salesforce"],
    ["presencesync.service"],
    ["presencesync.web"],
]


def _show(edges: list[Edge]) -> str:
    return "\n".join(f"  {e.source} -> {e.target} ({e.kind}, line {e.line})" for e in edges)


def _package_of(module: str) -> str | None:
    for layer in LAYERS:
        for package in layer:
            if within(module, package):
                return package
    return None


def _layer_of(package: str) -> int:
    return next(n for n, layer in enumerate(LAYERS) if package in layer)


def test_the_graph_sees_the_project() -> None:
    """Guards the checks below against an empty or blind graph."""
    for package in (PRODUCT, EMULATOR, SANDBOX):
        assert package in GRAPH.modules
    edges = {(e.source, e.target): e.kind for e in GRAPH.edges}
    assert edges[("presencesync.service.engine", "presencesync.service.router")] == "top"
    assert edges[("presencesync.web.bridge_ws", "presencesync.service")] == "typing"
    assert ("presencesync_sandbox.demo", "presencesync.bootstrap") in edges


def test_no_import_cycles() -> None:
    found = cycles(GRAPH)
    members = {m for component in found for m in component}
    inner = [e for e in GRAPH.edges if e.source in members and e.target in members]
    assert not found, f"import cycles {found}:\n{_show(inner)}"


def test_no_part_of_the_service_layer_imports_the_engine() -> None:
    engine = "presencesync.service.engine"
    allowed = {"presencesync.service"}  # the package re-exports Engine and open_engine
    offending = [
        e for e in GRAPH.edges_between("presencesync.service", engine) if e.source not in allowed
    ]
    assert not offending, f"parts of the service layer that know the engine:\n{_show(offending)}"


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [(PRODUCT, EMULATOR), (PRODUCT, SANDBOX), (EMULATOR, PRODUCT), (EMULATOR, SANDBOX)],
)
def test_package_boundaries(importer: str, forbidden: str) -> None:
    offending = GRAPH.edges_between(importer, forbidden)
    assert not offending, f"{importer} must not import {forbidden}:\n{_show(offending)}"


def _against_the_layers(graph: Graph) -> list[Edge]:
    offending: list[Edge] = []
    for edge in graph.edges_between(PRODUCT, PRODUCT):
        source, target = _package_of(edge.source), _package_of(edge.target)
        if source is None:
            continue  # the top-level modules may import any layer
        if target is None:
            offending.append(edge)  # a layer importing bootstrap, cli, ... (or the package)
        elif source != target and _layer_of(target) >= _layer_of(source):
            offending.append(edge)
    return offending


def test_the_product_layers_point_down() -> None:
    offending = _against_the_layers(GRAPH)
    assert not offending, f"imports against the layer order {LAYERS}:\n{_show(offending)}"


def test_the_layer_check_catches_upward_and_sideways_imports() -> None:
    wrong = [
        Edge("presencesync.domain.decide", "presencesync.service.model", "typing", 1),
        Edge("presencesync.store.db", "presencesync.salesforce.client", "lazy", 1),
        Edge("presencesync.web.app", "presencesync.bootstrap", "top", 1),
    ]
    right = [
        Edge("presencesync.web.metrics", "presencesync.store.tables", "lazy", 1),
        Edge("presencesync.bootstrap", "presencesync.web.app", "top", 1),
    ]
    graph = Graph(dict(GRAPH.modules), [*wrong, *right])
    assert _against_the_layers(graph) == wrong


def test_the_checks_catch_a_cycle_through_a_type_checking_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "engine.py").write_text("from pkg.part import Part\n")
    (package / "part.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.engine import Engine\n"
        "def later() -> None:\n"
        "    from pkg import other\n"
    )
    (package / "other.py").write_text("from . import engine\n")
    graph: Graph = build(tmp_path)
    kinds = {(e.source, e.target): e.kind for e in graph.edges}
    assert kinds == {
        ("pkg.engine", "pkg.part"): "top",
        ("pkg.part", "pkg.engine"): "typing",
        ("pkg.part", "pkg.other"): "lazy",
        ("pkg.other", "pkg.engine"): "top",
    }
    assert cycles(graph) == [["pkg.engine", "pkg.other", "pkg.part"]]
