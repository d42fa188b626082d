"""CRM -> Sienge: an assistência opened in CV CRM becomes one Sienge technical assistance.

The request (its ``AS`` webhook, a poll, or a reconciliation) is re-read, mapped, checked (every
maintenance item needs its minimum completion days, or nothing is sent), its attachments downloaded
(only from CV CRM's own hosts, see ``Connector.fetch_url``), and created in Sienge exactly once through
the outbox (key ``{tenant}:assistance:{crm id}``, looked up by ``externalId`` after an unsure attempt).
Sienge's id is then written back on the CRM record and kept in the id map (entity ``assistance``,
cvcrm -> sienge).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from connectors.runtime import ForeignHostError
from pipelines.assistance.core import (
    CRM,
    ENTITY,
    ERP,
    TO_CANONICAL,
    TO_SIENGE,
    AssistanceCore,
)
from pipelines.assistance.machine import crm_status
from pipelines.outbox import write_once
from pipelines.store.repos import get_xref
from ponte import DataError, PonteError, TransientError
from schemas.canonical import TERMINAL_ASSISTANCE, Assistance


def normalize_assistencia(raw: dict[str, Any]) -> dict[str, Any]:
    """CV CRM's list/detail shape -> the fields the mapping reads.

    The assistências endpoints nest the customer under ``cliente``, name the opening time
    ``data_abertura`` and an attachment's address ``link``; the mapping (and its schema) read the flat
    names. Values already flat are kept.
    """
    out = dict(raw)
    cliente = raw.get("cliente") if isinstance(raw.get("cliente"), dict) else {}
    for key in ("idpessoa", "documento"):
        if out.get(key) in (None, "") and cliente.get(key) not in (None, ""):
            out[key] = cliente[key]
    if not out.get("data_cadastro") and raw.get("data_abertura"):
        out["data_cadastro"] = raw["data_abertura"]
    out["anexos"] = [
        {**a, "url": a.get("url") or a.get("link")} if isinstance(a, dict) else a
        for a in raw.get("anexos") or []
    ]
    return out


def content_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _slim(body: Any) -> dict[str, Any]:
    """A body as the outbox keeps it: attachment bytes replaced by their size (rows stay small)."""
    if not isinstance(body, dict):
        return {"value": body}
    out = dict(body)
    if isinstance(out.get("attachments"), list):
        out["attachments"] = [
            {k: (len(v) if k == "contentBase64" else v) for k, v in a.items()} if isinstance(a, dict) else a
            for a in out["attachments"]
        ]
    return out


def missing_minimum_days(assistance: Assistance) -> DataError | None:
    """The documented error for items Sienge would reject, or None when every item has its days."""
    if not assistance.items:
        return DataError(
            f"assistance {assistance.crm_id} has no maintenance items; Sienge needs at least one",
            record=f"assistencia {assistance.crm_id}",
            field="itens",
            hint="add the maintenance items in CV CRM, then replay with `ponte deadletter replay`",
        )
    missing = [item for item in assistance.items if item.minimum_completion_days is None]
    if not missing:
        return None
    names = ", ".join(f"{item.source_id} ({item.description!r})" for item in missing)
    where = f"protocol {assistance.protocol}" if assistance.protocol else f"id {assistance.crm_id}"
    return DataError(
        f"maintenance item {names} of assistance {assistance.crm_id} has no minimum completion time in "
        "days; Sienge rejects an item without it, so nothing was sent",
        record=f"assistencia {assistance.crm_id}",
        field=f"itens[iditem={missing[0].source_id}].prazo_minimo_dias",
        hint=(
            f"in CV CRM open the assistance ({where}), set the item's minimum completion time "
            "('Prazo mínimo (dias)', field prazo_minimo_dias) on each item named, then run "
            "`ponte deadletter replay` or wait for the next sync"
        ),
        details={"items": [item.source_id for item in missing]},
    )


class CrmToSienge(AssistanceCore):
    """Sending CRM assistências to Sienge: one by id (:meth:`send_to_sienge`) or every unsent one (:meth:`poll`)."""

    def canonical_from_crm(self, raw: dict[str, Any]) -> Assistance:
        """CRM record -> validated canonical assistance, with the Sienge customer id resolved."""
        assistance: Assistance = self._mapping(TO_CANONICAL).run(normalize_assistencia(raw), self.context)
        if not assistance.customer_source_id:
            customer = self._sienge_customer(raw, assistance)
            assistance = assistance.model_copy(update={"customer_source_id": customer})
        return assistance

    def _sienge_customer(self, raw: dict[str, Any], assistance: Assistance) -> str:
        """The buyer's Sienge id: CV CRM keeps it as the person's ``idpessoa_int``; else by CPF/CNPJ."""
        flat = normalize_assistencia(raw)
        idpessoa = flat.get("idpessoa")
        if idpessoa:
            for pessoa in self.cvcrm.read("clientes", params={"idcliente": idpessoa}, limit=1):
                value = str(pessoa.get("idpessoa_int") or "").strip()
                if value.isdigit():
                    return value
        document = assistance.customer_document
        if document:
            key = "cpf" if len(str(document)) == 11 else "cnpj"
            for customer in self.sienge.read("customers", params={key: str(document)}, limit=1):
                return str(customer["id"])
        raise DataError(
            f"the customer of assistance {assistance.crm_id} is not in Sienge",
            record=f"assistencia {assistance.crm_id}",
            field="cliente",
            hint="import the customer from Sienge first (ponte sync import), or correct the CPF/CNPJ in CV CRM",
        )

    def _with_files(self, assistance: Assistance) -> Assistance:
        files = []
        for attachment in assistance.attachments:
            if attachment.content_base64 is None and attachment.url:
                try:
                    content = self.fetch(attachment.url)
                except ForeignHostError as exc:
                    exc.hint = self._foreign_attachment_hint(assistance, attachment.name)
                    exc.context(record=f"assistencia {assistance.crm_id}", field=f"anexos[{attachment.name}]")
                    raise
                except PonteError as exc:
                    exc.context(record=f"assistencia {assistance.crm_id}", field=f"anexos[{attachment.name}]")
                    raise
                attachment = attachment.model_copy(
                    update={
                        "content_base64": base64.b64encode(content).decode(),
                        "sha256": hashlib.sha256(content).hexdigest(),
                    }
                )
            files.append(attachment)
        return assistance.model_copy(update={"attachments": files})

    @staticmethod
    def _foreign_attachment_hint(assistance: Assistance, name: str) -> str:
        where = f"protocol {assistance.protocol}" if assistance.protocol else f"id {assistance.crm_id}"
        return (
            f"in CV CRM open the assistance ({where}), remove the attachment {name!r} and attach the file "
            "itself (a link to another site is not downloaded), then run `ponte deadletter replay` or wait "
            "for the next sync; if that host really is where the customer's CV CRM keeps files, it must be "
            "added to the tenant's cvcrm connector file_hosts"
        )

    def _sienge_id_of(self, crm_id: str) -> str | None:
        with self.store.session() as session:
            row = get_xref(session, self.tenant.id, ENTITY, CRM, crm_id, ERP)
            return row.target_id if row else None

    def send_to_sienge(self, crm_id: str, raw: dict[str, Any] | None = None) -> str:
        """Create one CRM assistência in Sienge (once) and write Sienge's id back.

        Returns what happened: created | already | skipped | planned, or failed (dead-lettered) /
        retry (a transient failure: the caller leaves its webhook to be taken again).
        """
        record_key = f"assistencia:{crm_id}"
        mapping = self.lineage(TO_CANONICAL, TO_SIENGE)
        try:
            raw = raw if raw is not None else self.cvcrm.read_one("assistencias", crm_id)
            outcome = self._send(crm_id, raw, mapping)
        except PonteError as exc:
            self._dead(record_key, exc, raw or {"idassistencia": crm_id}, mapping)
            return "retry" if exc.retryable else "failed"
        if outcome != "skipped":
            self._resolved(record_key)
        return outcome

    def _send(self, crm_id: str, raw: dict[str, Any], mapping: str) -> str:
        status = crm_status(raw, self.options)
        erp = str(raw.get("idassistencia_erp") or "").strip()
        if erp:
            self._remember(crm_id, erp, None, mapping)
            self.report.unchanged += 1
            return "already"
        if status in TERMINAL_ASSISTANCE:
            return "skipped"  # cancelled or deactivated in the CRM before it ever reached Sienge
        known = self._sienge_id_of(crm_id)
        assistance = self.canonical_from_crm(raw)
        problem = missing_minimum_days(assistance)
        if problem is not None:
            raise problem
        if self.request.plan:
            if known:
                self.report.linked.append(crm_id)
            else:
                self.report.created.append((crm_id, None))
            return "planned"
        if not known:
            known = self._create(crm_id, assistance, mapping)
        self._link(crm_id, known, mapping)
        return "created"

    def _create(self, crm_id: str, assistance: Assistance, mapping: str) -> str:
        """The Sienge create itself, exactly once through the outbox; returns Sienge's id."""
        assistance = self._with_files(assistance)
        body = self._mapping(TO_SIENGE).run(assistance.model_dump(mode="json"), self.context)
        payload = body.model_dump(mode="json", exclude_none=True)
        key = f"{self.tenant.id}:assistance:{crm_id}"

        def send() -> tuple[str | None, dict[str, Any]]:
            result = self.sienge.call("create_technical_assistance", payload, idempotency_key=key)
            return result.id, _slim(result.data)

        def find() -> tuple[str | None, dict[str, Any]] | None:
            found = self.sienge.find_existing("create_technical_assistance", payload, idempotency_key=key)
            return (found.id, _slim(found.data)) if found else None

        outcome = write_once(
            self.store,
            tenant=self.tenant.id,
            connector=ERP,
            action="create_technical_assistance",
            key=key,
            payload=_slim(payload),
            send=send,
            find=find,
            worker=self.worker,
            run_id=self.request.run_id,
        )
        if not outcome.external_id:
            raise TransientError(f"Sienge created assistance {crm_id} but returned no id", record=crm_id)
        known = outcome.external_id
        self._remember(crm_id, known, content_hash(_slim(payload)), mapping)
        self._audit(
            "created" if outcome.how == "sent" else f"created_{outcome.how}",
            known,
            f"cvcrm:assistencia:{crm_id}",
            mapping,
            crm_id=crm_id,
            mappings=self.full_lineage(TO_CANONICAL, TO_SIENGE),
            items=len(assistance.items),
            attachments=len(assistance.attachments),
        )
        self.report.created.append((crm_id, known))
        return known

    def poll(self) -> None:
        """Send every active CRM assistência that Sienge has not got yet (no webhook needed)."""
        for raw in self.cvcrm.read("assistencias"):
            crm_id = str(raw["idassistencia"])
            if str(raw.get("idassistencia_erp") or "").strip():
                continue
            if crm_status(raw, self.options) in TERMINAL_ASSISTANCE:
                continue
            self.send_to_sienge(crm_id, raw)
