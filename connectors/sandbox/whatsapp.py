"""WhatsApp Cloud API stand-in: template sends with Graph-style validation, signed status webhooks.

Faithful to PROVIDERS.md §4 and the v23.0 OpenAPI file: ``POST /{version}/{phone-number-id}/messages``
with a Bearer token, only ``type: template`` with an approved template, language and parameter count;
answers ``{messaging_product, contacts[{input, wa_id}], messages[{id: "wamid..."}]}``; errors in
Graph's ``{"error": {message, type, code, error_subcode, fbtrace_id}}``. Statuses (sent, delivered,
read, failed) reach the registered target signed with ``X-Hub-Signature-256``. Meta configures the
webhook URL in the app dashboard, so the sandbox takes it through its control API instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from connectors.sandbox.base import JSON, ApiError, Denied, SandboxSystem, dumps, read_json
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.webhooks import Delivery, Dispatcher

STATUSES = ("sent", "delivered", "read", "failed")
_VERSION = re.compile(r"^v\d+\.\d+$")
#: Numbers ending like this are "not on WhatsApp": the send is accepted, then the status is failed.
UNDELIVERABLE_SUFFIX = "0000"
WABA_ID = "200000000000002"


class WhatsappState:
    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}  # wamid -> message record
        self.webhook_urls: list[str] = []


class WhatsappSandbox(SandboxSystem):
    name = "whatsapp"

    def __init__(self, config: SandboxConfig, dispatcher: Dispatcher) -> None:
        super().__init__(config, dispatcher)
        self.state = WhatsappState()
        self._timers: list[threading.Timer] = []

    # ---- guard ------------------------------------------------------------------------------
    def error_body(self, status: int, message: str, *, field: str | None, code: str | None) -> Any:
        codes = {401: (190, "OAuthException"), 429: (130429, "OAuthException"), 400: (100, "OAuthException")}
        number, kind = codes.get(status, (1, "OAuthException"))
        if code and code.isdigit():
            number = int(code)
        error: dict[str, Any] = {"message": message, "type": kind, "code": number,
                                 "fbtrace_id": "A" + uuid.uuid4().hex[:22]}
        if field:
            error["error_data"] = {"messaging_product": "whatsapp", "details": f"Parameter: {field}"}
        if status == 401:
            error["error_subcode"] = 463
        return {"error": error}

    def authenticate(self, request: Request) -> Denied | Any:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or header[7:].strip() != self.config.whatsapp_token:
            return Denied(401, "Error validating access token: The session is invalid.")
        return "app"

    # ---- routes -----------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [Route("/{version}/{phone_id}/messages", self.send, methods=["POST"])]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/webhook", self._ctl_webhook, methods=["POST", "PUT"]),
            Route("/_sandbox/messages", self._ctl_messages, methods=["GET"]),
            Route("/_sandbox/messages/{wamid}/status/{status}", self._ctl_status, methods=["POST"]),
        ]

    # ---- send -------------------------------------------------------------------------------
    async def send(self, request: Request) -> Response:
        version, phone_id = request.path_params["version"], request.path_params["phone_id"]
        if not _VERSION.match(version):
            raise ApiError(400, f"Unknown path components: /{version}", code="2500")
        if phone_id != self.config.whatsapp_phone_number_id:
            raise ApiError(400, f"Unsupported post request. Object with ID '{phone_id}' does not exist, cannot be "
                                "loaded due to missing permissions, or does not support this operation.", code="100")
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid parameter", code="100")
        if body.get("messaging_product") != "whatsapp":
            raise ApiError(400, "(#100) The parameter messaging_product is required.", field="messaging_product")
        if body.get("recipient_type", "individual") not in ("individual", "group"):
            raise ApiError(400, "(#100) Invalid parameter recipient_type", field="recipient_type")
        to = str(body.get("to") or "")
        digits = to.lstrip("+")
        if not digits.isdigit() or not 8 <= len(digits) <= 15:
            raise ApiError(400, "(#100) Invalid parameter", field="to")
        if body.get("type") != "template":
            raise ApiError(400, "(#131047) Re-engagement message: more than 24 hours have passed since the customer "
                                "last replied; only template messages can be sent.", code="131047")
        template = body.get("template")
        if not isinstance(template, dict) or not template.get("name"):
            raise ApiError(400, "(#100) The parameter template['name'] is required.", field="template.name")
        approved = self.config.whatsapp_templates.get(str(template["name"]))
        if approved is None:
            raise ApiError(404, f"(#132001) Template name does not exist in the translation: {template['name']}",
                           code="132001")
        if (template.get("language") or {}).get("policy", "deterministic") != "deterministic":
            raise ApiError(400, "(#100) template['language']['policy'] must be deterministic",
                           field="template.language.policy")
        language = (template.get("language") or {}).get("code")
        if not language:
            raise ApiError(400, "(#100) The parameter template['language']['code'] is required.",
                           field="template.language.code")
        if language not in approved.languages:
            raise ApiError(404, f"(#132001) Template name does not exist in the translation: "
                                f"{template['name']} ({language})", code="132001")
        params = [p for c in template.get("components") or [] if isinstance(c, dict) and c.get("type") == "body"
                  for p in c.get("parameters") or []]
        if len(params) != approved.body_params:
            raise ApiError(400, f"(#132000) Number of parameters does not match the expected number of params "
                                f"(expected {approved.body_params}, got {len(params)})", code="132000")
        for index, param in enumerate(params):
            if not isinstance(param, dict) or param.get("type") != "text" or not str(param.get("text") or "").strip():
                raise ApiError(400, f"(#131008) Required parameter is missing: body parameter {index + 1} "
                                    "must be {type: text, text: non-empty}", code="131008")
        wamid = "wamid." + base64.b64encode(f"HBgM{digits}{uuid.uuid4().hex}".encode()).decode().rstrip("=")
        record = {"id": wamid, "to": digits, "template": template["name"], "language": language,
                  "parameters": [p["text"] for p in params], "statuses": [], "sent_at": time.time()}
        with self.lock:
            self.state.messages[wamid] = record
        automatic = list(self.config.whatsapp_auto_statuses)
        if digits.endswith(UNDELIVERABLE_SUFFIX):
            automatic = ["failed"]
        for status in automatic:
            self.set_status(wamid, status)
        return JSON({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": digits}],
                     "messages": [{"id": wamid, "message_status": "accepted"}]})

    # ---- statuses ---------------------------------------------------------------------------
    def set_status(self, wamid: str, status: str) -> dict[str, Any]:
        """Report a status for a sent message (sent, delivered, read, failed) to every target."""
        if status not in STATUSES:
            raise ApiError(400, f"unknown status {status!r}; use {', '.join(STATUSES)}")
        with self.lock:
            record = self.state.messages.get(wamid)
            if record is None:
                raise ApiError(404, f"no message {wamid}")
            record["statuses"].append(status)
            urls = list(self.state.webhook_urls)
        entry: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time())),
                                 "recipient_id": record["to"]}
        if status != "failed":
            entry["conversation"] = {"id": uuid.uuid4().hex, "origin": {"type": "utility"}}
            entry["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "utility"}
        else:
            entry["errors"] = [{"code": 131026, "title": "Message undeliverable",
                                "message": "Message undeliverable",
                                "error_data": {"details": "The recipient is not a valid WhatsApp user."}}]
        payload = {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "554830000000",
                             "phone_number_id": self.config.whatsapp_phone_number_id},
                "statuses": [entry]}}]}]}
        body = dumps(payload)
        signature = hmac.new(self.config.whatsapp_app_secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"content-type": "application/json", "x-hub-signature-256": f"sha256={signature}",
                   "user-agent": "facebookexternalua"}
        for url in urls:
            self.deliver(Delivery(system=self.name, event=status, event_id=f"{wamid}:{status}", url=url,
                                  build=lambda _n, b=body, h=headers: (b, h),
                                  retry_delays=self.config.whatsapp_retry_delays))
        return dict(record)

    def register_webhook(self, url: str) -> None:
        """Point status webhooks at ``url`` (Meta does this in the app dashboard)."""
        with self.lock:
            if url not in self.state.webhook_urls:
                self.state.webhook_urls.append(url)

    def messages(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self.state.messages.values()]

    # ---- control ----------------------------------------------------------------------------
    async def _ctl_webhook(self, request: Request) -> Response:
        body = await read_json(request)
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return JSON({"error": "url must be an http(s) URL"}, 400)
        self.register_webhook(url)
        return JSON({"webhook_urls": self.state.webhook_urls})

    async def _ctl_messages(self, request: Request) -> Response:
        return JSON(self.messages())

    async def _ctl_status(self, request: Request) -> Response:
        return JSON(self.set_status(request.path_params["wamid"], request.path_params["status"]))


