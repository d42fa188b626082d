"""`--json` on the CLI (one masked JSON document on stdout), exit codes that say what happened, and
`ponte state show|reset` (issue #21, point 5).

Exit codes: 0 done, 1 done with failures (dead letters, failed replays, failed checks), 2 usage or
configuration error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from connectors.sandbox import Sandbox, start_sandbox
from orchestration.cli.app import app
from tests.support.tenants import sandbox_tenant_file

BROKEN = (1, 2)  # customers given a placeholder CPF: they fail the import


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with start_sandbox(customers=8, seed=3, rate_limits=False) as sandbox:
        yield sandbox


@pytest.fixture
def env(sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tenants = tmp_path / "tenants"
    sandbox_tenant_file(sb, tenants, unthrottled=True)
    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(tenants))
    monkeypatch.setenv("PONTE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    return tenants


def _run(*args: str, code: int = 0, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(app, list(args), input=stdin)
    assert result.exit_code == code, (args, result.exit_code, result.output, result.exception)
    return result


def _json(*args: str, code: int = 0) -> Any:
    """Run with --json: stdout must be exactly one JSON document."""
    result = _run(*args, "--json", code=code)
    return json.loads(result.stdout)


def _personal(sb: Sandbox) -> list[str]:
    """Every CPF and e-mail the sandbox's customers hold, as the sources send them."""
    values = []
    for customer in sb.state.sienge.customers.values():
        values += [v for v in (customer.get("cpf"), customer.get("cnpj"), customer.get("email")) if v]
    return values


def _assert_masked(sb: Sandbox, text: str) -> None:
    for value in _personal(sb):
        assert value not in text, value
    assert not re.search(r"[\w.+-]{2,}@[\w-]+\.", text), text  # an e-mail whose local part is not masked


def test_validate_json_and_exit_codes(env: Path, tmp_path: Path) -> None:
    good = env / "demo.yaml"
    ok = _json("validate", str(good))
    assert ok["ok"] is True and ok["failed"] == 0 and ok["total"] == 1
    assert ok["checks"][0].keys() >= {"kind", "item", "result", "error"} and ok["checks"][0]["result"] == "ok"
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: broken\nname: Broken\nconnectors: 12\n", encoding="utf-8")
    bad = _json("validate", str(good), str(broken), code=1)
    assert bad["ok"] is False and bad["failed"] == 1
    assert [c["result"] for c in bad["checks"]] == ["ok", "failed"] and bad["checks"][1]["error"]


def test_tenant_show_json_is_exactly_the_masked_config(env: Path) -> None:
    result = _run("tenant", "show", "demo", "--json")
    shown = json.loads(result.stdout)
    assert shown["id"] == "demo" and "connectors" in shown
    assert all({"env", "set"} <= creds.keys() for c in shown["connectors"].values()
               for creds in c["credentials"].values())
    managers = [str(m) for m in shown["options"].get("contract_managers", [])]
    assert managers and all("***@" in m for m in managers)
    assert not re.search(r"[\w.+-]{2,}@[\w-]+\.", result.stdout)


def test_a_configuration_error_exits_2_with_nothing_on_stdout(env: Path) -> None:
    result = _run("sync", "import", "--tenant", "nosuch", "--json", code=2)
    assert result.stdout == "" and "nosuch" in result.stderr
    assert _run("sync", "import", "--tenant", "demo", "--full", "--since", "2026-01-01", code=2).stdout == ""
    assert _run("sync", "import", "--bogus-option", code=2).exit_code == 2  # typer's own usage error


def test_import_with_dead_letters_exits_1_then_replay_and_a_clean_run_exit_0(sb: Sandbox, env: Path) -> None:
    originals = {cid: sb.state.sienge.customers[cid]["cpf"] for cid in BROKEN}
    for cid in BROKEN:
        sb.sienge.mutate_customer(cid, cpf="11111111111")
    try:
        report = _json("sync", "import", "--tenant", "demo", code=1)
        assert report.keys() >= {"flow", "tenant", "plan", "totals", "entities", "api_calls", "cursors",
                                 "dead_letters_by_reason"}
        letters = report["totals"]["dead_lettered"]  # the customers, and any sale of theirs
        assert report["entities"]["customer"]["dead_lettered"] == len(BROKEN) and letters >= len(BROKEN)
        assert report["entities"]["customer"]["read"] >= 8
        assert sum(r["count"] for r in report["dead_letters_by_reason"]) == letters

        listed = _json("deadletter", "list", "--tenant", "demo")
        ids = [row["id"] for row in listed["dead_letters"]]
        assert len(ids) == letters
        shown_raw = _run("deadletter", "show", str(ids[0]), "--json").stdout
        shown = json.loads(shown_raw)
        assert shown.keys() >= {"id", "tenant", "flow", "record_key", "reason", "payload"}
        assert shown["payload"] and "11111111111" not in shown_raw
        _assert_masked(sb, shown_raw)

        still = _json("deadletter", "replay", str(ids[0]), code=1)  # nothing fixed yet: the replay fails
        assert still["total"] == 1 and still["resolved"] == 0 and still["failed"] == 1
        assert still["outcomes"][0].keys() >= {"id", "record_key", "resolved", "reason"}
        assert _run("deadletter", "replay", str(ids[0]), code=1).exit_code == 1  # human output: still non-zero
    finally:
        for cid, cpf in originals.items():
            sb.sienge.mutate_customer(cid, cpf=cpf)

    replayed = _run("deadletter", "replay", "--all", "--tenant", "demo", "--json")
    summary = json.loads(replayed.stdout)
    assert summary["total"] == summary["resolved"] == letters and summary["failed"] == 0
    assert len(summary["outcomes"]) == letters and all(o["resolved"] for o in summary["outcomes"])
    _assert_masked(sb, replayed.stdout)

    clean = _run("sync", "import", "--tenant", "demo", "--json")
    assert json.loads(clean.stdout)["totals"]["dead_lettered"] == 0
    _assert_masked(sb, clean.stdout)
    assert _json("deadletter", "list", "--tenant", "demo")["total"] == 0


def test_other_flows_print_their_report_as_json(sb: Sandbox, env: Path) -> None:
    backsync = _json("sync", "backsync", "--tenant", "demo")
    assert backsync["flow"] == "backsync" and {"events", "applied", "failed"} <= backsync["counts"].keys()
    assistance = _json("sync", "assistance", "--tenant", "demo", "--no-poll")
    assert assistance["flow"] == "assistance" and assistance["counts"]["failed"] == 0
    assert {"created", "updated", "failed", "api_calls"} <= assistance.keys()
    history = _json("envelopes", "show", "801", "--tenant", "demo")
    assert history == []


def test_state_show_and_reset_round_trip(sb: Sandbox, env: Path) -> None:
    assert _json("state", "show", "--tenant", "demo") == {"tenant": "demo", "cursors": []}
    _run("sync", "import", "--tenant", "demo")
    shown = _json("state", "show", "--tenant", "demo")
    streams = {f"{c['connector']}/{c['stream']}": c for c in shown["cursors"]}
    assert "sienge/customers" in streams and streams["sienge/customers"]["value"]
    assert streams["sienge/customers"].keys() >= {"tenant", "connector", "stream", "value", "updated_at"}
    one = _json("state", "show", "--tenant", "demo", "--stream", "customers")
    assert [c["stream"] for c in one["cursors"]] == ["customers"]
    assert "customers" in _run("state", "show", "--tenant", "demo").stdout

    unknown = _run("state", "reset", "--tenant", "demo", "--stream", "nosuch", "--yes", code=2)
    assert "nosuch" in unknown.stderr and "sienge/customers" in unknown.stderr

    declined = _run("state", "reset", "--tenant", "demo", "--stream", "customers", stdin="n\n", code=1)
    assert "nothing reset" in declined.output
    assert _json("state", "show", "--tenant", "demo", "--stream", "customers")["cursors"][0]["value"]

    refused = _run("state", "reset", "--tenant", "demo", "--stream", "customers", "--json", code=2)
    assert "--yes" in refused.stderr and not refused.stdout
    assert _json("state", "show", "--tenant", "demo", "--stream", "customers")["cursors"][0]["value"]
    other = next(name for name in sorted(streams) if name != "sienge/customers")
    other_before = streams[other]["value"]
    assert _json("state", "reset", "--tenant", "demo", "--stream", other, "--yes") == {
        "tenant": "demo", "stream": other, "before": other_before, "reset": True}
    streams[other]["value"] = None

    before = streams["sienge/customers"]["value"]
    done = _run("state", "reset", "--tenant", "demo", "--stream", "sienge/customers", "--yes")
    assert "sienge/customers" in done.stdout and before in " ".join(done.stdout.split())
    after = {f"{c['connector']}/{c['stream']}": c["value"] for c in _json("state", "show", "--tenant", "demo")["cursors"]}
    assert after["sienge/customers"] is None
    assert all(after[name] == c["value"] for name, c in streams.items() if name != "sienge/customers")


def test_dispatch_json_plan(sb: Sandbox, env: Path) -> None:
    result = _run("sync", "dispatch", "--tenant", "demo", "--all-ready", "--plan", "--json")
    planned = json.loads(result.stdout)
    assert planned["flow"] == "dispatch" and planned["plan"] is True
    assert {"counts", "outcomes", "package", "stopped"} <= planned.keys()
    assert {"would_send", "dead_lettered"} <= planned["counts"].keys()
    _assert_masked(sb, result.stdout)
