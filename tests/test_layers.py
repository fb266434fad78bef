"""The dependency rules of docs/architecture.md, checked by walking each module's imports."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mirrorgate"

ALLOWED: dict[str, set[str]] = {
    "model": {"model", "errors"},
    "providers": {"providers", "model", "errors", "gocompat"},
    "translate": {"translate", "model", "ir", "errors"},
    "ir": {"ir", "errors"},
    "dataplane": {"dataplane", "upstream", "mirror", "ir", "errors", "httpcore", "settings"},
    "upstream": {"upstream", "ir", "errors", "httpcore"},
    "mirror": {"mirror", "dataplane", "upstream", "ir", "errors", "httpcore", "settings"},
    "admin": {"admin", "ir", "errors"},
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
