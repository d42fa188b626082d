"""DocuSign eSignature v2.1 stand-in: envelopes, routing order, PDFs, Connect with HMAC, embedded signing.

Faithful to PROVIDERS.md §3.1 and the Swagger definitions: every scalar is a JSON string as DocuSign
sends it, a signer is invited only when every lower ``routingOrder`` has signed, ``combined`` and
``certificate`` downloads are real PDFs, Connect posts JSON SIM messages signed with
``X-DocuSign-Signature-1``, and the account budget (3,000 calls/hour) is reported in
``X-RateLimit-*`` headers and enforced with 429.

Signing links (PROVIDERS.md §3.7 and the swagger's EnvelopeViews createRecipient):

- A *remote* signer (no ``clientUserId``) is invited by DocuSign itself: by e-mail, plus WhatsApp or
  SMS when the signer carries ``additionalNotifications``; each invitation is kept in
  ``state.notifications`` (what DocuSign would have sent, with which method and number).
- An *embedded* signer (``clientUserId`` set at creation) is sent nothing. ``POST
  /envelopes/{id}/views/recipient`` gives a signing URL only for an embedded recipient whose
  ``clientUserId``, ``email`` and ``userName`` all match (else 400 ``UNKNOWN_ENVELOPE_RECIPIENT``), only
  when it is that recipient's turn (else 400 ``RECIPIENT_NOT_IN_SEQUENCE``) and only for a sent envelope.
  The URL opens once (a second GET is an error page) and only within ``view_ttl_seconds`` (5 minutes);
  opening it marks the recipient delivered and shows a page where the signer signs or declines, after
  which the browser goes to the ``returnUrl`` with ``event=signing_complete`` or ``decline``.

Recipient kinds (the swagger's EnvelopeRecipients): ``signers`` sign (the only kind with tabs);
``certifiedDeliveries`` must open and acknowledge the documents for the envelope to complete (the
sandbox's "sign" action on them is that acknowledgement); ``carbonCopies`` get a copy when the routing
order reaches them and are completed at once, holding nobody up. All share one routing order and one
set of recipientIds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from connectors.sandbox.base import JSON, ApiError, Denied, SandboxSystem, dumps, read_json
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.documents import combine_pdfs, is_pdf, page_count, text_pdf
from connectors.sandbox.ratelimit import RateLimiter, Verdict
from connectors.sandbox.signing import Evidence, check_action, resolve_signer
from connectors.sandbox.webhooks import Delivery, Dispatcher

EVENTS = ("envelope-sent", "envelope-delivered", "envelope-completed", "envelope-declined", "envelope-voided",
          "recipient-sent", "recipient-delivered", "recipient-completed", "recipient-declined",
          "recipient-autoresponded")
SANDBOX_USER_ID = "00000000-0000-0000-0000-00000000u5e7"


def stamp() -> str:
    """DocuSign's timestamp form: UTC with 7 fractional digits."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}0Z"


def _s(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_dt(value: str) -> datetime:
    """A DocuSign date or date-time (``2026-11-01``, ``2026-11-01T10:00:00Z``, 7-digit fractions)."""
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        text = f"{head}.{digits[:6]}{tail[len(digits):]}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _jwt_claims(assertion: str) -> dict[str, Any] | None:
    parts = assertion.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return None
    try:
        def decode(part: str) -> Any:
            return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        header, claims = decode(parts[0]), decode(parts[1])
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
        return None
    return claims


class DocusignState:
    def __init__(self) -> None:
        self.envelopes: dict[str, dict[str, Any]] = {}
        self.documents: dict[str, dict[str, bytes]] = {}  # envelopeId -> documentId -> bytes
        self.document_meta: dict[str, list[dict[str, str]]] = {}
        self.evidence: dict[str, dict[str, Evidence]] = {}  # envelopeId -> recipientId -> evidence
        self.audit: dict[str, list[dict[str, str]]] = {}
        self.connect: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, float] = {}
        #: recipient views: token -> {envelopeId, recipientId, returnUrl, expires, used}
        self.views: dict[str, dict[str, Any]] = {}
        #: signing sessions a redeemed view opened: id -> {envelopeId, recipientId, returnUrl, expires}
        self.sessions: dict[str, dict[str, Any]] = {}
        #: invitations DocuSign sent itself (remote signers): {envelopeId, recipientId, method, to}
        self.notifications: list[dict[str, str]] = []


class DocusignSandbox(SandboxSystem):
    name = "docusign"
    #: a recipient view URL must be opened within this many seconds ("a couple of minutes")
    view_ttl_seconds: float = 300.0
    #: a signing session opened from a view times out after this many seconds (DocuSign's default 20 min)
    session_ttl_seconds: float = 1200.0

    def __init__(self, config: SandboxConfig, dispatcher: Dispatcher) -> None:
        super().__init__(config, dispatcher)
        self.state = DocusignState()
        self.limiter = RateLimiter(config.docusign_rate_limit)
        self.prefix = f"/restapi/v2.1/accounts/{config.docusign_account_id}"
        self._next_connect = 10001

    # ---- guard ------------------------------------------------------------------------------
    def public_paths(self) -> tuple[str, ...]:
        return ("/oauth/token", "/Signing/")  # the signer's browser opens views without a token

    def error_body(self, status: int, message: str, *, field: str | None, code: str | None) -> Any:
        default = {400: "INVALID_REQUEST_BODY", 401: "USER_AUTHENTICATION_FAILED", 403: "USER_LACKS_PERMISSIONS",
                   404: "RESOURCE_NOT_FOUND", 409: "CONFLICT", 429: "HOURLY_APIINVOCATION_LIMIT_EXCEEDED"}
        if code == "RATE_LIMITED":
            code = None
        return {"errorCode": code or default.get(status, "INTERNAL_SERVER_ERROR"), "message": message}

    def authenticate(self, request: Request) -> Denied | Any:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return Denied(401, "The access token is missing. Use Authorization: Bearer <token>.",
                          "AUTHORIZATION_INVALID_TOKEN")
        token = header[7:].strip()
        expiry = self.state.tokens.get(token)
        if token != self.config.docusign_static_token and (expiry is None or expiry < time.time()):
            return Denied(401, "The access token provided is expired, revoked or malformed.",
                          "AUTHORIZATION_INVALID_TOKEN")
        path = request.url.path
        if path.startswith("/restapi/v2.1/accounts/") and not path.startswith(self.prefix + "/") \
                and path != self.prefix:
            return Denied(400, "The specified account id is not valid for this user.", "INVALID_ACCOUNT_ID")
        return token

    def rate_key(self, request: Request, principal: Any) -> str | None:
        return self.config.docusign_account_id

    def rate_headers(self, verdict: Verdict) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(verdict.limit), "X-RateLimit-Remaining": str(verdict.remaining),
                "X-RateLimit-Reset": str(int(verdict.reset_at))}

    # ---- routes -----------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        p = self.prefix
        return [
            Route("/oauth/token", self.oauth_token, methods=["POST"]),
            Route("/oauth/userinfo", self.userinfo, methods=["GET"]),
            Route(f"{p}/envelopes", self.create_envelope, methods=["POST"]),
            Route(f"{p}/envelopes", self.list_envelopes, methods=["GET"]),
            Route(f"{p}/envelopes/{{eid}}", self.get_envelope, methods=["GET"]),
            Route(f"{p}/envelopes/{{eid}}", self.update_envelope, methods=["PUT"]),
            Route(f"{p}/envelopes/{{eid}}/recipients", self.get_recipients, methods=["GET"]),
            Route(f"{p}/envelopes/{{eid}}/views/recipient", self.create_recipient_view, methods=["POST"]),
            Route("/Signing/MTRedeem/v1/{token}", self.open_view, methods=["GET"]),
            Route("/Signing/session/{sid}/{action}", self.session_act, methods=["POST"]),
            Route(f"{p}/envelopes/{{eid}}/custom_fields", self.get_custom_fields, methods=["GET"]),
            Route(f"{p}/envelopes/{{eid}}/audit_events", self.get_audit, methods=["GET"]),
            Route(f"{p}/envelopes/{{eid}}/documents", self.list_documents, methods=["GET"]),
            Route(f"{p}/envelopes/{{eid}}/documents/{{did}}", self.get_document, methods=["GET"]),
            Route(f"{p}/identity_verification", self.identity_workflows, methods=["GET"]),
            Route(f"{p}/connect", self.create_connect, methods=["POST"]),
            Route(f"{p}/connect", self.list_connect, methods=["GET"]),
            Route(f"{p}/connect/{{cid}}", self.delete_connect, methods=["DELETE"]),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [Route("/_sandbox/envelopes/{eid}/act", self._ctl_act, methods=["POST"])]

    # ---- OAuth ------------------------------------------------------------------------------
    async def oauth_token(self, request: Request) -> Response:
        # urlencoded form, parsed by hand: Starlette's form parser needs an extra dependency.
        parsed = parse_qs((await request.body()).decode("utf-8", "replace"))
        form = {k: v[0] for k, v in parsed.items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSON({"error": "unsupported_grant_type"}, 400)
        claims = _jwt_claims(str(form.get("assertion") or ""))
        if claims is None:
            return JSON({"error": "invalid_grant", "error_description": "no_valid_keys_or_signatures"}, 400)
        keys = self.config.docusign_integration_keys
        if keys and claims.get("iss") not in keys:
            return JSON({"error": "invalid_grant", "error_description": "client_no_registered"}, 400)
        token = "dsat-" + uuid.uuid4().hex
        self.state.tokens[token] = time.time() + 3600
        return JSON({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    async def userinfo(self, request: Request) -> Response:
        return JSON({"sub": SANDBOX_USER_ID, "name": "Ponte Sandbox", "email": "integracao@ponte.example.com.br",
                     "accounts": [{"account_id": self.config.docusign_account_id, "is_default": True,
                                   "account_name": "Ponte Sandbox", "base_uri": self.origin}]})

    # ---- envelopes --------------------------------------------------------------------------
    def _envelope(self, eid: str) -> dict[str, Any]:
        envelope = self.state.envelopes.get(eid)
        if envelope is None:
            raise ApiError(404, f"The envelope specified either does not exist or you have no rights to it: {eid}",
                           code="ENVELOPE_DOES_NOT_EXIST")
        return envelope

    async def create_envelope(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "The request body is missing or improperly formatted.")
        status = body.get("status", "created")
        if status not in ("created", "sent"):
            raise ApiError(400, f"Invalid envelope status {status!r}: use created or sent.",
                           code="INVALID_ENVELOPE_STATUS")
        eid = str(uuid.uuid4())
        docs, metas = self._parse_documents(body.get("documents") or [])
        recipients = body.get("recipients") or {}
        signers = [self._parse_signer(s, docs, i) for i, s in enumerate(recipients.get("signers") or [])]
        certified = [self._parse_plain(c, "certifiedDeliveries", i)
                     for i, c in enumerate(recipients.get("certifiedDeliveries") or [])]
        carbon = [self._parse_plain(c, "carbonCopies", i) for i, c in enumerate(recipients.get("carbonCopies") or [])]
        ids = [s["recipientId"] for s in (*signers, *certified, *carbon)]
        if len(set(ids)) != len(ids):
            raise ApiError(400, "Recipient ids must be unique within an envelope.", code="INVALID_RECIPIENT_ID")
        if status == "sent":
            if not docs:
                raise ApiError(400, "The envelope is not complete: it has no documents.", code="ENVELOPE_IS_INCOMPLETE")
            if not signers and not certified:
                raise ApiError(400, "The envelope is not complete: it has no recipients.",
                               code="ENVELOPE_IS_INCOMPLETE")
            if not body.get("emailSubject"):
                raise ApiError(400, "The email subject is required to send an envelope.",
                               code="ENVELOPE_IS_INCOMPLETE")
        custom = body.get("customFields") or {}
        text_fields = [{"fieldId": str(i + 1), "name": _s(f.get("name", "")), "value": _s(f.get("value", "")),
                        "show": _s(f.get("show", "false")), "required": _s(f.get("required", "false"))}
                       for i, f in enumerate(custom.get("textCustomFields") or [])]
        now = stamp()
        uri = f"/envelopes/{eid}"
        envelope: dict[str, Any] = {
            "envelopeId": eid, "status": "created", "emailSubject": body.get("emailSubject", ""),
            "emailBlurb": body.get("emailBlurb", ""), "createdDateTime": now, "lastModifiedDateTime": now,
            "statusChangedDateTime": now, "envelopeUri": uri, "recipientsUri": f"{uri}/recipients",
            "documentsUri": f"{uri}/documents", "documentsCombinedUri": f"{uri}/documents/combined",
            "certificateUri": f"{uri}/documents/certificate", "customFieldsUri": f"{uri}/custom_fields",
            "notificationUri": f"{uri}/notification", "attachmentsUri": f"{uri}/attachments",
            "templatesUri": f"{uri}/templates", "signingLocation": "online", "enableWetSign": "true",
            "allowMarkup": "false", "allowReassign": "true", "is21CFRPart11": "false",
            "isSignatureProviderEnvelope": "false", "purgeState": "unpurged", "envelopeIdStamping": "true",
            "autoNavigation": "true", "brandLock": "false", "useDisclosure": "false",
            "customFields": {"textCustomFields": text_fields, "listCustomFields": []},
            "recipients": {"signers": signers, "certifiedDeliveries": certified, "carbonCopies": carbon},
        }
        with self.lock:
            self.state.envelopes[eid] = envelope
            self.state.documents[eid] = docs
            self.state.document_meta[eid] = metas
            self.state.evidence[eid] = {}
            self.state.audit[eid] = []
            self._audit(eid, "Registered", "Envelope created", "created")
            if status == "sent":
                self._send(envelope)
        return JSON({"envelopeId": eid, "uri": uri, "statusDateTime": envelope["statusChangedDateTime"],
                     "status": envelope["status"]}, 201)

    def _parse_documents(self, raw: list[Any]) -> tuple[dict[str, bytes], list[dict[str, str]]]:
        docs: dict[str, bytes] = {}
        metas = []
        for index, doc in enumerate(raw):
            if not isinstance(doc, dict) or not doc.get("documentId") or not doc.get("name"):
                raise ApiError(400, f"documents[{index}] needs documentId and name.", code="INVALID_REQUEST_BODY")
            did = _s(doc["documentId"])
            if did in docs:
                raise ApiError(400, f"Duplicate documentId {did}.", code="DUPLICATE_DOCUMENT_ID")
            try:
                content = base64.b64decode(doc.get("documentBase64") or "", validate=True)
            except binascii.Error as exc:
                raise ApiError(400, f"documents[{index}].documentBase64 is not valid base64.",
                               code="INVALID_REQUEST_BODY") from exc
            if not content:
                raise ApiError(400, f"documents[{index}] has no content (documentBase64).",
                               code="FORMAT_CONVERSION_ERROR")
            extension = str(doc.get("fileExtension") or "pdf").lower()
            if extension == "pdf" and not is_pdf(content):
                raise ApiError(400, f"documents[{index}] is declared PDF but is not a PDF file.",
                               code="FORMAT_CONVERSION_ERROR")
            if not is_pdf(content):  # DocuSign converts other formats; the sandbox renders a stand-in
                content = text_pdf(str(doc["name"]), [f"(converted from .{extension}, {len(content)} bytes)"])
            docs[did] = content
            metas.append({"documentId": did, "name": str(doc["name"]), "type": "content",
                          "order": _s(doc.get("order", index + 1)), "pages": str(page_count(content)),
                          "uri": "", "sizeBytes": str(len(content))})
        return docs, metas

    def _parse_signer(self, raw: Any, docs: dict[str, bytes], index: int) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise ApiError(400, f"recipients.signers[{index}] must be an object.")
        email = str(raw.get("email") or "")
        if "@" not in email or email.startswith("@") or email.endswith("@"):
            raise ApiError(400, f"signers[{index}]: invalid email address {email!r}.",
                           code="INVALID_EMAIL_ADDRESS_FOR_RECIPIENT")
        if not str(raw.get("name") or "").strip():
            raise ApiError(400, f"signers[{index}]: the recipient name is required.",
                           code="INVALID_USERNAME_FOR_RECIPIENT")
        if raw.get("recipientId") in (None, ""):
            raise ApiError(400, f"signers[{index}]: recipientId is required.", code="INVALID_RECIPIENT_ID")
        routing = raw.get("routingOrder", 1)
        try:
            if int(routing) < 1:
                raise ValueError
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"signers[{index}]: routingOrder must be a positive integer.",
                           code="INVALID_ROUTING_ORDER") from exc
        tabs_in = raw.get("tabs") or {}
        tabs: dict[str, list[dict[str, str]]] = {}
        for kind, items in tabs_in.items():
            out = []
            for t_index, tab in enumerate(items or []):
                tab = {k: _s(v) for k, v in tab.items()}
                if "anchorString" not in tab:
                    missing = [k for k in ("documentId", "pageNumber", "xPosition", "yPosition") if k not in tab]
                    if missing:
                        raise ApiError(400, f"signers[{index}].tabs.{kind}[{t_index}] needs {', '.join(missing)} "
                                            "or an anchorString.", code="INVALID_TAB_POSITION")
                if "documentId" in tab and tab["documentId"] not in docs:
                    raise ApiError(400, f"signers[{index}].tabs.{kind}[{t_index}] refers to missing document "
                                        f"{tab['documentId']}.", code="TAB_REFERS_TO_MISSING_DOCUMENT")
                tab.setdefault("recipientId", _s(raw["recipientId"]))
                tab.setdefault("tabId", str(uuid.uuid4()))
                out.append(tab)
            tabs[kind] = out
        signer = {
            "recipientId": _s(raw["recipientId"]), "recipientIdGuid": str(uuid.uuid4()),
            "email": email, "name": str(raw["name"]), "routingOrder": _s(int(routing)),
            "status": "created", "deliveryMethod": "email",
            "creationReason": "sender", "requireIdLookup": "false", "tabs": tabs,
            "totalTabCount": str(sum(len(v) for v in tabs.values())),
        }
        for key in ("roleName", "clientUserId", "note"):
            if raw.get(key):
                signer[key] = _s(raw[key])
        if len(signer.get("clientUserId", "")) > 100:
            raise ApiError(400, f"signers[{index}]: clientUserId is longer than 100 characters.",
                           code="INVALID_CLIENT_USER_ID")
        notices = self._parse_notifications(raw.get("additionalNotifications"), index)
        if notices:
            signer["additionalNotifications"] = notices
        idv = raw.get("identityVerification")
        if idv is not None:  # recipientIdentityVerification: one of the account's ID Verification workflows
            workflow = _s(idv.get("workflowId") or "") if isinstance(idv, dict) else ""
            if workflow not in self.config.docusign_idv_workflows:
                raise ApiError(400, f"signers[{index}]: identityVerification.workflowId {workflow!r} is not an "
                                    "ID Verification workflow of this account.",
                               code="INVALID_IDENTITY_VERIFICATION_WORKFLOW")
            signer["identityVerification"] = {"workflowId": workflow}
        return signer

    def _parse_plain(self, raw: Any, kind: str, index: int) -> dict[str, Any]:
        """A certified delivery or a carbon copy: a recipient without tabs (the swagger's certifiedDelivery
        and carbonCopy have none)."""
        if not isinstance(raw, dict):
            raise ApiError(400, f"recipients.{kind}[{index}] must be an object.")
        if raw.get("tabs"):
            raise ApiError(400, f"{kind}[{index}]: this recipient type does not take tabs.",
                           code="INVALID_RECIPIENT_TYPE_FOR_TABS")
        email = str(raw.get("email") or "")
        if "@" not in email or email.startswith("@") or email.endswith("@"):
            raise ApiError(400, f"{kind}[{index}]: invalid email address {email!r}.",
                           code="INVALID_EMAIL_ADDRESS_FOR_RECIPIENT")
        if not str(raw.get("name") or "").strip():
            raise ApiError(400, f"{kind}[{index}]: the recipient name is required.",
                           code="INVALID_USERNAME_FOR_RECIPIENT")
        if raw.get("recipientId") in (None, ""):
            raise ApiError(400, f"{kind}[{index}]: recipientId is required.", code="INVALID_RECIPIENT_ID")
        try:
            routing = int(raw.get("routingOrder", 1))
            if routing < 1:
                raise ValueError
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"{kind}[{index}]: routingOrder must be a positive integer.",
                           code="INVALID_ROUTING_ORDER") from exc
        recipient = {"recipientId": _s(raw["recipientId"]), "recipientIdGuid": str(uuid.uuid4()),
                     "email": email, "name": str(raw["name"]), "routingOrder": _s(routing),
                     "status": "created", "deliveryMethod": "email", "requireIdLookup": "false"}
        for key in ("roleName", "clientUserId", "note"):
            if raw.get(key):
                recipient[key] = _s(raw[key])
        if kind == "carbonCopies":
            recipient.pop("clientUserId", None)  # a copy is e-mailed by DocuSign
        idv = raw.get("identityVerification")
        if idv is not None and kind == "certifiedDeliveries":
            workflow = _s(idv.get("workflowId") or "") if isinstance(idv, dict) else ""
            if workflow not in self.config.docusign_idv_workflows:
                raise ApiError(400, f"{kind}[{index}]: identityVerification.workflowId {workflow!r} is not an "
                                    "ID Verification workflow of this account.",
                               code="INVALID_IDENTITY_VERIFICATION_WORKFLOW")
            recipient["identityVerification"] = {"workflowId": workflow}
        return recipient

    @staticmethod
    def _actors(envelope: dict[str, Any]) -> list[dict[str, Any]]:
        """Recipients who act (sign or acknowledge): signers and certified deliveries."""
        recipients = envelope["recipients"]
        return [*recipients["signers"], *recipients.get("certifiedDeliveries", [])]

    @staticmethod
    def _routed(envelope: dict[str, Any]) -> list[dict[str, Any]]:
        """Every recipient the routing order reaches, copies included."""
        return [*DocusignSandbox._actors(envelope), *envelope["recipients"].get("carbonCopies", [])]

    @staticmethod
    def _parse_notifications(raw: Any, index: int) -> list[dict[str, Any]]:
        """``additionalNotifications``: one secondary method (SMS or WhatsApp) with a phone number."""
        if raw in (None, []):
            return []
        if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], dict):
            raise ApiError(400, f"signers[{index}].additionalNotifications takes one secondary delivery method.",
                           code="INVALID_REQUEST_BODY")
        notice = raw[0]
        method = notice.get("secondaryDeliveryMethod")
        if method not in ("SMS", "WhatsApp"):
            raise ApiError(400, f"signers[{index}]: secondaryDeliveryMethod must be SMS or WhatsApp, not {method!r}.",
                           code="INVALID_REQUEST_BODY")
        phone = notice.get("phoneNumber") or {}
        country, number = str(phone.get("countryCode") or ""), str(phone.get("number") or "")
        if not (country.isdigit() and 1 <= len(country) <= 3 and number.isdigit() and 4 <= len(number) <= 14):
            raise ApiError(400, f"signers[{index}]: {method} delivery needs phoneNumber.countryCode and number "
                                "(digits).", code="INVALID_PHONE_NUMBER")
        return [{"secondaryDeliveryMethod": method, "phoneNumber": {"countryCode": country, "number": number}}]

    # ---- routing ----------------------------------------------------------------------------
    def _audit(self, eid: str, action: str, message: str, status: str, user: str = "Ponte Sandbox",
               evidence: Evidence | None = None) -> None:
        fields = {"logTime": stamp(), "Source": "API", "UserName": user, "Action": action,
                  "Message": message, "EnvelopeStatus": status, "ClientIPAddress": "",
                  "Information": "", "GeoLocation": ""}
        if evidence is not None:
            fields.update({"ClientIPAddress": evidence.ip, "Information": evidence.device,
                           "GeoLocation": f"{evidence.latitude},{evidence.longitude}"})
            fields["Source"] = "Web"
        self.state.audit[eid].append(fields)

    @staticmethod
    def _current_order(envelope: dict[str, Any]) -> int | None:
        pending = [int(s["routingOrder"]) for s in DocusignSandbox._routed(envelope)
                   if s["status"] not in ("completed", "signed")]
        return min(pending) if pending else None

    @staticmethod
    def _actors_pending(envelope: dict[str, Any]) -> bool:
        return any(s["status"] not in ("completed", "signed") for s in DocusignSandbox._actors(envelope))

    def _send(self, envelope: dict[str, Any]) -> None:
        now = stamp()
        envelope.update({"status": "sent", "sentDateTime": now, "initialSentDateTime": now,
                         "statusChangedDateTime": now, "lastModifiedDateTime": now})
        self._audit(envelope["envelopeId"], "Sent Invitations", "Envelope sent", "sent")
        self._notify(envelope, "envelope-sent")
        self._invite_current(envelope)

    def _invite_current(self, envelope: dict[str, Any]) -> None:
        """Invite the current routing order; a copy recipient there gets its copy and is done at once,
        so routing goes on past an order of copies only (and completes the envelope when nobody who
        acts is left)."""
        while True:
            order = self._current_order(envelope)
            if order is None:
                break
            copies = [c for c in envelope["recipients"].get("carbonCopies", [])
                      if int(c["routingOrder"]) == order and c["status"] == "created"]
            for copy in copies:
                now = stamp()
                copy.update({"status": "completed", "sentDateTime": now, "deliveredDateTime": now})
                self._invite(envelope, copy)
                self._notify(envelope, "recipient-completed", copy)
            for signer in self._actors(envelope):
                if int(signer["routingOrder"]) == order and signer["status"] == "created":
                    signer["status"] = "sent"
                    signer["sentDateTime"] = stamp()
                    self._invite(envelope, signer)
                    self._notify(envelope, "recipient-sent", signer)
            if not copies or self._current_order(envelope) == order:
                break
        if envelope["status"] in ("sent", "delivered") and not self._actors_pending(envelope) \
                and self._current_order(envelope) is None:
            now = stamp()
            envelope.update({"status": "completed", "completedDateTime": now, "statusChangedDateTime": now})
            self._audit(envelope["envelopeId"], "Completed", "Envelope completed", "completed")
            self._notify(envelope, "envelope-completed")

    def _invite(self, envelope: dict[str, Any], signer: dict[str, Any]) -> None:
        """What DocuSign sends a signer whose turn came: nothing to an embedded one (the sender's app
        invites and asks for a recipient view), else the e-mail plus the secondary method if any."""
        if signer.get("clientUserId"):
            return
        base = {"envelopeId": envelope["envelopeId"], "recipientId": signer["recipientId"]}
        self.state.notifications.append({**base, "method": "Email", "to": signer["email"]})
        for notice in signer.get("additionalNotifications") or []:
            phone = notice["phoneNumber"]
            self.state.notifications.append({**base, "method": notice["secondaryDeliveryMethod"],
                                             "to": f"+{phone['countryCode']}{phone['number']}"})

    def act(self, eid: str, role: str, action: str = "sign", evidence: Evidence | None = None) -> dict[str, Any]:
        """Make the signer named ``role`` view, sign, refuse, or let the envelope expire."""
        check_action(action)
        with self.lock:
            envelope = self._envelope(eid)
            if action == "expire":
                if envelope["status"] in ("completed", "declined", "voided"):
                    raise ApiError(409, f"Envelope is already {envelope['status']}.", code="ENVELOPE_CANNOT_VOID")
                self._void(envelope, "Envelope has expired.")
                return self._summary(envelope)
            signer = resolve_signer(self._actors(envelope), role, ("roleName", "email", "name", "recipientId"))
            if envelope["status"] not in ("sent", "delivered"):
                raise ApiError(409, f"Envelope is {envelope['status']}; the signer cannot act.",
                               code="ENVELOPE_NOT_IN_PROCESS")
            if signer["status"] not in ("sent", "delivered"):
                raise ApiError(409, f"Signer {signer['name']} is {signer['status']}: not invited yet "
                                    "(a lower routing order has not signed) or already done.",
                               code="RECIPIENT_NOT_IN_SEQUENCE")
            evidence = evidence or Evidence.default_for(eid, signer["recipientId"])
            self.state.evidence[eid][signer["recipientId"]] = evidence
            now = stamp()
            if signer.get("identityVerification") and "recipientAuthenticationStatus" not in signer:
                # ID Verification runs before the signer may open the documents; DocuSign reports the
                # outcome on the recipient (authenticationStatus.identityVerificationResult, an eventResult)
                passed = str(evidence.extra.get("identity_verification", "passed")).lower() == "passed"
                result = {"status": "Passed" if passed else "Failed", "eventTimestamp": now}
                if not passed:
                    result["failureDescription"] = "The ID document could not be verified."
                signer["recipientAuthenticationStatus"] = {"identityVerificationResult": result}
            if signer.get("recipientAuthenticationStatus", {}).get("identityVerificationResult", {}).get(
                    "status") == "Failed":
                raise ApiError(409, f"Signer {signer['name']} failed ID Verification and cannot open the envelope.",
                               code="RECIPIENT_AUTHENTICATION_FAILED")
            if signer["status"] == "sent":  # opening the envelope always comes first
                signer.update({"status": "delivered", "deliveredDateTime": now})
                self._audit(eid, "Viewed", f"{signer['name']} viewed the envelope", envelope["status"],
                            signer["name"], evidence)
                self._notify(envelope, "recipient-delivered", signer)
                if envelope["status"] == "sent":
                    envelope.update({"status": "delivered", "deliveredDateTime": now, "statusChangedDateTime": now})
                    self._notify(envelope, "envelope-delivered")
            if action == "sign":
                signer.update({"status": "completed", "signedDateTime": now})
                self._audit(eid, "Signed", f"{signer['name']} signed the envelope", envelope["status"],
                            signer["name"], evidence)
                self._notify(envelope, "recipient-completed", signer)
                self._invite_current(envelope)  # the next order, or the envelope's completion
            elif action == "refuse":
                reason = evidence.reason or "Não concordo com os termos"
                signer.update({"status": "declined", "declinedDateTime": now, "declinedReason": reason})
                envelope.update({"status": "declined", "declinedDateTime": now, "statusChangedDateTime": now})
                self._audit(eid, "Declined", f"{signer['name']} declined: {reason}", "declined",
                            signer["name"], evidence)
                self._notify(envelope, "recipient-declined", signer)
                self._notify(envelope, "envelope-declined")
            envelope["lastModifiedDateTime"] = now
            return self._summary(envelope)

    def _void(self, envelope: dict[str, Any], reason: str) -> None:
        now = stamp()
        envelope.update({"status": "voided", "voidedDateTime": now, "voidedReason": reason,
                         "statusChangedDateTime": now, "lastModifiedDateTime": now})
        self._audit(envelope["envelopeId"], "Voided", reason, "voided")
        self._notify(envelope, "envelope-voided")

    @staticmethod
    def _summary(envelope: dict[str, Any]) -> dict[str, Any]:
        return {"envelopeId": envelope["envelopeId"], "status": envelope["status"],
                "recipients": [{"recipientId": s["recipientId"], "name": s["name"], "status": s["status"],
                                "routingOrder": s["routingOrder"]} for s in DocusignSandbox._routed(envelope)]}

    # ---- Connect ----------------------------------------------------------------------------
    def _notify(self, envelope: dict[str, Any], event: str, recipient: dict[str, Any] | None = None) -> None:
        configs = [c for c in self.state.connect.values() if not c["events"] or event in c["events"]]
        if not configs:
            return
        summary = json.loads(json.dumps(self._render(envelope, include={"recipients", "custom_fields"})))
        recipients = summary.get("recipients") or {}
        for signer in [*(recipients.get("signers") or []), *(recipients.get("certifiedDeliveries") or [])]:
            # the Connect sample (connect.schema-v2.json) shows identityVerificationResult as an empty
            # object: the result is read from the recipients (the swagger's eventResult), not from Connect
            signer.pop("recipientAuthenticationStatus", None)
        eid = envelope["envelopeId"]
        for config in configs:
            def build(attempt: int, cfg: dict[str, Any] = config, generated: str = stamp()) -> tuple[bytes, dict[str, str]]:
                data: dict[str, Any] = {"accountId": self.config.docusign_account_id, "userId": SANDBOX_USER_ID,
                                        "envelopeId": eid, "envelopeSummary": summary}
                if recipient is not None:
                    data["recipientId"] = recipient["recipientId"]
                message = {"event": event, "apiVersion": "v2.1",
                           "uri": f"/restapi/v2.1/accounts/{self.config.docusign_account_id}/envelopes/{eid}",
                           "retryCount": attempt, "configurationId": int(cfg["connectId"]),
                           "generatedDateTime": generated, "data": data}
                body = dumps(message)
                digest = hmac.new(self.config.docusign_connect_key.encode(), body, hashlib.sha256).digest()
                return body, {"content-type": "application/json; charset=utf-8",
                              "x-docusign-signature-1": base64.b64encode(digest).decode(),
                              "x-authorization-digest": "HMACSHA256",
                              "user-agent": "DocuSign Connect (sandbox)"}
            event_id = f"{eid}:{event}:{recipient['recipientId'] if recipient else ''}:{len(self.state.audit[eid])}"
            self.deliver(Delivery(system=self.name, event=event, event_id=event_id, url=config["urlToPublishTo"],
                                  build=build, retry_delays=self.config.docusign_retry_delays))

    async def create_connect(self, request: Request) -> Response:
        body = await read_json(request)
        url = body.get("urlToPublishTo") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(400, "urlToPublishTo is required and must be an http(s) URL.",
                           code="INVALID_CONNECT_CONFIGURATION")
        events = body.get("events") or []
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            raise ApiError(400, f"Unknown Connect events: {unknown}.", code="INVALID_CONNECT_CONFIGURATION")
        with self.lock:
            cid = str(self._next_connect)
            self._next_connect += 1
            config = {"connectId": cid, "configurationType": "custom", "name": body.get("name") or f"ponte-{cid}",
                      "urlToPublishTo": url, "allUsers": _s(body.get("allUsers", "true")), "events": events,
                      "includeHMAC": "true", "deliveryMode": "SIM", "requiresAcknowledgement": "true",
                      "eventData": {"version": "restv2.1", "format": "json",
                                    "includeData": ["recipients", "custom_fields"]}}
            self.state.connect[cid] = config
        return JSON(config, 201)

    async def list_connect(self, request: Request) -> Response:
        with self.lock:
            configs = list(self.state.connect.values())
        return JSON({"configurations": configs, "totalRecords": str(len(configs))})

    async def delete_connect(self, request: Request) -> Response:
        with self.lock:
            if self.state.connect.pop(request.path_params["cid"], None) is None:
                raise ApiError(404, "Connect configuration not found.", code="INVALID_CONNECT_CONFIGURATION")
        return Response(status_code=200)

    # ---- reads ------------------------------------------------------------------------------
    def _render(self, envelope: dict[str, Any], include: set[str]) -> dict[str, Any]:
        out = {k: v for k, v in envelope.items() if k not in ("recipients", "customFields")}
        if "recipients" in include:
            out["recipients"] = self._recipients(envelope)
        if "custom_fields" in include:
            out["customFields"] = envelope["customFields"]
        return out

    @staticmethod
    def _recipients(envelope: dict[str, Any]) -> dict[str, Any]:
        signers = envelope["recipients"]["signers"]
        carbon = envelope["recipients"]["carbonCopies"]
        certified = envelope["recipients"].get("certifiedDeliveries", [])
        order = DocusignSandbox._current_order(envelope)
        return {"signers": signers, "carbonCopies": carbon, "agents": [], "editors": [], "intermediaries": [],
                "certifiedDeliveries": certified, "inPersonSigners": [], "seals": [], "witnesses": [],
                "recipientCount": str(len(signers) + len(carbon) + len(certified)),
                "currentRoutingOrder": str(order if order is not None else
                                           max((int(s["routingOrder"]) for s in signers), default=1))}

    async def get_envelope(self, request: Request) -> Response:
        include = set((request.query_params.get("include") or "").split(","))
        with self.lock:
            envelope = self._envelope(request.path_params["eid"])
            return Response(dumps(self._render(envelope, include | {"custom_fields"} - {""})),
                            media_type="application/json")

    async def list_envelopes(self, request: Request) -> Response:
        q = request.query_params
        ids = [i for i in (q.get("envelope_ids") or "").split(",") if i]
        from_date = q.get("from_date")
        if not from_date and not ids and not q.get("transaction_ids"):
            raise ApiError(400, "from_date, envelope_ids or transaction_ids is required.",
                           code="INVALID_REQUEST_PARAMETER")
        try:
            since = _parse_dt(from_date) if from_date else None
        except ValueError as exc:
            raise ApiError(400, f"from_date {from_date!r} is not a valid date.", code="INVALID_REQUEST_PARAMETER") from exc
        statuses = {s for s in (q.get("status") or "").split(",") if s and s != "any"}
        custom = q.get("custom_field")
        field_name, _, field_value = (custom or "").partition("=")
        include = set((q.get("include") or "").split(","))
        start = int(q.get("start_position") or 0)
        count = min(int(q.get("count") or 100), 1000)
        with self.lock:
            rows = []
            for envelope in self.state.envelopes.values():
                if ids and envelope["envelopeId"] not in ids:
                    continue
                if since is not None and _parse_dt(envelope["createdDateTime"]) < since:
                    continue
                if statuses and envelope["status"] not in statuses:
                    continue
                if custom and not any(f["name"] == field_name and f["value"] == field_value
                                      for f in envelope["customFields"]["textCustomFields"]):
                    continue
                rows.append(self._render(envelope, include))
        page = rows[start : start + count]
        body = {"resultSetSize": str(len(page)), "totalSetSize": str(len(rows)), "startPosition": str(start),
                "endPosition": str(start + len(page) - 1 if page else start), "envelopes": page,
                "nextUri": "", "previousUri": ""}
        return JSON(body)

    async def update_envelope(self, request: Request) -> Response:
        body = await read_json(request)
        eid = request.path_params["eid"]
        with self.lock:
            envelope = self._envelope(eid)
            wanted = body.get("status") if isinstance(body, dict) else None
            if wanted == "voided":
                if envelope["status"] in ("completed", "declined", "voided"):
                    raise ApiError(400, f"Only sent or delivered envelopes can be voided, not {envelope['status']}.",
                                   code="ENVELOPE_CANNOT_VOID")
                if not body.get("voidedReason"):
                    raise ApiError(400, "voidedReason is required to void an envelope.", code="VOIDED_REASON_REQUIRED")
                self._void(envelope, str(body["voidedReason"]))
            elif wanted == "sent":
                if envelope["status"] != "created":
                    raise ApiError(400, "Only a draft envelope can be sent.", code="ENVELOPE_INVALID_STATUS")
                if not self.state.documents[eid] or not envelope["recipients"]["signers"]:
                    raise ApiError(400, "The envelope is not complete.", code="ENVELOPE_IS_INCOMPLETE")
                self._send(envelope)
            elif wanted is not None:
                raise ApiError(400, f"Cannot change an envelope to {wanted!r}.", code="INVALID_ENVELOPE_STATUS")
        return JSON({"envelopeId": eid})

    async def get_recipients(self, request: Request) -> Response:
        with self.lock:
            envelope = self._envelope(request.path_params["eid"])
            return Response(dumps(self._recipients(envelope)), media_type="application/json")

    async def identity_workflows(self, request: Request) -> Response:
        workflows = [{"workflowId": wid, "defaultName": name}
                     for wid, name in self.config.docusign_idv_workflows.items()]
        return JSON({"identityVerification": workflows})

    async def get_custom_fields(self, request: Request) -> Response:
        with self.lock:
            return JSON(self._envelope(request.path_params["eid"])["customFields"])

    async def get_audit(self, request: Request) -> Response:
        eid = request.path_params["eid"]
        with self.lock:
            self._envelope(eid)
            events = [{"eventFields": [{"name": k, "value": v} for k, v in e.items()]} for e in self.state.audit[eid]]
        return JSON({"auditEvents": events})

    async def list_documents(self, request: Request) -> Response:
        eid = request.path_params["eid"]
        with self.lock:
            self._envelope(eid)
            metas = [{**m, "uri": f"/envelopes/{eid}/documents/{m['documentId']}"} for m in self.state.document_meta[eid]]
        metas.append({"documentId": "certificate", "name": "Summary", "type": "summary",
                      "uri": f"/envelopes/{eid}/documents/certificate", "order": "999", "pages": "1"})
        return JSON({"envelopeId": eid, "envelopeDocuments": metas})

    def certificate(self, eid: str) -> bytes:
        """The certificate of completion: every signer, status and the evidence collected."""
        envelope = self._envelope(eid)
        lines = [f"Envelope: {eid}", f"Assunto: {envelope['emailSubject']}", f"Status: {envelope['status']}",
                 f"Criado em: {envelope['createdDateTime']}", ""]
        for signer in self._routed(envelope):
            lines.append(f"Signatário {signer['recipientId']} (ordem {signer['routingOrder']}): {signer['name']} "
                         f"<{signer['email']}> - {signer['status']} {signer.get('signedDateTime', '')}")
            evidence = self.state.evidence[eid].get(signer["recipientId"])
            if evidence is not None:
                lines.append(f"   IP {evidence.ip} | dispositivo {evidence.device[:60]} | geolocalização "
                             f"{evidence.latitude},{evidence.longitude} | selfie {evidence.selfie_ref} | "
                             f"documento {evidence.document_photo_ref}")
        lines += ["", "Documento gerado pelo sandbox do Ponte: não tem validade jurídica."]
        return text_pdf("Certificado de conclusão (sandbox DocuSign)", lines)

    async def get_document(self, request: Request) -> Response:
        eid, did = request.path_params["eid"], request.path_params["did"]
        with self.lock:
            envelope = self._envelope(eid)
            docs = self.state.documents[eid]
            if did == "combined":
                parts = [docs[m["documentId"]] for m in self.state.document_meta[eid]]
                if request.query_params.get("certificate", "true").lower() != "false":
                    parts.append(self.certificate(eid))
                content, filename = combine_pdfs(parts), f"{envelope['emailSubject'] or eid}.pdf"
            elif did == "certificate":
                content, filename = self.certificate(eid), "Summary.pdf"
            elif did in docs:
                meta = next(m for m in self.state.document_meta[eid] if m["documentId"] == did)
                content, filename = docs[did], meta["name"] if meta["name"].lower().endswith(".pdf") \
                    else f"{meta['name']}.pdf"
            else:
                raise ApiError(404, f"Document {did} does not exist in envelope {eid}.", code="DOCUMENT_DOES_NOT_EXIST")
        safe = filename.replace('"', "")
        return Response(content, media_type="application/pdf",
                        headers={"Content-Disposition": f'file; filename="{safe}"'})

    # ---- embedded signing: recipient views ------------------------------------------------------
    async def create_recipient_view(self, request: Request) -> Response:
        """EnvelopeViews createRecipient: a short-lived, single-use signing URL for an embedded signer."""
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "The request body is missing or improperly formatted.")
        return_url = str(body.get("returnUrl") or "")
        if not return_url.startswith(("http://", "https://")):
            raise ApiError(400, "returnUrl is required and must be an http(s) URL.", code="INVALID_REQUEST_PARAMETER")
        if not body.get("authenticationMethod"):
            raise ApiError(400, "authenticationMethod is required for an embedded recipient.",
                           code="INVALID_REQUEST_PARAMETER")
        client_user_id = str(body.get("clientUserId") or "")
        email, user_name = str(body.get("email") or ""), str(body.get("userName") or "")
        eid = request.path_params["eid"]
        with self.lock:
            envelope = self._envelope(eid)
            if envelope["status"] not in ("sent", "delivered", "completed"):
                raise ApiError(400, f"The envelope is {envelope['status']}: no recipient view can be created.",
                               code="ENVELOPE_INVALID_STATUS")
            signer = next((s for s in self._actors(envelope)
                           if client_user_id and s.get("clientUserId") == client_user_id
                           and s["email"].casefold() == email.casefold() and s["name"] == user_name), None)
            if signer is None:
                raise ApiError(400, "The recipient you have identified is not a valid recipient of the specified "
                                    "envelope.", code="UNKNOWN_ENVELOPE_RECIPIENT")
            if signer["status"] == "created":
                raise ApiError(400, "The token for an out of sequence recipient can not be generated.",
                               code="RECIPIENT_NOT_IN_SEQUENCE")
            token = secrets.token_hex(32)
            self.state.views[token] = {"envelopeId": eid, "recipientId": signer["recipientId"],
                                       "returnUrl": return_url, "expires": time.monotonic() + self.view_ttl_seconds,
                                       "used": False}
        return JSON({"url": f"{self.origin}/Signing/MTRedeem/v1/{token}"}, 201)

    @staticmethod
    def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(
            f'<!doctype html><html lang="pt-BR"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'</head><body><h1>{html.escape(title)}</h1>{body}<p><small>DocuSign (sandbox do Ponte)</small></p>'
            "</body></html>", status_code=status, headers={"Cache-Control": "no-store"})

    @staticmethod
    def _back(return_url: str, event: str) -> str:
        return f"{return_url}{'&' if '?' in return_url else '?'}event={event}"

    async def open_view(self, request: Request) -> Response:
        """The signer's browser opens a view URL: once, within its time; then the signing page."""
        token = request.path_params["token"]
        with self.lock:
            view = self.state.views.get(token)
            if view is None:
                return self._page("Link inválido", "<p>Este endereço de assinatura não existe.</p>", 404)
            if view["used"] or view["expires"] < time.monotonic():
                view["used"] = True
                return self._page("Sessão expirada", "<p>Este endereço de assinatura já foi usado ou expirou. "
                                  "Volte ao convite e abra-o de novo.</p>", 410)
            view["used"] = True
            envelope = self._envelope(view["envelopeId"])
            signer = next(s for s in self._actors(envelope) if s["recipientId"] == view["recipientId"])
            name = html.escape(signer["name"])
            subject = html.escape(envelope["emailSubject"])
            if signer["status"] not in ("sent", "delivered") or envelope["status"] not in ("sent", "delivered"):
                link = html.escape(self._back(view["returnUrl"], "viewing_complete"))
                return self._page(subject, f"<p>{name}: este documento está {html.escape(signer['status'])}.</p>"
                                  f'<p><a href="{link}">Continuar</a></p>')
            self.act(view["envelopeId"], signer["recipientId"], "view",
                     Evidence.default_for(view["envelopeId"], signer["recipientId"]))
            sid = secrets.token_hex(32)
            self.state.sessions[sid] = {"envelopeId": view["envelopeId"], "recipientId": signer["recipientId"],
                                        "returnUrl": view["returnUrl"],
                                        "expires": time.monotonic() + self.session_ttl_seconds}
        forms = "".join(
            f'<form method="post" action="/Signing/session/{sid}/{action}"><button>{label}</button></form>'
            for action, label in (("sign", "Assinar"), ("decline", "Recusar")))
        return self._page(subject, f"<p>{name}, revise o documento e assine.</p>{forms}")

    async def session_act(self, request: Request) -> Response:
        """The signer signs or declines in the session a view opened; the browser goes to the returnUrl."""
        action = request.path_params["action"]
        with self.lock:
            session = self.state.sessions.pop(request.path_params["sid"], None)
            if session is None or session["expires"] < time.monotonic() or action not in ("sign", "decline"):
                return self._page("Sessão expirada", "<p>A sessão de assinatura terminou. Abra o convite de "
                                  "novo.</p>", 410)
            evidence = Evidence.default_for(session["envelopeId"], session["recipientId"])
            try:
                self.act(session["envelopeId"], session["recipientId"],
                         "sign" if action == "sign" else "refuse", evidence)
            except ApiError as exc:
                return self._page("Não foi possível concluir", f"<p>{html.escape(exc.message)}</p>", 409)
        event = "signing_complete" if action == "sign" else "decline"
        return RedirectResponse(self._back(session["returnUrl"], event), status_code=302)

    # ---- control ----------------------------------------------------------------------------
    async def _ctl_act(self, request: Request) -> Response:
        body = await read_json(request)
        evidence = Evidence.from_dict(body.get("evidence"))
        return JSON(self.act(request.path_params["eid"], str(body.get("as", "")), body.get("action", "sign"),
                             evidence))
