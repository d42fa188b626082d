"""The flows follow one naming, and connectors are opened in one place (docs/ARCHITECTURE.md "Flows").

A newcomer who learned one flow finds the same job under the same file name in the next: ``flow.py``
runs it, ``webhooks.py`` turns its stored webhooks into work, ``translate.py`` maps outside data through
the committed mappings, ``machine.py`` is its pure state machine, ``replay.py`` replays its dead letters.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRODUCTION = ["ponte", "schemas", "connectors", "mappings", "pipelines", "orchestration"]
FLOWS = {
    "imports": ["run_import"],
    "dispatch": ["run_dispatch"],
    "backsync": ["drain_inbox", "poll_stale", "sync_contract"],
    "assistance": ["run_assistance"],
}
#: names an earlier layout used for a job that now has one name (left: the old name, right: the new)
RETIRED = {"state.py": "machine.py", "events.py": "webhooks.py or translate.py", "connections.py": "pipelines/connections.py"}


def _defs(path: Path) -> dict[str, ast.AST]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}


def test_every_flow_runs_from_its_flow_py() -> None:
    for flow, entries in FLOWS.items():
        defs = _defs(REPO / "pipelines" / flow / "flow.py")
        missing = [e for e in entries if not isinstance(defs.get(e), ast.FunctionDef)]
        assert not missing, f"pipelines/{flow}/flow.py lacks {missing}"


def test_one_name_per_job_across_the_flows() -> None:
    for flow in FLOWS:
        for old, new in RETIRED.items():
            assert not (REPO / "pipelines" / flow / old).exists(), (
                f"pipelines/{flow}/{old}: this job is named {new} in every flow (docs/ARCHITECTURE.md)")
    machines = [p.parent.name for p in (REPO / "pipelines").glob("*/machine.py")]
    assert sorted(machines) == ["assistance", "backsync"]
    for path in (REPO / "pipelines").glob("*/webhooks.py"):
        text = path.read_text(encoding="utf-8")
        assert "claim" in text, f"{path.relative_to(REPO)} should claim stored webhooks from the inbox"


def _production_files() -> list[Path]:
    return [p for layer in PRODUCTION for p in (REPO / layer).rglob("*.py")]


def test_a_tenants_connectors_are_opened_in_one_module() -> None:
    openers, holders = [], []
    for path in _production_files():
        rel = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name == "open_connector":
                openers.append(rel)
            if (isinstance(node, ast.ClassDef) and node.name.startswith("Connector") and node.name.endswith(
                    ("s", "Set", "Cache", "Pool"))) or (isinstance(node, ast.ClassDef) and node.name.endswith(
                    "Connectors")):
                holders.append(f"{rel}:{node.name}")
    assert openers == ["pipelines/connections.py"]
    assert sorted(holders) == ["pipelines/connections.py:ConnectorPool", "pipelines/connections.py:TenantConnectors"]
