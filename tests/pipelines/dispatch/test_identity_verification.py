"""Identity requirements are never silently dropped (issue #18, point 2).

A tenant (``options.evidence``) or a contract (its ``selfie`` / ``foto_documento`` override) asking for
a document photo or a selfie reaches DocuSign as the signer's ``identityVerification`` with the
account's ID Verification workflow (``options.evidence.docusign_idv_workflow_id``), or, when the tenant
has configured none, the contract is refused with a dead letter that says what to set and where to find
it: never an envelope without the check. ``ponte validate`` refuses such a tenant file up front.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from connectors.sandbox.config import SandboxConfig
from orchestration.cli.validate import run_checks
from pipelines.connections import TenantConnectors
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.source import ContractRef, load_contract
from pipelines.store import deadletters
from pipelines.store.db import Store
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.spec_capture import capturing
from tests.support.tenants import REPO, sandbox_tenant

#: the ID Verification workflow the sandbox's DocuSign account has (GET .../identity_verification)
WORKFLOW = next(iter(SandboxConfig().docusign_idv_workflows))


def _tenant(sb: Any, tenant_id: str, **evidence: Any):
    base = {"selfie": "not_required", "document_photo": "not_required", "docusign_idv_workflow_id": None}
    return sandbox_tenant(sb, tenant_id=tenant_id, unthrottled=True, options={"evidence": {**base, **evidence}})


def _at_provider(sb: Any, contract_id: int) -> list[dict[str, Any]]:
    marker = f":contract:{contract_id}:"
    return [e for e in sb.state.docusign.envelopes.values()
            if any(f["name"] == "ponte_key" and marker in f["value"] for f in e["customFields"]["textCustomFields"])]


def test_a_required_document_photo_reaches_docusign_as_identity_verification(sb, store: Store) -> None:
    tenant = _tenant(sb, "idv-on", document_photo="required", docusign_idv_workflow_id=WORKFLOW)
    sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"))
    verify_manager(store, tenant)
    with capturing("idv") as capture:
        report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))
        # where a tenant finds the id: the account's workflows (`ponte connector read T docusign ...`)
        with TenantConnectors(tenant, store) as conns:
            workflows = list(conns.get("docusign").read("identity_verification"))
    assert [w["workflowId"] for w in workflows] == [WORKFLOW]
    assert report.outcomes[0].result == "sent", report.outcomes[0].reason
    [envelope] = _at_provider(sb, sale.contract_id)
    assert [s.get("identityVerification") for s in envelope["recipients"]["signers"]] == [
        {"workflowId": WORKFLOW}, {"workflowId": WORKFLOW}]
    # the body DocuSign received holds to the eSignature swagger (signer.identityVerification is a
    # recipientIdentityVerification), field by field
    assert capture.checked["docusign request bodies"] >= 1
    assert [v for v in capture.found if v.system == "docusign"] == []
    # what was asked for is on record with the signers
    with store.session() as session:
        from pipelines.store.models import Envelope

        row = session.get(Envelope, report.outcomes[0].envelope_id)
        assert row is not None
        assert [s.evidence.get("identity_verification") for s in row.signers] == [
            {"provider": "docusign", "workflow_id": WORKFLOW}] * 2


def test_a_contract_override_asks_for_a_selfie_the_tenant_does_not(sb, store: Store) -> None:
    tenant = _tenant(sb, "idv-override", docusign_idv_workflow_id=WORKFLOW)
    plain = seed_sale(sb, tenant, roles=("titular",))
    selfie = seed_sale(sb, tenant, roles=("titular",))
    verify_manager(store, tenant)
    with TenantConnectors(tenant, store) as conns:
        records = [load_contract(conns.get("cvcrm"), ContractRef.parse(s.ref)) for s in (plain, selfie)]
        records[1]["selfie"] = "S"  # the CRM contract says "selfie: sim"
        report = run_dispatch(store, tenant, DispatchRequest(), conns, records=records)
    assert [o.result for o in report.outcomes] == ["sent", "sent"]
    assert "identityVerification" not in _at_provider(sb, plain.contract_id)[0]["recipients"]["signers"][0]
    assert _at_provider(sb, selfie.contract_id)[0]["recipients"]["signers"][0]["identityVerification"] == {
        "workflowId": WORKFLOW}


def test_without_a_workflow_id_the_contract_is_refused_with_a_dead_letter_saying_what_to_set(
    sb, store: Store
) -> None:
    tenant = _tenant(sb, "idv-missing", document_photo="required")
    needs = seed_sale(sb, tenant, roles=("titular",))
    verify_manager(store, tenant)
    with TenantConnectors(tenant, store) as conns:
        report = run_dispatch(store, tenant, DispatchRequest(contracts=[needs.ref]), conns)
        plan = run_dispatch(store, tenant, DispatchRequest(contracts=[needs.ref], plan=True), conns)
        outcome = report.outcomes[0]
        assert outcome.result == "dead_lettered"
        assert plan.outcomes[0].result == "dead_lettered"  # --plan says so too (and writes nothing)
        assert "ID Verification" in (outcome.reason or "") and "document photo" in (outcome.reason or "")
        assert _at_provider(sb, needs.contract_id) == []  # nothing left Ponte
        [letter] = deadletters.list_open(store, tenant.id, "dispatch")
        assert letter.record_key == f"contract:{needs.contract_id}"
        assert letter.field == "options.evidence.docusign_idv_workflow_id"
        hint = letter.hint or ""
        assert "options.evidence.docusign_idv_workflow_id" in hint and f"tenants/{tenant.id}.yaml" in hint
        assert "identity_verification" in hint  # where to find the id: the account's workflow list
        assert "ponte deadletter replay" in hint

        # the same contract with "foto_documento: não" needs no check, so it goes (without one)
        waived = load_contract(conns.get("cvcrm"), ContractRef.parse(needs.ref))
        waived["foto_documento"] = "N"
        sent = run_dispatch(store, tenant, DispatchRequest(), conns, records=[waived])
    assert sent.outcomes[0].result == "sent"
    [envelope] = _at_provider(sb, needs.contract_id)
    assert "identityVerification" not in envelope["recipients"]["signers"][0]


def test_validate_refuses_a_docusign_tenant_requiring_id_evidence_without_a_workflow(tmp_path: Path) -> None:
    demo = yaml.safe_load((REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8"))

    def write(name: str, evidence: dict[str, Any], provider: str = "docusign") -> Path:
        data = {**demo, "id": name, "options": {**demo["options"], "evidence": evidence,
                                                "signing_provider": provider}}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return path

    missing = write("sem-idv", {"selfie": "required", "document_photo": "not_required"})
    configured = write("com-idv", {"selfie": "required", "document_photo": "required",
                                   "docusign_idv_workflow_id": WORKFLOW})
    nothing = write("sem-evidencia", {"selfie": "not_required", "document_photo": "not_required"})
    clicksign = write("clicksign", {"selfie": "required", "document_photo": "required"}, provider="clicksign")
    checks = {Path(c.item).stem: c.error for c in run_checks([missing, configured, nothing, clicksign])}
    assert checks["com-idv"] is None and checks["sem-evidencia"] is None and checks["clicksign"] is None
    error = checks["sem-idv"] or ""
    assert "selfie" in error and "options.evidence.docusign_idv_workflow_id" in error
    assert "identity_verification" in error


def test_the_demo_tenant_requires_a_document_photo_and_names_the_sandbox_workflow() -> None:
    demo = yaml.safe_load((REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8"))
    assert demo["options"]["evidence"]["document_photo"] == "required"
    assert demo["options"]["evidence"]["docusign_idv_workflow_id"] == WORKFLOW
