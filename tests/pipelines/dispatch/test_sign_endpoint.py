"""The signer's click, end to end over real HTTP: WhatsApp link → gateway ``/sign/{token}`` → a fresh
DocuSign recipient view at the sandbox → signed.

The gateway is served on loopback (as tests/pipelines/backsync/conftest.py serves it) with the sign routes; the
tenant invites by Ponte (``notifications.by: ponte``), the client by WhatsApp. What a signer may and
may not do with the link, and that nothing secret reaches a log line.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from connectors.sandbox import Sandbox
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.store.db import Store
from pipelines.store.models import EnvelopeSigner
from schemas.tenant import TenantConfig
from tests.pipelines.dispatch.support import Sale, seed_sale, verify_manager
from tests.support.servers import serve_asgi
from tests.support.tenants import sandbox_tenant

SECRET = "test-only signing-link secret, fedcba9876543210"
FORM = re.compile(r'<form[^>]*method="post"[^>]*action="([^"]+/sign)"', re.I)


@dataclass
class Hub:
    sb: Sandbox
    store: Store
    tenant: TenantConfig
    gateway: str


@pytest.fixture
def hub(sb: Sandbox, store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    from orchestration.gateway.app import create_app
    from orchestration.gateway.sign import sign_routes

    monkeypatch.setenv("PONTE_SIGNING_LINK_SECRET", SECRET)
    tenants: dict[str, TenantConfig] = {}
    app = create_app(store, tenants, extra_routes=sign_routes(store, tenants))
    with serve_asgi(app) as url:
        chain = [{"role": "client", "order": 1, "channel": "whatsapp"},
                 {"role": "spouse", "order": 2, "required": False}]
        tenant = sandbox_tenant(sb, unthrottled=True, options={
            "signer_chain": chain, "notifications": {"by": "ponte"}, "verification_base_url": url,
            # evidence DocuSign checks only through an ID Verification workflow: not the point here
            "evidence": {"selfie": "not_required", "document_photo": "not_required"}})
        tenants[tenant.id] = tenant
        yield Hub(sb, store, tenant, url)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=15) as client:
        yield client


def _dispatch(hub: Hub) -> tuple[Sale, str, str]:
    """One contract sent; returns the sale, the DocuSign envelope id and the client's WhatsApp link."""
    sale = seed_sale(hub.sb, hub.tenant, roles=("titular", "Cônjuge"))
    verify_manager(hub.store, hub.tenant)
    report = run_dispatch(hub.store, hub.tenant, DispatchRequest(contracts=[sale.ref]))
    outcome = report.outcomes[0]
    assert outcome.result == "sent", outcome.reason
    phone = sale.people["titular"]["celular"]
    (message,) = [m for m in hub.sb.whatsapp.messages() if m["to"].endswith(phone)]
    link = message["parameters"][1]
    assert link.startswith(f"{hub.gateway}/sign/"), link
    return sale, str(outcome.provider_envelope_id), link


def _signer(hub: Hub, envelope_id: str, role: str) -> dict:
    return next(s for s in hub.sb.state.docusign.envelopes[envelope_id]["recipients"]["signers"]
                if s["roleName"] == role)


def test_the_whatsapp_link_signs_through_a_fresh_recipient_view(
        hub: Hub, http: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sale, envelope_id, link = _dispatch(hub)
    docusign = hub.sb.urls["docusign"]

    first = http.get(link)
    assert first.status_code in (302, 303), first.text
    view = first.headers["location"]
    assert view.startswith(docusign)
    assert first.headers.get("cache-control") == "no-store"
    second = http.get(link)  # every click asks DocuSign for a new view: a view URL is single-use
    assert second.status_code in (302, 303) and second.headers["location"] != view

    page = http.get(view)
    assert page.status_code == 200
    assert sale.people["titular"]["nome"] in page.text
    action = FORM.search(page.text)
    assert action, page.text
    signed = http.post(docusign + action.group(1) if action.group(1).startswith("/") else action.group(1))
    assert signed.status_code in (302, 303)
    back = signed.headers["location"]
    assert back.startswith(f"{hub.gateway}/sign/done")
    assert parse_qs(urlsplit(back).query)["event"] == ["signing_complete"]
    assert _signer(hub, envelope_id, "client")["status"] == "completed"  # signed at the provider
    assert _signer(hub, envelope_id, "spouse")["status"] == "sent"  # the chain moved on
    done = http.get(back)
    assert done.status_code == 200 and "assinatura" in done.text.lower()

    reused = http.get(view)  # the used view URL cannot be used again
    assert 400 <= reused.status_code < 500
    assert "location" not in reused.headers

    again = http.get(link)  # the same invitation after signing: a clear page, no new view
    assert again.status_code == 200
    assert "location" not in again.headers
    assert "já assinou" in again.text

    token = link.rsplit("/", 1)[1]
    view_token = view.rstrip("/").rsplit("/", 1)[1]
    secret_bits = (token, view_token, sale.people["titular"]["email"], SECRET)
    # every record of the hub, the gateway and the stand-ins; not httpcore's DEBUG trace of the test's own
    # HTTP client, which plays the signer's browser (it prints the redirect the browser received; Ponte's
    # processes keep httpcore at WARNING, ponte.logging.configure_logging)
    lines = [r.getMessage() for r in caplog.records if not r.name.startswith("httpcore")]
    leaks = [bit for bit in secret_bits for line in lines if bit in line]
    assert not leaks, "a token, view URL, e-mail or the secret reached a log line"


def test_the_recipient_view_request_is_the_documented_one(hub: Hub, http: httpx.Client) -> None:
    from connectors.sandbox.base import EXCHANGE_OBSERVERS
    from tests.support.vendor_specs import check_request

    _sale, envelope_id, link = _dispatch(hub)
    seen: list = []

    def views() -> list:
        return [e for e in seen if e.method == "POST" and e.path.endswith("/views/recipient")]

    EXCHANGE_OBSERVERS.append(seen.append)
    try:
        assert http.get(link).status_code in (302, 303)
        deadline = time.monotonic() + 5  # observed before the answer completes; a margin all the same
        while not views() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        EXCHANGE_OBSERVERS.remove(seen.append)
    (request,) = views()
    import json

    body = json.loads(request.request_body)
    client = _signer(hub, envelope_id, "client")
    assert body["clientUserId"] == client["clientUserId"]
    assert (body["email"], body["userName"]) == (client["email"], client["name"])
    assert body["returnUrl"].startswith(f"{hub.gateway}/sign/done")
    assert body["authenticationMethod"]
    assert check_request("docusign", "POST", request.path, body) == []
    assert request.status == 201


def test_forged_altered_or_expired_links_get_a_4xx_page_and_no_view(hub: Hub, http: httpx.Client) -> None:
    from pipelines.dispatch.signing_links import LinkClaims, make_token, read_token

    _sale, envelope_id, link = _dispatch(hub)
    token = link.rsplit("/", 1)[1]
    claims = read_token(token)
    views = len(hub.sb.docusign.state.views)
    middle = len(token) // 2
    altered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
    forged = make_token(claims, secret=b"not this deployment's secret, 0123456789")
    expired = make_token(LinkClaims(claims.tenant, claims.envelope_id, claims.signer_id,
                                    datetime.now(UTC) - timedelta(minutes=1)))
    for bad, status in ((altered, 404), (forged, 404), (token[:-4], 404), ("nada", 404), (expired, 410)):
        answer = http.get(f"{hub.gateway}/sign/{bad}")
        assert answer.status_code == status, (bad == expired, answer.text)
        assert "location" not in answer.headers
        assert "text/html" in answer.headers["content-type"]
    assert len(hub.sb.docusign.state.views) == views  # DocuSign was never asked for a view
    assert _signer(hub, envelope_id, "client")["status"] == "sent"


def test_a_link_for_a_signer_whose_turn_has_not_come_opens_nothing(hub: Hub, http: httpx.Client) -> None:
    from pipelines.dispatch.signing_links import LinkClaims, make_token, read_token

    _sale, _envelope_id, link = _dispatch(hub)
    claims = read_token(link.rsplit("/", 1)[1])
    with hub.store.session() as session:
        spouse = session.scalars(select(EnvelopeSigner).where(EnvelopeSigner.envelope_id == claims.envelope_id,
                                                              EnvelopeSigner.role == "spouse")).one()
    early = make_token(LinkClaims(claims.tenant, claims.envelope_id, spouse.id, claims.expires_at))
    views = len(hub.sb.docusign.state.views)
    answer = http.get(f"{hub.gateway}/sign/{early}")
    assert answer.status_code == 409 and "location" not in answer.headers
    assert len(hub.sb.docusign.state.views) == views


def test_an_unused_view_url_expires(hub: Hub, http: httpx.Client) -> None:
    _sale, envelope_id, link = _dispatch(hub)
    hub.sb.docusign.view_ttl_seconds = 0.3
    try:
        view = http.get(link).headers["location"]
        time.sleep(0.6)
        late = http.get(view)
    finally:
        del hub.sb.docusign.view_ttl_seconds  # back to the class's 5 minutes
    assert 400 <= late.status_code < 500
    assert _signer(hub, envelope_id, "client")["status"] == "sent"  # not even viewed
    fresh = http.get(http.get(link).headers["location"])  # the link itself still works: a new view
    assert fresh.status_code == 200


def test_the_sandbox_gives_a_view_only_to_the_embedded_recipient_it_names(hub: Hub) -> None:
    from pipelines.connections import open_connector
    from ponte.errors import PonteError

    _sale, envelope_id, _link = _dispatch(hub)
    client = _signer(hub, envelope_id, "client")
    request = {"envelope_id": envelope_id, "returnUrl": f"{hub.gateway}/sign/done", "authenticationMethod": "None",
               "email": client["email"], "userName": client["name"], "clientUserId": client["clientUserId"]}
    with open_connector(hub.tenant, "docusign") as docusign:
        assert docusign.call("create_recipient_view", request).data["url"].startswith(hub.sb.urls["docusign"])
        for wrong in ({"clientUserId": "someone-else"}, {"email": "other@example.com"}, {"userName": "Outra Pessoa"}):
            with pytest.raises(PonteError) as refused:
                docusign.call("create_recipient_view", {**request, **wrong})
            assert "UNKNOWN_ENVELOPE_RECIPIENT" in str(refused.value.details.get("body"))


def test_the_production_gateway_serves_the_sign_routes(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ponte serve` (uvicorn on orchestration.gateway.factory:app_from_environment) has /sign too."""
    from orchestration.gateway.factory import app_from_environment

    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PONTE_DATABASE_URL", f"sqlite:///{tmp_path / 'gateway.db'}")
    paths = {getattr(route, "path", "") for route in app_from_environment().routes}
    assert {"/sign/{token}", "/sign/done", "/verify/{code}"} <= paths


def test_a_link_preview_opens_no_view(hub: Hub, http: httpx.Client) -> None:
    """WhatsApp fetches a link to preview it; that fetch must not open the document in the signer's name
    (a view redeemed by a bot would mark the signer as having viewed it, from the bot's address)."""
    _sale, envelope_id, link = _dispatch(hub)
    views = len(hub.sb.docusign.state.views)
    for answer in (http.head(link), http.get(link, headers={"User-Agent": "WhatsApp/2.24.6.77 A"}),
                   http.get(link, headers={"User-Agent": "facebookexternalhit/1.1"})):
        assert answer.status_code == 200 and "location" not in answer.headers
    assert len(hub.sb.docusign.state.views) == views
    assert _signer(hub, envelope_id, "client")["status"] == "sent"
    pressed = http.get(link, params={"abrir": "1"}, headers={"User-Agent": "WhatsApp/2.24.6.77 A"})
    assert pressed.status_code == 303  # the preview page's button: a person after all
