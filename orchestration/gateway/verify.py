"""The public verification page the QR code on a signed PDF points at: ``GET /verify/{code}``.

Anyone holding the paper can check it: the page shows the document name, its SHA-256, each signer with a
masked CPF and name, times and status; ``/verify/{code}.json`` (or ``Accept: application/json``) gives
the same as JSON; ``POST /verify/{code}/check`` with the PDF's bytes says whether a file is the one
Ponte stored. Only masked data leaves: the page is unauthenticated by design. The uploaded file is
hashed as it streams and never held: an unknown code is refused before the upload is read, and an
upload over the limit as soon as it declares or crosses it (``orchestration/gateway/bodies.py``).
"""

from __future__ import annotations

import hashlib
import html
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from orchestration.gateway.bodies import BodyCutShort, BodyTooLarge, chunks, declared_length, refusal
from pipelines.backsync.history import verification
from pipelines.store.db import Store

MAX_CHECK_BYTES = 50 * 1024 * 1024
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


def _page(proof: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{s['order']}</td><td>{e(s['name'] or '')}</td><td>{e(s['cpf'] or '')}</td>"
        f"<td>{e(STATUS_PT.get(s['status'], s['status']))}</td><td>{e(s['signed_at'] or '')}</td></tr>"
        for s in proof["signers"]
    )
    verdict = "Documento válido" if proof["valid"] else "Documento ainda não assinado por todos"
    return f"""<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Verificação {e(proof["code"])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
code{{word-break:break-all}}table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;
padding:.3rem;text-align:left}}.ok{{color:#05690f}}.no{{color:#a10}}</style></head><body>
<h1 class="{"ok" if proof["valid"] else "no"}">{verdict}</h1>
<p><b>Documento:</b> {e(proof["document"] or "")}<br><b>Código:</b> {e(proof["code"])}<br>
<b>Situação:</b> {e(STATUS_PT.get(proof["status"], proof["status"]))}<br>
<b>Concluído em:</b> {e(proof["completed_at"] or "-")}<br>
<b>SHA-256 do arquivo assinado (com o selo de verificação):</b> <code id="sha">{e(proof["sha256"] or "-")}</code><br>
<b>SHA-256 do arquivo original do provedor:</b> <code id="psha">{e(proof.get("provider_sha256") or "-")}</code></p>
<table><tr><th>#</th><th>Signatário</th><th>CPF</th><th>Situação</th><th>Assinado em</th></tr>{rows}</table>
<h2>Conferir um arquivo</h2><input type="file" id="f" accept="application/pdf"> <span id="r"></span>
<script>document.getElementById('f').onchange=async e=>{{const b=await e.target.files[0].arrayBuffer();
const r=await fetch(location.pathname.replace(/\\/$/,'')+'/check',{{method:'POST',body:b}});const j=await r.json();
document.getElementById('r').textContent=j.matched==='stamped'?'O arquivo confere com o documento assinado.':
j.matched==='provider'?'O arquivo confere com o original assinado no provedor.':
'O arquivo NÃO confere (SHA-256 '+j.sha256+').';}}</script>
<p><a href="{e(proof["code"])}.json">JSON</a></p></body></html>"""


def verify_routes(store: Store) -> list[Route]:
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
        proof = await run_in_threadpool(verification, store, request.path_params["code"])
        if proof is None:
            return HTMLResponse("<h1>Código de verificação desconhecido</h1>", status_code=404)
        return HTMLResponse(_page(proof))

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
