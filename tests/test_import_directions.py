"""Layers import only downwards (ARCHITECTURE.md "Import directions"); demo code stays out of production."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
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

# production code: never the sandbox stand-ins, never a demo step (those live under orchestration/cli)
PRODUCTION = [("pipelines",), ("connectors", "runtime"), ("mappings",), ("schemas",)]


def _is_sandbox(name: str) -> bool:
    return name == "connectors.sandbox" or name.startswith("connectors.sandbox.")


def _is_demo(name: str) -> bool:
    """A demo module (``….demo``, ``….demo_assistance``) or anything inside one."""
    return any(part == "demo" or part.startswith("demo_") for part in name.split("."))


def _statements(path: Path, package: tuple[str, ...] = ()) -> Iterator[tuple[str, list[str]]]:
    """Per import statement: the module it names, and every name it may bring in (shortest first).

    ``from a.b import c`` gives ``("a.b", ["a.b", "a.b.c"])``, so ``from connectors import sandbox``
    counts as importing ``connectors.sandbox``. Relative imports are resolved against ``package``
    (the file's package), so ``from .demo import x`` in pipelines/assistance is ``pipelines.assistance.demo``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [alias.name]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join((*base, *([node.module] if node.module else [])))
            if module:
                yield module, [module, *(f"{module}.{a.name}" for a in node.names if a.name != "*")]


def _first(names: list[str], test: Callable[[str], bool]) -> str | None:
    return next((name for name in names if test(name)), None)


def _violations(root: Path = REPO) -> list[str]:
    found = []
    for layer in LAYERS:
        for path in (root / layer).rglob("*.py"):
            rel = path.relative_to(root)
            package = rel.parent.parts if rel.name == "__init__.py" else rel.parts[:-1]
            # the sandbox stand-ins are for tests and the CLI that starts them, never for production code
            may_use_sandbox = rel.parts[:2] in (("connectors", "sandbox"), ("orchestration", "cli"))
            production = any(rel.parts[: len(prefix)] == prefix for prefix in PRODUCTION)
            if production and _is_demo(".".join(rel.with_suffix("").parts)):
                found.append(f"{rel} is demo code in production")
            for module, names in _statements(path, package):
                if module.split(".")[0] in FORBIDDEN[layer]:
                    found.append(f"{rel} imports {module}")
                sandbox = _first(names, _is_sandbox)
                if sandbox and not may_use_sandbox:
                    found.append(f"{rel} imports the sandbox ({sandbox})")
                demo = _first(names, _is_demo)
                if demo and production:
                    found.append(f"{rel} imports demo code ({demo})")
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


def test_production_code_never_imports_the_sandbox_or_a_demo(tmp_path: Path) -> None:
    probes = {
        "pipelines/assistance/probe.py": "from connectors import sandbox\n",
        "pipelines/assistance/relative.py": "from .demo import round_trip\n",
        "connectors/runtime/probe.py": "import connectors.sandbox.cvcrm\n",
        "mappings/probe.py": "from orchestration.cli.demo_assistance import round_trip\n",
        "schemas/probe.py": "from pipelines.assistance import demo\n",
        "pipelines/assistance/demo.py": "",
        # allowed: the demo steps and the sandbox itself
        "orchestration/cli/demo_probe.py": "from connectors.sandbox import start_sandbox\n",
        "connectors/sandbox/probe.py": "from connectors.sandbox.base import Sandbox\n",
    }
    for rel, text in probes.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = _violations(tmp_path)
    assert "pipelines/assistance/probe.py imports the sandbox (connectors.sandbox)" in found
    assert "pipelines/assistance/relative.py imports demo code (pipelines.assistance.demo)" in found
    assert "connectors/runtime/probe.py imports the sandbox (connectors.sandbox.cvcrm)" in found
    assert "mappings/probe.py imports demo code (orchestration.cli.demo_assistance)" in found
    assert "schemas/probe.py imports demo code (pipelines.assistance.demo)" in found
    assert "pipelines/assistance/demo.py is demo code in production" in found
    assert not [line for line in found if line.startswith(("orchestration/", "connectors/sandbox/"))]
