"""ZapSign API v1 stand-in: documents with ordered signers, custom-header webhooks, signed-file links.

Faithful to PROVIDERS.md §3.3 where it speaks: ``Authorization: Bearer <api_token>``, ``POST
/api/v1/doc/`` with ``{name, base64_pdf|url_pdf, external_id, signers[], signature_order_active}`` and
``order_group`` per signer, webhook registration at ``POST /api/v1/user/company/webhook/`` with
``{url, type, doc_token?, headers[{name, value}]}``, ``event_type`` in the delivery body and no HMAC (only
the registered headers go with each delivery).

What PROVIDERS.md does not say is modelled as the connector spec assumes it (connectors/specs/zapsign.yaml,
UNCONFIRMED there): the document JSON (``token``, ``status`` pending | signed | refused, ``signed_file``,
``signers[]`` with ``token``, ``status`` new | signed | refused, ``signed_at``), ``GET /api/v1/docs/``
(``{count, next, previous, results}``, filter ``external_id``), ``GET``/``DELETE /api/v1/docs/{token}/``
(a deleted document reads as 404; a signed one cannot be deleted) and a webhook body that is the document plus ``event_type``. ``config.zapsign_doc_lookup`` makes the
listing ignore the filter or vanish, so dispatch's lookup can be tested against a ZapSign that differs.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from connectors.sandbox.base import JSON, ApiError, Denied, SandboxSystem, dumps, int_param, read_json
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.documents import combine_pdfs, is_pdf, text_pdf
from connectors.sandbox.signing import check_action, resolve_signer
from connectors.sandbox.webhooks import Delivery, Dispatcher

EVENTS = ("doc_signed", "doc_created", "doc_deleted", "doc_refused", "email_bounce")
PAGE_SIZE = 25


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ZapsignState:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.webhooks: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}  # token -> PDF
        self.created: list[dict[str, Any]] = []  # every create body received, as sent


class ZapsignSandbox(SandboxSystem):
    name = "zapsign"

    def __init__(self, config: SandboxConfig, dispatcher: Dispatcher) -> None:
        super().__init__(config, dispatcher)
        self.state = ZapsignState()

    # ---- guard ------------------------------------------------------------------------------
    def public_paths(self) -> tuple[str, ...]:
        return ("/files/",)

    def error_body(self, status: int, message: str, *, field: str | None, code: str | None) -> Any:
        return {field: [message]} if field else {"detail": message}

    def authenticate(self, request: Request) -> Denied | Any:
        if request.headers.get("authorization", "") != f"Bearer {self.config.zapsign_token}":
            return Denied(401, "As credenciais de autenticação não foram fornecidas ou são inválidas.")
        return "account"

    # ---- routes -----------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v1/doc/", self.create_doc, methods=["POST"]),
            Route("/api/v1/docs/", self.list_docs, methods=["GET"]),
            Route("/api/v1/docs/{token}/", self.get_doc, methods=["GET"]),
            Route("/api/v1/docs/{token}/", self.delete_doc, methods=["DELETE"]),
            Route("/api/v1/user/company/webhook/", self.create_webhook, methods=["POST"]),
            Route("/files/{token}", self.download, methods=["GET"]),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [Route("/_sandbox/docs/{token}/act", self._ctl_act, methods=["POST"])]

    # ---- documents --------------------------------------------------------------------------
    def _doc(self, token: str) -> dict[str, Any]:
        doc = self.state.docs.get(token)
        if doc is None or doc["status"] == "deleted":
            raise ApiError(404, "Documento não encontrado.")
        return doc

    def _render(self, doc: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in doc.items() if not k.startswith("_")}
        out["original_file"] = f"{self.origin}/files/{doc['_original']}"
        out["signed_file"] = f"{self.origin}/files/{doc['_signed']}" if doc.get("_signed") else None
        out["signers"] = [{k: v for k, v in s.items() if not k.startswith("_")} for s in doc["signers"]]
        return out

    async def create_doc(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "O corpo deve ser um objeto JSON.")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "Este campo é obrigatório.", field="name")
        try:
            content = base64.b64decode(str(body.get("base64_pdf") or ""), validate=True)
        except binascii.Error as exc:
            raise ApiError(400, "base64_pdf inválido.", field="base64_pdf") from exc
        if not is_pdf(content):
            raise ApiError(400, "base64_pdf deve conter um PDF.", field="base64_pdf")
        ordered = bool(body.get("signature_order_active", False))
        signers = body.get("signers")
        if not isinstance(signers, list) or not signers:
            raise ApiError(400, "Informe ao menos um signatário.", field="signers")
        made = []
        for signer in signers:
            if not isinstance(signer, dict) or not str(signer.get("name") or "").strip():
                raise ApiError(400, "Todo signatário precisa de nome.", field="signers")
            group = signer.get("order_group")
            if ordered and (not isinstance(group, int) or isinstance(group, bool) or group < 1):
                raise ApiError(400, "order_group deve ser um inteiro a partir de 1.", field="signers")
            token = str(uuid.uuid4())
            made.append({"token": token, "name": signer["name"], "email": signer.get("email") or "",
                         "status": "new", "order_group": group if ordered else None, "signed_at": None,
                         "times_viewed": 0, "sign_url": f"{self.origin}/verificar/{token}"})
        original = uuid.uuid4().hex
        stamp = now()
        doc = {"token": str(uuid.uuid4()), "name": name, "status": "pending",
               "external_id": body.get("external_id"), "signature_order_active": ordered,
               "created_at": stamp, "last_update_at": stamp, "signers": made,
               "_original": original, "_signed": None}
        with self.lock:
            self.state.files[original] = content
            self.state.docs[doc["token"]] = doc
            self.state.created.append(body)
            self._notify(doc, "doc_created")
            return JSON(self._render(doc), 200)

    async def list_docs(self, request: Request) -> Response:
        mode = self.config.zapsign_doc_lookup
        if mode == "missing":
            raise ApiError(404, "Não encontrado.")
        external_id = request.query_params.get("external_id") if mode == "as_assumed" else None
        page = int_param(request, "page", 1) or 1
        with self.lock:
            rows = [self._render(d) for d in self.state.docs.values() if d["status"] != "deleted"
                    and (external_id is None or d["external_id"] == external_id)]
        chunk = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        more = page * PAGE_SIZE < len(rows)
        following = str(request.url.include_query_params(page=page + 1)) if more else None
        return JSON({"count": len(rows), "next": following, "previous": None, "results": chunk})

    async def get_doc(self, request: Request) -> Response:
        with self.lock:
            return JSON(self._render(self._doc(request.path_params["token"])))

    async def delete_doc(self, request: Request) -> Response:
        with self.lock:
            doc = self._doc(request.path_params["token"])
            if doc["status"] == "signed":  # modelled as the spec assumes (UNCONFIRMED): a signed one stays
                raise ApiError(400, "Documento assinado não pode ser excluído.")
            doc["status"] = "deleted"
            doc["last_update_at"] = now()
            self._notify(doc, "doc_deleted")
        return Response(status_code=204)

    async def download(self, request: Request) -> Response:
        content = self.state.files.get(request.path_params["token"])
        if content is None:
            return Response("Not Found", 404)
        return Response(content, media_type="application/pdf")

    # ---- signing ----------------------------------------------------------------------------
    @staticmethod
    def _turn(doc: dict[str, Any]) -> int | None:
        pending = [s["order_group"] or 1 for s in doc["signers"] if s["status"] != "signed"]
        return min(pending) if pending else None

    def act(self, token: str, role: str, action: str = "sign") -> dict[str, Any]:
        """Make the signer ``role`` (name, e-mail, token or 1-based position) sign, view or refuse."""
        check_action(action)
        with self.lock:
            doc = self._doc(token)
            if doc["status"] != "pending":
                raise ApiError(409, f"Documento está {doc['status']}")
            signer = resolve_signer(doc["signers"], role, ("name", "email", "token"))
            if signer["status"] in ("signed", "refused"):
                raise ApiError(409, f"Signatário {signer['name']} já está {signer['status']}")
            if doc["signature_order_active"] and (signer["order_group"] or 1) != self._turn(doc):
                raise ApiError(409, f"Signatário {signer['name']} (ordem {signer['order_group']}) ainda não "
                                    f"pode assinar: a ordem {self._turn(doc)} não terminou")
            stamp = now()
            doc["last_update_at"] = stamp
            if action == "view":
                signer["times_viewed"] += 1
                signer["status"] = "link-opened"
                return self._render(doc)
            if action == "expire":
                raise ApiError(400, "o sandbox ZapSign não modela prazos (expire)")
            if action == "refuse":
                signer["status"] = "refused"
                doc["status"] = "refused"
                self._notify(doc, "doc_refused")
                return self._render(doc)
            signer["status"] = "signed"
            signer["signed_at"] = stamp
            if all(s["status"] == "signed" for s in doc["signers"]):
                doc["status"] = "signed"
                signed = uuid.uuid4().hex
                lines = [f"{s['name']} <{s['email']}> assinou em {s['signed_at']}" for s in doc["signers"]]
                self.state.files[signed] = combine_pdfs([
                    self.state.files[doc["_original"]],
                    text_pdf("Relatório de assinaturas (sandbox ZapSign)", [*lines, "", "Sem validade jurídica."]),
                ])
                doc["_signed"] = signed
            self._notify(doc, "doc_signed", signer)
            return self._render(doc)

    # ---- webhooks ---------------------------------------------------------------------------
    def _notify(self, doc: dict[str, Any], event: str, signer: dict[str, Any] | None = None) -> None:
        payload = {**self._render(doc), "event_type": event}
        if signer is not None:
            payload["signer_who_signed"] = {k: v for k, v in signer.items() if not k.startswith("_")}
        body = dumps(payload)
        for hook in self.state.webhooks:
            if hook["type"] not in ("", event) or (hook.get("doc_token") and hook["doc_token"] != doc["token"]):
                continue
            headers = {"content-type": "application/json", "user-agent": "ZapSign-Webhooks (sandbox)",
                       **{h["name"]: h["value"] for h in hook["headers"]}}
            self.deliver(Delivery(system=self.name, event=event, event_id=uuid.uuid4().hex, url=hook["url"],
                                  build=lambda _n, b=body, h=headers: (b, h),
                                  retry_delays=self.config.zapsign_retry_delays))

    async def create_webhook(self, request: Request) -> Response:
        body = await read_json(request)
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(400, "Informe uma URL http(s).", field="url")
        kind = body.get("type", "")
        if kind not in ("", *EVENTS):
            raise ApiError(400, f"type inválido: {kind!r}", field="type")
        headers = body.get("headers") or []
        if not isinstance(headers, list) or not all(isinstance(h, dict) and {"name", "value"} <= set(h)
                                                    for h in headers):
            raise ApiError(400, "headers deve ser uma lista de {name, value}.", field="headers")
        hook = {"id": len(self.state.webhooks) + 1, "url": url, "type": kind, "doc_token": body.get("doc_token"),
                "headers": [{"name": str(h["name"]), "value": str(h["value"])} for h in headers]}
        with self.lock:
            self.state.webhooks.append(hook)
        return JSON(hook, 201)

    # ---- control ----------------------------------------------------------------------------
    async def _ctl_act(self, request: Request) -> Response:
        body = await read_json(request)
        return JSON(self.act(request.path_params["token"], str(body.get("as", "")), body.get("action", "sign")))
