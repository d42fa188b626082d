"""Clicksign API v3 stand-in: the JSON:API envelope flow, signer groups, webhooks with Content-Hmac.

Faithful to PROVIDERS.md §3.2 and the Postman collection: ``Authorization: <token>`` (no Bearer),
``application/vnd.api+json`` bodies, envelope → documents → signers (``group`` orders them) →
requirements (agree/sign + provide_evidence) → ``PATCH status: running`` → notifications. Webhooks
carry ``Event: <name>`` and ``Content-Hmac: sha256=<hex>``. The collection has no webhook endpoint;
the sandbox offers ``/api/v3/webhooks`` (JSON:API) so a target can be registered like any resource.

Beyond the basic flow:

- a qualification requirement's ``role`` (``sign`` in the collection; ``approve`` and the others in
  :data:`ROLES` are not in it) is reported back as the signer's ``role`` in its webhook events;
- signature watchers (the collection's "Observadores de Assinatura": ``{email, kind}``) are told as the
  envelope moves; when it closes each gets the signed copy (kept in ``state.copies``);
- a positioned signature ``{action: rubricate, kind, positions: [{page: "1", position: [x, y]}]}``
  (not in the collection; Clicksign's "Campos posicionados" pages) is checked: x and y proportions of
  the page between 0 and 1, pages of the document, ``positions`` never together with ``pages``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from connectors.sandbox.base import ApiError, Denied, SandboxSystem, dumps, read_json
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.documents import combine_pdfs, is_pdf, page_count, text_pdf
from connectors.sandbox.signing import Evidence, check_action, resolve_signer
from connectors.sandbox.webhooks import Delivery, Dispatcher

JSONAPI = "application/vnd.api+json"
EVENTS = ("upload", "sign", "auto_close", "close", "refusal", "deadline", "cancel", "add_signer")
ROLES = {"sign", "approve", "party", "witness", "intervening", "receipt", "endorser", "contractor",
         "contractee", "validator", "transferor", "transferee", "accountable", "guarantor", "lawyer"}
#: rubric / positioned-signature kinds (Clicksign's docs: initials is the default, manuscript is drawn)
POSITION_KINDS = {"initials", "manuscript"}
#: signature watcher kinds: all_steps is the collection's; on_finished is UNCONFIRMED
WATCHER_KINDS = {"all_steps", "on_finished"}
AUTHS = {"email", "sms", "whatsapp", "pix", "icp_brasil", "selfie", "handwritten", "facial_biometrics",
         "official_document", "liveness", "address_proof", "api"}


def now() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="milliseconds")


class JsonApi(Response):
    media_type = JSONAPI

    def render(self, content: Any) -> bytes:
        return dumps(content)


class ClicksignState:
    def __init__(self) -> None:
        self.envelopes: dict[str, dict[str, Any]] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}  # token -> PDF
        #: signed copies sent to signature watchers when an envelope closed: {envelope_id, email, token}
        self.copies: list[dict[str, str]] = []


class ClicksignSandbox(SandboxSystem):
    name = "clicksign"

    def __init__(self, config: SandboxConfig, dispatcher: Dispatcher) -> None:
        super().__init__(config, dispatcher)
        self.state = ClicksignState()

    # ---- guard ------------------------------------------------------------------------------
    def public_paths(self) -> tuple[str, ...]:
        return ("/files/",)

    def error_body(self, status: int, message: str, *, field: str | None, code: str | None) -> Any:
        titles = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
                  415: "Unsupported Media Type", 422: "Unprocessable Entity", 429: "Too Many Requests"}
        error: dict[str, Any] = {"status": str(status), "title": titles.get(status, "Error"), "detail": message}
        if field:
            error["source"] = {"pointer": f"/data/attributes/{field}"}
        if code:
            error["code"] = code
        return {"errors": [error]}

    def error(self, status: int, message: str, *, field: str | None = None, code: str | None = None,
              headers: dict[str, str] | None = None) -> Response:
        return JsonApi(self.error_body(status, message, field=field, code=code), status, headers=headers)

    def authenticate(self, request: Request) -> Denied | Any:
        token = request.headers.get("authorization", "")
        if token != self.config.clicksign_token:
            detail = "Bearer scheme is not accepted: send the raw access token" if token.startswith("Bearer ") \
                else "Access token inválido ou ausente"
            return Denied(401, detail)
        if request.method in ("POST", "PATCH", "PUT"):
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type != JSONAPI:
                return Denied(415, f"Content-Type deve ser {JSONAPI}")
        return "account"

    # ---- helpers ----------------------------------------------------------------------------
    def _envelope(self, eid: str) -> dict[str, Any]:
        envelope = self.state.envelopes.get(eid)
        if envelope is None:
            raise ApiError(404, f"Envelope {eid} não encontrado")
        return envelope

    @staticmethod
    async def _data(request: Request, kind: str) -> dict[str, Any]:
        body = await read_json(request)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != kind:
            raise ApiError(422, f"O corpo deve ser {{\"data\": {{\"type\": \"{kind}\", ...}}}}", field="type")
        return data

    def _res(self, kind: str, rid: str, attributes: dict[str, Any], path: str,
             relationships: dict[str, Any] | None = None, links: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"id": rid, "type": kind, "attributes": attributes,
                               "links": {"self": f"{self.origin}/api/v3{path}", **(links or {})}}
        if relationships:
            out["relationships"] = relationships
        return out

    def _render_envelope(self, env: dict[str, Any]) -> dict[str, Any]:
        attributes = env["attributes"]
        if self.config.clicksign_envelope_lookup != "as_assumed":  # a Clicksign without envelope metadata
            attributes = {k: v for k, v in attributes.items() if k != "metadata"}
        return self._res("envelopes", env["id"], attributes, f"/envelopes/{env['id']}")

    def _render_document(self, env: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
        files = {"original": f"{self.origin}/files/{doc['original_token']}",
                 "signed": f"{self.origin}/files/{doc['signed_token']}" if doc.get("signed_token") else None}
        return self._res("documents", doc["id"], doc["attributes"], f"/envelopes/{env['id']}/documents/{doc['id']}",
                         links={"files": files})

    def _render_signer(self, env: dict[str, Any], signer: dict[str, Any]) -> dict[str, Any]:
        return self._res("signers", signer["id"], signer["attributes"], f"/envelopes/{env['id']}/signers/{signer['id']}")

    def _render_requirement(self, env: dict[str, Any], req: dict[str, Any]) -> dict[str, Any]:
        rel = {"document": {"data": {"type": "documents", "id": req["document_id"]}},
               "signer": {"data": {"type": "signers", "id": req["signer_id"]}}}
        return self._res("requirements", req["id"], req["attributes"], f"/envelopes/{env['id']}/requirements/{req['id']}",
                         relationships=rel)

    # ---- routes -----------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v3/envelopes", self.create_envelope, methods=["POST"]),
            Route("/api/v3/envelopes", self.list_envelopes, methods=["GET"]),
            Route("/api/v3/envelopes/{eid}", self.get_envelope, methods=["GET"]),
            Route("/api/v3/envelopes/{eid}", self.patch_envelope, methods=["PATCH"]),
            Route("/api/v3/envelopes/{eid}/documents", self.create_document, methods=["POST"]),
            Route("/api/v3/envelopes/{eid}/documents", self.list_documents, methods=["GET"]),
            Route("/api/v3/envelopes/{eid}/documents/{did}", self.get_document, methods=["GET"]),
            Route("/api/v3/envelopes/{eid}/documents/{did}/events", self.list_events, methods=["GET"]),
            Route("/api/v3/envelopes/{eid}/signers", self.create_signer, methods=["POST"]),
            Route("/api/v3/envelopes/{eid}/signers", self.list_signers, methods=["GET"]),
            Route("/api/v3/envelopes/{eid}/signers/{sid}", self.get_signer, methods=["GET"]),
            Route("/api/v3/envelopes/{eid}/requirements", self.create_requirement, methods=["POST"]),
            Route("/api/v3/envelopes/{eid}/requirements", self.list_requirements, methods=["GET"]),
            Route("/api/v3/envelopes/{eid}/notifications", self.notify, methods=["POST"]),
            Route("/api/v3/envelopes/{eid}/signature_watchers", self.create_watcher, methods=["POST"]),
            Route("/api/v3/envelopes/{eid}/signature_watchers", self.list_watchers, methods=["GET"]),
            Route("/api/v3/envelopes/{eid}/signature_watchers/{wid}", self.get_watcher, methods=["GET"]),
            Route("/api/v3/envelopes/{eid}/signature_watchers/{wid}", self.delete_watcher, methods=["DELETE"]),
            Route("/api/v3/envelopes/{eid}/events", self.list_events, methods=["GET"]),
            Route("/api/v3/webhooks", self.create_webhook, methods=["POST"]),
            Route("/api/v3/webhooks", self.list_webhooks, methods=["GET"]),
            Route("/api/v3/webhooks/{wid}", self.delete_webhook, methods=["DELETE"]),
            Route("/files/{token}", self.download, methods=["GET"]),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [Route("/_sandbox/envelopes/{eid}/act", self._ctl_act, methods=["POST"])]

    # ---- envelopes --------------------------------------------------------------------------
    async def create_envelope(self, request: Request) -> Response:
        data = await self._data(request, "envelopes")
        attrs = data.get("attributes") or {}
        if not isinstance(attrs.get("name"), str) or not attrs["name"].strip():
            raise ApiError(422, "name não pode ficar em branco", field="name")
        eid = str(uuid.uuid4())
        stamp = now()
        env = {
            "id": eid,
            "attributes": {
                "name": attrs["name"], "locale": attrs.get("locale", "pt-BR"),
                "auto_close": bool(attrs.get("auto_close", True)), "remind_interval": attrs.get("remind_interval"),
                "block_after_refusal": bool(attrs.get("block_after_refusal", True)),
                "deadline_at": attrs.get("deadline_at"), "default_subject": attrs.get("default_subject"),
                "metadata": (attrs.get("metadata") or {}) if self.config.clicksign_envelope_lookup == "as_assumed"
                else {}, "status": "draft", "created": stamp, "modified": stamp,
            },
            "documents": {}, "signers": {}, "requirements": {}, "events": [], "evidence": {}, "watchers": {},
        }
        with self.lock:
            self.state.envelopes[eid] = env
        return JsonApi({"data": self._render_envelope(env)}, 201)

    async def list_envelopes(self, request: Request) -> Response:
        # the collection shows no envelope listing: config.clicksign_envelope_lookup says how this one behaves
        mode = self.config.clicksign_envelope_lookup
        if mode == "missing":
            raise ApiError(404, "Not Found")
        q = request.query_params
        name = q.get("filter[name]") if mode == "as_assumed" else None
        status = q.get("filter[status]") if mode == "as_assumed" else None
        meta_filters = {k[len("filter[metadata]["):-1]: v for k, v in q.items()
                        if k.startswith("filter[metadata][") and mode == "as_assumed"}
        page = int(q.get("page[number]") or 1)
        size = min(int(q.get("page[size]") or 20), 50)
        with self.lock:
            rows = []
            for env in self.state.envelopes.values():
                a = env["attributes"]
                if name is not None and a["name"] != name:
                    continue
                if status and a["status"] != status:
                    continue
                if meta_filters:
                    sources = [a["metadata"], *(d["attributes"]["metadata"] for d in env["documents"].values())]
                    if not any(all(str(m.get(k)) == v for k, v in meta_filters.items()) for m in sources
                               if isinstance(m, dict)):
                        continue
                rows.append(self._render_envelope(env))
        chunk = rows[(page - 1) * size : page * size]
        links = {"self": str(request.url)}
        if page * size < len(rows):  # JSON:API paging, as the v3 API is JSON:API (the listing is UNCONFIRMED)
            links["next"] = str(request.url.include_query_params(**{"page[number]": page + 1, "page[size]": size}))
        return JsonApi({"data": chunk, "meta": {"record_count": len(rows)}, "links": links})

    async def get_envelope(self, request: Request) -> Response:
        with self.lock:
            return JsonApi({"data": self._render_envelope(self._envelope(request.path_params["eid"]))})

    async def patch_envelope(self, request: Request) -> Response:
        data = await self._data(request, "envelopes")
        attrs = data.get("attributes") or {}
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            a = env["attributes"]
            for key in ("name", "deadline_at", "remind_interval", "auto_close", "block_after_refusal",
                        "locale", "default_subject", "metadata"):
                if key in attrs:
                    if a["status"] != "draft" and key not in ("deadline_at", "remind_interval"):
                        raise ApiError(422, f"{key} só pode ser alterado em rascunho", field=key)
                    a[key] = attrs[key]
            wanted = attrs.get("status")
            if wanted == "running":
                self._activate(env)
            elif wanted == "canceled":
                if a["status"] not in ("draft", "running"):
                    raise ApiError(422, f"Envelope {a['status']} não pode ser cancelado", field="status")
                self._finish(env, "canceled", "cancel")
            elif wanted == "closed":
                if a["status"] != "running" or not self._all_signed(env):
                    raise ApiError(422, "Só é possível finalizar um envelope em andamento com todas as assinaturas",
                                   field="status")
                self._finish(env, "closed", "close")
            elif wanted is not None and wanted != a["status"]:
                raise ApiError(422, f"status {wanted!r} inválido", field="status")
            a["modified"] = now()
            return JsonApi({"data": self._render_envelope(env)})

    def _activate(self, env: dict[str, Any]) -> None:
        a = env["attributes"]
        if a["status"] != "draft":
            raise ApiError(422, "Envelope já foi ativado", field="status")
        if not env["documents"]:
            raise ApiError(422, "Envelope precisa de ao menos um documento", field="status")
        if not env["signers"]:
            raise ApiError(422, "Envelope precisa de ao menos um signatário", field="status")
        for signer in env["signers"].values():
            if not any(r["signer_id"] == signer["id"] and r["attributes"].get("action") == "agree"
                       for r in env["requirements"].values()):
                raise ApiError(422, f"Signatário {signer['attributes']['name']} não tem requisito de qualificação "
                                    "(action agree)", field="status")
        a["status"] = "running"
        for doc in env["documents"].values():
            doc["attributes"]["status"] = "running"
        self._log(env, "activate", {})

    @staticmethod
    def _pending(env: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in env["signers"].values() if s["attributes"]["status"] != "signed"]

    def _all_signed(self, env: dict[str, Any]) -> bool:
        return not self._pending(env)

    def _current_group(self, env: dict[str, Any]) -> int | None:
        pending = self._pending(env)
        return min(s["attributes"]["group"] for s in pending) if pending else None

    def _finish(self, env: dict[str, Any], status: str, event: str, extra: dict[str, Any] | None = None) -> None:
        env["attributes"]["status"] = status
        for doc in env["documents"].values():
            doc["attributes"]["status"] = status
            if status == "closed":
                token = uuid.uuid4().hex
                self.state.files[token] = self._signed_pdf(env, doc)
                doc["signed_token"] = token
                for watcher in env.get("watchers", {}).values():
                    self.state.copies.append({"envelope_id": env["id"], "email": watcher["attributes"]["email"],
                                              "token": token})
        self._log(env, event, extra or {})

    def _signed_pdf(self, env: dict[str, Any], doc: dict[str, Any]) -> bytes:
        lines = [f"Envelope: {env['attributes']['name']} ({env['id']})", f"Documento: {doc['attributes']['filename']}", ""]
        for signer in sorted(env["signers"].values(), key=lambda s: s["attributes"]["group"]):
            a = signer["attributes"]
            ev = env["evidence"].get(signer["id"])
            lines.append(f"Grupo {a['group']}: {a['name']} <{a['email']}> - {a['status']} {a.get('signed_at') or ''}")
            if ev is not None:
                lines.append(f"   IP {ev.ip} | geolocalização {ev.latitude},{ev.longitude} | selfie {ev.selfie_ref}")
        lines += ["", "Log gerado pelo sandbox do Ponte: não tem validade jurídica."]
        return combine_pdfs([self.state.files[doc["original_token"]], text_pdf("Log de assinaturas (sandbox Clicksign)",
                                                                               lines)])

    # ---- documents, signers, requirements ---------------------------------------------------
    async def create_document(self, request: Request) -> Response:
        data = await self._data(request, "documents")
        attrs = data.get("attributes") or {}
        filename = attrs.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            raise ApiError(422, "filename não pode ficar em branco", field="filename")
        if "template" in attrs:
            content = text_pdf(filename, [f"{k}: {v}" for k, v in (attrs["template"].get("data") or {}).items()])
        else:
            raw = str(attrs.get("content_base64") or "")
            if raw.startswith("data:"):
                raw = raw.split(",", 1)[-1]
            try:
                content = base64.b64decode(raw, validate=True)
            except binascii.Error as exc:
                raise ApiError(422, "content_base64 inválido", field="content_base64") from exc
            if not is_pdf(content):
                raise ApiError(422, "content_base64 deve conter um PDF", field="content_base64")
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            if env["attributes"]["status"] != "draft":
                raise ApiError(422, "Documentos só podem ser adicionados em rascunho", field="filename")
            token = uuid.uuid4().hex
            self.state.files[token] = content
            stamp = now()
            doc = {"id": str(uuid.uuid4()), "original_token": token, "signed_token": None,
                   "attributes": {"filename": filename, "metadata": attrs.get("metadata") or
                                  (attrs.get("template") or {}).get("metadata") or {},
                                  "status": "draft", "created": stamp, "modified": stamp}}
            env["documents"][doc["id"]] = doc
            self._log(env, "upload", {"document": {"id": doc["id"], "filename": filename}})
            return JsonApi({"data": self._render_document(env, doc)}, 201)

    async def list_documents(self, request: Request) -> Response:
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            return JsonApi({"data": [self._render_document(env, d) for d in env["documents"].values()]})

    async def get_document(self, request: Request) -> Response:
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            doc = env["documents"].get(request.path_params["did"])
            if doc is None:
                raise ApiError(404, "Documento não encontrado")
            return JsonApi({"data": self._render_document(env, doc)})

    async def download(self, request: Request) -> Response:
        content = self.state.files.get(request.path_params["token"])
        if content is None:
            return Response("Not Found", 404)
        return Response(content, media_type="application/pdf",
                        headers={"Content-Disposition": 'attachment; filename="documento.pdf"'})

    async def create_signer(self, request: Request) -> Response:
        data = await self._data(request, "signers")
        attrs = data.get("attributes") or {}
        if not str(attrs.get("name") or "").strip():
            raise ApiError(422, "name não pode ficar em branco", field="name")
        if len(str(attrs["name"]).split()) < 2:
            raise ApiError(422, "name deve conter nome e sobrenome", field="name")
        email = str(attrs.get("email") or "")
        if "@" not in email:
            raise ApiError(422, "email inválido", field="email")
        group = attrs.get("group", 1)
        if not isinstance(group, int) or isinstance(group, bool) or group < 1:
            raise ApiError(422, "group deve ser um inteiro maior que zero", field="group")
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            if env["attributes"]["status"] != "draft":
                raise ApiError(422, "Signatários só podem ser adicionados em rascunho", field="email")
            stamp = now()
            signer = {"id": str(uuid.uuid4()), "attributes": {
                "name": attrs["name"], "email": email, "birthday": attrs.get("birthday"),
                "phone_number": attrs.get("phone_number"), "has_documentation": attrs.get("has_documentation", True),
                "documentation": attrs.get("documentation"), "refusable": bool(attrs.get("refusable", False)),
                "group": group, "communicate_events": attrs.get("communicate_events") or {},
                "status": "pending", "signed_at": None, "created": stamp, "modified": stamp}}
            env["signers"][signer["id"]] = signer
            return JsonApi({"data": self._render_signer(env, signer)}, 201)

    async def list_signers(self, request: Request) -> Response:
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            return JsonApi({"data": [self._render_signer(env, s) for s in env["signers"].values()]})

    async def get_signer(self, request: Request) -> Response:
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            signer = env["signers"].get(request.path_params["sid"])
            if signer is None:
                raise ApiError(404, "Signatário não encontrado")
            return JsonApi({"data": self._render_signer(env, signer)})

    async def create_requirement(self, request: Request) -> Response:
        data = await self._data(request, "requirements")
        attrs = data.get("attributes") or {}
        rel = data.get("relationships") or {}
        action = attrs.get("action")
        if action == "agree":
            if attrs.get("role") not in ROLES:
                raise ApiError(422, f"role inválido: {attrs.get('role')!r}", field="role")
        elif action == "provide_evidence":
            if attrs.get("auth") not in AUTHS:
                raise ApiError(422, f"auth inválido: {attrs.get('auth')!r}", field="auth")
        elif action == "rubricate":
            if attrs.get("kind", "initials") not in POSITION_KINDS:
                raise ApiError(422, f"kind inválido: {attrs.get('kind')!r}", field="kind")
            if "positions" in attrs and ("pages" in attrs or "rubric_field" in attrs):
                raise ApiError(400, "positions não pode ser usado com pages ou rubric_field", field="positions")
        else:
            raise ApiError(422, f"action inválida: {action!r}", field="action")
        try:
            doc_id = rel["document"]["data"]["id"]
            signer_id = rel["signer"]["data"]["id"]
        except (KeyError, TypeError) as exc:
            raise ApiError(422, "relationships document e signer são obrigatórios", field="relationships") from exc
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            if doc_id not in env["documents"]:
                raise ApiError(422, f"documento {doc_id} não pertence ao envelope", field="document")
            if signer_id not in env["signers"]:
                raise ApiError(422, f"signatário {signer_id} não pertence ao envelope", field="signer")
            if "positions" in attrs:
                pages = page_count(self.state.files[env["documents"][doc_id]["original_token"]])
                self._check_positions(attrs["positions"], pages)
            req = {"id": str(uuid.uuid4()), "document_id": doc_id, "signer_id": signer_id,
                   "attributes": {k: v for k, v in attrs.items()
                                  if k in ("action", "role", "auth", "kind", "positions", "pages")}}
            env["requirements"][req["id"]] = req
            return JsonApi({"data": self._render_requirement(env, req)}, 201)

    @staticmethod
    def _check_positions(positions: Any, pages: int) -> None:
        """Each position: {page: "N" within the document, position: [x, y] proportions of the page}."""
        if not isinstance(positions, list) or not positions:
            raise ApiError(400, "positions deve ser uma lista não vazia", field="positions")
        for index, item in enumerate(positions):
            if not isinstance(item, dict) or set(item) != {"page", "position"}:
                raise ApiError(400, f"positions[{index}] deve ter page e position", field="positions")
            page = item["page"]
            if not isinstance(page, str) or not page.isdigit() or not 1 <= int(page) <= pages:
                raise ApiError(400, f"positions[{index}].page {page!r} inválida: o documento tem {pages} páginas "
                                    "(a página vai entre aspas, a partir de \"1\")", field="positions")
            point = item["position"]
            if not (isinstance(point, list) and len(point) == 2
                    and all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in point)):
                raise ApiError(400, f"positions[{index}].position deve ser [x, y], cada valor entre 0 e 1",
                               field="positions")

    # ---- signature watchers (copy recipients) -----------------------------------------------
    def _render_watcher(self, env: dict[str, Any], watcher: dict[str, Any]) -> dict[str, Any]:
        return self._res("signature_watchers", watcher["id"], watcher["attributes"],
                         f"/envelopes/{env['id']}/signature_watchers/{watcher['id']}")

    async def create_watcher(self, request: Request) -> Response:
        data = await self._data(request, "signature_watchers")
        attrs = data.get("attributes") or {}
        email = str(attrs.get("email") or "")
        if "@" not in email:
            raise ApiError(422, "email inválido", field="email")
        if attrs.get("kind") not in WATCHER_KINDS:
            raise ApiError(422, f"kind inválido: {attrs.get('kind')!r}", field="kind")
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            if env["attributes"]["status"] not in ("draft", "running"):
                raise ApiError(422, "Observadores só podem ser adicionados a envelopes ativos", field="email")
            watcher = {"id": str(uuid.uuid4()), "attributes": {"email": email, "kind": attrs["kind"]}}
            env["watchers"][watcher["id"]] = watcher
            return JsonApi({"data": self._render_watcher(env, watcher)}, 201)

    async def list_watchers(self, request: Request) -> Response:
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            return JsonApi({"data": [self._render_watcher(env, w) for w in env["watchers"].values()]})

    async def get_watcher(self, request: Request) -> Response:
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            watcher = env["watchers"].get(request.path_params["wid"])
            if watcher is None:
                raise ApiError(404, "Observador não encontrado")
            return JsonApi({"data": self._render_watcher(env, watcher)})

    async def delete_watcher(self, request: Request) -> Response:
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            if env["watchers"].pop(request.path_params["wid"], None) is None:
                raise ApiError(404, "Observador não encontrado")
        return Response(status_code=204)

    async def list_requirements(self, request: Request) -> Response:
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            return JsonApi({"data": [self._render_requirement(env, r) for r in env["requirements"].values()]})

    async def notify(self, request: Request) -> Response:
        data = await self._data(request, "notifications")
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            if env["attributes"]["status"] != "running":
                raise ApiError(422, "Só é possível notificar envelopes em andamento", field="status")
            group = self._current_group(env)
            notified = [s["attributes"]["email"] for s in self._pending(env) if s["attributes"]["group"] == group]
            message = (data.get("attributes") or {}).get("message")
            env["events"].append({"id": str(uuid.uuid4()), "type": "events", "attributes": {
                "name": "notification", "data": {"message": message, "signers": notified}, "created": now()}})
            return JsonApi({"data": {"id": str(uuid.uuid4()), "type": "notifications",
                                     "attributes": {"message": message}}}, 201)

    async def list_events(self, request: Request) -> Response:
        with self.lock:
            env = self._envelope(request.path_params["eid"])
            return JsonApi({"data": list(env["events"])})

    # ---- signing ----------------------------------------------------------------------------
    def act(self, eid: str, role: str, action: str = "sign", evidence: Evidence | None = None) -> dict[str, Any]:
        """Make the signer ``role`` sign, view or refuse, or let the envelope hit its deadline."""
        check_action(action)
        with self.lock:
            env = self._envelope(eid)
            a = env["attributes"]
            if a["status"] != "running":
                raise ApiError(409, f"Envelope está {a['status']}, não em andamento")
            if action == "expire":
                self._finish(env, "canceled", "deadline", {"deadline_at": a.get("deadline_at")})
                return self._summary(env)
            signers = [{"_s": s, "id": s["id"], **s["attributes"]} for s in env["signers"].values()]
            found = resolve_signer(signers, role, ("name", "email", "id"))["_s"]
            sa = found["attributes"]
            if sa["status"] != "pending":
                raise ApiError(409, f"Signatário {sa['name']} já está {sa['status']}")
            if sa["group"] != self._current_group(env):
                raise ApiError(409, f"Signatário {sa['name']} (grupo {sa['group']}) ainda não foi convidado: "
                                    f"o grupo {self._current_group(env)} não terminou")
            evidence = evidence or Evidence.default_for(eid, found["id"])
            role_of = next((r["attributes"].get("role") for r in env["requirements"].values()
                            if r["signer_id"] == found["id"] and r["attributes"].get("action") == "agree"), "sign")
            info = {"signer": {"id": found["id"], "name": sa["name"], "email": sa["email"], "group": sa["group"],
                               "role": role_of,
                               "documentation": sa.get("documentation"), "phone_number": sa.get("phone_number"),
                               "ip_address": evidence.ip, "user_agent": evidence.device,
                               "geolocation": {"latitude": evidence.latitude, "longitude": evidence.longitude,
                                               "accuracy": evidence.accuracy_m},
                               "selfie_url": evidence.selfie_ref, "document_photo_url": evidence.document_photo_ref}}
            if action == "view":
                env["events"].append({"id": str(uuid.uuid4()), "type": "events",
                                      "attributes": {"name": "view", "data": info, "created": now()}})
                return self._summary(env)
            env["evidence"][found["id"]] = evidence
            if action == "refuse":
                if not sa["refusable"]:
                    raise ApiError(409, f"Signatário {sa['name']} não pode recusar (refusable=false)")
                sa["status"] = "refused"
                info["reason"] = evidence.reason or "Não concordo com os termos"
                if a["block_after_refusal"]:
                    a["status"] = "canceled"
                    for doc in env["documents"].values():
                        doc["attributes"]["status"] = "canceled"
                self._log(env, "refusal", info)
                return self._summary(env)
            sa["status"] = "signed"
            sa["signed_at"] = now()
            self._log(env, "sign", info)
            if self._all_signed(env) and a["auto_close"]:
                self._finish(env, "closed", "auto_close")
            return self._summary(env)

    @staticmethod
    def _summary(env: dict[str, Any]) -> dict[str, Any]:
        return {"envelopeId": env["id"], "status": env["attributes"]["status"],
                "signers": [{"id": s["id"], "name": s["attributes"]["name"], "group": s["attributes"]["group"],
                             "status": s["attributes"]["status"]} for s in env["signers"].values()]}

    # ---- webhooks ---------------------------------------------------------------------------
    def _log(self, env: dict[str, Any], event: str, data: dict[str, Any]) -> None:
        occurred = now()
        env["events"].append({"id": str(uuid.uuid4()), "type": "events",
                              "attributes": {"name": event, "data": data, "created": occurred}})
        if event not in EVENTS:
            return
        docs = [{"id": d["id"], "filename": d["attributes"]["filename"], "status": d["attributes"]["status"],
                 "metadata": d["attributes"]["metadata"],
                 "signed_url": f"{self.origin}/files/{d['signed_token']}" if d.get("signed_token") else None}
                for d in env["documents"].values()]
        payload = {"event": {"name": event, "occurred_at": occurred, "data": data},
                   "envelope": {"id": env["id"], "name": env["attributes"]["name"],
                                "status": env["attributes"]["status"], "metadata": env["attributes"]["metadata"]},
                   "document": docs[0] if docs else None, "documents": docs}
        body = dumps(payload)
        for hook in self.state.webhooks.values():
            if hook["attributes"]["status"] != "active" or (hook["attributes"]["events"]
                                                            and event not in hook["attributes"]["events"]):
                continue
            secret = hook["attributes"]["secret"]
            signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers = {"content-type": "application/json", "event": event,
                       "content-hmac": f"sha256={signature}", "user-agent": "Clicksign-Webhooks (sandbox)"}
            self.deliver(Delivery(system=self.name, event=event, event_id=env["events"][-1]["id"],
                                  url=hook["attributes"]["endpoint"], build=lambda _n, b=body, h=headers: (b, h),
                                  retry_delays=self.config.clicksign_retry_delays))

    async def create_webhook(self, request: Request) -> Response:
        data = await self._data(request, "webhooks")
        attrs = data.get("attributes") or {}
        endpoint = attrs.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise ApiError(422, "endpoint deve ser uma URL http(s)", field="endpoint")
        events = attrs.get("events") or []
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            raise ApiError(422, f"eventos desconhecidos: {unknown}", field="events")
        hook = {"id": str(uuid.uuid4()), "attributes": {
            "endpoint": endpoint, "events": events, "status": attrs.get("status", "active"),
            "secret": self.config.clicksign_webhook_secret, "created": now()}}
        with self.lock:
            self.state.webhooks[hook["id"]] = hook
        return JsonApi({"data": self._res("webhooks", hook["id"], hook["attributes"], f"/webhooks/{hook['id']}")}, 201)

    async def list_webhooks(self, request: Request) -> Response:
        with self.lock:
            rows = [self._res("webhooks", h["id"], h["attributes"], f"/webhooks/{h['id']}")
                    for h in self.state.webhooks.values()]
        return JsonApi({"data": rows})

    async def delete_webhook(self, request: Request) -> Response:
        with self.lock:
            if self.state.webhooks.pop(request.path_params["wid"], None) is None:
                raise ApiError(404, "Webhook não encontrado")
        return Response(status_code=204)

    # ---- control ----------------------------------------------------------------------------
    async def _ctl_act(self, request: Request) -> Response:
        body = await read_json(request)
        result = self.act(request.path_params["eid"], str(body.get("as", "")), body.get("action", "sign"),
                          Evidence.from_dict(body.get("evidence")))
        return JsonApi(result)
