"""The result of DocuSign's identity verification comes back with each signer's evidence.

Dispatch asks DocuSign for the tenant's ID Verification workflow on signers who must show a document
(or a selfie); DocuSign reports the outcome on the recipient, ``recipientAuthenticationStatus.
identityVerificationResult`` (an ``eventResult``: status, eventTimestamp, failureDescription, in the
eSignature swagger's recipient reads). Back-sync reads the recipients before it finalizes an envelope
and records the check in the signer's evidence (``identity_checks``) and the ``signer_evidence`` audit
rows, next to what DocuSign's audit events say (IP, device, geolocation).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.signing import Evidence
from pipelines.backsync.flow import sync_contract
from pipelines.connections import open_connector
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.store.db import Store
from pipelines.store.models import AuditEntry, Envelope
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.spec_capture import capturing
from tests.support.tenants import sandbox_tenant

WORKFLOW = next(iter(SandboxConfig().docusign_idv_workflows))
LEFT = {"client": Evidence(ip="200.160.2.3", device="Mozilla/5.0 (iPhone) Mobile Safari/604.1"),
        "spouse": Evidence(ip="177.71.4.9", device="Mozilla/5.0 (Windows NT 10.0) Chrome/128.0")}


def test_the_identity_check_docusign_ran_is_recorded_with_each_signers_evidence(sb, store: Store) -> None:
    tenant = sandbox_tenant(sb, tenant_id="idv-backsync", unthrottled=True, options={
        "verification_base_url": "http://127.0.0.1:9", "signature_pages": "all",
        "evidence": {"selfie": "required", "document_photo": "required", "docusign_idv_workflow_id": WORKFLOW}})
    sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"))
    verify_manager(store, tenant)

    def opener(key: str) -> Any:
        return open_connector(tenant, key, store=store)

    with capturing("idv-backsync") as capture:
        outcome = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
        assert outcome.result == "sent", outcome.reason
        eid = str(outcome.provider_envelope_id)
        sb.sign(eid, "client", evidence=LEFT["client"])
        sb.sign(eid, "spouse", evidence=LEFT["spouse"])
        # the documented place: the recipient read (Recipients: list) carries the result
        with opener("docusign") as ds:
            recipients = list(ds.read("recipients", params={"envelope_id": eid}))
        done = sync_contract(store, tenant, str(sale.contract_id), opener)
    assert [(r["identityVerification"]["workflowId"],
             r["recipientAuthenticationStatus"]["identityVerificationResult"]["status"]) for r in recipients] == [
        (WORKFLOW, "Passed"), (WORKFLOW, "Passed")]
    assert not done.pending and done.report.completed == [str(sale.contract_id)]
    # what DocuSign answered and posted holds to its swagger and Connect sample
    assert [v for v in capture.found if v.system == "docusign"] == []

    with store.session() as session:
        row = session.get(Envelope, outcome.envelope_id)
        assert row is not None and row.status == "completed"
        for signer in row.signers:
            [check] = signer.evidence["collected"]["identity_checks"]
            assert (check["provider"], check["method"], check["workflow_id"], check["status"]) == (
                "docusign", "id_verification", WORKFLOW, "passed"), signer.role
            assert check["checked_at"]
        role_of = {s.id: s.role for s in row.signers}
        audit = {role_of[int(a.entity_id)]: a.details for a in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "signer_evidence"))}
    assert sorted(audit) == ["client", "spouse"]
    for role, item in audit.items():
        assert [(c["workflow_id"], c["status"]) for c in item["identity_checks"]] == [(WORKFLOW, "passed")]
        # DocuSign's audit events still give the rest of the evidence
        assert (item["ip"], item["device"]) == (LEFT[role].ip, LEFT[role].device), role
