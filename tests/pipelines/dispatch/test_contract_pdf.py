"""The CRM's contract PDF comes through the connector runtime's one download path, and only from CV CRM's hosts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from connectors.runtime.client import Connector
from pipelines.dispatch.documents import download_crm_pdf
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.store import deadletters
from pipelines.store.db import Store
from pipelines.store.models import Envelope
from ponte.errors import DataError
from tests.connectors.loopback import Loopback, Reply
from tests.pipelines.dispatch.support import Sale, seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant


@pytest.fixture
def foreign() -> Iterator[Loopback]:
    """A host that is not CV CRM's (same machine, another port), serving a PDF to whoever asks."""
    with Loopback() as server:
        server.route("GET", "/contrato.pdf", lambda _req: Reply(200, b"%PDF-1.7 not the CRM's", {"content-type": "application/pdf"}))
        yield server


def _contract(sb, sale: Sale) -> dict:
    return next(c for c in sb.state.cvcrm.contratos[sale.reservation_id] if c["idreservacontrato"] == sale.contract_id)


def _envelopes(store: Store, contract_id: int) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(Envelope).where(Envelope.contract_id == str(contract_id))) or 0


def test_a_link_with_a_query_reaches_the_crm_with_its_query() -> None:
    with Loopback() as crm:
        crm.route("GET", "/arquivos/801.pdf", lambda _req: Reply(200, b"%PDF-1.7 contrato"))
        values = {"base_url": crm.url, "domain": "demo"}
        with Connector.open("cvcrm", values, {"email": "i@demo.cvcrm.com.br", "token": "cv-test-token-1"}) as cvcrm:
            record = {"idreservacontrato": 801, "link": f"{crm.url}/arquivos/801.pdf?hash=abc&v=2"}
            assert download_crm_pdf(cvcrm, record) == b"%PDF-1.7 contrato"
            assert cvcrm.api_calls == 1  # counted on the tenant's connector
        (hit,) = crm.hits("GET", "/arquivos/801.pdf")
        assert hit.query == {"hash": "abc", "v": "2"} and hit.headers["token"] == "cv-test-token-1"


def test_the_crms_pdf_is_downloaded_and_sent_byte_for_byte(sb, store: Store) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True)
    sale = seed_sale(sb, tenant)
    verify_manager(store, tenant)
    link = _contract(sb, sale)["link"]
    crm_pdf = sb.state.cvcrm.files[link.rsplit("/", 1)[1]]

    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))

    outcome = report.outcomes[0]
    assert outcome.result == "sent", outcome.reason
    assert outcome.document_sha256 == hashlib.sha256(crm_pdf).hexdigest()
    assert list(sb.state.docusign.documents[outcome.provider_envelope_id].values()) == [crm_pdf]
    with store.session() as session:
        row = session.scalars(select(Envelope).where(Envelope.id == outcome.envelope_id)).one()
        assert row.details["document_source"] == "crm_pdf"


@pytest.mark.parametrize("where", ["another port", "look-alike https host"])
def test_a_contract_link_on_a_foreign_host_is_dead_lettered_and_nothing_is_fetched(
    sb, store: Store, foreign: Loopback, where: str
) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True)
    sale = seed_sale(sb, tenant)
    good = seed_sale(sb, tenant)
    verify_manager(store, tenant)
    link = f"{foreign.url}/contrato.pdf" if where == "another port" else "https://demo.cvcrm.com.br.example.net/c.pdf"
    _contract(sb, sale)["link"] = link
    at_provider = len(sb.state.docusign.envelopes)

    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref, good.ref]))

    bad, fine = report.outcomes
    # a fetch would have failed differently: the look-alike host does not resolve (deferred, not dead)
    assert bad.result == "dead_lettered", bad.reason
    assert "refusing to download the contract PDF from" in (bad.reason or "")
    assert "not a cvcrm host" in (bad.reason or "") and "nothing was fetched" in (bad.reason or "")
    assert foreign.received == []  # not one request reached the foreign host
    assert fine.result == "sent", fine.reason  # the batch goes on
    assert len(sb.state.docusign.envelopes) == at_provider + 1
    assert _envelopes(store, sale.contract_id) == 0
    (letter,) = [d for d in deadletters.list_open(store, tenant.id, "dispatch") if d.record_key == f"contract:{sale.contract_id}"]
    assert letter.field == "link" and letter.error_kind == "data"
    assert "ponte deadletter replay" in (letter.hint or "")


def test_a_crm_link_that_redirects_elsewhere_is_refused_and_nothing_is_fetched_there(foreign: Loopback) -> None:
    """Before: the download followed the redirect to any host and sent what it got as the contract."""
    with Loopback() as crm_files:  # the CRM's own origin would be the sandbox; any link on it may redirect
        crm_files.route("GET", "/arquivos/801.pdf", Reply(302, b"", {"location": f"{foreign.url}/contrato.pdf"}))
        values = {"base_url": crm_files.url, "domain": "demo"}
        secrets = {"email": "i@demo.cvcrm.com.br", "token": "cv-test-token-1"}
        with Connector.open("cvcrm", values, secrets) as cvcrm, pytest.raises(DataError, match="redirected to") as refused:
            download_crm_pdf(cvcrm, {"idreservacontrato": 801, "link": f"{crm_files.url}/arquivos/801.pdf"})
    assert refused.value.record == "contract 801" and refused.value.field == "link"
    assert foreign.received == []

