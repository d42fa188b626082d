"""Drift kind ``import_content``: an imported person or reservation whose Sienge-owned fields in CV CRM
differ from what Sienge holds now.

Detector, per record of the id map (Sienge → CV CRM; entities ``person`` and ``sale``):

1. Sienge's record (one full read per stream) is translated exactly as the import does (its
   ``Translator``): the CRM payload and its content hash. A hash other than the id map's means Sienge
   changed since the last import (an update the incremental read missed, or one not imported yet).
2. The CRM's record (the person by its CV id, the reservation from the listing) is compared with that
   payload on the fields Sienge owns (the mapping's ``ownership:``): CRM-owned fields (contacts,
   associations, notes, broker) never count. Only fields the CRM returns and the payload fills are
   compared, values as text; the hash of both projections decides, the field list says where.
   A reservation's associates count by the buyers Ponte writes (types ``conjuge``/``cocomprador``);
   its situation and cancellation fields are the CRM workflow's (the import only cancels), so they
   are not compared (``NOT_COMPARED``).

Repair: re-import that one record (``ImportRequest(ids={entity: [id]})``) with its id-map hash cleared,
so the import writes it even when Sienge did not change (it reads the CRM record and keeps the CRM's
own fields, as every import update does). The CRM is read again afterwards: a field the import's write
does not change stays reported, as not repaired. Records with an open import dead letter are known
problems and are skipped; a record the CRM no longer has is reported only.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy import select, update

from connectors.runtime import Connector
from pipelines.imports import hashing
from pipelines.imports.flow import FLOW as IMPORT_FLOW
from pipelines.imports.flow import PONTE_ASSOCIATES, SOURCE, TARGET, XREF, ImportRequest, run_import
from pipelines.imports.translate import MAPPINGS, Translator
from pipelines.reconcile.context import Reconciliation
from pipelines.reconcile.report import IMPORT_CONTENT
from pipelines.store import deadletters
from pipelines.store.models import IdMap
from pipelines.store.repos import get_xref
from ponte import NotFoundError, PonteError

KIND = IMPORT_CONTENT
#: import entity -> Sienge stream
STREAMS = {"customer": "customers", "sale": "sales_contracts"}
#: Sienge-owned fields that are not compared, and why
NOT_COMPARED: dict[str, dict[str, str]] = {
    "customer": {},
    "sale": {
        "situacao": "the reservation's situation follows the CRM's own workflow; the import only cancels",
        "motivo_cancelamento": "written by the cancellation call, with CV's own default",
        "data_cancelamento": "set by CV when the reservation is cancelled",
    },
}


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _text(value: Any) -> str:
    return str(value).strip()


def _folded(text: Any) -> str:
    decomposed = unicodedata.normalize("NFKD", str(text or "").strip().lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _buyers(items: Any, *, ours_only: bool) -> list[tuple[str, str]]:
    """A reservation's associates as sorted (person id, type); the CRM's only of the types Ponte writes."""
    found = []
    for item in items or []:
        if not isinstance(item, dict):
            continue
        kind = _folded(item.get("tipo"))
        if ours_only and kind not in PONTE_ASSOCIATES:
            continue
        found.append((_text(item.get("idpessoa")), kind))
    return sorted(found)


def _normal(value: Any) -> Any:
    """A value as the comparison sees it: text for scalars, lists and dicts walked."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if not _empty(v)}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return None if _empty(value) else _text(value)


def _diff(path: str, want: Any, have: Any) -> list[str]:
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [path]
        out = []
        for key in sorted(want):
            if _empty(want[key]) or key not in have:
                continue
            out += _diff(f"{path}.{key}", want[key], have[key])
        return out
    return [] if _normal(want) == _normal(have) else [path]


def projection(entity: str, expected: dict[str, Any], crm: dict[str, Any], owned: frozenset[str]
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The compared fields of the payload and of the CRM record, normalized: Sienge-owned, filled in the
    payload, returned by the CRM, not in ``NOT_COMPARED``."""
    skip = NOT_COMPARED.get(entity, {})
    want: dict[str, Any] = {}
    have: dict[str, Any] = {}
    for name in sorted(expected):
        if name not in owned or name in skip or _empty(expected[name]) or name not in crm:
            continue
        if entity == "sale" and name == "associados":
            want[name], have[name] = _buyers(expected[name], ours_only=False), _buyers(crm[name], ours_only=True)
        else:
            want[name], have[name] = expected[name], crm[name]
    return want, have


def differences(entity: str, expected: dict[str, Any], crm: dict[str, Any], owned: frozenset[str]) -> list[str]:
    """The Sienge-owned CRM fields that differ from the payload (empty: none). Equal hashes of the two
    projections mean nothing differs; the walk then names the fields."""
    want, have = projection(entity, expected, crm, owned)
    if hashing.content_hash(_normal(want)) == hashing.content_hash(_normal(_restricted(want, have))):
        return []
    out: list[str] = []
    for name in sorted(want):
        if isinstance(want[name], list):
            if want[name] != have[name]:
                out.append(name)
        else:
            out += _diff(name, want[name], have[name])
    return out


def _restricted(want: Any, have: Any) -> Any:
    """``have`` limited to the keys ``want`` compares (nested dicts too): what the hash is taken of."""
    if isinstance(want, dict) and isinstance(have, dict):
        return {k: _restricted(want[k], have[k]) for k in want if k in have and not _empty(want[k])}
    return have


class _Crm:
    """CV CRM's current records: people one by one, reservations from the (shared) listing."""

    def __init__(self, ctx: Reconciliation, cvcrm: Connector) -> None:
        self.ctx = ctx
        self.cvcrm = cvcrm
        self._reservas: dict[str, dict[str, Any]] | None = None

    def get(self, entity: str, target_id: str, *, fresh: bool = False) -> dict[str, Any] | None:
        if entity == "customer":
            try:
                for person in self.cvcrm.read("clientes", params={"idcliente": target_id}, limit=1):
                    return person
            except NotFoundError:
                return None
            return None
        if fresh:
            try:
                return self.cvcrm.read_one("reservas", target_id)
            except NotFoundError:
                return None
        if self._reservas is None:
            self._reservas = {str(r.get("idreserva")): r for r in self.ctx.reservas()}
        return self._reservas.get(str(target_id))


def _lookup(ctx: Reconciliation):
    def lookup(entity: str, source_system: str, source_id: str, target_system: str) -> str | None:
        with ctx.store.session() as session:
            row = get_xref(session, ctx.tenant.id, entity, source_system, str(source_id), target_system)
            return row.target_id if row else None

    return lookup


def _expected(translator: Translator, entity: str, raw: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The CRM payload the import would send for ``raw``, and what its id-map hash is taken of."""
    if entity == "customer":
        payloads, _digest = translator.staged(entity, raw)
        return payloads[-1], payloads
    _sale, payload = translator.sale(raw)
    return payload, payload


def check(ctx: Reconciliation) -> None:
    sienge, cvcrm = ctx.connectors("sienge"), ctx.connectors("cvcrm")
    translator = Translator(ctx.tenant, _lookup(ctx))
    crm = _Crm(ctx, cvcrm)
    letters = deadletters.open_keys(ctx.store, ctx.tenant.id, IMPORT_FLOW)
    checked = 0
    for entity, stream in STREAMS.items():
        with ctx.store.session() as session:
            known = {
                row.source_id: (str(row.target_id), row.content_hash)
                for row in session.scalars(select(IdMap).where(
                    IdMap.tenant == ctx.tenant.id, IdMap.entity == XREF[entity], IdMap.source_system == SOURCE,
                    IdMap.target_system == TARGET, IdMap.target_id.is_not(None)))
            }
        if not known:
            continue
        owned = translator.mapping(MAPPINGS[entity][1]).owned_fields(SOURCE)
        for raw in sienge.read(stream):
            source_id = str(raw.get("id"))
            if source_id not in known or f"{entity}:{source_id}" in letters:
                continue
            checked += 1
            try:
                expected, hashed = _expected(translator, entity, raw)
            except PonteError:
                continue  # the import dead-letters it with its reason: a known problem, not drift
            target_id, stored_hash = known[source_id]
            _compare(ctx, crm, entity, source_id, target_id, expected, owned,
                     sienge_changed=stored_hash not in (hashing.content_hash(hashed),
                                                        hashing.legacy_content_hash(hashed)))
    ctx.report.checked[KIND] = checked


def _compare(ctx: Reconciliation, crm: _Crm, entity: str, source_id: str, target_id: str,
             expected: dict[str, Any], owned: frozenset[str], *, sienge_changed: bool) -> None:
    what = "person" if entity == "customer" else "reservation"
    record = f"{entity}:{source_id}"
    current = crm.get(entity, target_id)
    if current is None:
        ctx.report.add(KIND, record, f"Sienge {entity} {source_id} was imported as CV CRM {what} {target_id}, "
                       "which the CRM no longer has",
                       action="reported only: re-creating a record someone removed from the CRM is a person's "
                       f"call (`ponte sync import --tenant {ctx.tenant.id} --full` would not recreate it)")
        return
    fields = differences(entity, expected, current, owned)
    if not fields and not sienge_changed:
        return
    parts = []
    if fields:
        parts.append(f"CV CRM {what} {target_id} differs from Sienge on {', '.join(fields)} (fields Sienge owns)")
    if sienge_changed:
        parts.append("Sienge changed it since the last import")
    row = ctx.report.add(KIND, record, f"Sienge {entity} {source_id}: " + "; ".join(parts), fields=fields)
    if ctx.dry_run:
        row.action = f"would re-import Sienge {entity} {source_id}"
        return
    failure = _reimport(ctx, entity, source_id)
    after = crm.get(entity, target_id, fresh=True)
    left = differences(entity, expected, after, owned) if after is not None else ["(record gone)"]
    row.repaired = failure is None and not left
    if row.repaired:
        row.action = f"re-imported Sienge {entity} {source_id}"
    elif failure is not None:
        row.action = f"re-import failed ({failure}): see `ponte deadletter list --tenant {ctx.tenant.id} --flow import`"
    else:
        row.action = (f"re-imported, but the CRM still differs on {', '.join(left)}: CV CRM does not take "
                      "it through the import's write; correct it in the CRM by hand")


def _reimport(ctx: Reconciliation, entity: str, source_id: str) -> str | None:
    """Re-import one record, its id-map hash cleared so the import writes it; the failure, if any."""
    with ctx.store.session() as session:
        session.execute(update(IdMap).where(
            IdMap.tenant == ctx.tenant.id, IdMap.entity == XREF[entity], IdMap.source_system == SOURCE,
            IdMap.source_id == source_id, IdMap.target_system == TARGET).values(content_hash=None))
    try:
        report = run_import(ctx.store, ctx.tenant, ctx.connectors("sienge"), ctx.connectors("cvcrm"),
                            ImportRequest(ids={entity: [source_id]}, run_id=ctx.request.run_id))
    except PonteError as exc:
        return str(exc)
    counts = report.entities[entity]
    if counts.failed:
        return f"{counts.failed} failure(s), {counts.dead_lettered} dead-lettered"
    return None
