"""Back-sync of a signing provider described in YAML alone (ZapSign), over the sandbox and real HTTP.

Dispatch sends a CV CRM contract to the ZapSign sandbox; the signers sign in order; ZapSign's webhooks
(the registered X-Ponte-Secret header their only proof) reach the gateway; back-sync reads them through
the spec's signing.webhook_mappings, confirms the completion by a status read, downloads the signed PDF
from the link the read names, and uploads it to the CRM once. Without webhooks, the poll gets there too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from orchestration.gateway.app import create_app
from orchestration.gateway.verify import verify_routes
from pipelines.backsync.flow import drain_inbox, poll_stale
from pipelines.connections import TenantConnectors, open_connector
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.store import Store
from pipelines.store.models import Envelope, InboxEvent
from schemas.tenant import TenantConfig
from tests.pipelines.backsync.conftest import Hub
from tests.pipelines.backsync.helpers import crm_contracts
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.pipelines.dispatch.test_yaml_provider import zapsign_tenant
from tests.support.servers import serve_asgi


@pytest.fixture
def zhub(sb, store: Store, tmp_path: Path) -> Iterator[Hub]:
    holder: dict[str, TenantConfig] = {}
    app = create_app(store, holder, extra_routes=verify_routes(store))
    with serve_asgi(app) as url:
        tenant = zapsign_tenant(sb, tmp_path / "tenants", "zs-backsync", verification_base_url=url,
                                signature_pages="all")
        holder[tenant.id] = tenant
        verify_manager(store, tenant)
        yield Hub(sb, store, tenant, url)


def _dispatch(hub: Hub, roles: tuple[str, ...] = ("titular", "Cônjuge")) -> Envelope:
    sale = seed_sale(hub.sb, hub.tenant, roles=roles)
    with TenantConnectors(hub.tenant, hub.store) as conns:
        outcome = run_dispatch(hub.store, hub.tenant, DispatchRequest(contracts=[sale.ref]), conns).outcomes[0]
    assert outcome.result == "sent", outcome.reason
    return _envelope(hub, outcome.envelope_id)


def _envelope(hub: Hub, envelope_id: int | None) -> Envelope:
    with hub.store.session() as session:
        env = session.get(Envelope, envelope_id)
        assert env is not None
        env.signers  # noqa: B018 - load before the session closes
        return env


def _signed_uploads(hub: Hub, env: Envelope) -> list[dict]:
    """The signed PDFs Ponte attached (the original contract, now marked signed too, is not one)."""
    return [c for c in crm_contracts(hub.sb, int(env.details["reservation_id"]))
            if c["assinado"] == "S" and str(c["idreservacontrato"]) != env.contract_id]


def _check_home(hub: Hub, env_id: int) -> Envelope:
    done = _envelope(hub, env_id)
    assert done.status == "completed"
    assert all(s.status == "signed" for s in done.signers)
    [upload] = _signed_uploads(hub, done)  # the CRM got the signed PDF once
    crm_pdf = httpx.get(upload["link"]).content
    assert hashlib.sha256(crm_pdf).hexdigest() == done.signed_sha256
    return done


def test_zapsign_webhooks_move_the_envelope_to_completed_and_the_signed_pdf_reaches_the_crm(zhub: Hub) -> None:
    with open_connector(zhub.tenant, "zapsign", store=zhub.store) as zs:
        zs.register_webhook("events", f"{zhub.url}/webhooks/{zhub.tenant.id}/zapsign/events")
    hook = zhub.sb.state.zapsign.webhooks[-1]
    assert hook["headers"] == [{"name": "X-Ponte-Secret", "value": zhub.sb.config.zapsign_webhook_secret}]
    env = _dispatch(zhub)
    token = str(env.provider_envelope_id)

    with pytest.raises(httpx.HTTPStatusError):  # ZapSign's order: the spouse cannot sign before the buyer
        httpx.post(f"{zhub.sb.urls['zapsign']}/_sandbox/docs/{token}/act", json={"as": "2"}).raise_for_status()
    zhub.sb.sign(token, "1")
    zhub.sb.dispatcher.wait_for(lambda a: sum(1 for x in a if x.system == "zapsign" and x.event == "doc_signed"
                                              and x.outcome == "delivered") >= 1)
    assert drain_inbox(zhub.store, zhub.tenant, zhub.opener).applied == 1
    mid = _envelope(zhub, env.id)
    assert {s.routing_order: s.status for s in mid.signers} == {1: "signed", 2: "sent"}
    assert mid.status in ("sent", "delivered")

    zhub.sb.sign(token, "2")
    zhub.sb.dispatcher.wait_for(lambda a: sum(1 for x in a if x.system == "zapsign" and x.event == "doc_signed"
                                              and x.outcome == "delivered") >= 2)
    report = drain_inbox(zhub.store, zhub.tenant, zhub.opener)
    assert report.failed == 0 and report.completed == [env.contract_id]
    done = _check_home(zhub, env.id)
    with zhub.store.session() as session:
        stored = list(session.scalars(select(InboxEvent).where(InboxEvent.connector == "zapsign")))
    assert stored and all(e.status == "done" for e in stored)

    # later news changes nothing: no second upload
    assert drain_inbox(zhub.store, zhub.tenant, zhub.opener).events == 0
    poll_stale(zhub.store, zhub.tenant, zhub.opener, quiet_for=timedelta(0))
    assert len(_signed_uploads(zhub, done)) == 1


def test_without_webhooks_the_poll_reads_zapsign_and_completes_the_envelope_once(zhub: Hub) -> None:
    env = _dispatch(zhub, roles=("titular", "Cônjuge", "testemunha"))
    token = str(env.provider_envelope_id)
    for position in ("1", "2"):
        zhub.sb.sign(token, position)
    poll_stale(zhub.store, zhub.tenant, zhub.opener, quiet_for=timedelta(0))
    mid = _envelope(zhub, env.id)
    assert mid.status != "completed"
    assert {s.routing_order: s.status for s in mid.signers} == {1: "signed", 2: "signed", 3: "sent"}

    zhub.sb.sign(token, "3")
    report = poll_stale(zhub.store, zhub.tenant, zhub.opener, quiet_for=timedelta(0))
    assert report.failed == 0 and report.completed == [env.contract_id]
    done = _check_home(zhub, env.id)
    poll_stale(zhub.store, zhub.tenant, zhub.opener, quiet_for=timedelta(0))
    assert len(_signed_uploads(zhub, done)) == 1


def test_a_zapsign_refusal_declines_the_envelope(zhub: Hub) -> None:
    env = _dispatch(zhub)
    zhub.sb.sign(str(env.provider_envelope_id), "1", action="refuse")
    poll_stale(zhub.store, zhub.tenant, zhub.opener, quiet_for=timedelta(0))
    declined = _envelope(zhub, env.id)
    assert declined.status == "declined"
    assert _signed_uploads(zhub, declined) == []
