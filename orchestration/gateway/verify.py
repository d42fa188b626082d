"""The public verification page the QR code on a signed PDF points at: ``GET /verify/{code}``.

Anyone holding the paper can check it: the page shows the document name, its SHA-256, each signer with a
masked CPF and name, times (in the tenant's ``options.timezone``, zone shown) and status;
``/verify/{code}.json`` (or ``Accept: application/json``) gives the same as JSON (times in UTC);
``POST /verify/{code}/check`` with the PDF's bytes says whether a file is the one Ponte stored; an
unknown code is a 404 page saying what to check and whom to ask. Only masked data leaves: the page is
unauthenticated by design. The uploaded file is hashed as it streams and never held: an unknown code is
refused before the upload is read, and an upload over the limit as soon as it declares or crosses it
(``orchestration/gateway/bodies.py``).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from orchestration.gateway.bodies import BodyCutShort, BodyTooLarge, chunks, declared_length, refusal
from pipelines.backsync.history import verification
from pipelines.store import Envelope, Store
from schemas import TenantConfig, TenantOptions

MAX_CHECK_BYTES = 50 * 1024 * 1024
#: the zone of a document whose tenant this gateway does not know (the tenant option's default)
DEFAULT_ZONE = str(TenantOptions.model_fields["timezone"].default)
#: a code worth repeating on the "not found" page (anything else is not echoed back)
CODE_SHAPE = re.compile(r"[A-Za-z0-9-]{1,64}")
STATUS_PT = {
    "completed": "Assinado por todos",
    "sent": "Aguardando assinaturas",
    "delivered": "Aguardando assinaturas",
    "declined": "Recusado",
    "voided": "Cancelado",
    "expired": "Expirado",
    "draft": "Rascunho",
    "signed": "Assinou",
    "waiting": "Aguardando a vez",
    "created": "Aguardando",
}
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f3f5f8;margin:0;
line-height:1.5}header{background:#183a5a;color:#fff;padding:.8rem 1rem}header p{max-width:46rem;margin:0 auto;
font-weight:600;letter-spacing:.02em}main{max-width:46rem;margin:1.5rem auto;padding:0 1rem}
.card{background:#fff;border:1px solid #dde2ea;border-radius:.5rem;padding:1.2rem 1.4rem;margin-bottom:1.2rem}
h1{font-size:1.5rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:0 0 .6rem}.ok{color:#05690f}.no{color:#a10}
dl{display:grid;grid-template-columns:minmax(8rem,13rem) 1fr;gap:.4rem 1rem;margin:0}dt{font-weight:600}
dd{margin:0;min-width:0}
code{word-break:break-all;font-size:.9em}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #e3e7ee;padding:.4rem .3rem;text-align:left;vertical-align:top}
.note{color:#5a6372;font-size:.9rem}#r{display:block;margin-top:.6rem;font-weight:600;overflow-wrap:anywhere}
input[type=text]{font:inherit;padding:.35rem .5rem;border:1px solid #b9c1cd;border-radius:.3rem;width:16rem}
button{font:inherit;padding:.35rem .9rem;border:0;border-radius:.3rem;background:#183a5a;color:#fff;cursor:pointer}
footer{max-width:46rem;margin:0 auto 2rem;padding:0 1rem}
"""


def _layout(title: str, body: str) -> str:
    e = html.escape
    return f"""<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>{e(title)}</title><style>{STYLE}</style></head><body>
<header><p>Verificação de documento assinado</p></header><main>{body}</main>
<footer class="note">Página pública de verificação: mostra apenas dados mascarados de quem assinou.</footer></body></html>"""


def _when(value: str | None, zone: ZoneInfo) -> str:
    """An ISO timestamp as the tenant reads it: ``12/03/2026 14:05 -03`` (the zone's abbreviation)."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return html.escape(value)
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(zone)
    return f'<time datetime="{html.escape(value)}">{moment:%d/%m/%Y %H:%M} {moment:%Z}</time>'


def _page(proof: dict[str, Any], zone: ZoneInfo) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{s['order']}</td><td>{e(s['name'] or '')}</td><td>{e(s['cpf'] or '')}</td>"
        f"<td>{e(STATUS_PT.get(s['status'], s['status']))}</td><td>{_when(s['signed_at'], zone)}</td></tr>"
        for s in proof["signers"]
    )
    verdict = "Documento válido" if proof["valid"] else "Documento ainda não assinado por todos"
    offset = datetime.now(zone).strftime("%z")
    body = f"""<section class="card">
<h1 id="verdict" class="{"ok" if proof["valid"] else "no"}">{verdict}</h1>
<dl><dt>Documento</dt><dd id="document">{e(proof["document"] or "")}</dd>
<dt>Código de verificação</dt><dd><code id="code">{e(proof["code"])}</code></dd>
<dt>Situação</dt><dd id="status">{e(STATUS_PT.get(proof["status"], proof["status"]))}</dd>
<dt>Enviado em</dt><dd>{_when(proof.get("sent_at"), zone)}</dd>
<dt>Concluído em</dt><dd id="completed">{_when(proof["completed_at"], zone)}</dd>
<dt>SHA-256 do arquivo assinado (com o selo de verificação)</dt><dd><code id="sha">{e(proof["sha256"] or "-")}</code></dd>
<dt>SHA-256 do arquivo original do provedor</dt><dd><code id="psha">{e(proof.get("provider_sha256") or "-")}</code></dd>
</dl></section>
<section class="card"><h2>Signatários</h2>
<table id="signers"><tr><th>#</th><th>Signatário</th><th>CPF</th><th>Situação</th><th>Assinado em</th></tr>{rows}</table>
<p class="note" id="zone">Horários no fuso {e(zone.key)} (UTC{offset[:3]}:{offset[3:]}).</p></section>
<section class="card"><h2>Conferir um arquivo</h2>
<p class="note">Escolha o PDF que você recebeu: ele é comparado pelo SHA-256 com o documento guardado.</p>
<input type="file" id="f" accept="application/pdf"> <span id="r" role="status"></span></section>
<p><a href="{e(proof["code"])}.json">Os mesmos dados em JSON</a></p>
<script>document.getElementById('f').onchange=async e=>{{const out=document.getElementById('r');
const file=e.target.files[0];if(!file)return;out.className='';delete out.dataset.matches;
out.textContent='Conferindo…';
try{{const r=await fetch(location.pathname.replace(/\\/$/,'')+'/check',{{method:'POST',body:await file.arrayBuffer()}});
const j=await r.json();if(!r.ok){{out.className='no';out.textContent='Não foi possível conferir o arquivo: '+(r.status===413?
'ele passa do limite de {MAX_CHECK_BYTES // (1024 * 1024)} MB.':'tente de novo.');return;}}
out.className=j.matches?'ok':'no';out.dataset.matches=j.matches;
out.textContent=j.matched==='stamped'?'O arquivo confere com o documento assinado.':
j.matched==='provider'?'O arquivo confere com o original assinado no provedor.':
'O arquivo NÃO confere com este documento (SHA-256 '+j.sha256+').';}}
catch(err){{out.className='no';out.textContent='Não foi possível conferir o arquivo agora. Tente de novo.';}}}};</script>"""
    return _layout(f"Verificação {proof['code']}", body)


def _not_found(code: str) -> str:
    e = html.escape
    named = f" com o código <code>{e(code)}</code>" if CODE_SHAPE.fullmatch(code) else " com esse código"
    body = f"""<section class="card">
<h1 class="no">Código de verificação desconhecido</h1>
<p id="explain">Não encontramos nenhum documento{named}. Isso acontece quando o código foi digitado ou copiado
com algum erro, quando o link foi cortado (por exemplo, ao ser encaminhado numa mensagem) ou quando o documento
não foi assinado por meio deste serviço.</p>
<h2>O que fazer</h2><ul id="todo">
<li>Leia de novo o QR code impresso no documento, ou confira o código ao lado dele: são letras e números, sem
espaços.</li>
<li>Se você digitou o endereço, confira-o letra por letra; você também pode digitar o código aqui:
<form id="again" onsubmit="event.preventDefault();const c=this.code.value.trim();if(c)location.href=
'/verify/'+encodeURIComponent(c);"><input type="text" name="code" aria-label="Código de verificação"
placeholder="Código de verificação" autocomplete="off"> <button>Verificar</button></form></li>
<li>Se o código estiver certo e mesmo assim o documento não aparecer, fale com quem enviou o documento: só ele
pode confirmar se o documento é autêntico.</li></ul></section>"""
    return _layout("Código de verificação desconhecido", body)


def verify_routes(store: Store, tenants: Mapping[str, TenantConfig] | None = None) -> list[Route]:
    """The page, its JSON and the file check; times on the page are in the document's tenant's
    ``options.timezone`` (the option's default for a tenant not in ``tenants``)."""

    def zone_of(code: str) -> ZoneInfo:
        with store.session() as session:
            tenant_id = session.scalar(select(Envelope.tenant).where(Envelope.verification_code == code).limit(1))
        tenant = (tenants or {}).get(tenant_id or "")
        return ZoneInfo(tenant.options.timezone if tenant is not None else DEFAULT_ZONE)

    def render(code: str) -> tuple[int, str]:
        proof = verification(store, code)
        if proof is None:
            return 404, _not_found(code)
        return 200, _page(proof, zone_of(code))

    async def show_json(request: Request) -> Response:
        proof = await run_in_threadpool(verification, store, request.path_params["code"])
        if proof is None:
            return JSONResponse({"error": "unknown verification code"}, status_code=404)
        return JSONResponse(proof)

    async def show(request: Request) -> Response:
        wants_json = request.query_params.get(
            "format"
        ) == "json" or "application/json" in request.headers.get("accept", "")
        if wants_json:
            return await show_json(request)
        status, page = await run_in_threadpool(render, request.path_params["code"])
        return HTMLResponse(page, status_code=status)

    async def check(request: Request) -> Response:
        """Does an uploaded PDF match the stored signed file? (SHA-256 of the bytes, hashed as they arrive)."""
        empty = "send the PDF's bytes as the request body"
        if declared_length(request) == 0:
            return refusal(400, empty)
        code = request.path_params["code"]
        proof = await run_in_threadpool(verification, store, code)
        if proof is None:
            return refusal(404, "unknown verification code", request)
        digest, size = hashlib.sha256(), 0
        try:
            async for chunk in chunks(request, MAX_CHECK_BYTES):
                digest.update(chunk)
                size += len(chunk)
        except BodyTooLarge:
            return refusal(413, "file too large", request)
        except BodyCutShort:
            return refusal(400, "upload cut short", request)
        if not size:
            return refusal(400, empty)
        sha256 = digest.hexdigest()
        expected, provider = proof["sha256"], proof.get("provider_sha256")
        # either file proves the document: the stamped one Ponte stored, or the provider's own (sealed)
        matched = "stamped" if expected and sha256 == expected else "provider" if provider and sha256 == provider \
            else None
        return JSONResponse(
            {
                "code": code,
                "matches": matched is not None,
                "matched": matched,
                "sha256": sha256,
                "expected_sha256": expected,
                "provider_sha256": provider,
            }
        )

    return [
        Route("/verify/{code}.json", show_json, methods=["GET"]),
        Route("/verify/{code}/check", check, methods=["POST"]),
        Route("/verify/{code}", show, methods=["GET"]),
    ]
