"""The tree reads as the data flow (ARCHITECTURE.md): each folder of monitor/ imports only
the folders below it in LAYERS, and no module grows past what a reader takes in at once."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "monitor"
# Top to bottom, as ARCHITECTURE.md lists them; "" is the top-level modules (models, errors, urls, ...).
LAYERS = ("cli", "demo", "runtime", "web", "edit", "read", "ingest", "alert", "match", "store", "config", "")
MAX_LINES = 500


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "monitor":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else ""


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement except those under `if TYPE_CHECKING:` (annotations only)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skipped |= {id(inner) for inner in ast.walk(node)}
    return [node for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped]


def test_each_folder_imports_only_the_folders_below_it() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.name == "__main__.py" and len(relative.parts) == 1:
            continue  # `python -m monitor` is the CLI's entry point
        mine = relative.parts[0] if len(relative.parts) > 1 else ""
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if isinstance(node, ast.ImportFrom) and node.level:
                continue  # relative imports stay inside their folder
            for module in modules:
                theirs = _layer(module)
                if theirs is not None and LAYERS.index(theirs) < LAYERS.index(mine):
                    upward.append(f"monitor/{relative}:{node.lineno} imports {module}")
    assert upward == []


def test_no_module_is_over_500_lines() -> None:
    long = {str(path.relative_to(PACKAGE)): count for path in PACKAGE.rglob("*.py")
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
