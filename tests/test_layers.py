"""The dependency rules of docs/architecture.md, checked by walking each module's imports."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mirrorgate"

ALLOWED: dict[str, set[str]] = {
    "wire": set(),  # a leaf: HTTP/1.1 wire helpers every serving package may use
    "model": {"model", "errors"},
    "providers": {"providers", "model", "errors", "gocompat", "gcpause"},
    "translate": {"translate", "model", "ir", "errors", "tls", "gcpause"},  # tls: a pure leaf (certificate checks)
    "ir": {"ir", "errors", "gcpause"},
    "tls": {"tls", "errors"},  # a leaf: certificates and TLS contexts every serving package may use
    "dataplane": {"dataplane", "upstream", "mirror", "ir", "errors", "wire", "settings", "tls", "gcpause"},
    "upstream": {"upstream", "ir", "errors", "wire", "tls"},
    "mirror": {"mirror", "upstream", "ir", "errors", "wire", "settings", "tls"},
    "admin": {"admin", "ir", "errors", "wire", "tls"},
    "echo": {"echo", "wire", "gocompat"},
    "kube": {"kube", "model", "errors"},  # Kubernetes API access; never the serving packages
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mirrorgate."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("mirrorgate."))
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        extra = imported_packages(path) - ALLOWED[layer]
        assert not extra, f"{path.relative_to(PACKAGE)} imports mirrorgate.{sorted(extra)}"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The import statements run when the module is imported, plus those under ``if TYPE_CHECKING``
    (a type-only cycle is still a cycle): the module body and its top-level ``if``/``try`` blocks."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return found


def module_imports(path: Path, modules: set[str]) -> set[str]:
    """The ``mirrorgate`` modules ``path`` imports at module level: ``from a.b import c`` counts
    as ``a.b.c`` when that is a module, else as ``a.b``; a relative import is resolved against
    the module's package."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in module_level_imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    modules = set(paths)
    return {name: module_imports(path, modules) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules() -> None:
    found = cycles(import_graph())
    assert not found, f"import cycles: {found}"


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
