"""Sienge -> CRM: Sienge's progress on a request moves its CV CRM record, never backwards.

A hook (``<prefix>_IN_PROGRESS|FINISHED|CANCELED|DELETED``) is only a hint: the request is re-read
from Sienge and the CRM record is moved by the state machine (``state.py``) to the tenant's configured
situation. Duplicates and any delivery order therefore converge.
"""

from __future__ import annotations

from typing import Any

from pipelines.assistance.core import CRM, ENTITY, ERP, FROM_SIENGE, TO_CRM_UPDATE, AssistanceCore
from pipelines.assistance.machine import crm_status, next_status, situation_ids
from ponte import ConfigurationError, NotFoundError, PonteError
from schemas.canonical import Assistance, AssistanceStatus


class SiengeToCrm(AssistanceCore):
    """Bringing CRM records to Sienge's status: one Sienge request (:meth:`apply_sienge`) or a known pair
    (:meth:`converge`)."""

    def _crm_id_of(self, sienge_id: str) -> str | None:
        return self._lookup(ENTITY, ERP, sienge_id, CRM)

    def apply_sienge(self, sienge_id: str, hint: AssistanceStatus | None = None) -> str:
        """Bring the CRM record of one Sienge request to Sienge's current status (a re-read).

        ``hint`` is the status the hook announced; it is used only when Sienge no longer serves the
        request (a deleted one may answer 404). Returns updated | unchanged | linked | ignored, or
        failed / retry as :meth:`CrmToSienge.send_to_sienge` does.
        """
        record_key = f"technical_assistance:{sienge_id}"
        mapping = self.lineage(FROM_SIENGE, TO_CRM_UPDATE)
        raw: dict[str, Any] | None = None
        try:
            try:
                raw = self.sienge.read_one("technical_assistances", sienge_id)
            except NotFoundError:
                if hint != AssistanceStatus.deleted:
                    raise
            if raw is not None:
                canonical: Assistance = self._mapping(FROM_SIENGE).run(raw, self.context)
                crm_id: str | None = canonical.crm_id
                observed = canonical.status
            else:
                crm_id, observed = self._crm_id_of(sienge_id), AssistanceStatus.deleted
            if not crm_id:
                self.report.ignored += 1
                return "ignored"  # not a request Ponte sent (no external id, no id map row)
            crm_raw = self.cvcrm.read_one("assistencias", crm_id)
            outcome = self.converge(crm_id, crm_raw, sienge_id, observed, mapping)
        except PonteError as exc:
            self._dead(record_key, exc, raw or {"id": sienge_id}, mapping)
            return "retry" if exc.retryable else "failed"
        self._resolved(record_key)
        return outcome

    def converge(
        self,
        crm_id: str,
        crm_raw: dict[str, Any],
        sienge_id: str,
        observed: AssistanceStatus,
        mapping: str,
    ) -> str:
        """Move the CRM record forward to ``observed`` (state machine) and make sure it shows Sienge's id."""
        current = crm_status(crm_raw, self.options)
        target = next_status(current, observed)
        linked = str(crm_raw.get("idassistencia_erp") or "") == sienge_id
        if target is None:
            if not linked:
                self._link(crm_id, sienge_id, mapping)
            self._remember(crm_id, sienge_id, None, mapping)
            self.report.unchanged += int(linked)
            return "unchanged" if linked else "linked"
        if target != AssistanceStatus.deleted and target not in situation_ids(self.options):
            raise ConfigurationError(
                f"no CV CRM situation is configured for Sienge status {target.value!r}",
                record=f"assistencia {crm_id}",
                field=f"options.assistance.situation_{target.value}",
                hint="set it in the tenant file (the id from `ponte connector read TENANT cvcrm workflow_situacoes`)",
            )
        before = current.value if current else f"situation {crm_raw.get('idsituacao')}"
        self.report.updated.append((crm_id, before, target.value))
        if self.request.plan:
            return "updated"
        body = self._mapping(TO_CRM_UPDATE).run(
            {"crm_id": crm_id, "sienge_id": sienge_id, "status": target.value}, self.context
        )
        update = body.model_dump(mode="json", exclude_none=True)
        situation = update.pop("idsituacao", None)
        if situation is not None and str(crm_raw.get("idsituacao")) != str(situation):
            self.cvcrm.call(
                "alterar_situacao_assistencia",
                {
                    "idassistencia": int(crm_id),
                    "idsituacao": situation,
                    "comentario": f"Sienge: {target.value}",
                },
            )
        self.cvcrm.call("update_assistencia", update)
        self._remember(crm_id, sienge_id, None, mapping)
        self._audit(
            f"status_{target.value}",
            crm_id,
            f"sienge:technical_assistance:{sienge_id}",
            mapping,
            sienge_id=sienge_id,
            mappings=self.full_lineage(FROM_SIENGE, TO_CRM_UPDATE),
            before=before,
            after=target.value,
            situation=situation,
        )
        return "updated"
