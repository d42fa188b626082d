"""`ponte envelopes list`: a tenant's envelopes, newest first, filtered, counted, masked.

The envelopes are made by a real dispatch to the DocuSign sandbox; back-sync's outcomes (completed,
declined) and an older send date are then written to the store as back-sync would.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from orchestration.cli.app import app
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.store import open_store
from pipelines.store.models import Envelope
from ponte.logging import configure_logging
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant_file

#: a document name a CRM user typed with personal data in it: the list must mask it
NOISY_NAME = "Contrato Maria 529.982.247-25 maria.silva@example.com"


@pytest.fixture(scope="module")
def world(sb, tmp_path_factory: pytest.TempPathFactory):
    """Three envelopes of tenant `listing`: one completed, one declined (sent in January), one pending
    with two signers; and one envelope of another tenant that must never show."""
    configure_logging()  # on the test's stderr, before a CliRunner binds it to its own
    root: Path = tmp_path_factory.mktemp("listing")
    url = f"sqlite:///{root / 'list.db'}"
    store = open_store(url)
    tenant = sandbox_tenant_file(sb, root / "tenants", "listing", unthrottled=True)
    other = sandbox_tenant_file(sb, root / "tenants", "otherlist", unthrottled=True)
    for t in (tenant, other):
        verify_manager(store, t)
    sales = [seed_sale(sb, tenant, roles=("titular",)) for _ in range(2)]
    sales.append(seed_sale(sb, tenant, roles=("titular", "Cônjuge")))
    report = run_dispatch(store, tenant, DispatchRequest(contracts=[s.ref for s in sales]))
    assert [o.result for o in report.outcomes] == ["sent"] * 3
    run_dispatch(store, other, DispatchRequest(contracts=[seed_sale(sb, other, roles=("titular",)).ref]))
    ids = {str(s.contract_id): s for s in sales}
    completed, declined, pending = (str(s.contract_id) for s in sales)
    with store.session() as session:
        rows = {e.contract_id: e for e in session.scalars(select(Envelope).where(Envelope.tenant == "listing"))}
        rows[completed].status = "completed"
        rows[completed].completed_at = datetime.now(UTC)
        for signer in rows[completed].signers:
            signer.status = "signed"
        rows[completed].document_name = NOISY_NAME
        rows[declined].status = "declined"
        rows[declined].sent_at = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)
    store.dispose()
    yield {"root": root, "url": url, "completed": completed, "declined": declined, "pending": pending,
           "sales": ids}


@pytest.fixture
def cli(world, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(world["root"] / "tenants"))
    monkeypatch.setenv("PONTE_DATABASE_URL", world["url"])
    monkeypatch.setenv("COLUMNS", "220")  # the table on one line per envelope
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["envelopes", "list", *args], terminal_width=220)


def _json(cli, *args: str) -> dict:
    result = cli("-t", "listing", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_lists_newest_first_with_counts(world, cli) -> None:
    result = cli("-t", "listing")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    order = [c for line in lines for c in (world["pending"], world["completed"], world["declined"])
             if re.match(rf"\W*{c}\b", line)]
    assert order == [world["pending"], world["completed"], world["declined"]]  # the January one last
    assert lines[-1] == "3 envelopes: 1 completed, 1 pending, 1 declined"
    assert "docusign" in result.output and "2026-01-10 15:00" in result.output
    assert world["sales"][world["pending"]].people["titular"]["nome"] not in result.output

    data = _json(cli)
    assert data["total"] == 3 and data["counts"] == {"completed": 1, "pending": 1, "declined": 1}
    assert [e["contract"] for e in data["envelopes"]] == [world["pending"], world["completed"], world["declined"]]
    pending, completed, declined = data["envelopes"]
    assert set(pending) == {"envelope", "contract", "document", "status", "pending", "signers_signed",
                            "signers_total", "provider", "provider_envelope_id", "sent_at", "completed_at"}
    assert (pending["status"], pending["pending"], pending["signers_signed"], pending["signers_total"]) == (
        "sent", True, 0, 2)
    assert (completed["status"], completed["signers_signed"], completed["signers_total"]) == ("completed", 1, 1)
    assert completed["completed_at"] and pending["completed_at"] is None
    assert declined["sent_at"].startswith("2026-01-10T15:00")
    assert all(e["provider"] == "docusign" and e["provider_envelope_id"] for e in data["envelopes"])
    assert data["filters"] == {"status": None, "since": None, "provider": None}


def test_filters(world, cli) -> None:
    assert [e["contract"] for e in _json(cli, "--status", "completed")["envelopes"]] == [world["completed"]]
    assert [e["contract"] for e in _json(cli, "--status", "pending")["envelopes"]] == [world["pending"]]
    both = _json(cli, "--status", "declined", "--status", "sent")
    assert [e["contract"] for e in both["envelopes"]] == [world["pending"], world["declined"]]
    recent = _json(cli, "--since", "2026-02-01")
    assert world["declined"] not in [e["contract"] for e in recent["envelopes"]] and recent["total"] == 2
    assert _json(cli, "--since", "2026-01-10")["total"] == 3  # the day itself counts
    assert _json(cli, "--provider", "docusign")["total"] == 3
    none = cli("-t", "listing", "--provider", "clicksign")
    assert none.exit_code == 0 and none.output.strip() == "0 envelopes match"
    limited = cli("-t", "listing", "--limit", "1")
    assert "showing the newest 1 of 3" in limited.output and limited.output.splitlines()[-1].startswith("3 envelopes")
    assert _json(cli, "--limit", "1")["shown"] == 1
    assert _json(cli, "--status", "COMPLETED")["filters"]["status"] == ["completed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-13-01"], "'2026-13-01' is not a day"),
        (["--since", "yesterday"], "is not a day"),
        (["--status", "signed"], "unknown envelope status 'signed'"),
    ],
)
def test_bad_filters_are_clear_errors(cli, args: list[str], message: str) -> None:
    result = cli("-t", "listing", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and ("YYYY-MM-DD" in result.output or "use one of" in result.output)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_nothing_personal_in_the_list(world, cli) -> None:
    shown = cli("-t", "listing").output + cli("-t", "listing", "--json").stdout
    for sale in world["sales"].values():
        for person in sale.people.values():
            assert person["email"] not in shown and person["documento"] not in shown
    assert "529.982.247-25" not in shown and "maria.silva@example.com" not in shown
    assert "***.***.***-25" in shown and "m***@example.com" in shown  # masked, as `envelopes show` does
    assert "otherlist" not in shown and _json(cli)["tenant"] == "listing"
