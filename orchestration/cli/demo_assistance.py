"""The demo's assistance round trip: CRM → Sienge, Sienge's progress back to the CRM, reconciliation.

Demo code, kept out of ``pipelines/``: the running sandbox plays the "people" of the story (a buyer
opening a request in the portal, Sienge staff moving it); everything Ponte does goes through the same
run as production (:func:`pipelines.assistance.run_assistance`).
"""

from __future__ import annotations

import uuid
from typing import Any

from pipelines.assistance import AssistanceRequest, run_assistance
from pipelines.connections import open_connector
from pipelines.store import Store
from ponte import ConfigurationError
from schemas import TenantConfig, load_tenant

DEMO_PHOTO = b"\xff\xd8\xff\xe0" + b"ponte-demo-foto-da-infiltracao" * 8 + b"\xff\xd9"


def _buyer_and_unit(sandbox: Any) -> tuple[int, int]:
    """A CRM customer and unit that exist on both sides (from a seeded request)."""
    for record in sandbox.state.cvcrm.assistencias.values():
        cliente, unidade = record.get("cliente") or {}, record.get("unidade") or {}
        if cliente.get("idpessoa") and unidade.get("idunidade"):
            return int(cliente["idpessoa"]), int(unidade["idunidade"])
    raise ConfigurationError(
        "the sandbox has no seeded assistência to borrow a buyer and unit from",
        hint="start the sandbox with assistances >= 1",
    )


def _open_in_crm(sandbox: Any) -> str:
    """A buyer opens a request in the sandbox CRM (two items, one photo); returns its CRM id."""
    idpessoa, idunidade = _buyer_and_unit(sandbox)
    token = f"demo-{uuid.uuid4().hex[:12]}"
    sandbox.state.cvcrm.files[token] = DEMO_PHOTO
    opened = sandbox.cvcrm.open_assistencia(
        idpessoa=idpessoa,
        unidade=idunidade,
        descricao="Infiltração no banheiro social após as chuvas",
        itens=[
            {"iditem": 901, "descricao": "Infiltração no banheiro social", "prazo_minimo_dias": 10},
            {"iditem": 902, "descricao": "Rejunte do box soltando", "prazo_minimo_dias": 5},
        ],
        anexos=[{"nome": "foto-banheiro.jpg", "link": f"{sandbox.urls['cvcrm']}/files/{token}"}],
    )
    return str(opened["idassistencia"])


def round_trip(store: Store, tenant: TenantConfig, sandbox: Any) -> dict[str, Any]:
    """Open a request in the CRM, send it to Sienge, move it in Sienge, bring the CRM along.

    Returns a summary: ids on both sides, items/attachments Sienge received, and the CRM situation
    after each Sienge step (a repeated one changes nothing), and the drift a reconciliation finds.
    """
    crm_id = _open_in_crm(sandbox)
    steps: list[dict[str, Any]] = []
    with (
        open_connector(tenant, "sienge", store=store) as sienge,
        open_connector(tenant, "cvcrm", store=store) as cvcrm,
    ):

        def sync(**request: Any) -> Any:
            return run_assistance(store, tenant, sienge, cvcrm, AssistanceRequest(events=False, **request))

        created = sync(crm_ids=[crm_id])
        if not created.created:
            reason = created.failed[0][1] if created.failed else "nothing was created"
            raise ConfigurationError(f"assistance demo: {reason}")
        sienge_id = str(created.created[0][1])
        for label, action in (("in progress", "in-progress"), ("finished", "finish"), ("duplicate", None)):
            if action:
                sandbox.sienge.move_assistance(int(sienge_id), action)
            report = sync(sienge_ids=[sienge_id])
            record = cvcrm.read_one("assistencias", crm_id)
            steps.append(
                {"sienge": label, "crm_situation": record.get("situacao"), "changed": bool(report.updated)}
            )
        reconciled = sync(reconcile=True)
        in_sienge = sienge.read_one("technical_assistances", sienge_id)
        final = cvcrm.read_one("assistencias", crm_id)
    return {
        "crm_id": crm_id,
        "sienge_id": sienge_id,
        "crm_shows_sienge_id": str(final.get("idassistencia_erp")) == sienge_id,
        "items_in_sienge": len(in_sienge.get("items") or []),
        "attachments_in_sienge": len(in_sienge.get("attachments") or []),
        "sienge_status": in_sienge.get("status"),
        "crm_situation": final.get("situacao"),
        "steps": steps,
        # seeded requests never announced by a webhook: the reconciliation finds and sends them
        "reconciliation_drift": reconciled.drift.ids() if reconciled.drift else {},
        "blocked": sorted(reconciled.drift.blocked) if reconciled.drift else [],
    }


def run(*, store: Any, sandbox: Any, instance: Any, console: Any) -> None:
    with console.status("assistance round trip: CRM → Sienge → CRM…"):
        summary = round_trip(store, load_tenant("demo"), sandbox)
    console.print(
        f"[green]✓[/] assistance {summary['crm_id']} opened in the CRM became Sienge {summary['sienge_id']} "
        f"({summary['items_in_sienge']} items, {summary['attachments_in_sienge']} attachment(s)); "
        f"CRM shows the Sienge id: {summary['crm_shows_sienge_id']}"
    )
    for step in summary["steps"]:
        console.print(
            f"  Sienge {step['sienge']:<11} → CRM situation {step['crm_situation']!r}"
            f"{'' if step['changed'] else ' (nothing changed)'}"
        )
    drift = summary["reconciliation_drift"]
    total = sum(len(v) for v in drift.values()) if isinstance(drift, dict) else 0
    console.print(f"  reconciliation repaired {total} drifted request(s); blocked: {summary['blocked'] or 'none'}")
