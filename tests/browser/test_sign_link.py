"""The link in Ponte's own signing invitations (``/sign/{token}``), in a browser, on a real gateway.

A contract is dispatched at the sandbox with the client invited by WhatsApp (``notifications.by:
ponte``); the link in that message, opened in the browser, lands on the provider's signing page. An
expired link and a broken one land on a page that says what happened and what to do, with no view.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.sandbox import Sandbox, start_sandbox
from orchestration.gateway.app import create_app
from orchestration.gateway.sign import sign_routes
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.signing_links import LinkClaims, make_token, read_token
from pipelines.store import open_store
from schemas.tenant import TenantConfig
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.servers import serve_asgi
from tests.support.tenants import sandbox_tenant

pytestmark = pytest.mark.xdist_group("browser")

SECRET = "test-only signing-link secret, 0123456789abcdef"


@dataclass
class Invited:
    sb: Sandbox
    gateway: str
    link: str
    name: str


@pytest.fixture(scope="module")
def invited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Invited]:
    """One contract out for signature and the client's WhatsApp link to the gateway's /sign."""
    root = tmp_path_factory.mktemp("sign")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PONTE_HOME", str(root / "home"))
        mp.setenv("PONTE_SIGNING_LINK_SECRET", SECRET)
        store = open_store(f"sqlite:///{root / 'ponte.db'}")
        tenants: dict[str, TenantConfig] = {}
        try:
            with start_sandbox(customers=10, seed=5, rate_limits=False) as sb, \
                    serve_asgi(create_app(store, tenants, extra_routes=sign_routes(store, tenants))) as url:
                tenant = sandbox_tenant(sb, unthrottled=True, options={
                    "signer_chain": [{"role": "client", "order": 1, "channel": "whatsapp"}],
                    "notifications": {"by": "ponte"}, "verification_base_url": url,
                    "evidence": {"selfie": "not_required", "document_photo": "not_required"}})
                tenants[tenant.id] = tenant
                sale = seed_sale(sb, tenant, roles=("titular",))
                verify_manager(store, tenant)
                outcome = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
                assert outcome.result == "sent", outcome.reason
                phone = sale.people["titular"]["celular"]
                (message,) = [m for m in sb.whatsapp.messages() if m["to"].endswith(phone)]
                link = message["parameters"][1]
                assert link.startswith(f"{url}/sign/"), link
                yield Invited(sb, url, link, sale.people["titular"]["nome"])
        finally:
            store.dispose()


def test_a_valid_link_opens_the_providers_signing_page(invited: Invited, page: Any) -> None:
    answer = page.goto(invited.link)
    hop = answer.request.redirected_from
    assert hop is not None and hop.url == invited.link
    assert hop.response().status == 303
    assert page.url.startswith(invited.sb.urls["docusign"])  # a fresh recipient view at the provider
    assert answer.status == 200
    assert invited.name in page.inner_text("body")


def test_an_expired_link_gets_a_page_saying_to_ask_for_a_new_one(invited: Invited, page: Any, shoot: Any) -> None:
    claims = read_token(invited.link.rsplit("/", 1)[1])
    expired = make_token(LinkClaims(claims.tenant, claims.envelope_id, claims.signer_id,
                                    datetime.now(UTC) - timedelta(minutes=1)))  # this gateway's secret
    views = len(invited.sb.docusign.state.views)
    answer = page.goto(f"{invited.gateway}/sign/{expired}")
    assert answer.status == 410 and answer.request.redirected_from is None
    assert page.title() == "Link expirado"
    assert "Peça um novo convite" in page.inner_text("body")
    assert len(invited.sb.docusign.state.views) == views  # the provider was not asked for a view
    shoot(page, "sign-link-expired")


def test_a_broken_link_gets_a_page_saying_to_use_the_invitation(invited: Invited, page: Any, shoot: Any) -> None:
    token = invited.link.rsplit("/", 1)[1]
    answer = page.goto(f"{invited.gateway}/sign/{token[:-4]}")  # cut short, as a forwarded message may
    assert answer.status == 404 and answer.request.redirected_from is None
    assert page.title() == "Link inválido"
    assert "exatamente como veio no convite" in page.inner_text("body")
    shoot(page, "sign-link-invalid")
