"""After the last signature, end to end (#20): the CRM tells the whole story across a document version.

Dispatch version 1; the client signs it; the CRM user changes the document; dispatch voids version 1
and sends version 2 to the same chain; everyone signs version 2; back-sync brings it home. The CRM then
shows the original contract signed and validated, the reservation in the tenant's signed situation,
the stamped PDF of version 2 once, the evidence once; Ponte's history keeps both versions. SQLite and
PostgreSQL, over the sandbox's real HTTP.
"""

from __future__ import annotations

from sqlalchemy import select

from pipelines.backsync.flow import BacksyncReport, resync
from pipelines.backsync.history import contract_history
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.store.models import Envelope
from tests.pipelines.backsync.helpers import crm_contracts
from tests.pipelines.backsync.test_crm_contract_complete import (
    LEFT,
    ON_SIGNED,
    SIGNED_SITUATION,
    World,
    _documents,
    _reservation,
    world,  # noqa: F401  (the fixture)
)
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.pipelines.dispatch.test_versions import change_document


def test_a_contract_signed_on_its_second_version_is_complete_in_the_crm(world: World) -> None:  # noqa: F811
    w = world
    tenant = w.tenant(on_signed=ON_SIGNED)
    verify_manager(w.store, tenant)
    sale = seed_sale(w.sb, tenant, roles=("titular", "Cônjuge"))
    first = run_dispatch(w.store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert first.result == "sent", first.reason
    w.sb.sign(str(first.provider_envelope_id), "client", evidence=LEFT["client"])

    change_document(w.sb, sale, "nova versão")
    second = run_dispatch(w.store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert second.result == "sent" and second.replaced_envelope_id == first.provider_envelope_id
    for role in ("client", "spouse"):
        w.sb.sign(str(second.provider_envelope_id), role, evidence=LEFT[role])
    for _ in range(2):  # a second pass (a poll after a webhook) changes nothing
        assert resync(w.store, tenant, second.envelope_id, w.opener(tenant), BacksyncReport(tenant.id)) is None

    contracts = crm_contracts(w.sb, sale.reservation_id)
    original = next(c for c in contracts if c["idreservacontrato"] == sale.contract_id)
    assert (original["assinado"], original["validado"]) == ("S", "S")
    with w.store.session() as session:
        rows = list(session.scalars(select(Envelope).where(Envelope.contract_id == str(sale.contract_id))
                                    .order_by(Envelope.id)))
        statuses = [r.status for r in rows]
        signed_sha = rows[-1].signed_sha256
        uploaded = (rows[-1].details or {}).get("crm") or {}
    assert statuses == ["voided", "completed"]  # one live envelope per contract; both versions kept
    signed_uploads = [c for c in contracts if c["idreservacontrato"] != sale.contract_id and c["assinado"] == "S"]
    assert len(signed_uploads) == 1 and uploaded.get("sha256") == signed_sha  # version 2's stamped PDF, once
    assert len(_documents(w, sale.reservation_id)) == 1  # the evidence summary, once
    assert _reservation(w, sale.reservation_id)["idsituacao"] == SIGNED_SITUATION
    history = contract_history(w.store, tenant.id, str(sale.contract_id))
    assert [h["status"] for h in history] == ["voided", "completed"] and history[-1]["crm"]["complete"]
