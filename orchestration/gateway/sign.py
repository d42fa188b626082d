"""The link in Ponte's own invitations (``notifications.by: ponte``): ``GET /sign/{token}``.

A DocuSign recipient view URL lives minutes and opens once, so it cannot be what a WhatsApp message or
an e-mail carries (PROVIDERS.md §3.7). The invitation carries ``<gateway>/sign/<token>`` instead
(``pipelines/dispatch/signing_links.py``: signed with ``PONTE_SIGNING_LINK_SECRET``, expiring, for one
signer of one envelope), and each click here:

1. checks the token (a forged, altered or malformed one: 404; an expired one: 410; never a view);
2. checks in Ponte's store that the envelope is still out for signature and the signer has not signed,
   then asks DocuSign for the envelope's recipients (one GET) to see the signer as DocuSign does now:
   already signed → a clear "already signed" page (200); declined, voided, expired → 410; not their
   turn yet → 409; not an embedded recipient → 409 (DocuSign e-mails such a signer itself);
3. asks DocuSign for a fresh recipient view (``create_recipient_view``: returnUrl, authenticationMethod,
   email, userName, clientUserId, as DocuSign holds the recipient) and redirects there (303).

DocuSign sends the browser back to ``/sign/done?event=...`` (a thank-you page; the event is a hint for
the person, never a state change: the signature reaches Ponte by Connect and back-sync). Link previews
(WhatsApp's, ``HEAD`` requests) get a page without a view, so a preview never opens the document in the
signer's name; its button (``?abrir=1``) opens it for a person whose browser looks like a bot. Nothing here logs a token, a view URL or an e-mail: the lines name the tenant, envelope
and signer ids only, and the access log masks the token (``ponte.redaction.redact_url``). A provider
outage is a 503 page with ``Retry-After``; every answer is ``Cache-Control: no-store`` and
``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from pipelines.connections import ConnectorPool
from pipelines.dispatch.signers import FINAL_SIGNER, STOPPED_SIGNER
from pipelines.dispatch.signing_links import (
    AUTHENTICATION_METHOD,
    LINK_PROVIDERS,
    BadLink,
    client_user_id,
    provider_spec,
    read_token,
)
from pipelines.store import Envelope, EnvelopeSigner, Store
from ponte import ConfigurationError, PonteError, TransientError, get_logger
from schemas import TenantConfig

log = get_logger("gateway.sign")

#: user agents of link-preview fetchers (chat apps, social cards): they get a page, never a view
PREVIEW_AGENTS = ("whatsapp", "facebookexternalhit", "facebot", "twitterbot", "slackbot", "telegrambot",
                  "linkedinbot", "discordbot", "skypeuripreview", "googlebot", "bingbot")
CLOSED_ENVELOPE = frozenset({"declined", "voided", "expired"})
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
DONE_TEXT = {
    "signing_complete": ("Assinatura concluída", "Obrigado! Sua assinatura foi registrada. Você já pode fechar "
                         "esta página."),
    "decline": ("Assinatura recusada", "Você recusou a assinatura. Quem enviou o documento será avisado."),
    "viewing_complete": ("Documento visualizado", "Você pode fechar esta página."),
    "cancel": ("Assinatura não concluída", "Você pode voltar ao convite e abrir o link de novo para terminar."),
    "session_timeout": ("Sessão expirada", "A sessão terminou. Abra o link do convite de novo para continuar."),
    "ttl_expired": ("Sessão expirada", "Abra o link do convite de novo para continuar."),
}


def _page(
    title: str, text: str, status: int = 200, *, retry_after: int | None = None, extra: str = ""
) -> HTMLResponse:
    e = html.escape
    headers = dict(HEADERS)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return HTMLResponse(
        f'<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(title)}</title>'
        f"<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}"
        f"</style></head><body><h1>{e(title)}</h1><p>{e(text)}</p>{extra}</body></html>",
        status_code=status,
        headers=headers,
    )


def invalid() -> HTMLResponse:
    return _page("Link inválido", "Este link de assinatura não é válido. Use o link exatamente como veio no "
                 "convite, ou peça um novo convite a quem enviou o documento.", 404)


@dataclass(frozen=True)
class _Signer:
    """What the click needs from Ponte's store (read in one short transaction)."""

    tenant: TenantConfig
    envelope_id: int
    contract_id: str
    provider: str
    provider_envelope_id: str
    envelope_status: str
    signer_id: int
    role: str
    status: str
    channel: str
    recipient_id: str


class SignLinks:
    def __init__(self, store: Store, tenants: Mapping[str, TenantConfig], connectors: ConnectorPool | None) -> None:
        self.store = store
        self.tenants = tenants
        # one connector per (tenant, provider), sharing the tenant's rate budget with every other process
        self.connectors = connectors or ConnectorPool(store)

    def _signer(self, token: str) -> _Signer | HTMLResponse:
        try:
            claims = read_token(token)
        except BadLink as bad:
            if bad.reason == "expired":
                return _page("Link expirado", "Este link de assinatura expirou. Peça um novo convite a quem "
                             "enviou o documento.", 410)
            return invalid()
        tenant = self.tenants.get(claims.tenant)
        if tenant is None:
            return invalid()
        with self.store.session() as session:
            envelope = session.get(Envelope, claims.envelope_id)
            signer = session.get(EnvelopeSigner, claims.signer_id)
            if (envelope is None or signer is None or envelope.tenant != tenant.id
                    or signer.envelope_id != envelope.id or not envelope.provider_envelope_id):
                return invalid()
            return _Signer(tenant, envelope.id, envelope.contract_id, envelope.provider,
                           envelope.provider_envelope_id, envelope.status, signer.id, signer.role, signer.status,
                           signer.channel, signer.provider_recipient_id or "")

    def open(self, token: str) -> Response:
        """One click: the checks, then a fresh recipient view (or the page saying why not)."""
        try:
            found = self._signer(token)
        except ConfigurationError as exc:  # no secret on this gateway: nobody's link can be checked
            log.error("signing links cannot be opened on this gateway: %s", exc)
            return _page("Serviço indisponível", "Tente de novo em alguns minutos.", 503, retry_after=300)
        if isinstance(found, HTMLResponse):
            return found
        s = found
        where = f"tenant {s.tenant.id} envelope {s.envelope_id} signer {s.signer_id}"
        if provider_spec(s.tenant, s.provider) not in LINK_PROVIDERS:
            return invalid()
        if s.envelope_status == "completed" or s.status in FINAL_SIGNER:
            return self._already_signed()
        if s.envelope_status in CLOSED_ENVELOPE or s.status in STOPPED_SIGNER:
            return self._closed()
        try:
            conn = self.connectors.get(s.tenant, s.provider)
            recipients = list(conn.read("recipients", params={"envelope_id": s.provider_envelope_id}))
            at = next((r for r in recipients if str(r.get("recipientId")) == s.recipient_id), None)
            if at is None:
                log.warning("signing link of %s: the recipient is not in the envelope at the provider", where)
                return invalid()
            status = str(at.get("status") or "")
            if status in ("completed", "signed"):
                return self._already_signed()
            if status in ("declined", "autoresponded"):
                return self._closed()
            if status == "created":
                return _page("Ainda não é a sua vez", "Outra pessoa precisa assinar antes de você. Você receberá "
                             "o link de novo quando chegar a sua vez.", 409)
            if not at.get("clientUserId") or at.get("clientUserId") != client_user_id(s.contract_id, s.role):
                log.warning("signing link of %s: the recipient is not embedded; DocuSign invites it itself", where)
                return _page("Use o convite da DocuSign", "Este documento deve ser assinado pelo link do e-mail "
                             "que a DocuSign enviou.", 409)
            result = conn.call("create_recipient_view", {
                "envelope_id": s.provider_envelope_id,
                "returnUrl": f"{s.tenant.options.verification_base_url.rstrip('/')}/sign/done",
                "authenticationMethod": AUTHENTICATION_METHOD.get(s.channel, "None"),
                "email": at.get("email"),
                "userName": at.get("name"),
                "clientUserId": at.get("clientUserId"),
            })
        except TransientError as exc:
            log.warning("signing link of %s: the provider is unavailable: %s", where, type(exc).__name__)
            return _page("Serviço indisponível", "O provedor de assinatura não respondeu. Tente de novo em "
                         "alguns minutos.", 503, retry_after=60)
        except PonteError as exc:
            log.warning("signing link of %s: the provider gave no view: %s", where, exc.message)
            return _page("Não foi possível abrir o documento", "O documento não está disponível para assinatura "
                         "agora. Se isso continuar, fale com quem enviou o documento.", 409)
        url = str((result.data or {}).get("url") or result.id or "")
        if not url.startswith(("https://", "http://")):
            log.warning("signing link of %s: the provider answered without a view URL", where)
            return _page("Não foi possível abrir o documento", "Tente de novo em alguns minutos.", 503,
                         retry_after=60)
        log.info("signing link of %s opened: redirected to a fresh recipient view", where)
        return RedirectResponse(url, status_code=303, headers=HEADERS)

    @staticmethod
    def _already_signed() -> HTMLResponse:
        return _page("Você já assinou", "Você já assinou este documento. Não é preciso fazer mais nada; quem "
                     "enviou o documento receberá a via assinada.")

    @staticmethod
    def _closed() -> HTMLResponse:
        return _page("Documento indisponível", "Este documento não está mais disponível para assinatura (foi "
                     "recusado, cancelado ou expirou). Fale com quem enviou o documento.", 410)


def sign_routes(
    store: Store, tenants: Mapping[str, TenantConfig], connectors: ConnectorPool | None = None
) -> list[Route]:
    """``GET /sign/{token}`` and DocuSign's return page ``GET /sign/done``, for the gateway app."""
    links = SignLinks(store, tenants, connectors)

    async def open_link(request: Request) -> Response:
        agent = request.headers.get("user-agent", "").lower()
        asked = request.query_params.get("abrir") == "1"  # the preview page's button: a person, whatever the agent
        if request.method == "HEAD" or (not asked and any(bot in agent for bot in PREVIEW_AGENTS)):
            return _page("Documento para assinatura", "Toque no botão para ver e assinar o documento.",
                         extra='<form method="get"><input type="hidden" name="abrir" value="1">'
                               "<button>Abrir o documento</button></form>")
        return await run_in_threadpool(links.open, request.path_params["token"])

    async def done(request: Request) -> Response:
        title, text = DONE_TEXT.get(request.query_params.get("event", ""),
                                    ("Assinatura", "Você pode fechar esta página."))
        return _page(title, text)

    return [
        Route("/sign/done", done, methods=["GET"]),
        Route("/sign/{token}", open_link, methods=["GET"]),
    ]
