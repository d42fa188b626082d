"""Issue #18 point 1, "invitation links that exist": which link each signer gets, by provider and mode.

- DocuSign, the provider notifies: a WhatsApp signer is delivered by DocuSign itself
  (``additionalNotifications``, PROVIDERS.md §3.7), e-mail first; the body conforms to the swagger.
- DocuSign, Ponte notifies: every signer is an embedded recipient (``clientUserId``), and Ponte's
  WhatsApp template carries a signed ``/sign/{token}`` link on the gateway (followed end to end in
  ``test_sign_endpoint.py``).
- Clicksign documents no signer link Ponte could send: ``ponte validate`` refuses ``by: ponte`` with
  Clicksign, and dispatch dead-letters the contract instead of inventing a link.
- The tokens: signed, expiring, single-signer; a tampered or foreign one is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from connectors.sandbox.base import EXCHANGE_OBSERVERS, Exchange
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.notify import notify_next_signers
from pipelines.store import deadletters
from pipelines.store.db import Store
from pipelines.store.models import Envelope, EnvelopeSigner
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import REPO, sandbox_tenant
from tests.support.vendor_specs import check_request

SECRET = "test-only signing-link secret, 0123456789abcdef"
#: evidence DocuSign checks only through an ID Verification workflow: not the point here
NO_ID_EVIDENCE = {"selfie": "not_required", "document_photo": "not_required"}


@pytest.fixture
def signing_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PONTE_SIGNING_LINK_SECRET", SECRET)
    monkeypatch.delenv("PONTE_SIGNING_LINK_SECRET_OLD", raising=False)
    return SECRET


@pytest.fixture
def exchanges() -> Iterator[list[Exchange]]:
    """Every request the stand-ins serve during the test, as it crossed the wire."""
    seen: list[Exchange] = []
    EXCHANGE_OBSERVERS.append(seen.append)
    try:
        yield seen
    finally:
        EXCHANGE_OBSERVERS.remove(seen.append)


def _created_envelope_body(seen: list[Exchange]) -> tuple[str, dict]:
    def created() -> list[Exchange]:
        return [e for e in seen if e.system == "docusign" and e.method == "POST" and e.path.endswith("/envelopes")]

    deadline = time.monotonic() + 5  # a stand-in tells its observers just after its answer went out
    while not created() and time.monotonic() < deadline:
        time.sleep(0.02)
    (exchange,) = created()
    return exchange.path, json.loads(exchange.request_body)


# ------------------------------------------------------------------------ DocuSign, provider notifies

def test_by_provider_a_whatsapp_signer_is_delivered_by_docusign_itself(sb, store: Store, exchanges) -> None:
    chain = [{"role": "client", "order": 1, "channel": "whatsapp"}, {"role": "spouse", "order": 2, "required": False}]
    tenant = sandbox_tenant(sb, unthrottled=True, options={
        "signer_chain": chain, "notifications": {"by": "provider"}, "evidence": NO_ID_EVIDENCE})
    sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"))
    verify_manager(store, tenant)

    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))
    assert report.outcomes[0].result == "sent", report.outcomes[0].reason

    path, body = _created_envelope_body(exchanges)
    client, spouse = body["recipients"]["signers"]
    phone = sale.people["titular"]["celular"]
    assert client["additionalNotifications"] == [
        {"secondaryDeliveryMethod": "WhatsApp", "phoneNumber": {"countryCode": "55", "number": phone}}]
    assert client["email"] == sale.people["titular"]["email"]  # e-mail stays the primary method
    assert "additionalNotifications" not in spouse  # an e-mail signer: DocuSign's e-mail only
    assert "clientUserId" not in client and "clientUserId" not in spouse  # remote signers: DocuSign's own link
    assert check_request("docusign", "POST", path, body) == []
    held = sb.state.docusign.envelopes[report.outcomes[0].provider_envelope_id]["recipients"]["signers"]
    assert held[0]["additionalNotifications"][0]["secondaryDeliveryMethod"] == "WhatsApp"
    assert not [m for m in sb.whatsapp.messages() if m["to"].endswith(phone)]  # Ponte sent nothing itself


# --------------------------------------------------------------------------- DocuSign, Ponte notifies

def test_by_ponte_signers_are_embedded_and_the_whatsapp_link_is_a_gateway_token(
        sb, store: Store, exchanges, signing_secret) -> None:
    gateway = "https://assinar.demo.example.com"
    chain = [{"role": "client", "order": 1, "channel": "whatsapp"}, {"role": "spouse", "order": 2, "required": False}]
    tenant = sandbox_tenant(sb, unthrottled=True, options={
        "signer_chain": chain, "notifications": {"by": "ponte"}, "verification_base_url": gateway,
        "evidence": NO_ID_EVIDENCE})
    sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"))
    verify_manager(store, tenant)

    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))
    outcome = report.outcomes[0]
    assert outcome.result == "sent", outcome.reason

    path, body = _created_envelope_body(exchanges)
    client, spouse = body["recipients"]["signers"]
    assert client["clientUserId"] and spouse["clientUserId"] and client["clientUserId"] != spouse["clientUserId"]
    assert "additionalNotifications" not in client  # Ponte invites: DocuSign sends nothing
    assert check_request("docusign", "POST", path, body) == []

    phone = sale.people["titular"]["celular"]
    (message,) = [m for m in sb.whatsapp.messages() if m["to"].endswith(phone)]
    assert message["template"] == "ponte_convite_assinatura"
    name, link = message["parameters"]
    assert name == sale.people["titular"]["nome"]
    assert link.startswith(f"{gateway}/sign/")
    assert outcome.provider_envelope_id not in link  # nothing made up from provider ids
    token = link.rsplit("/", 1)[1]

    from pipelines.dispatch.signing_links import read_token

    claims = read_token(token)
    with store.session() as session:
        row = session.scalars(select(EnvelopeSigner).where(EnvelopeSigner.envelope_id == outcome.envelope_id,
                                                           EnvelopeSigner.role == "client")).one()
        envelope = session.get(Envelope, outcome.envelope_id)
        assert (claims.tenant, claims.envelope_id, claims.signer_id) == (tenant.id, envelope.id, row.id)
        # valid until the envelope's deadline (the tenant sets no shorter link lifetime)
        assert abs((claims.expires_at - envelope.expires_at.replace(tzinfo=UTC)).total_seconds()) < 2


def test_link_lifetime_is_the_tenants_when_shorter_than_the_deadline(sb, store: Store, signing_secret) -> None:
    chain = [{"role": "client", "order": 1, "channel": "whatsapp"}]
    tenant = sandbox_tenant(sb, unthrottled=True, options={
        "signer_chain": chain, "notifications": {"by": "ponte", "signing_link_days": 7},
        "evidence": NO_ID_EVIDENCE})
    sale = seed_sale(sb, tenant, roles=("titular",))
    verify_manager(store, tenant)
    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))
    assert report.outcomes[0].result == "sent", report.outcomes[0].reason
    phone = sale.people["titular"]["celular"]
    (message,) = [m for m in sb.whatsapp.messages() if m["to"].endswith(phone)]

    from pipelines.dispatch.signing_links import read_token

    claims = read_token(message["parameters"][1].rsplit("/", 1)[1])
    left = claims.expires_at - datetime.now(UTC)
    assert timedelta(days=6, hours=23) < left <= timedelta(days=7)


# ------------------------------------------------------------------------------------------ tokens

def test_tokens_are_signed_expiring_and_single_signer(signing_secret, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.dispatch.signing_links import BadLink, LinkClaims, make_token, read_token
    from ponte.redaction import redact, redact_url

    later = datetime.now(UTC) + timedelta(days=3)
    claims = LinkClaims("demo", 12, 34, later)
    token = make_token(claims)
    back = read_token(token)
    assert (back.tenant, back.envelope_id, back.signer_id) == ("demo", 12, 34)
    assert abs((back.expires_at - later).total_seconds()) < 1
    assert make_token(claims) != token  # a fresh nonce per link
    assert "/" not in token and len(token) < 160

    for index in range(len(token)):  # any one character changed: refused
        swapped = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1:]
        with pytest.raises(BadLink) as refused:
            read_token(swapped)
        assert refused.value.reason == "invalid"
    for broken in ("", "x", token + "A", token[:-1], token[::-1], "A" * len(token)):
        with pytest.raises(BadLink):
            read_token(broken)
    with pytest.raises(BadLink) as foreign:  # another deployment's secret
        read_token(make_token(claims, secret=b"another deployment's secret, 0123456789"))
    assert foreign.value.reason == "invalid"
    with pytest.raises(BadLink) as expired:
        read_token(make_token(LinkClaims("demo", 12, 34, datetime.now(UTC) - timedelta(seconds=1))))
    assert expired.value.reason == "expired"

    # rotation: links signed with the previous secret still open while it is listed as the old one
    monkeypatch.setenv("PONTE_SIGNING_LINK_SECRET", "the next secret, rotated in, 0123456789abcdef")
    with pytest.raises(BadLink):
        read_token(token)
    monkeypatch.setenv("PONTE_SIGNING_LINK_SECRET_OLD", SECRET)
    assert read_token(token).signer_id == 34

    # the log masking hides it wherever a URL or path carrying it is printed
    for _ in range(200):
        fresh = make_token(claims)
        assert fresh not in redact_url(f"/sign/{fresh}")
        assert fresh not in redact(f"GET https://gw.example.com/sign/{fresh} 303")


def test_without_a_secret_no_link_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.dispatch.signing_links import LinkClaims, make_token
    from ponte.errors import ConfigurationError

    monkeypatch.delenv("PONTE_SIGNING_LINK_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="PONTE_SIGNING_LINK_SECRET"):
        make_token(LinkClaims("demo", 1, 1, datetime.now(UTC) + timedelta(days=1)))
    monkeypatch.setenv("PONTE_SIGNING_LINK_SECRET", "short")
    with pytest.raises(ConfigurationError, match="at least 32"):
        make_token(LinkClaims("demo", 1, 1, datetime.now(UTC) + timedelta(days=1)))


# ------------------------------------------------------------------------------------------ Clicksign

def _tenant_file(directory: Path, tenant_id: str, options: dict) -> Path:
    data = yaml.safe_load((REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8"))
    data["id"] = tenant_id
    data["options"].update(options)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{tenant_id}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_validate_refuses_clicksign_with_ponte_invitations(tmp_path: Path) -> None:
    from orchestration.cli.app import app
    from orchestration.cli.validate import run_checks

    chain = [{"role": "client", "order": 1, "channel": "whatsapp"}]
    bad = _tenant_file(tmp_path, "acme", {"signing_provider": "clicksign", "signer_chain": chain,
                                          "notifications": {"by": "ponte"}})
    (check,) = run_checks([bad])
    assert check.error, "Clicksign + by: ponte must be refused"
    line = yaml.safe_load(bad.read_text())  # the error names the file and line of the field
    assert str(bad) in check.error and "options.notifications.by" in check.error
    assert "notifications.by: provider" in check.error  # what to configure instead
    assert "clicksign" in check.error.lower() and line["options"]["notifications"]["by"] == "ponte"
    result = CliRunner().invoke(app, ["validate", str(bad)], env={"COLUMNS": "400"})
    assert result.exit_code == 1, result.output

    fine = [_tenant_file(tmp_path, "ok1", {"signing_provider": "clicksign", "notifications": {"by": "provider"},
                                           "signer_chain": chain}),
            _tenant_file(tmp_path, "ok2", {"signing_provider": "docusign", "notifications": {"by": "ponte"},
                                           "signer_chain": chain})]
    assert [c.error for c in run_checks(fine)] == [None, None]


def test_dispatch_never_makes_up_a_clicksign_link(sb, store: Store, signing_secret) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True, options={"signing_provider": "clicksign",
                                                           "notifications": {"by": "ponte"}})
    sale = seed_sale(sb, tenant, roles=("titular",))
    verify_manager(store, tenant)
    before = len(sb.state.clicksign.envelopes)

    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))

    assert report.outcomes[0].result == "dead_lettered"
    assert len(sb.state.clicksign.envelopes) == before  # nothing sent to a signer who could not be invited
    (letter,) = deadletters.list_open(store, tenant.id, "dispatch")
    assert letter.field == "options.notifications.by"
    assert "notifications.by: provider" in f"{letter.reason} {letter.hint}"
    assert not sb.smtp.inbox(to=sale.people["titular"]["email"])


def test_an_older_clicksign_envelope_gets_no_made_up_invitation(sb, store: Store) -> None:
    """An envelope sent before this rule (Clicksign, Ponte inviting): the next invitation is refused with
    a dead letter rather than sent with a link that exists nowhere."""
    tenant = sandbox_tenant(sb, unthrottled=True, options={"signing_provider": "clicksign",
                                                           "notifications": {"by": "ponte"}})
    with store.session() as session:
        row = Envelope(tenant=tenant.id, contract_id="9901", document_name="c.pdf", document_hash="a" * 64,
                       idempotency_key=f"{tenant.id}:contract:9901:{'a' * 64}", provider="clicksign",
                       provider_envelope_id="cs-env-1", status="sent", details={})
        row.signers.append(EnvelopeSigner(role="client", routing_order=1, name="Maria Teste", email="maria@example.com",
                                          phone="+5548990001234", channel="whatsapp", provider_recipient_id="cs-s-1",
                                          status="sent"))
        session.add(row)
        session.flush()
        envelope_id = row.id
    sent_before = len(sb.whatsapp.messages())

    assert notify_next_signers(store, tenant, envelope_id) == []

    assert len(sb.whatsapp.messages()) == sent_before
    (letter,) = deadletters.list_open(store, tenant.id, "dispatch")
    assert letter.record_key == "contract:9901" and "clicksign" in letter.reason.lower()
