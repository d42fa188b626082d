"""Every flow's dead letters replay, through the flow's own path; a replay that fails says why.

Found as an operator would: `ponte deadletter replay` answered ``no replay for flow 'backsync'``, and a
replay that raised stopped `replay --all` at that letter. Now the replayers are one explicit table
(:data:`pipelines.replay.REPLAYERS`) that covers every flow writing dead letters; each replay re-reads
the source; a failed one comes back unresolved with its reason and the CLI exits non-zero.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.sandbox import Sandbox, start_sandbox
from orchestration.cli.app import app
from pipelines.replay import REPLAYERS, replay, replayer_for
from pipelines.store import Store, deadletters
from pipelines.store.models import Envelope, InboxEvent
from ponte.errors import DataError
from schemas.tenant import TenantConfig
from tests.pipelines.backsync.helpers import crm_contracts, send_envelope
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant_file

REPO = Path(__file__).resolve().parents[2]


def _flows_that_dead_letter() -> set[str]:
    """The ``flow=`` of every ``deadletters.put`` and ``deadletters.Letter`` (the rows of ``put_many``) in
    pipelines/ (constants resolved in their module)."""
    flows: set[str] = set()
    for path in (REPO / "pipelines").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("put", "Letter")
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "deadletters"):
                continue
            [flow] = [k.value for k in node.keywords if k.arg == "flow"]
            if isinstance(flow, ast.Constant):
                flows.add(str(flow.value))
            else:
                assert isinstance(flow, ast.Name), f"{path}: flow= must be a constant or a name"
                module = ".".join(path.relative_to(REPO).with_suffix("").parts)
                flows.add(getattr(importlib.import_module(module), flow.id))
    return flows


def test_every_flow_that_writes_dead_letters_has_a_replayer() -> None:
    flows = _flows_that_dead_letter()
    assert {"import", "dispatch", "backsync", "assistance"} <= flows
    assert flows == set(REPLAYERS)
    assert all(callable(replayer_for(flow)) for flow in REPLAYERS)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with start_sandbox(customers=10, seed=5, rate_limits=False, clicksign_retry_delays=[0.05, 0.1]) as sandbox:
        yield sandbox


@pytest.fixture
def tenant(sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TenantConfig:
    """The sandbox tenant as a file, since a replay loads its tenant by name like the CLI does."""
    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path / "tenants"))
    return sandbox_tenant_file(sb, tmp_path / "tenants", unthrottled=True,
                               options={"verification_base_url": "https://verify.example.com"})


def _letter(store: Store, tenant: TenantConfig, flow: str, key: str, payload: dict | None = None) -> int:
    return deadletters.put(store, tenant=tenant.id, flow=flow, record_key=key,
                           error=DataError("failed before the fix"), payload=payload or {})


def test_a_dead_letter_of_each_flow_replays_through_its_flow(sb: Sandbox, store: Store, tenant: TenantConfig) -> None:
    # import: the customer is read from Sienge again and reaches the CRM
    customer = next(iter(sb.state.sienge.customers))
    _letter(store, tenant, "import", f"customer:{customer}")
    # dispatch: the contract is read from the CRM again and becomes one envelope
    sale = seed_sale(sb, tenant)
    verify_manager(store, tenant)
    _letter(store, tenant, "dispatch", f"contract:{sale.contract_id}", {"idreserva": sale.reservation_id})
    # back-sync: a completed envelope whose signed PDF never reached the CRM
    sb.set_faults("clicksign", {"webhook_loss_rate": 1.0})
    env = send_envelope(sb, store, tenant, provider="clicksign", signers=1)
    sb.sign(env.provider_envelope_id, "1")
    _letter(store, tenant, "backsync", f"envelope:{env.id}")

    before = len(sb.state.cvcrm.pessoas)
    outcomes = {letter.flow: replay(store, letter) for letter in deadletters.list_open(store, tenant.id)}

    assert {flow: (o.resolved, o.reason) for flow, o in outcomes.items()} == {
        "import": (True, None), "dispatch": (True, None), "backsync": (True, None)}
    assert len(sb.state.cvcrm.pessoas) > before
    assert len(sb.state.docusign.envelopes) == 1
    with store.session() as session:
        done = session.get(Envelope, env.id)
        assert done is not None and done.status == "completed" and done.signed_sha256
    assert len(crm_contracts(sb, done.details["reservation_id"])) == 1
    assert deadletters.list_open(store, tenant.id) == []


def test_a_stored_delivery_replays_and_fails_again_with_its_reason(store: Store, tenant: TenantConfig) -> None:
    """A back-sync dead letter for a delivery that is not JSON: the replay runs it again and says why."""
    with store.session() as session:
        event = InboxEvent(tenant=tenant.id, connector="clicksign", event_id="poison-1",
                           event_type="auto_close", headers={}, body=b"{not json", status="dead")
        session.add(event)
        session.flush()
        event_id = event.id
    letter_id = _letter(store, tenant, "backsync", f"inbox:{event_id}")
    letter = deadletters.get(store, letter_id)
    assert letter is not None

    outcome = replay(store, letter)

    assert not outcome.resolved and "not JSON" in (outcome.reason or "")
    [still] = deadletters.list_open(store, tenant.id, "backsync")
    assert still.id == letter_id and "not JSON" in still.reason
    with store.session() as session:
        again = session.get(InboxEvent, event_id)
        assert again is not None and again.status == "dead" and again.attempts == 1


def test_the_cli_exits_non_zero_and_says_why(store: Store, tenant: TenantConfig, db_url: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONTE_DATABASE_URL", db_url)
    unknown = deadletters.put(store, tenant=tenant.id, flow="telepathy", record_key="x:1",
                              error=DataError("odd"), payload={})
    bad_key = _letter(store, tenant, "backsync", "inbox:999999")
    typo = _letter(store, tenant, "import", "customers:1")

    result = CliRunner().invoke(app, ["deadletter", "replay", str(unknown), str(bad_key), str(typo)])

    assert result.exit_code == 1, result.output
    assert "no replay for flow 'telepathy'" in result.output
    assert "stored delivery 999999" in result.output and "is gone" in result.output
    assert "unknown import dead letter 'customers:1'" in result.output
    assert "0 of 3 replayed" in result.output
