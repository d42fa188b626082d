"""Sienge stand-in: public REST v1 under ``/{subdomain}/public/api/v1``, hooks and their deliveries.

Faithful to PROVIDERS.md §1 and the Swagger files: Basic auth with per-resource grants (401 / 403),
``limit`` (max 200) + ``offset`` with ``resultSetMetadata``, Sienge's error body, 200 requests per
minute per subdomain, ids-only hook deliveries with ``Authorization: Bearer <token>`` and the
``x-sienge-*`` headers, retried on failure. Technical assistance is not in Sienge's public API; the
endpoints here follow Ponte's documented defaults (docs/sandbox.md) so the assistance flow has a target.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from connectors.sandbox.base import JSON, ApiError, Denied, SandboxSystem, dumps, int_param, read_json
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.documents import normalize_document
from connectors.sandbox.ratelimit import RateLimiter
from connectors.sandbox.seed import BRT, REFERENCE, SeedData, iso
from connectors.sandbox.webhooks import Delivery, Dispatcher

MAX_LIMIT = 200
DEFAULT_LIMIT = 100
SITUATIONS = {"0": "Solicitado", "1": "Autorizado", "2": "Emitido", "3": "Cancelado"}
ASSISTANCE_STATUSES = ("OPEN", "IN_PROGRESS", "FINISHED", "CANCELED", "DELETED")
ASSISTANCE_MOVES = {
    "in-progress": ("IN_PROGRESS", "TECHNICAL_ASSISTANCE_IN_PROGRESS"),
    "finish": ("FINISHED", "TECHNICAL_ASSISTANCE_FINISHED"),
    "cancel": ("CANCELED", "TECHNICAL_ASSISTANCE_CANCELED"),
    "delete": ("DELETED", "TECHNICAL_ASSISTANCE_DELETED"),
}


def now_iso() -> str:
    """Wall-clock time, but never before the seed's reference, so a mutation is always the newest."""
    moment = max(datetime.now(BRT), REFERENCE + timedelta(seconds=1))
    return iso(moment)


def _date_param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise ApiError(400, f"Parâmetro '{name}' deve estar no formato yyyy-MM-dd", field=name) from exc


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _page(request: Request) -> tuple[int, int]:
    limit = int_param(request, "limit", DEFAULT_LIMIT)
    offset = int_param(request, "offset", 0)
    assert limit is not None and offset is not None
    if limit < 1 or limit > MAX_LIMIT:
        raise ApiError(400, f"O parâmetro limit deve estar entre 1 e {MAX_LIMIT}", field="limit")
    if offset < 0:
        raise ApiError(400, "O parâmetro offset não pode ser negativo", field="offset")
    return limit, offset


def _listing(results: list[Any], count: int, limit: int, offset: int, links: bool = True) -> Response:
    body: dict[str, Any] = {"resultSetMetadata": {"count": count, "offset": offset, "limit": limit},
                            "results": results}
    if links:
        body["links"] = []
    return Response(dumps(body), media_type="application/json")


class SiengeState:
    """Sienge's records plus the indexes that keep 50,000-customer paging cheap."""

    def __init__(self, seed: SeedData) -> None:
        self.customers: dict[int, dict[str, Any]] = {c["id"]: c for c in seed.customers}
        self.customer_ids: list[int] = [c["id"] for c in seed.customers]  # ascending
        self.disabled: set[int] = set()
        self.by_document: dict[str, int] = {}
        for c in seed.customers:
            self.by_document[normalize_document(c.get("cpf") or c.get("cnpj") or "")] = c["id"]
        #: (modifiedAt, id) sorted: modifiedAfter/Before are two bisects.
        self.by_modified: list[tuple[str, int]] = sorted((c["modifiedAt"], c["id"]) for c in seed.customers)
        self.enterprises: dict[int, dict[str, Any]] = {e["id"]: e for e in seed.enterprises}
        self.units: dict[int, dict[str, Any]] = {u["id"]: u for u in seed.units}
        self.contracts: dict[int, dict[str, Any]] = {c["id"]: c for c in seed.contracts}
        self.hooks: dict[str, dict[str, Any]] = {}
        self.assistances: dict[int, dict[str, Any]] = {}
        self.customer_enterprises: dict[int, set[int]] = {}
        #: fields a Sienge user corrects later (realistic profile), and the ids already corrected
        self.corrections: dict[int, dict[str, Any]] = {k: dict(v) for k, v in seed.corrections.items()}
        self.corrected: set[int] = set()
        for contract in seed.contracts:
            for party in contract["salesContractCustomers"]:
                self.customer_enterprises.setdefault(party["id"], set()).add(contract["enterpriseId"])

    def touch_customer(self, customer: dict[str, Any], when: str) -> None:
        old = (customer["modifiedAt"], customer["id"])
        index = bisect.bisect_left(self.by_modified, old)
        if index < len(self.by_modified) and self.by_modified[index] == old:
            del self.by_modified[index]
        customer["modifiedAt"] = when
        bisect.insort(self.by_modified, (when, customer["id"]))


class SiengeSandbox(SandboxSystem):
    name = "sienge"

    def __init__(self, config: SandboxConfig, dispatcher: Dispatcher, seed: SeedData) -> None:
        super().__init__(config, dispatcher)
        self.state = SiengeState(seed)
        self.limiter = RateLimiter(config.sienge_rate_limit)
        self.prefix = f"/{config.sienge_subdomain}/public/api/v1"

    # ---- guard ------------------------------------------------------------------------------
    def error_body(self, status: int, message: str, *, field: str | None, code: str | None) -> Any:
        errors = [{"field": field, "message": message}] if field else []
        return {"status": status, "developerMessage": message, "clientMessage": message, "errors": errors}

    def authenticate(self, request: Request) -> Denied | Any:
        path = request.url.path
        if not path.startswith(self.prefix + "/"):
            return Denied(404, "Recurso não encontrado para o subdomínio informado")
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return Denied(401, "Credenciais ausentes: use autenticação Basic com o usuário de API")
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return Denied(401, "Cabeçalho Authorization inválido")
        account = self.config.sienge_users.get(user)
        if account is None or account.password != password:
            return Denied(401, "Usuário ou senha de API inválidos")
        resource = path[len(self.prefix) + 1 :].split("/", 1)[0]
        if "*" not in account.grants and resource not in account.grants:
            return Denied(403, f"O usuário de API não tem autorização para o recurso '{resource}'")
        return user

    def rate_key(self, request: Request, principal: Any) -> str | None:
        return self.config.sienge_subdomain

    # ---- routes -----------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        p = self.prefix
        return [
            Route(f"{p}/customers", self.list_customers, methods=["GET"]),
            Route(f"{p}/customers", self.create_customer, methods=["POST"]),
            Route(f"{p}/customers/{{id:int}}", self.get_customer, methods=["GET"]),
            Route(f"{p}/customers/{{id:int}}", self.patch_customer, methods=["PATCH"]),
            Route(f"{p}/sales-contracts", self.list_contracts, methods=["GET"]),
            Route(f"{p}/sales-contracts/{{id:int}}", self.get_contract, methods=["GET"]),
            Route(f"{p}/sales-contracts/{{id:int}}", self.delete_contract, methods=["DELETE"]),
            Route(f"{p}/sales-contracts/{{id:int}}/cancellation", self.cancel_contract_route, methods=["POST"]),
            Route(f"{p}/enterprises", self.list_enterprises, methods=["GET"]),
            Route(f"{p}/enterprises/{{id:int}}", self.get_enterprise, methods=["GET"]),
            Route(f"{p}/units", self.list_units, methods=["GET"]),
            Route(f"{p}/units/{{id:int}}", self.get_unit, methods=["GET"]),
            Route(f"{p}/hooks", self.list_hooks, methods=["GET"]),
            Route(f"{p}/hooks", self.create_hook, methods=["POST"]),
            Route(f"{p}/hooks/{{id}}", self.get_hook, methods=["GET"]),
            Route(f"{p}/hooks/{{id}}", self.delete_hook, methods=["DELETE"]),
            Route(f"{p}/technical-assistances", self.list_assistances, methods=["GET"]),
            Route(f"{p}/technical-assistances", self.create_assistance, methods=["POST"]),
            Route(f"{p}/technical-assistances/{{id:int}}", self.get_assistance, methods=["GET"]),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/customers/{id:int}", self._ctl_customer, methods=["POST", "PATCH"]),
            Route("/_sandbox/sales-contracts/{id:int}/cancel", self._ctl_cancel, methods=["POST"]),
            Route("/_sandbox/technical-assistances/{id:int}/{action}", self._ctl_assistance, methods=["POST"]),
            Route("/_sandbox/events", self._ctl_event, methods=["POST"]),
            Route("/_sandbox/corrections", self._ctl_corrections, methods=["POST"]),
        ]

    # ---- customers --------------------------------------------------------------------------
    async def list_customers(self, request: Request) -> Response:
        limit, offset = _page(request)
        q = request.query_params
        modified_after = _date_param(request, "modifiedAfter")
        modified_before = _date_param(request, "modifiedBefore")
        created_after = _date_param(request, "createdAfter")
        created_before = _date_param(request, "createdBefore")
        enterprise_id = int_param(request, "enterpriseId")
        only_active = q.get("onlyActive", "").lower() == "true"
        st = self.state
        with self.lock:
            ids: list[int] | None = None
            for key in ("cpf", "cnpj"):
                if q.get(key):
                    found = st.by_document.get(normalize_document(q[key]))
                    doc_field = "cpf" if key == "cpf" else "cnpj"
                    ids = [found] if found is not None and st.customers[found].get(doc_field) else []
            if ids is None and q.get("internationalId"):
                ids = [c for c in st.customer_ids if st.customers[c].get("internationalId") == q["internationalId"]]
            simple = not (created_after or created_before or enterprise_id or only_active)
            if ids is None and (modified_after or modified_before):
                lo = bisect.bisect_left(st.by_modified, (modified_after,)) if modified_after else 0
                hi = (bisect.bisect_left(st.by_modified, (_next_day(modified_before),))
                      if modified_before else len(st.by_modified))
                if simple:
                    window = st.by_modified[lo + offset : min(hi, lo + offset + limit)]
                    results = [st.customers[i] for _, i in window]
                    return _listing(results, max(0, hi - lo), limit, offset)
                ids = [i for _, i in st.by_modified[lo:hi]]
            if ids is None:
                if simple:
                    results = [st.customers[i] for i in st.customer_ids[offset : offset + limit]]
                    return _listing(results, len(st.customer_ids), limit, offset)
                ids = st.customer_ids
            else:
                ids = [i for i in ids if i is not None]
                if modified_after:
                    ids = [i for i in ids if st.customers[i]["modifiedAt"] >= modified_after]
                if modified_before:
                    nxt = _next_day(modified_before)
                    ids = [i for i in ids if st.customers[i]["modifiedAt"] < nxt]
            if created_after:
                ids = [i for i in ids if st.customers[i]["createdAt"] >= created_after]
            if created_before:
                nxt = _next_day(created_before)
                ids = [i for i in ids if st.customers[i]["createdAt"] < nxt]
            if enterprise_id:
                ids = [i for i in ids if enterprise_id in st.customer_enterprises.get(i, ())]
            if only_active:
                ids = [i for i in ids if i not in st.disabled]
            results = [st.customers[i] for i in ids[offset : offset + limit]]
            return _listing(results, len(ids), limit, offset)

    async def get_customer(self, request: Request) -> Response:
        cid = request.path_params["id"]
        with self.lock:
            customer = self.state.customers.get(cid)
            if customer is None:
                raise ApiError(404, f"Cliente {cid} não encontrado")
            return Response(dumps(customer), media_type="application/json")

    async def create_customer(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not body.get("name"):
            raise ApiError(400, "O campo name é obrigatório", field="name")
        doc = normalize_document(body.get("cpf") or body.get("cnpj") or "")
        with self.lock:
            if doc and doc in self.state.by_document:
                raise ApiError(400, "Já existe um cliente com este CPF/CNPJ", field="cpf" if body.get("cpf") else "cnpj")
            cid = (self.state.customer_ids[-1] if self.state.customer_ids else 0) + 1
            when = now_iso()
            record = {k: v for k, v in body.items() if k not in ("id",)}
            record.update({"id": cid, "createdAt": when, "modifiedAt": when,
                           "personType": "Jurídica" if body.get("cnpj") else "Física"})
            self.state.customers[cid] = record
            self.state.customer_ids.append(cid)
            if doc:
                self.state.by_document[doc] = cid
            bisect.insort(self.state.by_modified, (when, cid))
        self.emit("CUSTOMER_CREATED", {"customerId": cid})
        return Response(status_code=201, headers={"Location": f"{self.origin}{self.prefix}/customers/{cid}"})

    async def patch_customer(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Corpo inválido")
        self.mutate_customer(request.path_params["id"], **body)
        return Response(status_code=204)

    def mutate_customer(self, customer_id: int, **fields: Any) -> dict[str, Any]:
        """Change a customer as a Sienge user would (modifiedAt moves, CUSTOMER_UPDATED fires)."""
        with self.lock:
            customer = self.state.customers.get(customer_id)
            if customer is None:
                raise ApiError(404, f"Cliente {customer_id} não encontrado")
            old_doc = normalize_document(customer.get("cpf") or customer.get("cnpj") or "")
            for key, value in fields.items():
                if key not in ("id", "createdAt", "modifiedAt"):
                    customer[key] = value
            new_doc = normalize_document(customer.get("cpf") or customer.get("cnpj") or "")
            if new_doc != old_doc:
                self.state.by_document.pop(old_doc, None)
                self.state.by_document[new_doc] = customer_id
            self.state.touch_customer(customer, now_iso())
            snapshot = dict(customer)
        self.emit("CUSTOMER_UPDATED", {"customerId": customer_id})
        return snapshot

    def apply_corrections(self) -> dict[int, dict[str, Any]]:
        """Apply the seed's pending corrections (realistic profile: a few customers' CPFs fixed or
        replaced) as a Sienge user would: modifiedAt moves and CUSTOMER_UPDATED fires for each. Returns
        what was applied (customer id -> fields); a second call finds nothing pending and applies nothing."""
        with self.lock:
            pending = [(cid, fields) for cid, fields in self.state.corrections.items()
                       if cid not in self.state.corrected]
            self.state.corrected.update(cid for cid, _ in pending)
        for cid, fields in pending:
            self.mutate_customer(cid, **fields)
        return dict(pending)

    # ---- sales contracts --------------------------------------------------------------------
    async def list_contracts(self, request: Request) -> Response:
        limit, offset = _page(request)
        q = request.query_params
        filters: list[Any] = []
        for name, key in (("customerId", None), ("enterpriseId", "enterpriseId"), ("unitId", None)):
            value = int_param(request, name)
            if value is None:
                continue
            if name == "customerId":
                filters.append(lambda c, v=value: any(p["id"] == v for p in c["salesContractCustomers"]))
            elif name == "unitId":
                filters.append(lambda c, v=value: any(u["id"] == v for u in c["salesContractUnits"]))
            else:
                filters.append(lambda c, v=value, k=key: c.get(k) == v)
        company = int_param(request, "companyId")
        if company is not None:
            filters.append(lambda c, v=company: c.get("companyId") == v)
        for name in ("externalId", "number", "enterpriseName"):
            if q.get(name):
                filters.append(lambda c, v=q[name], k=name: str(c.get(k, "")) == v)
        if q.get("situation"):
            wanted = {s.strip() for s in q["situation"].split(",")}
            unknown = wanted - set(SITUATIONS)
            if unknown:
                raise ApiError(400, f"Situação inválida: {sorted(unknown)}; use 0, 1, 2 ou 3", field="situation")
            filters.append(lambda c, v=wanted: c["situation"] in v)
        ranges = [("modifiedAfter", "modifiedBefore", "modifiedAt"), ("createdAfter", "createdBefore", "createdAt"),
                  ("initialIssueDate", "finalIssueDate", "issueDate"),
                  ("initialCancelDate", "finalCancelDate", "cancellationDate")]
        for low_name, high_name, field in ranges:
            low, high = _date_param(request, low_name), _date_param(request, high_name)
            if low:
                filters.append(lambda c, v=low, f=field: (c.get(f) or "") >= v)
            if high:
                filters.append(lambda c, v=_next_day(high), f=field: bool(c.get(f)) and c[f] < v)
        with self.lock:
            rows = [c for c in self.state.contracts.values() if all(f(c) for f in filters)]
            return _listing(rows[offset : offset + limit], len(rows), limit, offset, links=False)

    async def get_contract(self, request: Request) -> Response:
        cid = request.path_params["id"]
        with self.lock:
            contract = self.state.contracts.get(cid)
            if contract is None:
                raise ApiError(404, f"Contrato de venda {cid} não encontrado")
            return Response(dumps(contract), media_type="application/json")

    async def delete_contract(self, request: Request) -> Response:
        cid = request.path_params["id"]
        with self.lock:
            if self.state.contracts.pop(cid, None) is None:
                raise ApiError(404, f"Contrato de venda {cid} não encontrado")
        self.emit("SALES_CONTRACT_REMOVED", {"salesContractId": cid})
        return Response(status_code=204)

    async def cancel_contract_route(self, request: Request) -> Response:
        body = await read_json(request)
        for name in ("date", "reason"):
            if not isinstance(body, dict) or not body.get(name):
                raise ApiError(400, f"O campo {name} é obrigatório", field=name)
        self.cancel_contract(request.path_params["id"], body["reason"], body["date"])
        return Response(status_code=201)

    def cancel_contract(self, contract_id: int, reason: str = "Distrato", when: str | None = None) -> None:
        """Cancel a sale (situation 3) and fire SALES_CONTRACT_CANCELED, as a distrato in Sienge does."""
        with self.lock:
            contract = self.state.contracts.get(contract_id)
            if contract is None:
                raise ApiError(404, f"Contrato de venda {contract_id} não encontrado")
            if contract["situation"] == "3":
                raise ApiError(400, "Contrato já está cancelado", field="situation")
            contract.update({"situation": "3", "cancellationReason": reason,
                             "cancellationDate": when or now_iso()[:10], "modifiedAt": now_iso()})
            for link in contract["salesContractUnits"]:
                unit = self.state.units.get(link["id"])
                if unit is not None:
                    unit["commercialStock"] = "D"
                    unit.pop("contractId", None)
                    unit.pop("contractNumber", None)
        self.emit("SALES_CONTRACT_CANCELED", {"salesContractId": contract_id})

    # ---- enterprises and units --------------------------------------------------------------
    _ENTERPRISE_LIST_FIELDS = ("id", "name", "commercialName", "cnpj", "type", "adress", "creationDate",
                               "modificationDate", "createdBy", "modifiedBy", "companyId", "companyName",
                               "buildingTypeId", "buildingTypeDescription")

    async def list_enterprises(self, request: Request) -> Response:
        limit, offset = _page(request)
        company = int_param(request, "companyId")
        kind = request.query_params.get("type")
        with self.lock:
            rows = [e for e in self.state.enterprises.values()
                    if (company is None or e["companyId"] == company) and (not kind or e["type"] == kind)]
            page = [{k: e[k] for k in self._ENTERPRISE_LIST_FIELDS if k in e} for e in rows[offset : offset + limit]]
            return _listing(page, len(rows), limit, offset)

    async def get_enterprise(self, request: Request) -> Response:
        eid = request.path_params["id"]
        with self.lock:
            enterprise = self.state.enterprises.get(eid)
            if enterprise is None:
                raise ApiError(404, f"Empreendimento {eid} não encontrado")
            return Response(dumps(enterprise), media_type="application/json")

    async def list_units(self, request: Request) -> Response:
        limit, offset = _page(request)
        enterprise_id = int_param(request, "enterpriseId")
        stock = request.query_params.get("commercialStock")
        name = request.query_params.get("name")
        with self.lock:
            rows = [u for u in self.state.units.values()
                    if (enterprise_id is None or u["enterpriseId"] == enterprise_id)
                    and (not stock or u["commercialStock"] == stock)
                    and (not name or name.lower() in u["name"].lower())]
            return _listing(rows[offset : offset + limit], len(rows), limit, offset)

    async def get_unit(self, request: Request) -> Response:
        uid = request.path_params["id"]
        with self.lock:
            unit = self.state.units.get(uid)
            if unit is None:
                raise ApiError(404, f"Unidade {uid} não encontrada")
            return Response(dumps(unit), media_type="application/json")

    # ---- hooks ------------------------------------------------------------------------------
    async def list_hooks(self, request: Request) -> Response:
        limit, offset = _page(request)
        with self.lock:
            rows = list(self.state.hooks.values())
            return _listing(rows[offset : offset + limit], len(rows), limit, offset, links=False)

    async def create_hook(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not body["url"]:
            raise ApiError(400, "O campo url é obrigatório", field="url")
        events = body.get("events")
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            raise ApiError(400, "O campo events deve ser uma lista de eventos", field="events")
        # Like Sienge, event names are not validated (a misspelt one simply never fires).
        hook = {"id": str(uuid.uuid4()), "url": body["url"], "token": body.get("token") or "", "events": events}
        with self.lock:
            self.state.hooks[hook["id"]] = hook
        return JSON(hook, 200)

    async def get_hook(self, request: Request) -> Response:
        with self.lock:
            hook = self.state.hooks.get(request.path_params["id"])
        if hook is None:
            raise ApiError(404, "Hook não encontrado")
        return JSON(hook)

    async def delete_hook(self, request: Request) -> Response:
        with self.lock:
            hook = self.state.hooks.pop(request.path_params["id"], None)
        if hook is None:
            raise ApiError(404, "Hook não encontrado")
        return Response(status_code=200)

    def emit(self, event: str, body: dict[str, Any]) -> list[str]:
        """Deliver ``event`` to every hook subscribed to it; returns the x-sienge-id of each."""
        with self.lock:
            hooks = [h for h in self.state.hooks.values() if event in h["events"]]
        ids = []
        payload = dumps(body)
        for hook in hooks:
            event_id = str(uuid.uuid4())
            headers = {
                "content-type": "application/json",
                "user-agent": "sienge-hooks",
                "x-sienge-event": event,
                "x-sienge-id": event_id,
                "x-sienge-tenant": self.config.sienge_subdomain,
                "x-sienge-hook-id": hook["id"],
            }
            if hook["token"]:
                headers["authorization"] = f"Bearer {hook['token']}"
            self.deliver(Delivery(
                system=self.name, event=event, event_id=event_id, url=hook["url"],
                build=lambda _attempt, b=payload, h=headers: (b, h),
                retry_delays=self.config.sienge_retry_delays, timeout=self.config.sienge_delivery_timeout,
            ))
            ids.append(event_id)
        return ids

    # ---- technical assistance (Ponte's documented defaults) --------------------------------
    async def list_assistances(self, request: Request) -> Response:
        limit, offset = _page(request)
        modified_after = _date_param(request, "modifiedAfter")
        external = request.query_params.get("externalId")
        with self.lock:
            rows = [a for a in self.state.assistances.values()
                    if (not modified_after or a["modifiedAt"] >= modified_after)
                    and (not external or a["externalId"] == external)]
            return _listing(rows[offset : offset + limit], len(rows), limit, offset, links=False)

    async def get_assistance(self, request: Request) -> Response:
        aid = request.path_params["id"]
        with self.lock:
            record = self.state.assistances.get(aid)
            if record is None:
                raise ApiError(404, f"Assistência técnica {aid} não encontrada")
            return Response(dumps(record), media_type="application/json")

    async def create_assistance(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Corpo inválido")
        for name in ("externalId", "description"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                raise ApiError(400, f"O campo {name} é obrigatório", field=name)
        refs = (("enterpriseId", self.state.enterprises), ("unitId", self.state.units),
                ("customerId", self.state.customers))
        for name, table in refs:
            value = body.get(name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ApiError(400, f"O campo {name} é obrigatório e deve ser inteiro", field=name)
            if value not in table:
                raise ApiError(400, f"{name} {value} não existe", field=name)
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise ApiError(400, "Informe ao menos um item de manutenção", field="items")
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not str(item.get("description") or "").strip():
                raise ApiError(400, "A descrição do item é obrigatória", field=f"items[{index}].description")
            days = item.get("minimumCompletionDays")
            if not isinstance(days, int) or isinstance(days, bool) or days < 1:
                raise ApiError(400, "O prazo mínimo de conclusão (dias) é obrigatório e deve ser maior que zero",
                               field=f"items[{index}].minimumCompletionDays")
        attachments = body.get("attachments") or []
        stored_attachments = []
        for index, attachment in enumerate(attachments):
            try:
                raw = base64.b64decode(attachment["contentBase64"], validate=True)
                name = str(attachment["name"])
            except (KeyError, TypeError, binascii.Error) as exc:
                raise ApiError(400, "Anexo inválido: informe name e contentBase64",
                               field=f"attachments[{index}]") from exc
            stored_attachments.append({"id": index + 1, "name": name, "size": len(raw)})
        with self.lock:
            if any(a["externalId"] == body["externalId"] for a in self.state.assistances.values()):
                raise ApiError(409, f"Já existe assistência com externalId {body['externalId']}", field="externalId")
            aid = max(self.state.assistances, default=0) + 1
            when = now_iso()
            record = {
                "id": aid, "externalId": body["externalId"], "status": "OPEN",
                "enterpriseId": body["enterpriseId"], "unitId": body["unitId"], "customerId": body["customerId"],
                "description": body["description"], "openedAt": body.get("openedAt") or when,
                "createdAt": when, "modifiedAt": when,
                "items": [{"id": i + 1, "description": it["description"],
                           "minimumCompletionDays": it["minimumCompletionDays"], "status": "OPEN"}
                          for i, it in enumerate(items)],
                "attachments": stored_attachments,
            }
            self.state.assistances[aid] = record
        return JSON(record, 201, headers={"Location": f"{self.origin}{self.prefix}/technical-assistances/{aid}"})

    def move_assistance(self, assistance_id: int, action: str) -> dict[str, Any]:
        """Move an assistance (in-progress | finish | cancel | delete) and fire its hook event."""
        if action not in ASSISTANCE_MOVES:
            raise ApiError(400, f"Ação desconhecida {action!r}; use {', '.join(ASSISTANCE_MOVES)}")
        status, event = ASSISTANCE_MOVES[action]
        with self.lock:
            record = self.state.assistances.get(assistance_id)
            if record is None:
                raise ApiError(404, f"Assistência técnica {assistance_id} não encontrada")
            if record["status"] in ("FINISHED", "CANCELED", "DELETED") and status != "DELETED":
                raise ApiError(409, f"Assistência já está {record['status']}")
            record["status"] = status
            record["modifiedAt"] = now_iso()
            snapshot = dict(record)
        self.emit(event, {"technicalAssistanceId": assistance_id})
        return snapshot

    # ---- control ----------------------------------------------------------------------------
    async def _ctl_customer(self, request: Request) -> Response:
        return JSON(self.mutate_customer(request.path_params["id"], **(await read_json(request))))

    async def _ctl_cancel(self, request: Request) -> Response:
        body = await read_json(request)
        self.cancel_contract(request.path_params["id"], body.get("reason", "Distrato"))
        return Response(status_code=204)

    async def _ctl_assistance(self, request: Request) -> Response:
        return JSON(self.move_assistance(request.path_params["id"], request.path_params["action"]))

    async def _ctl_corrections(self, request: Request) -> Response:
        applied = self.apply_corrections()
        return JSON({"corrected": [{"id": cid, **fields} for cid, fields in applied.items()]})

    async def _ctl_event(self, request: Request) -> Response:
        body = await read_json(request)
        return JSON({"ids": self.emit(str(body.get("event")), body.get("body") or {})})
