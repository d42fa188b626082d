"""CV CRM stand-in: clientes upsert, reservas, contracts, assistências, workflows and webhooks.

Faithful to PROVIDERS.md §2: ``email`` + ``token`` headers (or the v3 login's Bearer), 403 "Permissão
de acesso desabilitada" for a module the profile lacks, 200 requests/minute with the next minute
blocked after a 429, clientes upserted by ``documento``, and webhooks that POST ids only, unsigned, to
the registered ``endereco``. Once a contract is signed, back-sync marks it signed (a route CV does not
document), attaches a document to the reservation and moves the reservation's situation; the sandbox
holds those bodies to its choices (unknown fields, situations and document types are refused). What an upsert (and a reservation PUT) does with the fields its body does
not mention is undocumented, so it is a switch, ``cvcrm_upsert``: ``merge`` (default) keeps them,
``replace`` drops them; the import must keep the CRM's own enrichment under both. Body shapes the
vendor does not document are the sandbox's choice and are listed in docs/sandbox.md.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from stdnum.br import cnpj as std_cnpj
from stdnum.br import cpf as std_cpf

from connectors.sandbox.base import JSON, ApiError, Denied, SandboxSystem, dumps, int_param, read_json
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.documents import is_pdf, normalize_document
from connectors.sandbox.ratelimit import RateLimiter
from connectors.sandbox.seed import BRT, SeedData
from connectors.sandbox.webhooks import Delivery, Dispatcher

FUNCIONALIDADES = ("AG", "AS", "AT", "CI", "CL", "CM", "CR", "CV", "EC", "EV", "LD", "PR", "RP", "RS", "UN")
WORKFLOWS: dict[str, list[dict[str, Any]]] = {
    "AS": [
        {"idsituacao": 1, "nome": "Aberta", "ordem": 1, "final": False, "cancelada": False},
        {"idsituacao": 2, "nome": "Em andamento", "ordem": 2, "final": False, "cancelada": False},
        {"idsituacao": 3, "nome": "Concluída", "ordem": 3, "final": True, "cancelada": False},
        {"idsituacao": 4, "nome": "Cancelada", "ordem": 4, "final": True, "cancelada": True},
    ],
    "RS": [
        {"idsituacao": 10, "nome": "Reservada", "ordem": 1, "final": False, "cancelada": False},
        {"idsituacao": 11, "nome": "Vendida", "ordem": 2, "final": True, "cancelada": False},
        {"idsituacao": 12, "nome": "Cancelada", "ordem": 3, "final": True, "cancelada": True},
        # where a tenant may move a sale once its contract is signed (options.on_signed, "activation")
        {"idsituacao": 13, "nome": "Contrato assinado", "ordem": 4, "final": True, "cancelada": False},
    ],
}
ALIASES = {"assistencias": "AS", "assistencia": "AS", "reservas": "RS", "reserva": "RS"}
#: the contract types the sandbox CRM knows (sandbox choice: CV's API documents ``tipo`` on a contract but
#: no listing of types, and its upload takes none: a contract gets the default type, the first)
CONTRACT_TYPES: list[dict[str, Any]] = [
    {"idtipo": 1, "nome": "Contrato de compra e venda"},
    {"idtipo": 2, "nome": "Termo de ciência"},
    {"idtipo": 3, "nome": "Aditivo contratual"},
]
#: the ``CV`` gatilho a saved contract fires, by its state (sandbox choice: CV's gatilhos are per-tenant
#: situation ids and the contract's are undocumented)
CONTRACT_GATILHOS = {"cadastrado": 30, "validado": 31, "assinado": 32}
#: the reservation document types the sandbox CRM knows (sandbox choice: CV's upload names ``idtipo`` but
#: its types are per-tenant configuration with no documented listing)
DOCUMENT_TYPES: list[dict[str, Any]] = [
    {"idtipo": 1, "nome": "Documento de identificação"},
    {"idtipo": 2, "nome": "Comprovante de residência"},
    {"idtipo": 7, "nome": "Evidências da assinatura eletrônica"},
]
#: what ``idtipo_associacao`` may say (sandbox choice, UNCONFIRMED: who the document belongs to)
DOCUMENT_ASSOCIATIONS = {1: "reserva", 2: "titular", 3: "associado"}
#: the only fields the (UNCONFIRMED) contract update takes, and the only values they take
CONTRACT_FLAGS = ("assinado", "validado")
REQUIRED_CLIENTE = ("idpessoa_int", "nome", "documento_tipo", "documento", "telefone", "email")
#: reservation fields a PUT writes; under ``cvcrm_upsert: replace`` the ones a body leaves out are cleared
RESERVA_WRITABLE = ("valor_contrato", "data_venda", "observacoes", "idcorretor", "associados")


def agora() -> str:
    return datetime.now(BRT).strftime("%Y-%m-%d %H:%M:%S")


class CvcrmState:
    def __init__(self, seed: SeedData) -> None:
        self.pessoas: dict[int, dict[str, Any]] = {}
        self.by_documento: dict[str, int] = {}
        self.empreendimentos: dict[int, dict[str, Any]] = {}
        self.unidades: dict[int, dict[str, Any]] = {}
        self.reservas: dict[int, dict[str, Any]] = {}
        self.contratos: dict[int, list[dict[str, Any]]] = {}
        self.documentos: dict[int, list[dict[str, Any]]] = {}
        self.files: dict[str, bytes] = {}
        self.assistencias: dict[int, dict[str, Any]] = {}
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, tuple[str, float]] = {}
        self.workflows = {k: [dict(s) for s in v] for k, v in WORKFLOWS.items()}
        # CV ids differ from Sienge ids, as in a real CRM; the *_int fields hold Sienge's.
        for e in seed.enterprises:
            eid = 500 + e["id"]
            self.empreendimentos[eid] = {"idempreendimento": eid, "idempreendimento_int": str(e["id"]),
                                         "nome": e["name"], "cnpj": e["cnpj"], "cidade": e["addressDetails"]["city"],
                                         "estado": e["addressDetails"]["state"], "erp_sienge": {"id": e["id"]}}
        for u in seed.units:
            uid = 7000 + u["id"]
            self.unidades[uid] = {"idunidade": uid, "idunidade_int": str(u["id"]),
                                  "idempreendimento": 500 + u["enterpriseId"], "nome": u["name"],
                                  "area_privativa": u["privateArea"], "andar": u["floor"]}
        for a in seed.crm_assistencias:
            customer = seed.customers[next(p["id"] for c in seed.contracts if c["id"] == a["contract_id"]
                                           for p in c["salesContractCustomers"] if p["main"]) - 1]
            pessoa = self.upsert({"idpessoa_int": str(customer["id"]), "nome": customer["name"],
                                  "documento_tipo": "cpf" if customer.get("cpf") else "cnpj",
                                  "documento": a["documento"], "email": customer["email"],
                                  "telefone": customer["phones"][0]["number"]})[0]
            unidade = self.unidades[7000 + a["unit_id"]]
            emp = self.empreendimentos[unidade["idempreendimento"]]
            self.assistencias[a["idassistencia"]] = {
                "idassistencia": a["idassistencia"], "idatendimento": a["idatendimento"],
                "protocolo_atendimento": a["protocolo_atendimento"], "idsituacao": 1, "situacao": "Aberta",
                "ativo": "S", "cliente": {"idpessoa": pessoa["idpessoa"], "nome": pessoa["nome"],
                                         "documento": pessoa["documento"]},
                "empreendimento": {k: emp[k] for k in ("idempreendimento", "idempreendimento_int", "nome")},
                "unidade": {k: unidade[k] for k in ("idunidade", "idunidade_int", "nome")},
                "descricao": a["descricao"], "itens": [dict(i) for i in a["itens"]], "anexos": [],
                "data_abertura": a["aberta_em"][:19].replace("T", " "), "data_conclusao": None,
                "prioridade": "N", "parecer_tecnico": None, "idassistencia_erp": None, "dados_assistencia": {},
            }

    def upsert(self, body: dict[str, Any], replace: bool = False) -> tuple[dict[str, Any], bool]:
        """Create or update by documento. Fields not in ``body`` are kept, or with ``replace`` dropped
        (the body becomes the whole record, as a CRM whose upsert replaces would do)."""
        documento = normalize_document(str(body["documento"]))
        pid = self.by_documento.get(documento)
        created = pid is None
        if pid is None:
            pid = 20000 + len(self.pessoas) + 1
            record: dict[str, Any] = {"idpessoa": pid, "data_cad": agora(), "contatos": [], "associacoes": []}
            self.pessoas[pid] = record
            self.by_documento[documento] = pid
        elif replace:
            old = self.pessoas[pid]
            self.pessoas[pid] = {"idpessoa": pid, "data_cad": old["data_cad"], "contatos": [], "associacoes": []}
        record = self.pessoas[pid]
        record.update({k: v for k, v in body.items() if k not in ("idpessoa", "data_cad")})
        record["documento"] = documento
        record["data_alt"] = agora()
        return record, created


class CvcrmSandbox(SandboxSystem):
    name = "cvcrm"

    def __init__(self, config: SandboxConfig, dispatcher: Dispatcher, seed: SeedData) -> None:
        super().__init__(config, dispatcher)
        self.state = CvcrmState(seed)
        self.limiter = RateLimiter(config.cvcrm_rate_limit)
        self._ids = {"reserva": 3000, "contrato": 800, "documento": 4400, "assistencia": 100, "webhook": 0}

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    # ---- guard ------------------------------------------------------------------------------
    def public_paths(self) -> tuple[str, ...]:
        return ("/api/v3/auth/token", "/files/")

    def error_body(self, status: int, message: str, *, field: str | None, code: str | None) -> Any:
        body: dict[str, Any] = {"codigo": status, "mensagem": message}
        if field:
            body["campo"] = field
        return body

    def authenticate(self, request: Request) -> Denied | Any:
        header = request.headers.get("authorization", "")
        email: str | None = None
        if header.startswith("Bearer "):
            entry = self.state.tokens.get(header[7:].strip())
            if entry is None or entry[1] < datetime.now().timestamp():
                return Denied(401, "Token inválido ou expirado")
            email = entry[0]
        else:
            email = request.headers.get("email")
            token = request.headers.get("token")
            if not email or not token:
                return Denied(401, "Informe os cabeçalhos email e token")
            user = self.config.cvcrm_users.get(email)
            if user is None or user.token != token:
                return Denied(401, "Email ou token inválido")
        user = self.config.cvcrm_users[email]
        parts = request.url.path.split("/")
        module = parts[3] if len(parts) > 3 else ""
        if "*" not in user.modules and module not in user.modules:
            return Denied(403, "Permissão de acesso desabilitada")
        return email

    def rate_key(self, request: Request, principal: Any) -> str | None:
        return str(principal)

    # ---- routes -----------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        v1 = "/api/v1"
        return [
            Route("/api/v3/auth/token", self.login, methods=["POST"]),
            Route(f"{v1}/cadastros/clientes", self.upsert_cliente, methods=["POST"]),
            Route(f"{v1}/cadastros/clientes", self.get_clientes, methods=["GET"]),
            Route(f"{v1}/cadastros/empreendimentos", self.list_empreendimentos, methods=["GET"]),
            Route(f"{v1}/cadastros/empreendimentos/{{id:int}}", self.get_empreendimento, methods=["GET"]),
            Route(f"{v1}/comercial/reservas", self.list_reservas, methods=["GET"]),
            Route(f"{v1}/comercial/reservas", self.create_reserva, methods=["POST"]),
            Route(f"{v1}/comercial/reservas", self.update_reserva, methods=["PUT"]),
            Route(f"{v1}/comercial/reservas/contratos", self.upload_contrato, methods=["POST"]),
            Route(f"{v1}/comercial/reservas/documentos", self.attach_documento, methods=["POST"]),
            Route(f"{v1}/comercial/reservas/cancelar-reserva", self.cancel_reserva, methods=["POST"]),
            Route(f"{v1}/comercial/reservas/{{id:int}}", self.get_reserva, methods=["GET"]),
            Route(f"{v1}/comercial/reservas/{{id:int}}/contratos", self.list_contratos, methods=["GET"]),
            Route(f"{v1}/comercial/reservas/{{id:int}}/contratos/{{cid:int}}", self.update_contrato, methods=["PUT"]),
            Route(f"{v1}/comercial/reservas/{{id:int}}/documentos", self.list_documentos, methods=["GET"]),
            Route(f"{v1}/comercial/reservas/{{id:int}}/alterar-situacao", self.change_reserva_situation,
                  methods=["POST"]),
            Route(f"{v1}/comercial/reservas/{{id:int}}/cancelar-reserva", self.cancel_reserva, methods=["POST"]),
            Route(f"{v1}/comercial/reservas/{{id:int}}/erp/sienge", self.reserva_erp, methods=["GET", "PUT"]),
            Route(f"{v1}/relacionamento/assistencias", self.list_assistencias, methods=["GET"]),
            Route(f"{v1}/relacionamento/assistencias", self.create_assistencia_route, methods=["POST"]),
            Route(f"{v1}/relacionamento/assistencias/{{id:int}}", self.get_assistencia, methods=["GET"]),
            Route(f"{v1}/relacionamento/assistencias/{{id:int}}", self.put_assistencia, methods=["PUT"]),
            Route(f"{v1}/relacionamento/assistencias/{{id:int}}/alterar-situacao/{{sit:int}}",
                  self.change_situation_route, methods=["POST"]),
            Route(f"{v1}/configuracoes/workflows/{{func}}", self.get_workflow, methods=["GET"]),
            Route(f"{v1}/integracoes/webhooks", self.create_webhook, methods=["POST"]),
            Route(f"{v1}/integracoes/webhooks", self.list_webhooks, methods=["GET"]),
            Route(f"{v1}/integracoes/webhooks/gatilhos", self.list_triggers, methods=["GET"]),
            Route(f"{v1}/integracoes/webhooks/{{id:int}}", self.delete_webhook, methods=["DELETE"]),
            Route("/files/{token}", self.download, methods=["GET"]),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/contratos/{id:int}", self._ctl_save_contrato, methods=["POST"]),
            Route("/_sandbox/clientes/{documento}/enrich", self._ctl_enrich, methods=["POST"]),
            Route("/_sandbox/assistencias", self._ctl_open, methods=["POST"]),
            Route("/_sandbox/assistencias/{id:int}/situacao/{sit:int}", self._ctl_move, methods=["POST"]),
        ]

    # ---- auth v3 ----------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        body = await read_json(request)
        email = str(body.get("email") or "")
        user = self.config.cvcrm_users.get(email)
        if user is None or body.get("senha") != user.senha:
            raise ApiError(401, "Email ou senha inválidos")
        token = uuid.uuid4().hex + uuid.uuid4().hex
        ttl = self.config.cvcrm_bearer_ttl
        self.state.tokens[token] = (email, datetime.now().timestamp() + ttl)
        return JSON({"token": token, "tipo": "Bearer", "expires_in": ttl})

    # ---- clientes ---------------------------------------------------------------------------
    async def upsert_cliente(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Corpo inválido")
        for name in REQUIRED_CLIENTE:
            if body.get(name) in (None, ""):
                raise ApiError(400, f"O campo {name} é obrigatório", field=name)
        kind = str(body["documento_tipo"]).lower()
        documento = normalize_document(str(body["documento"]))
        validator = {"cpf": std_cpf.is_valid, "cnpj": std_cnpj.is_valid}.get(kind)
        if validator is None:
            raise ApiError(400, "documento_tipo deve ser cpf ou cnpj", field="documento_tipo")
        if not validator(documento):
            raise ApiError(400, f"{kind.upper()} inválido", field="documento")
        if "@" not in str(body["email"]):
            raise ApiError(400, "E-mail inválido", field="email")
        with self.lock:
            record, created = self.state.upsert({**body, "documento_tipo": kind},
                                                replace=self.config.cvcrm_upsert == "replace")
            result = {"codigo": 200, "mensagem": "Cliente cadastrado" if created else "Cliente atualizado",
                      "idpessoa": record["idpessoa"], "idpessoa_int": record.get("idpessoa_int"),
                      "acao": "criado" if created else "atualizado"}
        self.emit("CL", 0, record["idpessoa"])
        return JSON(result)

    async def get_clientes(self, request: Request) -> Response:
        q = request.query_params
        with self.lock:
            if q.get("documento"):
                pid = self.state.by_documento.get(normalize_document(q["documento"]))
                found = [self.state.pessoas[pid]] if pid else []
            elif q.get("idcliente"):
                found = [p for p in [self.state.pessoas.get(int_param(request, "idcliente") or 0)] if p]
            elif q.get("telefone"):
                digits = "".join(ch for ch in q["telefone"] if ch.isdigit())
                found = [p for p in self.state.pessoas.values()
                         if "".join(ch for ch in str(p.get("telefone", "")) if ch.isdigit()) == digits]
            else:
                raise ApiError(400, "Informe documento, telefone ou idcliente")
            if not found:
                raise ApiError(404, "Cliente não encontrado")
            return JSON({"codigo": 200, "pessoas": found})

    def enrich_cliente(self, documento: str, /, **fields: Any) -> dict[str, Any]:
        """Change a person as a CRM user would (extra contacts, associations, a corrected CPF...), not
        via the API. A new ``documento`` re-keys the person: the next upsert by it finds them."""
        with self.lock:
            pid = self.state.by_documento.get(normalize_document(documento))
            if pid is None:
                raise ApiError(404, "Cliente não encontrado")
            record = self.state.pessoas[pid]
            for key, value in fields.items():
                if key == "documento":
                    new = normalize_document(str(value))
                    if self.state.by_documento.get(new, pid) != pid:
                        raise ApiError(409, "Já existe cliente com este documento", field="documento")
                    self.state.by_documento.pop(normalize_document(str(record["documento"])), None)
                    self.state.by_documento[new] = pid
                    record["documento"] = new
                elif isinstance(value, list) and isinstance(record.get(key), list):
                    record[key] = [*record[key], *value]
                else:
                    record[key] = value
            return dict(record)

    # ---- empreendimentos --------------------------------------------------------------------
    async def list_empreendimentos(self, request: Request) -> Response:
        with self.lock:
            return JSON({"codigo": 200, "total": len(self.state.empreendimentos),
                         "empreendimentos": list(self.state.empreendimentos.values())})

    async def get_empreendimento(self, request: Request) -> Response:
        eid = request.path_params["id"]
        with self.lock:
            emp = self.state.empreendimentos.get(eid)
            if emp is None:
                raise ApiError(404, "Empreendimento não encontrado")
            unidades = [u for u in self.state.unidades.values() if u["idempreendimento"] == eid]
            return JSON({**emp, "unidades": unidades})

    # ---- reservas ---------------------------------------------------------------------------
    def _reserva(self, rid: int) -> dict[str, Any]:
        reserva = self.state.reservas.get(rid)
        if reserva is None:
            raise ApiError(404, f"Reserva {rid} não encontrada")
        return reserva

    def _resolve_pessoa(self, body: dict[str, Any], prefix: str = "") -> int:
        if body.get("idpessoa"):
            pid = int(body["idpessoa"])
            if pid not in self.state.pessoas:
                raise ApiError(400, f"Cliente {pid} não encontrado", field=f"{prefix}idpessoa")
            return pid
        if body.get("documento"):
            pid2 = self.state.by_documento.get(normalize_document(str(body["documento"])))
            if pid2 is None:
                raise ApiError(400, "Cliente não encontrado para o documento informado", field=f"{prefix}documento")
            return pid2
        raise ApiError(400, "Informe idpessoa ou documento do titular", field=f"{prefix}idpessoa")

    def _resolve_unidade(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("idunidade"):
            unidade = self.state.unidades.get(int(body["idunidade"]))
        elif body.get("idunidade_int"):
            unidade = next((u for u in self.state.unidades.values()
                            if u["idunidade_int"] == str(body["idunidade_int"])), None)
        else:
            raise ApiError(400, "Informe idunidade ou idunidade_int", field="idunidade")
        if unidade is None:
            raise ApiError(400, "Unidade não encontrada", field="idunidade")
        return unidade

    async def list_reservas(self, request: Request) -> Response:
        q = request.query_params
        offset = int_param(request, "offset", 0) or 0
        limit = min(int_param(request, "limit", 50) or 50, 500)
        with self.lock:
            rows = [r for r in self.state.reservas.values()
                    if (not q.get("idreserva_int") or r["idreserva_int"] == q["idreserva_int"])
                    and (not q.get("idempreendimento") or str(r["idempreendimento"]) == q["idempreendimento"])]
            return JSON({"codigo": 200, "total": len(rows), "reservas": rows[offset : offset + limit]})

    async def get_reserva(self, request: Request) -> Response:
        with self.lock:
            return JSON(self._reserva(request.path_params["id"]))

    async def create_reserva(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not body.get("idreserva_int"):
            raise ApiError(400, "O campo idreserva_int é obrigatório", field="idreserva_int")
        with self.lock:
            if any(r["idreserva_int"] == str(body["idreserva_int"]) for r in self.state.reservas.values()):
                raise ApiError(409, f"Já existe reserva com idreserva_int {body['idreserva_int']}",
                               field="idreserva_int")
            titular = self._resolve_pessoa(body.get("titular") or body, "titular.")
            unidade = self._resolve_unidade(body)
            associados = []
            for index, assoc in enumerate(body.get("associados") or []):
                associados.append({"idpessoa": self._resolve_pessoa(assoc, f"associados[{index}]."),
                                   "tipo": assoc.get("tipo", "Associado")})
            situacao = self.state.workflows["RS"][1 if body.get("vendida", True) else 0]
            rid = self._next("reserva")
            reserva = {
                "idreserva": rid, "idreserva_int": str(body["idreserva_int"]),
                "idempreendimento": unidade["idempreendimento"], "idunidade": unidade["idunidade"],
                "unidade": unidade["nome"], "idpessoa": titular, "titular": self.state.pessoas[titular]["nome"],
                "associados": associados, "valor_contrato": body.get("valor_contrato"),
                "data_venda": body.get("data_venda"), "idsituacao": situacao["idsituacao"],
                "situacao": situacao["nome"], "observacoes": body.get("observacoes"),
                "idcorretor": body.get("idcorretor"), "erp_sienge": {},
                "data_cad": agora(), "data_alt": agora(),
            }
            self.state.reservas[rid] = reserva
            self.state.contratos[rid] = []
            self.state.documentos[rid] = []
        self.emit("RS", reserva["idsituacao"], rid)
        return JSON({"codigo": 200, "mensagem": "Reserva cadastrada", "idreserva": rid,
                     "idreserva_int": reserva["idreserva_int"]}, 201)

    async def update_reserva(self, request: Request) -> Response:
        body = await read_json(request)
        with self.lock:
            if body.get("idreserva"):
                reserva = self._reserva(int(body["idreserva"]))
            elif body.get("idreserva_int"):
                reserva = next((r for r in self.state.reservas.values()
                                if r["idreserva_int"] == str(body["idreserva_int"])), None)
                if reserva is None:
                    raise ApiError(404, "Reserva não encontrada")
            else:
                raise ApiError(400, "Informe idreserva ou idreserva_int", field="idreserva")
            if self.config.cvcrm_upsert == "replace":  # the body is the whole record: what it omits goes
                for key in RESERVA_WRITABLE:
                    body.setdefault(key, [] if key == "associados" else None)
            for key in ("valor_contrato", "data_venda", "observacoes", "idcorretor"):
                if key in body:
                    reserva[key] = body[key]
            if body.get("idpessoa"):
                titular = self._resolve_pessoa({"idpessoa": body["idpessoa"]})
                reserva.update(idpessoa=titular, titular=self.state.pessoas[titular]["nome"])
            if "associados" in body:
                reserva["associados"] = [{"idpessoa": self._resolve_pessoa(a, f"associados[{i}]."),
                                          "tipo": a.get("tipo", "Associado")}
                                         for i, a in enumerate(body["associados"] or [])]
            if "idunidade" in body or "idunidade_int" in body:
                unidade = self._resolve_unidade(body)
                reserva.update({"idunidade": unidade["idunidade"], "unidade": unidade["nome"],
                                "idempreendimento": unidade["idempreendimento"]})
            reserva["data_alt"] = agora()
            return JSON({"codigo": 200, "mensagem": "Reserva atualizada", "idreserva": reserva["idreserva"]})

    async def cancel_reserva(self, request: Request) -> Response:
        body = await read_json(request)
        rid = request.path_params.get("id") or int(body.get("idreserva") or 0)
        with self.lock:
            reserva = self._reserva(rid)
            cancelada = next(s for s in self.state.workflows["RS"] if s["cancelada"])
            if reserva["idsituacao"] == cancelada["idsituacao"]:
                raise ApiError(409, "Reserva já está cancelada")
            reserva.update({"idsituacao": cancelada["idsituacao"], "situacao": cancelada["nome"],
                            "motivo_cancelamento": body.get("motivo") or body.get("motivo_cancelamento"),
                            "data_alt": agora()})
        self.emit("RS", cancelada["idsituacao"], rid)
        return JSON({"codigo": 200, "mensagem": "Reserva cancelada", "idreserva": rid})

    async def change_reserva_situation(self, request: Request) -> Response:
        """``POST /v1/comercial/reservas/{id}/alterar-situacao`` with ``{idsituacao, comentario}`` (the
        body is the sandbox's choice, UNCONFIRMED). A situation outside the RS workflow is refused (400), so
        is a cancelled reservation (409) and the cancelled situation itself (cancelar-reserva does that);
        moving to the situation it is already in changes nothing and fires nothing."""
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Corpo inválido")
        unknown = sorted(set(body) - {"idsituacao", "comentario"})
        if unknown:
            raise ApiError(400, f"Campo(s) desconhecido(s): {', '.join(unknown)}", field=unknown[0])
        target = body.get("idsituacao")
        if not isinstance(target, int) or isinstance(target, bool):
            raise ApiError(400, "idsituacao deve ser o id numérico da situação", field="idsituacao")
        rid = request.path_params["id"]
        with self.lock:
            reserva = self._reserva(rid)
            situacao = next((s for s in self.state.workflows["RS"] if s["idsituacao"] == target), None)
            if situacao is None:
                raise ApiError(400, f"Situação {target} não existe no workflow de reservas", field="idsituacao")
            if situacao["cancelada"]:
                raise ApiError(400, "Para cancelar use cancelar-reserva", field="idsituacao")
            current = next((s for s in self.state.workflows["RS"] if s["idsituacao"] == reserva["idsituacao"]), None)
            if current is not None and current["cancelada"]:
                raise ApiError(409, "Reserva cancelada não muda de situação")
            moved = reserva["idsituacao"] != target
            if moved:
                reserva.update({"idsituacao": target, "situacao": situacao["nome"], "data_alt": agora()})
                reserva.setdefault("historico_situacoes", []).append(
                    {"idsituacao": target, "comentario": body.get("comentario"), "data": agora()})
        if moved:
            self.emit("RS", target, rid)
        return JSON({"codigo": 200, "mensagem": "Situação alterada" if moved else "A reserva já está nesta situação",
                     "idreserva": rid, "idsituacao": target})

    async def reserva_erp(self, request: Request) -> Response:
        body = await read_json(request) if request.method == "PUT" else {}
        with self.lock:
            reserva = self._reserva(request.path_params["id"])
            if request.method == "PUT":
                reserva["erp_sienge"].update(body if isinstance(body, dict) else {})
            return JSON({"codigo": 200, **reserva["erp_sienge"]})

    # ---- contratos --------------------------------------------------------------------------
    async def list_contratos(self, request: Request) -> Response:
        with self.lock:
            self._reserva(request.path_params["id"])
            return JSON({"codigo": 200, "contratos": self.state.contratos[request.path_params["id"]]})

    async def upload_contrato(self, request: Request) -> Response:
        body = await read_json(request)
        if not self.config.cvcrm_default_contract_type:
            raise ApiError(404, "Nenhum tipo de contrato padrão configurado")
        with self.lock:
            if body.get("idreserva_cv"):
                reserva = self._reserva(int(body["idreserva_cv"]))
            else:
                reserva = next((r for r in self.state.reservas.values()
                                if r["idreserva_int"] == str(body.get("idreserva_int"))), None)
                if reserva is None:
                    raise ApiError(404, "Reserva não encontrada", field="idreserva_int")
            contratos = body.get("contratos")
            if not isinstance(contratos, list) or not contratos:
                raise ApiError(400, "Informe ao menos um contrato", field="contratos")
            created = []
            saved: list[dict[str, Any]] = []
            for index, item in enumerate(contratos):
                try:
                    content = base64.b64decode(str(item["contrato_base64"]), validate=True)
                except (KeyError, TypeError, binascii.Error) as exc:
                    raise ApiError(400, "contrato_base64 inválido", field=f"contratos[{index}].contrato_base64") from exc
                if not is_pdf(content):
                    raise ApiError(400, "O contrato deve ser um PDF", field=f"contratos[{index}].contrato_base64")
                token = uuid.uuid4().hex
                self.state.files[token] = content
                kind = self._contract_type(item, f"contratos[{index}].")
                cid = self._next("contrato")
                entry = {"idreservacontrato": cid, "contrato": item.get("contrato_nome") or f"contrato-{cid}.pdf",
                         "tipo": kind["nome"], "idtipo": kind["idtipo"], "assinado": item.get("assinado", "N"),
                         "validado": item.get("validado", "N"), "link": f"{self.origin}/files/{token}"}
                self.state.contratos[reserva["idreserva"]].append(entry)
                created.append({"idreservacontrato": cid})
                saved.append(entry)
        for entry in saved:
            self.emit("CV", self._contract_gatilho(entry), entry["idreservacontrato"])
        return JSON({"codigo": 200, "mensagem": "Contrato(s) anexado(s)", "contratos": created}, 201)

    async def update_contrato(self, request: Request) -> Response:
        """``PUT /v1/comercial/reservas/{id}/contratos/{idreservacontrato}`` with ``{assinado, validado}``
        (S/N; the route and body are the sandbox's choice, UNCONFIRMED: CV documents none). The contract
        must belong to the reservation (404); other fields, or other values, are refused (400). Saving it
        fires the ``CV`` webhook as a CRM user's save does."""
        body = await read_json(request)
        if not isinstance(body, dict) or not body:
            raise ApiError(400, "Informe assinado e/ou validado")
        unknown = sorted(set(body) - set(CONTRACT_FLAGS))
        if unknown:
            raise ApiError(400, f"Campo(s) desconhecido(s): {', '.join(unknown)}", field=unknown[0])
        for key, value in body.items():
            if value not in ("S", "N"):
                raise ApiError(400, f"{key} deve ser S ou N", field=key)
        rid, cid = request.path_params["id"], request.path_params["cid"]
        with self.lock:
            self._reserva(rid)
            entry = next((c for c in self.state.contratos.get(rid, []) if c["idreservacontrato"] == cid), None)
            if entry is None:
                raise ApiError(404, f"Contrato {cid} não encontrado na reserva {rid}")
            entry.update(body)
            entry = dict(entry)
        self.emit("CV", self._contract_gatilho(entry), cid)
        return JSON({"codigo": 200, "mensagem": "Contrato atualizado", "idreservacontrato": cid,
                     "assinado": entry["assinado"], "validado": entry["validado"]})

    # ---- documentos -------------------------------------------------------------------------
    async def attach_documento(self, request: Request) -> Response:
        """``POST /v1/comercial/reservas/documentos`` with PROVIDERS.md §2's ``{idreserva, idtipo,
        idtipo_associacao, documento_base64}``: the reservation must exist (404), the type be one the CRM
        knows (400), the file a PDF or an image (400). Each call attaches one more document."""
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Corpo inválido")
        unknown = sorted(set(body) - {"idreserva", "idtipo", "idtipo_associacao", "documento_base64"})
        if unknown:
            raise ApiError(400, f"Campo(s) desconhecido(s): {', '.join(unknown)}", field=unknown[0])
        for name in ("idreserva", "idtipo"):
            if not isinstance(body.get(name), int) or isinstance(body.get(name), bool):
                raise ApiError(400, f"O campo {name} é obrigatório (número)", field=name)
        kind = next((t for t in DOCUMENT_TYPES if t["idtipo"] == body["idtipo"]), None)
        if kind is None:
            raise ApiError(400, f"Tipo de documento {body['idtipo']} não encontrado", field="idtipo")
        association = body.get("idtipo_associacao")
        if association is not None and association not in DOCUMENT_ASSOCIATIONS:
            raise ApiError(400, "idtipo_associacao inválido", field="idtipo_associacao")
        try:
            content = base64.b64decode(str(body.get("documento_base64") or ""), validate=True)
        except binascii.Error as exc:
            raise ApiError(400, "documento_base64 inválido", field="documento_base64") from exc
        if not (is_pdf(content) or content.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"))):
            raise ApiError(400, "O documento deve ser um PDF ou uma imagem", field="documento_base64")
        with self.lock:
            reserva = self._reserva(body["idreserva"])
            token = uuid.uuid4().hex
            self.state.files[token] = content
            did = self._next("documento")
            self.state.documentos.setdefault(reserva["idreserva"], []).append({
                "iddocumento": did, "idtipo": kind["idtipo"], "tipo": kind["nome"],
                "idtipo_associacao": association or 1,
                "associacao": DOCUMENT_ASSOCIATIONS[association or 1],
                "link": f"{self.origin}/files/{token}", "data_cad": agora(),
            })
        return JSON({"codigo": 200, "mensagem": "Documento anexado", "iddocumento": did}, 201)

    async def list_documentos(self, request: Request) -> Response:
        with self.lock:
            rid = request.path_params["id"]
            self._reserva(rid)
            return JSON({"codigo": 200, "documentos": list(self.state.documentos.get(rid, []))})

    # ---- contract types and saved contracts -------------------------------------------------
    @staticmethod
    def _contract_type(item: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        """The type an upload names (``idtipo`` or ``tipo``, a sandbox extension), else the default."""
        if item.get("idtipo") not in (None, ""):
            found = next((t for t in CONTRACT_TYPES if str(t["idtipo"]) == str(item["idtipo"])), None)
        elif item.get("tipo"):
            found = next((t for t in CONTRACT_TYPES if t["nome"].casefold() == str(item["tipo"]).casefold()), None)
        else:
            found = CONTRACT_TYPES[0]
        if found is None:
            raise ApiError(400, "Tipo de contrato não encontrado", field=f"{prefix}idtipo")
        return found

    @staticmethod
    def _contract_gatilho(entry: dict[str, Any]) -> int:
        if str(entry.get("assinado")).upper() == "S":
            return CONTRACT_GATILHOS["assinado"]
        return CONTRACT_GATILHOS["validado" if str(entry.get("validado")).upper() == "S" else "cadastrado"]

    def save_contrato(self, contract_id: int, **fields: Any) -> dict[str, Any]:
        """A CRM user edits and saves a contract (type, validado, assinado): CV fires its ``CV`` webhook."""
        with self.lock:
            entry = next((c for cs in self.state.contratos.values() for c in cs
                          if c["idreservacontrato"] == contract_id), None)
            if entry is None:
                raise ApiError(404, f"Contrato {contract_id} não encontrado")
            if fields.get("idtipo") not in (None, "") or fields.get("tipo"):
                kind = self._contract_type(fields)
                entry.update(tipo=kind["nome"], idtipo=kind["idtipo"])
            for key in ("validado", "assinado"):
                if fields.get(key) is not None:
                    entry[key] = str(fields[key]).upper()
            entry = dict(entry)
        self.emit("CV", self._contract_gatilho(entry), contract_id)
        return entry

    async def download(self, request: Request) -> Response:
        content = self.state.files.get(request.path_params["token"])
        if content is None:
            return Response("Not Found", 404)
        return Response(content, media_type="application/pdf")

    # ---- assistências -----------------------------------------------------------------------
    def _assistencia(self, aid: int) -> dict[str, Any]:
        record = self.state.assistencias.get(aid)
        if record is None:
            raise ApiError(404, f"Assistência {aid} não encontrada")
        return record

    async def list_assistencias(self, request: Request) -> Response:
        offset = int_param(request, "offset", 0) or 0
        limit = min(int_param(request, "limit", 50) or 50, 500)
        with self.lock:
            rows = list(self.state.assistencias.values())
            return JSON({"total": len(rows), "assistencias": rows[offset : offset + limit]})

    async def get_assistencia(self, request: Request) -> Response:
        with self.lock:
            return JSON(self._assistencia(request.path_params["id"]))

    async def put_assistencia(self, request: Request) -> Response:
        body = await read_json(request)
        with self.lock:
            record = self._assistencia(request.path_params["id"])
            if "data_conclusao" in body:
                try:
                    datetime.strptime(str(body["data_conclusao"]), "%d/%m/%Y")
                except ValueError as exc:
                    raise ApiError(400, "data_conclusao deve estar no formato DD/MM/AAAA",
                                   field="data_conclusao") from exc
                record["data_conclusao"] = body["data_conclusao"]
            if "prioridade" in body:
                if body["prioridade"] not in ("A", "N", "B"):
                    raise ApiError(400, "prioridade deve ser A, N ou B", field="prioridade")
                record["prioridade"] = body["prioridade"]
            if "ativo" in body:
                if body["ativo"] not in ("S", "N"):
                    raise ApiError(400, "ativo deve ser S ou N", field="ativo")
                record["ativo"] = body["ativo"]
            for key in ("parecer_tecnico", "idassistencia_erp"):
                if key in body:
                    record[key] = body[key]
            if isinstance(body.get("dados_assistencia"), dict):
                record["dados_assistencia"].update(body["dados_assistencia"])
                if "idassistencia_erp" in body["dados_assistencia"]:
                    record["idassistencia_erp"] = body["dados_assistencia"]["idassistencia_erp"]
            return JSON({"codigo": 200, "mensagem": "Assistência atualizada", "idassistencia": record["idassistencia"]})

    async def create_assistencia_route(self, request: Request) -> Response:
        body = await read_json(request)
        record = self.open_assistencia(**body) if isinstance(body, dict) else None
        assert record is not None
        return JSON({"codigo": 200, "mensagem": "Assistência cadastrada", "idassistencia": record["idassistencia"]}, 201)

    def open_assistencia(self, **body: Any) -> dict[str, Any]:
        """Open an assistência as staff or the buyer in the portal would (fires AS, gatilho 1)."""
        itens = body.get("itens")
        if not isinstance(itens, list) or not itens or not all(isinstance(i, dict) and i.get("iditem") for i in itens):
            raise ApiError(400, "Informe itens[{iditem}]", field="itens")
        if not any(body.get(k) for k in ("unidade", "area", "localidade", "idunidade")):
            raise ApiError(400, "Informe unidade, area ou localidade", field="unidade")
        with self.lock:
            pid = self._resolve_pessoa(body)
            pessoa = self.state.pessoas[pid]
            unidade = self.state.unidades.get(int(body.get("unidade") or body.get("idunidade") or 0))
            if unidade is None:
                raise ApiError(400, "Unidade não encontrada", field="unidade")
            emp = self.state.empreendimentos[unidade["idempreendimento"]]
            aid = max(self.state.assistencias, default=0) + 1
            aberta = self.state.workflows["AS"][0]
            record = {
                "idassistencia": aid, "idatendimento": 9000 + aid, "protocolo_atendimento": f"AT-2026-{aid:05d}",
                "idsituacao": aberta["idsituacao"], "situacao": aberta["nome"], "ativo": "S",
                "cliente": {"idpessoa": pid, "nome": pessoa["nome"], "documento": pessoa["documento"]},
                "empreendimento": {k: emp[k] for k in ("idempreendimento", "idempreendimento_int", "nome")},
                "unidade": {k: unidade[k] for k in ("idunidade", "idunidade_int", "nome")},
                "descricao": body.get("descricao") or "",
                "itens": [{"iditem": int(i["iditem"]), "descricao": i.get("descricao", f"Item {i['iditem']}"),
                           "situacao": "Aberto", **({"prazo_minimo_dias": i["prazo_minimo_dias"]}
                                                    if "prazo_minimo_dias" in i else {})} for i in itens],
                "anexos": [{"nome": a.get("nome"), "link": a.get("link")} for a in body.get("anexos") or []],
                "data_abertura": agora(), "data_conclusao": None, "prioridade": body.get("prioridade", "N"),
                "parecer_tecnico": None, "idassistencia_erp": None, "dados_assistencia": {},
            }
            self.state.assistencias[aid] = record
        self.emit("AS", aberta["idsituacao"], aid)
        return dict(record)

    async def change_situation_route(self, request: Request) -> Response:
        record = self.change_situation(request.path_params["id"], request.path_params["sit"])
        return JSON({"codigo": 200, "mensagem": "Situação alterada", "idassistencia": record["idassistencia"],
                     "idsituacao": record["idsituacao"]})

    def change_situation(self, assistencia_id: int, idsituacao: int) -> dict[str, Any]:
        """Move an assistência to a workflow situation (fires AS with that situation as gatilho)."""
        with self.lock:
            record = self._assistencia(assistencia_id)
            situacao = next((s for s in self.state.workflows["AS"] if s["idsituacao"] == idsituacao), None)
            if situacao is None:
                raise ApiError(400, f"Situação {idsituacao} não existe no workflow de assistências",
                               field="idSituacao")
            record["idsituacao"], record["situacao"] = situacao["idsituacao"], situacao["nome"]
            if situacao["final"] and not record["data_conclusao"]:
                record["data_conclusao"] = datetime.now(BRT).strftime("%d/%m/%Y")
            snapshot = dict(record)
        self.emit("AS", idsituacao, assistencia_id)
        return snapshot

    async def get_workflow(self, request: Request) -> Response:
        func = request.path_params["func"]
        code = ALIASES.get(func.lower(), func.upper())
        if code not in self.state.workflows:
            raise ApiError(404, f"Workflow {func} não encontrado")
        return JSON({"codigo": 200, "funcionalidade": code, "situacoes": self.state.workflows[code]})

    # ---- webhooks ---------------------------------------------------------------------------
    async def create_webhook(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Corpo inválido")
        if body.get("funcionalidade") not in FUNCIONALIDADES:
            raise ApiError(400, f"funcionalidade deve ser uma de {', '.join(FUNCIONALIDADES)}", field="funcionalidade")
        endereco = body.get("endereco")
        if not isinstance(endereco, str) or not endereco.startswith(("http://", "https://")):
            raise ApiError(400, "endereco deve ser uma URL http(s)", field="endereco")
        gatilho = body.get("gatilho")
        if not isinstance(gatilho, int) or isinstance(gatilho, bool):
            raise ApiError(400, "gatilho deve ser o id numérico da situação", field="gatilho")
        with self.lock:
            wid = self._next("webhook")
            hook = {"idwebhook": wid, "nome": body.get("nome") or f"webhook-{wid}",
                    "funcionalidade": body["funcionalidade"], "endereco": endereco, "gatilho": gatilho,
                    "ativoPainel": body.get("ativoPainel", "S"), "idempreendimento": body.get("idempreendimento") or [],
                    "idassunto": body.get("idassunto") or [], "idsubassunto": body.get("idsubassunto") or [],
                    "ativo": "S"}
            self.state.webhooks[wid] = hook
        return JSON({"codigo": 200, "mensagem": "Webhook cadastrado", "idwebhook": wid}, 201)

    async def list_webhooks(self, request: Request) -> Response:
        with self.lock:
            return JSON({"codigo": 200, "webhooks": list(self.state.webhooks.values())})

    async def delete_webhook(self, request: Request) -> Response:
        with self.lock:
            if self.state.webhooks.pop(request.path_params["id"], None) is None:
                raise ApiError(404, "Webhook não encontrado")
        return JSON({"codigo": 200, "mensagem": "Webhook removido"})

    async def list_triggers(self, request: Request) -> Response:
        func = (request.query_params.get("funcionalidade") or "").upper()
        triggers = [{"funcionalidade": code, "gatilho": s["idsituacao"], "nome": f"Quando entrar na situação {s['nome']}"}
                    for code, situacoes in self.state.workflows.items() if not func or code == func
                    for s in situacoes]
        triggers.append({"funcionalidade": "CL", "gatilho": 0, "nome": "Quando o cliente for cadastrado ou alterado"})
        if not func or func == "CV":
            triggers += [{"funcionalidade": "CV", "gatilho": g, "nome": f"Quando o contrato for salvo ({state})"}
                         for state, g in CONTRACT_GATILHOS.items()]
        return JSON({"codigo": 200, "gatilhos": triggers})

    def emit(self, funcionalidade: str, gatilho: int, object_id: int) -> int:
        """POST ids-only bodies to every matching webhook; returns how many were queued."""
        with self.lock:
            hooks = [h for h in self.state.webhooks.values()
                     if h["funcionalidade"] == funcionalidade and h["ativo"] == "S"
                     and h["gatilho"] in (gatilho, 0)]
        for hook in hooks:
            body = {"idwebhook": hook["idwebhook"], "funcionalidade": funcionalidade, "gatilho": gatilho,
                    "id": object_id, "enviado_em": datetime.now(BRT).isoformat(timespec="seconds")}
            payload = dumps(body)
            event_id = f"{funcionalidade}:{gatilho}:{object_id}:{uuid.uuid4().hex[:8]}"
            self.deliver(Delivery(system=self.name, event=f"{funcionalidade}:{gatilho}", event_id=event_id,
                                  url=hook["endereco"],
                                  build=lambda _n, p=payload: (p, {"content-type": "application/json",
                                                                   "user-agent": "CVCRM-Webhook (sandbox)"}),
                                  retry_delays=self.config.cvcrm_retry_delays))
        return len(hooks)

    # ---- control ----------------------------------------------------------------------------
    async def _ctl_enrich(self, request: Request) -> Response:
        return JSON(self.enrich_cliente(request.path_params["documento"], **(await read_json(request))))

    async def _ctl_save_contrato(self, request: Request) -> Response:
        return JSON(self.save_contrato(request.path_params["id"], **(await read_json(request))))

    async def _ctl_open(self, request: Request) -> Response:
        return JSON(self.open_assistencia(**(await read_json(request))), 201)

    async def _ctl_move(self, request: Request) -> Response:
        return JSON(self.change_situation(request.path_params["id"], request.path_params["sit"]))
