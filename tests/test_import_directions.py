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


def _violations() -> list[str]:
    found = []
    for layer in LAYERS:
        for path in (REPO / layer).rglob("*.py"):
            rel = path.relative_to(REPO)
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


def test_the_checker_catches_a_violation(tmp_path: Path, monkeypatch) -> None:
    bad = REPO / "schemas" / "_direction_probe.py"
    bad.write_text("import pipelines.store\n")
    try:
        assert "schemas/_direction_probe.py imports pipelines.store" in _violations()
    finally:
        bad.unlink()
