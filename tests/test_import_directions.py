"""Layers import only downwards (ARCHITECTURE.md "Import directions")."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAYERS = ["ponte", "schemas", "connectors", "mappings", "pipelines", "orchestration"]

# layer -> project packages it must never import
FORBIDDEN = {
    "ponte": {"schemas", "connectors", "mappings", "pipelines", "orchestration"},
    "schemas": {"connectors", "mappings", "pipelines", "orchestration"},
    "connectors": {"mappings", "pipelines", "orchestration"},
    "mappings": {"connectors", "pipelines", "orchestration"},
    "pipelines": {"orchestration"},
    "orchestration": set(),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(root: Path = REPO) -> list[str]:
    found = []
    for layer in LAYERS:
        for path in (root / layer).rglob("*.py"):
            rel = path.relative_to(root)
            in_sandbox = rel.parts[:2] == ("connectors", "sandbox")
            for name in _imports(path):
                top = name.split(".")[0]
                if top in FORBIDDEN[layer]:
                    found.append(f"{rel} imports {name}")
                # production code never depends on the sandbox stand-ins (only tests and the CLI that starts it)
                if (
                    name.startswith("connectors.sandbox")
                    and not in_sandbox
                    and rel.parts[:2]
                    != (
                        "orchestration",
                        "cli",
                    )
                ):
                    found.append(f"{rel} imports the sandbox ({name})")
    return found


def test_layers_import_only_downwards() -> None:
    assert _violations() == []


def test_the_checker_catches_a_violation(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "probe.py").write_text("import pipelines.store\n")
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "probe.py").write_text("from connectors.sandbox import launcher\n")
    found = _violations(tmp_path)
    assert "schemas/probe.py imports pipelines.store" in found
    assert "pipelines/probe.py imports the sandbox (connectors.sandbox)" in found
