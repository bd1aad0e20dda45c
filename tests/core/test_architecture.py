"""The package's layering: no import cycles, and the loom's parts never reach back to the facade."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "recurrentgpt"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = ["recurrentgpt", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at any depth of the file, outside ``TYPE_CHECKING``)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")
                if node.level:
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # ``from . import x`` imports the module x when there is one
                targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in files else target for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in files and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_sees_a_cycle(tmp_path):
    pkg = tmp_path / "recurrentgpt"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import g\n")
    assert cycles(import_graph(pkg)) == [["recurrentgpt.a", "recurrentgpt.b"]]


def test_the_loom_parts_never_import_the_facade():
    graph = import_graph()
    parts = [m for m in graph if m.startswith("recurrentgpt.loom.") and m != "recurrentgpt.loom.facade"]
    assert parts, "the loom is a package of parts"
    for part in parts:
        assert not graph[part] & {"recurrentgpt.loom", "recurrentgpt.loom.facade"}, part


def test_the_facade_stays_small():
    """The Loom class is the one door to a library and delegates: its body stays within ~600 lines."""
    tree = ast.parse((PACKAGE / "loom" / "facade.py").read_text(encoding="utf-8"))
    [loom] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Loom"]
    lines = loom.end_lineno - loom.lineno + 1
    assert lines <= 600, f"the Loom class has grown to {lines} lines: move a responsibility into a part"
