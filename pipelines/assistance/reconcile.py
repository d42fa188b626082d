"""Reconciliation: compare every request on both sides, repair what webhooks missed, report the drift.

A CRM request Sienge lacks is sent (CRM -> Sienge), a CRM record behind Sienge or not showing Sienge's
id is moved (Sienge -> CRM); a Sienge request whose CRM record is gone is only reported. Requests that
cannot be sent are ``blocked`` (a dead letter with its reason), not drift.
"""

from __future__ import annotations

from pipelines.assistance.core import FROM_SIENGE, TO_CRM_UPDATE
from pipelines.assistance.from_sienge import SiengeToCrm
from pipelines.assistance.machine import SIENGE_STATUS, crm_status, next_status
from pipelines.assistance.report import Drift
from pipelines.assistance.to_sienge import CrmToSienge
from ponte import PonteError
from schemas.canonical import TERMINAL_ASSISTANCE, AssistanceStatus


class Reconciliation(CrmToSienge, SiengeToCrm):
    """Both directions over full reads of both sides (:meth:`reconcile`)."""

    def reconcile(self) -> Drift:
        """Compare every request on both sides, repair what webhooks missed, report what differed."""
        drift = Drift()
        sienge_rows = list(self.sienge.read("technical_assistances"))
        by_external = {str(r["externalId"]): r for r in sienge_rows if r.get("externalId") not in (None, "")}
        seen: set[str] = set()
        mapping = self.lineage(FROM_SIENGE, TO_CRM_UPDATE)
        for raw in self.cvcrm.read("assistencias"):
            crm_id = str(raw["idassistencia"])
            seen.add(crm_id)
            current = crm_status(raw, self.options)
            row = by_external.get(crm_id)
            if row is None:
                if current in TERMINAL_ASSISTANCE:
                    continue
                outcome = self.send_to_sienge(crm_id, raw)
                if outcome == "failed":
                    drift.blocked[crm_id] = self.report.failed[-1][1]
                    continue
                drift.missing_in_sienge.append(crm_id)
                if outcome == "retry":
                    drift.unrepaired[crm_id] = self.report.failed[-1][1]
                continue
            sienge_id = str(row["id"])
            observed = SIENGE_STATUS.get(str(row.get("status") or "OPEN").upper(), AssistanceStatus.open)
            unlinked = str(raw.get("idassistencia_erp") or "") != sienge_id
            behind = next_status(current, observed) is not None
            if unlinked:
                drift.unlinked_in_crm.append(crm_id)
            if behind:
                drift.status.append(crm_id)
                drift.details[crm_id] = (
                    f"{current.value if current else raw.get('idsituacao')} -> {observed.value}"
                )
            if not (unlinked or behind):
                self.report.unchanged += 1
                self._remember(crm_id, sienge_id, None, mapping)
                continue
            try:
                self.converge(crm_id, raw, sienge_id, observed, mapping)
                self._resolved(f"technical_assistance:{sienge_id}")
            except PonteError as exc:
                self._dead(f"technical_assistance:{sienge_id}", exc, row, mapping)
                drift.unrepaired[crm_id] = str(exc)
        for external, row in by_external.items():
            if external not in seen:
                drift.orphaned_in_sienge.append(str(row["id"]))
        self.report.drift = drift
        if not self.request.plan:
            self._audit(
                "reconciled",
                self.tenant.id,
                "cvcrm+sienge",
                mapping,
                counts=drift.counts(),
                ids=drift.ids(),
                unrepaired=sorted(drift.unrepaired),
                blocked=sorted(drift.blocked),
            )
        return drift
