"""The verification page the QR code opens, in a browser, against a real gateway on loopback.

One DocuSign contract is sent at the sandbox, signed by both signers and completed by back-sync (the
stamped PDF stored, its SHA-256 on the page); then the page is read as a person reads it: the verdict,
the code, the status, signers masked, times in the tenant's zone, the file check through the page's
own file input, and the page an unknown code gets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.sandbox import Sandbox, start_sandbox
from orchestration.gateway.app import create_app
from orchestration.gateway.verify import verify_routes
from pipelines.backsync.flow import poll_stale
from pipelines.connections import open_connector
from pipelines.store import Store, open_store
from pipelines.store.models import Envelope
from schemas.tenant import TenantConfig
from tests.pipelines.backsync.helpers import PEOPLE, contract_pdf, send_envelope
from tests.security.logscan import known_secrets, scan_line
from tests.support.servers import serve_asgi
from tests.support.tenants import sandbox_tenant

pytestmark = pytest.mark.xdist_group("browser")

PHONE = "48991234567"  # the client's phone in the CRM (tests/pipelines/backsync/helpers.py)


@dataclass
class Signed:
    gateway: str
    code: str
    pdf: Path
    sha256: str
    completed_at: datetime
    tenants: dict[str, TenantConfig]
    tenant: TenantConfig


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signed]:
    """A completed, stamped DocuSign contract and the gateway (with /verify) that shows it."""
    root = tmp_path_factory.mktemp("verify")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PONTE_HOME", str(root / "home"))
        store: Store = open_store(f"sqlite:///{root / 'ponte.db'}")
        tenants: dict[str, TenantConfig] = {}
        try:
            with start_sandbox(customers=10, seed=5, rate_limits=False) as sb, \
                    serve_asgi(create_app(store, tenants, extra_routes=verify_routes(store, tenants))) as url:
                tenant = sandbox_tenant(sb, unthrottled=True, options={"verification_base_url": url})
                tenants[tenant.id] = tenant
                env = _complete(sb, store, tenant)
                yield Signed(url, str(env.verification_code), Path(str(env.signed_path)), str(env.signed_sha256),
                             env.completed_at, tenants, tenant)
        finally:
            store.dispose()


def _complete(sb: Sandbox, store: Store, tenant: TenantConfig) -> Envelope:
    env = send_envelope(sb, store, tenant, provider="docusign", signers=2)
    sb.sign(env.provider_envelope_id, "client")
    sb.sign(env.provider_envelope_id, "spouse")
    report = poll_stale(store, tenant, lambda key: open_connector(tenant, key, store=store),
                        quiet_for=timedelta(0))
    assert report.completed == [env.contract_id], report
    with store.session() as session:
        done = session.get(Envelope, env.id)
        assert done is not None and done.status == "completed" and done.signed_path and done.completed_at
        session.expunge(done)
    return done


def _in_clear(text: str) -> list[str]:
    """Personal data the page must not carry: the signers' CPFs, e-mails, full names, the phone."""
    found = [kind for kind, _, _ in scan_line(text, known_secrets())]
    for person in PEOPLE[:2]:
        cpf = person.cpf
        for bit in (cpf, f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}", person.email, person.name):
            if bit in text:
                found.append(bit)
    return found + [PHONE] * (PHONE in text)


def test_the_page_shows_the_document_status_and_masked_signers(signed: Signed, page: Any, shoot: Any) -> None:
    answer = page.goto(f"{signed.gateway}/verify/{signed.code}")
    assert answer.status == 200
    assert page.title() == f"Verificação {signed.code}"
    assert page.inner_text("#verdict") == "Documento válido"
    assert page.inner_text("#code") == signed.code
    assert page.inner_text("#status") == "Assinado por todos"
    assert page.inner_text("#sha") == signed.sha256
    rows = page.locator("#signers tr").all_inner_texts()[1:]
    assert len(rows) == 2
    assert "Maria A. d. S." in rows[0] and "***.***.***-25" in rows[0] and "Assinou" in rows[0]
    assert "João C. d. S." in rows[1]
    for text in (page.inner_text("body"), page.content()):
        assert _in_clear(text) == [], "personal data in clear on the public page"
    shoot(page, "verify-page")


def test_times_are_in_the_tenants_time_zone(signed: Signed, page: Any) -> None:
    local = signed.completed_at.astimezone(ZoneInfo("America/Sao_Paulo"))
    page.goto(f"{signed.gateway}/verify/{signed.code}")
    assert page.inner_text("#completed") == f"{local:%d/%m/%Y %H:%M} -03"
    assert "America/Sao_Paulo (UTC-03:00)" in page.inner_text("#zone")
    assert signed.completed_at.isoformat() in page.get_attribute("#completed time", "datetime")

    # another tenant's zone: the same instant as that tenant reads it
    tokyo = signed.tenant.model_copy(update={"options": signed.tenant.options.model_copy(
        update={"timezone": "Asia/Tokyo"})})
    signed.tenants[tokyo.id] = tokyo
    try:
        page.reload()
        there = signed.completed_at.astimezone(ZoneInfo("Asia/Tokyo"))
        assert page.inner_text("#completed") == f"{there:%d/%m/%Y %H:%M} JST"
        assert "Asia/Tokyo (UTC+09:00)" in page.inner_text("#zone")
    finally:
        signed.tenants[signed.tenant.id] = signed.tenant


def test_the_signed_pdf_matches_and_another_does_not(signed: Signed, page: Any, shoot: Any,
                                                       tmp_path: Path) -> None:
    page.goto(f"{signed.gateway}/verify/{signed.code}")
    result = page.locator("#r")

    page.set_input_files("#f", str(signed.pdf))
    page.wait_for_function("document.getElementById('r').dataset.matches !== undefined")
    assert result.inner_text() == "O arquivo confere com o documento assinado."
    assert result.get_attribute("data-matches") == "true"
    shoot(page, "verify-file-matches")

    other = tmp_path / "outro.pdf"
    other.write_bytes(contract_pdf("Outro contrato.pdf", 1))
    page.set_input_files("#f", str(other))
    page.wait_for_function("document.getElementById('r').dataset.matches === 'false'")
    assert re.fullmatch(r"O arquivo NÃO confere com este documento \(SHA-256 [0-9a-f]{64}\)\.", result.inner_text())
    shoot(page, "verify-file-does-not-match")


def test_an_unknown_code_gets_a_page_that_says_what_to_do(signed: Signed, page: Any, shoot: Any) -> None:
    answer = page.goto(f"{signed.gateway}/verify/7QK2M9NAOEXISTE")
    assert answer.status == 404
    assert "text/html" in answer.headers["content-type"]
    assert page.title() == "Código de verificação desconhecido"
    assert page.locator("header").count() == 1  # the same layout as the page of a known code
    assert "7QK2M9NAOEXISTE" in page.inner_text("#explain")
    assert len(page.locator("#todo li").all()) >= 3  # what to check, and whom to ask
    assert "fale com quem enviou o documento" in page.inner_text("#todo")
    shoot(page, "verify-unknown-code")

    # the page's own box takes the right code to the document
    page.fill("#again input[name=code]", signed.code)
    page.click("#again button")
    page.wait_for_url(f"**/verify/{signed.code}")
    assert page.inner_text("#verdict") == "Documento válido"


def test_a_code_that_is_not_a_code_is_not_repeated_back(signed: Signed, page: Any) -> None:
    answer = page.goto(f"{signed.gateway}/verify/Ligue%200800%20agora")
    assert answer.status == 404
    assert "Ligue" not in page.inner_text("body")
