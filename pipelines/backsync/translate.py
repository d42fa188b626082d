"""From what providers say (webhook bodies, status reads) to canonical :class:`SigningEvent` s.

Webhook bodies go through the committed mappings (``docusign/connect_to_signing_event``,
``clicksign/webhook_to_signing_event``); status reads are turned into the same events, so a manual
sync or a poll and a webhook take one code path through the state machines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.runtime import dig
from mappings import MappingContext, load_mapping
from ponte import DataError
from schemas.canonical import Evidence, IdentityCheck, SigningEvent, SigningEventKind

K = SigningEventKind

MAPPINGS = {
    "docusign": "docusign/connect_to_signing_event",
    "clicksign": "clicksign/webhook_to_signing_event",
}


@dataclass
class Translated:
    """The canonical events of one delivery, plus provider extras the mapping does not carry."""

    events: list[SigningEvent]
    mapping: str | None = None
    #: download links the provider put in the payload (Clicksign ``signed_url``), checked before use
    download_urls: list[str] = field(default_factory=list)
    voided_reason: str | None = None


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError("the stored delivery is not JSON") from exc


def _expired(reason: str | None) -> bool:
    return bool(reason) and "expir" in str(reason).lower()


def translate(
    provider: str, body: bytes, ctx: MappingContext | None = None, signing: Any = None
) -> Translated:
    """The signing events in one stored delivery (none for events that are not about signing).

    ``signing``: the connector spec's signing section, for a provider described in YAML alone (its
    ``webhook_mappings``, and ``download.webhook_hint``: a signed-file link, kept as a hint)."""
    name = MAPPINGS.get(provider)
    if name is None and signing is not None and signing.webhook_mappings:
        payload = _parse(body)
        events, lineage = spec_events(provider, signing, payload, signing.webhook_mappings, ctx)
        result = Translated(events, lineage)
        hint = dig(payload, signing.download.webhook_hint) if signing.download and signing.download.webhook_hint else None
        if hint:
            result.download_urls.append(str(hint))
        return result
    if name is None:
        raise DataError(f"no signing-event mapping for {provider}")
    payload = _parse(body)
    mapping = load_mapping(name)
    out = mapping.run(payload, ctx or MappingContext())
    items = [] if out is None else out if isinstance(out, list) else [out]
    events = [item for item in items if isinstance(item, SigningEvent)]
    result = Translated(events, mapping.lineage)
    if provider == "docusign" and isinstance(payload, dict):
        summary = (payload.get("data") or {}).get("envelopeSummary") or {}
        result.voided_reason = summary.get("voidedReason")
        if _expired(result.voided_reason):
            # DocuSign reports an expiry as a void with this reason (PROVIDERS.md §3.1)
            result.events = [
                e.model_copy(update={"kind": K.expiry}) if e.kind == K.cancellation else e for e in events
            ]
    if provider == "clicksign" and isinstance(payload, dict):
        for doc in payload.get("documents") or ([payload["document"]] if payload.get("document") else []):
            if isinstance(doc, dict) and doc.get("signed_url"):
                result.download_urls.append(str(doc["signed_url"]))
    return result


def spec_events(
    provider: str, signing: Any, body: Any, names: list[str], ctx: MappingContext | None = None
) -> tuple[list[SigningEvent], str]:
    """A provider described in YAML alone: its JSON (a webhook body or a status read), wrapped as
    ``signing/provider_payload``, through the mappings its spec's signing section names."""
    payload = {"provider": provider, "body": body, "signers": []}
    if signing.signers:
        listed = dig(body, signing.signers)
        payload["signers"] = listed if isinstance(listed, list) else []
    events: list[SigningEvent] = []
    lineages = []
    for name in names:
        mapping = load_mapping(name)
        lineages.append(f"{mapping.name.split('/')[-1]}@{mapping.version}")
        out = mapping.run(payload, ctx or MappingContext())
        items = [] if out is None else out if isinstance(out, list) else [out]
        events += [item for item in items if isinstance(item, SigningEvent)]
    return events, "+".join(lineages)[:50]  # the audit column holds 50 characters


def _dt(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).strip().replace("Z", "+00:00")
    if "." in text:  # DocuSign's 7 fractional digits
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        text = f"{head}.{digits[:6]}{tail[len(digits) :]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _event(provider: str, envelope_id: str, kind: K, at: datetime | None, **extra: Any) -> SigningEvent:
    moment = at or datetime.now(UTC)
    recipient = extra.get("recipient_id") or ""
    return SigningEvent(
        provider=provider,
        event_id=f"poll:{envelope_id}:{kind.value}:{recipient}:{moment.isoformat()}",
        kind=kind,
        provider_envelope_id=envelope_id,
        occurred_at=moment,
        raw_status="poll",
        **extra,
    )


def docusign_identity_checks(signer: dict[str, Any]) -> list[IdentityCheck]:
    """The ID Verification DocuSign ran on one recipient, from a recipient read: the workflow it was
    asked for (``identityVerification.workflowId``) and the outcome DocuSign reports in
    ``recipientAuthenticationStatus.identityVerificationResult`` (an ``eventResult`` in the swagger)."""
    status = signer.get("recipientAuthenticationStatus")
    result = status.get("identityVerificationResult") if isinstance(status, dict) else None
    if not isinstance(result, dict) or not result.get("status"):
        return []
    asked = signer.get("identityVerification")
    workflow = asked.get("workflowId") if isinstance(asked, dict) else None
    return [
        IdentityCheck(
            provider="docusign",
            method="id_verification",
            workflow_id=str(workflow) if workflow else None,
            status=str(result["status"]).strip().lower(),
            checked_at=_dt(result.get("eventTimestamp")),
            failure=str(result.get("failureDescription") or "") or None,
        )
    ]


def docusign_read(envelope: dict[str, Any], signers: list[dict[str, Any]]) -> list[SigningEvent]:
    """DocuSign's current envelope and recipient statuses as events (reads are truth).

    A signature or refusal carries the identity checks DocuSign reports for that recipient, so they
    land in the signer's evidence (back-sync reads the recipients before it finalizes an envelope).
    """
    eid = str(envelope.get("envelopeId"))
    events: list[SigningEvent] = []
    for signer in signers:
        status = str(signer.get("status") or "")
        rid = str(signer.get("recipientId") or "") or None
        common: dict[str, Any] = {"recipient_id": rid, "routing_order": int(signer.get("routingOrder") or 1)}
        if signer.get("email"):
            common["signer_email"] = str(signer["email"]).strip().lower()
        checks = docusign_identity_checks(signer)
        acted = {"evidence": Evidence(identity_checks=checks)} if checks else {}
        if status in ("sent", "delivered", "completed", "declined"):
            events.append(_event("docusign", eid, K.sent, _dt(signer.get("sentDateTime")), **common))
        if status in ("delivered", "completed"):
            events.append(_event("docusign", eid, K.view, _dt(signer.get("deliveredDateTime")), **common))
        if status in ("completed", "signed"):
            at = _dt(signer.get("signedDateTime"))
            events.append(_event("docusign", eid, K.signature, at, **common, **acted))
        if status == "declined":
            at = _dt(signer.get("declinedDateTime"))
            events.append(_event("docusign", eid, K.refusal, at, **common, **acted))
    status = str(envelope.get("status") or "")
    at = _dt(envelope.get("statusChangedDateTime"))
    if status == "completed":
        events.append(_event("docusign", eid, K.completion, _dt(envelope.get("completedDateTime")) or at))
    elif status == "declined":
        events.append(_event("docusign", eid, K.refusal, at))
    elif status == "voided":
        kind = K.expiry if _expired(envelope.get("voidedReason")) else K.cancellation
        events.append(_event("docusign", eid, kind, at))
    return events


def clicksign_read(envelope: dict[str, Any], log: list[dict[str, Any]]) -> list[SigningEvent]:
    """Clicksign's envelope event log replayed through the webhook mapping, then its status."""
    eid = str(envelope.get("id"))
    mapping = load_mapping(MAPPINGS["clicksign"])
    events: list[SigningEvent] = []
    for item in log:
        attrs = item.get("attributes") or {}
        payload = {
            "event": {
                "name": attrs.get("name"),
                "occurred_at": attrs.get("created"),
                "data": attrs.get("data") or {},
            },
            "envelope": {"id": eid},
        }
        out = mapping.run(payload, MappingContext())
        for event in out if isinstance(out, list) else [out] if out is not None else []:
            events.append(event)
    status = str((envelope.get("attributes") or {}).get("status") or "")
    if status == "closed" and not any(e.kind == K.completion for e in events):
        events.append(_event("clicksign", eid, K.completion, None))
    elif status == "canceled" and not any(e.kind in (K.expiry, K.cancellation, K.refusal) for e in events):
        events.append(_event("clicksign", eid, K.cancellation, None))
    return events


def docusign_evidence(audit_events: list[dict[str, Any]]) -> dict[str, Evidence]:
    """Evidence per signer name from DocuSign's envelope audit events (IP, device, geolocation)."""
    found: dict[str, Evidence] = {}
    for item in audit_events:
        fields = {f.get("name"): f.get("value") for f in item.get("eventFields") or []}
        if fields.get("Action") not in ("Signed", "Viewed") or not fields.get("ClientIPAddress"):
            continue
        lat = lon = None
        geo = str(fields.get("GeoLocation") or "")
        if "," in geo:
            try:
                lat, lon = (float(x) for x in geo.split(",", 1))
            except ValueError:
                lat = lon = None
        found[str(fields.get("UserName"))] = Evidence(
            ip=fields.get("ClientIPAddress"),
            device=fields.get("Information") or None,
            latitude=lat,
            longitude=lon,
        )
    return found
