"""The package's layering, read from its imports with `ast` (nothing is imported to check it).

Lower layers never import higher ones: the cloud packages and the plan know nothing of the hub,
the charts nothing of the support stack, and no two modules import each other, at module level
or inside a function. What two layers share lives below both (`scheduling.py`, `cache.py`,
`config_shared.py`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pangeo_binder

PACKAGE = Path(pangeo_binder.__file__).parent
ROOT = "pangeo_binder"

# Cycles that exist and are accepted, each with why. policy/rules.py imports policy/network.py
# at its end so that network's rules register in RULES; network imports the rule machinery
# (`rule`, Context, Resource) from rules. Breaking it means moving that machinery to a module of
# its own: not done yet.
KNOWN_CYCLES: set[frozenset[str]] = {
    frozenset({"pangeo_binder.policy.network", "pangeo_binder.policy.rules"}),
}

# (importer, imported): no module under the first may import a module under the second.
FORBIDDEN: list[tuple[str, str]] = [
    ("pangeo_binder.charts", "pangeo_binder.support"),
    # The support stack installs pinned charts (support.py reads charts.py, a lower layer); the
    # dashboards only shared the cache's location with the charts, which is cache.py's now.
    ("pangeo_binder.support.dashboards", "pangeo_binder.charts"),
    ("pangeo_binder.plan", "pangeo_binder.hub"),
    ("pangeo_binder.gcp", "pangeo_binder.hub"),
    ("pangeo_binder.aws", "pangeo_binder.hub"),
]


def module_files(package: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """Every module of the package by dotted name, with its file and whether it is a package."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def imports_of(name: str, path: Path, is_package: bool, known: set[str]) -> set[str]:
    """The package's modules that one file imports, at any depth: `import a.b`, `from a import
    b` (b a module: the edge is to b, not to a's `__init__`), `from a.b import c`, relative forms
    resolved against the file's package."""
    here = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            submodules = {f"{module}.{a.name}" for a in node.names} & known
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(module)
    return {m for m in found if m in known and m != name}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    files = module_files(package)
    known = set(files)
    return {name: imports_of(name, path, is_pkg, known) for name, (path, is_pkg) in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def forbidden_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted(
        (importer, imported)
        for importer, targets in graph.items()
        for imported in targets
        for low, high in FORBIDDEN
        if under(importer, low) and under(imported, high)
    )


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = import_graph()
    assert len(found) > 50 and "pangeo_binder.hub.placeholders" in found, sorted(found)
    return found


def test_no_module_imports_a_higher_layer(graph: dict[str, set[str]]) -> None:
    assert forbidden_imports(graph) == []


def test_no_two_modules_import_each_other(graph: dict[str, set[str]]) -> None:
    found = set(cycles(graph))
    assert found - KNOWN_CYCLES == set(), sorted(sorted(c) for c in found - KNOWN_CYCLES)
    # A known cycle that is gone is taken off the list, so that it cannot come back unseen.
    assert found >= KNOWN_CYCLES, sorted(sorted(c) for c in KNOWN_CYCLES - found)


def test_the_shared_pieces_live_below_both_layers(graph: dict[str, set[str]]) -> None:
    """What the ties were for: the cache location, and the placeholders' annotation."""
    assert "pangeo_binder.cache" in graph["pangeo_binder.charts"]
    assert "pangeo_binder.cache" in graph["pangeo_binder.support.dashboards"]
    assert "pangeo_binder.scheduling" in graph["pangeo_binder.plan.cost"]
    assert "pangeo_binder.scheduling" in graph["pangeo_binder.hub.placeholders"]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pangeo_binder" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pangeo_binder"


def test_the_scan_sees_every_form_of_import(tmp_path: Path) -> None:
    """The checks above would catch the imports they forbid, in any form, at any depth."""
    package = write(
        tmp_path,
        {
            "__init__.py": "",
            "charts.py": "def main():\n    from pangeo_binder.support import dashboards\n",
            "cache.py": "",
            "support/__init__.py": "",
            "support/dashboards.py": "from ..charts import main\n",
            "plan/__init__.py": "",
            "plan/cost.py": "import pangeo_binder.hub.placeholders as p\n",
            "hub/__init__.py": "",
            "hub/placeholders.py": "from . import config\n",
            "hub/config.py": "from pangeo_binder import cache\n",
            "gcp/__init__.py": "",
            "gcp/stack.py": "if True:\n    from pangeo_binder.hub.config import Hub\n",
        },
    )
    graph = import_graph(package)
    assert graph["pangeo_binder.charts"] == {"pangeo_binder.support.dashboards"}
    assert graph["pangeo_binder.support.dashboards"] == {"pangeo_binder.charts"}
    assert graph["pangeo_binder.hub.placeholders"] == {"pangeo_binder.hub.config"}
    # `from pangeo_binder import cache` is an edge to the module, not to the package's __init__.
    assert graph["pangeo_binder.hub.config"] == {"pangeo_binder.cache"}
    assert forbidden_imports(graph) == [
        ("pangeo_binder.charts", "pangeo_binder.support.dashboards"),
        ("pangeo_binder.gcp.stack", "pangeo_binder.hub.config"),
        ("pangeo_binder.plan.cost", "pangeo_binder.hub.placeholders"),
        ("pangeo_binder.support.dashboards", "pangeo_binder.charts"),
    ]
    assert cycles(graph) == [
        frozenset({"pangeo_binder.charts", "pangeo_binder.support.dashboards"})
    ]
