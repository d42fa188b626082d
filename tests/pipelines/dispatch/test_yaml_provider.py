"""A signing provider described in YAML alone: ZapSign, through its spec's `signing` section only.

Dispatch sends contracts read from the CV CRM sandbox to the ZapSign sandbox over real loopback HTTP
(connectors/specs/zapsign.yaml + mappings/zapsign; no ZapSign-specific Python in pipelines/ or
orchestration/): the body is PROVIDERS.md §3.3's, signers carry order_group 1, 2, 3; a rerun sends
nothing; a crash right after ZapSign created the document is resumed by finding it by external_id, never
by a second document; a listing that cannot tell makes a dead letter for a person, never a second
document. `ponte validate` refuses a spec that cannot serve back-sync, naming what is missing.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from orchestration.cli.validate import run_checks
from pipelines.connections import TenantConnectors
from pipelines.dispatch.flow import DispatchRequest, replay_dispatch, run_dispatch
from pipelines.dispatch.spec_provider import signing_gaps
from pipelines.store import deadletters, open_store
from pipelines.store.db import Store
from pipelines.store.models import Envelope
from schemas.tenant import TenantConfig
from tests.pipelines.dispatch import crash_worker
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import UNTHROTTLED, sandbox_tenant_file

REPO = Path(__file__).resolve().parents[3]
#: what PROVIDERS.md §3.3 documents of POST /doc/ (and of each signer: order_group)
DOCUMENTED_BODY = {"name", "base64_pdf", "url_pdf", "external_id", "signers", "signature_order_active"}
DOCUMENTED_SIGNER = {"order_group"}
#: what the spec sends beyond that, each marked UNCONFIRMED in connectors/specs/zapsign.yaml
UNCONFIRMED_SIGNER = {"name", "email", "require_selfie_photo", "require_document_photo"}


def zapsign_connector(sb: Any, spec: str = "zapsign") -> dict[str, Any]:
    """The tenant connector entry for the sandbox ZapSign (credentials from the sandbox's defaults)."""
    return {
        "spec": spec,
        "values": {"base_url": sb.urls["zapsign"]},
        "rate_limit": dict(UNTHROTTLED),
        "credentials": {
            "api_token": {"env": "PONTE_TEST_ZAPSIGN_TOKEN", "default": sb.config.zapsign_token},
            "webhook_secret": {"env": "PONTE_TEST_ZAPSIGN_SECRET", "default": sb.config.zapsign_webhook_secret},
        },
    }


def zapsign_tenant(sb: Any, directory: Path, tenant_id: str, spec: str = "zapsign", **options: Any) -> TenantConfig:
    return sandbox_tenant_file(sb, directory, tenant_id=tenant_id, unthrottled=True,
                               connectors={"zapsign": zapsign_connector(sb, spec)},
                               options={"signing_provider": "zapsign", **options})


@pytest.fixture
def lookup_mode(sb: Any) -> Iterator[Any]:
    before = sb.config.zapsign_doc_lookup

    def set_mode(mode: str) -> None:
        sb.config.zapsign_doc_lookup = mode

    yield set_mode
    sb.config.zapsign_doc_lookup = before


@pytest.fixture
def world(sb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TenantConfig, Store, str, TenantConnectors]]:
    url = f"sqlite:///{tmp_path / 'zapsign.db'}"
    store = open_store(url)
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path / "tenants"))  # a replay loads the tenant by name
    tenant = zapsign_tenant(sb, tmp_path / "tenants", "zs-dispatch")
    verify_manager(store, tenant)
    conns = TenantConnectors(tenant, store)
    yield tenant, store, url, conns
    conns.close()
    store.dispose()


def _new(sb: Any, before: set[str]) -> list[dict[str, Any]]:
    return [d for token, d in sb.state.zapsign.docs.items() if token not in before]


def _row(store: Store, envelope_id: int | None) -> Envelope:
    with store.session() as session:
        row = session.scalars(select(Envelope).where(Envelope.id == envelope_id)
                              .options(selectinload(Envelope.signers))).one()
        session.expunge_all()
        return row


def test_a_contract_goes_to_zapsign_once_with_the_documented_body_and_ordered_signers(sb, world) -> None:
    tenant, store, _url, conns = world
    sale = seed_sale(sb, tenant)  # titular, cônjuge, testemunha
    before, bodies = set(sb.state.zapsign.docs), len(sb.state.zapsign.created)
    outcome = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]), conns).outcomes[0]
    assert outcome.result == "sent", outcome.reason
    [doc] = _new(sb, before)
    assert doc["token"] == outcome.provider_envelope_id
    assert [s["order_group"] for s in doc["signers"]] == [1, 2, 3]
    assert doc["signature_order_active"] is True

    [body] = sb.state.zapsign.created[bodies:]
    assert {"name", "base64_pdf", "external_id", "signers", "signature_order_active"} <= set(body)
    assert set(body) - DOCUMENTED_BODY == set()
    for signer in body["signers"]:
        assert set(signer) >= DOCUMENTED_SIGNER
        assert set(signer) - DOCUMENTED_SIGNER - UNCONFIRMED_SIGNER == set()

    row = _row(store, outcome.envelope_id)
    assert body["external_id"] == row.idempotency_key and row.provider == "zapsign"
    tokens = {s["email"]: s["token"] for s in doc["signers"]}
    assert {s.role: s.provider_recipient_id for s in row.signers} == {
        s.role: tokens[s.email] for s in row.signers
    }
    assert [s.status for s in sorted(row.signers, key=lambda s: s.routing_order)] == ["sent", "waiting", "waiting"]

    again = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]), conns).outcomes[0]
    assert again.result == "already_sent" and again.provider_envelope_id == doc["token"]
    assert len(_new(sb, before)) == 1


def _crash_after_create(url: str, tenant: TenantConfig, ref: str) -> None:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.pipelines.dispatch.crash_worker"])
    proc = ctx.Process(target=crash_worker.dispatch,
                       args=(url, tenant.model_dump_json(), ref, "after_provider_call"))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 137, "the dispatcher did not die right after ZapSign created the document"


def _resume(store: Store, tenant: TenantConfig, conns: TenantConnectors, ref: str) -> Any:
    """The next run after the crash (deferred while the dead worker's short lease lasts)."""
    deadline = time.monotonic() + 10
    while True:
        outcome = run_dispatch(store, tenant, DispatchRequest(contracts=[ref], lease_seconds=crash_worker.LEASE),
                               conns).outcomes[0]
        if outcome.result != "deferred" or time.monotonic() > deadline:
            return outcome
        time.sleep(crash_worker.LEASE / 2)


def test_a_crash_after_zapsign_created_the_doc_is_resumed_by_external_id_not_a_second_doc(
    sb, world, lookup_mode
) -> None:
    tenant, store, url, conns = world
    lookup_mode("as_assumed")
    sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"))
    before = set(sb.state.zapsign.docs)
    _crash_after_create(url, tenant, sale.ref)
    [orphan] = _new(sb, before)  # created at ZapSign, never recorded by Ponte
    with store.session() as session:
        assert session.scalars(select(Envelope).where(Envelope.contract_id == str(sale.contract_id))).first() is None

    outcome = _resume(store, tenant, conns, sale.ref)
    assert outcome.result == "found", outcome.reason
    assert outcome.provider_envelope_id == orphan["token"]
    assert len(_new(sb, before)) == 1
    row = _row(store, outcome.envelope_id)
    assert {s.provider_recipient_id for s in row.signers} == {s["token"] for s in orphan["signers"]}


def test_a_listing_that_ignores_the_filter_still_finds_the_doc_by_its_external_id(sb, world, lookup_mode) -> None:
    tenant, store, url, conns = world
    lookup_mode("ignored")  # every document listed: the one carrying Ponte's key is still ours
    sale = seed_sale(sb, tenant, roles=("titular",))
    before = set(sb.state.zapsign.docs)
    _crash_after_create(url, tenant, sale.ref)
    [orphan] = _new(sb, before)
    outcome = _resume(store, tenant, conns, sale.ref)
    assert outcome.result == "found" and outcome.provider_envelope_id == orphan["token"]
    assert len(_new(sb, before)) == 1


def test_without_a_listing_a_crashed_create_is_a_dead_letter_never_a_second_doc(sb, world, lookup_mode) -> None:
    tenant, store, url, conns = world
    lookup_mode("missing")  # GET /docs/ answers 404: the lookup cannot tell
    sale = seed_sale(sb, tenant, roles=("titular",))
    before = set(sb.state.zapsign.docs)
    _crash_after_create(url, tenant, sale.ref)
    [orphan] = _new(sb, before)

    outcome = _resume(store, tenant, conns, sale.ref)
    assert outcome.result == "dead_lettered", outcome
    assert len(_new(sb, before)) == 1  # no second document
    again = _resume(store, tenant, conns, sale.ref)
    assert again.result == "dead_lettered" and len(_new(sb, before)) == 1
    [letter] = [x for x in deadletters.list_open(store, tenant.id, "dispatch")
                if x.record_key == f"contract:{sale.contract_id}"]
    assert "may already have created" in letter.reason and "zapsign" in letter.reason
    assert "ponte deadletter replay" in (letter.hint or "")

    # a person deletes the orphan in ZapSign's panel, then replays: the document is created once
    del sb.state.zapsign.docs[orphan["token"]]
    replay_dispatch(store, letter, run_id="replay")
    [doc] = _new(sb, before)
    final = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]), conns).outcomes[0]
    assert final.result == "already_sent" and final.provider_envelope_id == doc["token"]


def test_an_unsure_create_with_a_listing_that_ignores_the_filter_is_not_sent_again(sb, world, lookup_mode) -> None:
    """The connection drops on the create before ZapSign acts on it; the listing shows other documents
    (it ignored the filter), so it cannot say "not there": a dead letter, nothing sent twice."""
    tenant, store, _url, conns = world
    other = seed_sale(sb, tenant, roles=("titular",))
    assert run_dispatch(store, tenant, DispatchRequest(contracts=[other.ref]), conns).outcomes[0].result == "sent"
    lookup_mode("ignored")
    sale = seed_sale(sb, tenant, roles=("titular",))
    before = set(sb.state.zapsign.docs)
    sb.set_faults("zapsign", {"fail_next": [0]})
    try:
        outcome = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]), conns).outcomes[0]
    finally:
        sb.set_faults("zapsign", None)
    assert outcome.result == "dead_lettered" and "ignored the filter" in (outcome.reason or "")
    assert _new(sb, before) == []
    lookup_mode("as_assumed")  # with the filter applied, the next look says "not there": sent once
    [letter] = [x for x in deadletters.list_open(store, tenant.id, "dispatch")
                if x.record_key == f"contract:{sale.contract_id}"]
    replay_dispatch(store, letter, run_id="replay")
    assert len(_new(sb, before)) == 1


# ------------------------------------------------------------------------------------------ validate


def _tenant_file(sb: Any, directory: Path, spec: str) -> Path:
    zapsign_tenant(sb, directory, "zs-validate", spec=spec)
    return directory / "zs-validate.yaml"


def test_the_shipped_zapsign_spec_serves_dispatch_and_backsync(sb, tmp_path: Path) -> None:
    path = _tenant_file(sb, tmp_path, "zapsign")
    tenant = TenantConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert signing_gaps(tenant) == []
    [check] = run_checks([path])
    assert check.error is None, check.error


def test_validate_refuses_a_spec_without_signing_download_naming_it(sb, tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "connectors/specs/zapsign.yaml").read_text(encoding="utf-8"))
    del data["signing"]["download"]
    copy = tmp_path / "zapsign-no-download.yaml"
    copy.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    [check] = run_checks([_tenant_file(sb, tmp_path / "tenants", str(copy))])
    assert check.error is not None
    assert f"connector zapsign (spec {copy}) has no signing.download, which back-sync needs" in check.error
    assert "options.signing_provider" in check.error


def test_validate_refuses_a_spec_without_a_signing_section(sb, tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "connectors/specs/zapsign.yaml").read_text(encoding="utf-8"))
    del data["signing"]
    copy = tmp_path / "zapsign-plain.yaml"
    copy.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    [check] = run_checks([_tenant_file(sb, tmp_path / "tenants", str(copy))])
    assert check.error is not None and "has no signing section" in check.error
