"""The standard connector tests (tests/connectors/standard.py) for every HTTP spec in connectors/specs.

Specs are discovered from the directory: a new YAML spec gets the standard class with the defaults read
from the spec, and fails naming what it still needs (a stand-in, a Paging for each paged stream, a route
for each endpoint or a reason it is not modelled). A spec with no stand-in at all fails until it gets one
or is listed in NO_SANDBOX with the reason.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from connectors.runtime.client import Connector
from connectors.sandbox.documents import text_pdf
from connectors.sandbox.launcher import Sandbox
from tests.connectors.standard import SANDBOX_SYSTEMS, Call, Paging, http_spec_names, standard_tests

SPECS_DIR = Path(__file__).resolve().parents[2] / "connectors" / "specs"

#: HTTP specs with no stand-in in the sandbox, each with the reason (none today)
NO_SANDBOX: dict[str, str] = {}

_PDF = base64.b64encode(text_pdf("Contrato", ["Standard connector tests"])).decode()


# ---- setups: make a sandbox hold more than one page -----------------------------------------------

def _sienge_assistances(sb: Sandbox, conn: Connector) -> None:
    state = sb.sienge.state
    unit = next(iter(state.units.values()))
    customer = next(iter(state.customers))
    for i in range(5):
        conn.call("create_technical_assistance", {
            "externalId": f"std-as-{i}", "enterpriseId": unit["enterpriseId"], "unitId": unit["id"],
            "customerId": customer, "description": "Infiltração", "openedAt": "2026-11-01T10:00:00",
            "items": [{"description": "Rejunte", "minimumCompletionDays": 15}]})


def _sienge_hooks(sb: Sandbox, conn: Connector) -> None:
    for i in range(5):
        conn.call("register_hook", {"url": f"{sb.urls['sink']}/std-hook-{i}", "events": ["CUSTOMER_UPDATED"]})


def _cvcrm_reservas(sb: Sandbox, conn: Connector) -> None:
    state = sb.cvcrm.state
    unidade = next(iter(state.unidades.values()))
    pessoa = next(iter(state.pessoas.values()))
    for i in range(5):
        conn.call("create_reserva", {"idreserva_int": f"std-sale-{i}", "idunidade": unidade["idunidade"],
                                     "idpessoa": pessoa["idpessoa"]})


def _docusign_envelopes(sb: Sandbox, conn: Connector) -> None:
    for i in range(5):
        conn.call("create_envelope", {
            "emailSubject": f"Contrato {i}", "status": "created",
            "documents": [{"documentId": "1", "name": "Contrato", "fileExtension": "pdf", "documentBase64": _PDF}],
            "recipients": {"signers": [{"recipientId": "1", "routingOrder": "1", "name": "Ana Souza",
                                        "email": "ana@example.com",
                                        "tabs": {"signHereTabs": [{"documentId": "1", "pageNumber": "1",
                                                                   "xPosition": "100", "yPosition": "100"}]}}]},
        }, idempotency_key=f"std:{i}")


def _clicksign_envelopes(sb: Sandbox, conn: Connector) -> None:
    for i in range(21):  # the stand-in answers 20 envelopes a page
        conn.call("create_envelope", {"name": f"Contrato {i}", "locale": "pt-BR", "auto_close": True})


def _zapsign_docs(sb: Sandbox, conn: Connector) -> None:
    for i in range(26):  # the stand-in answers 25 documents a page
        conn.call("create_doc", {
            "name": f"Contrato {i}", "document_base64": _PDF, "external_key": f"std:{i}",
            "signers": [{"name": "Ana Souza", "email": "ana@example.com", "routing_order": 1,
                         "selfie_required": False, "document_photo_required": False}]})


def _whatsapp_message(sb: Sandbox) -> dict[str, Any]:
    return {"to": "5511987654321", "template": {
        "name": "ponte_verificacao", "language": {"code": "pt_BR"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "123456"}]}]}}


_ONE_PAGE = "the stand-in lists one envelope's {} in a single page (no links.next); an envelope holds a few"

#: what only a person can say about each spec (everything else is read from the spec)
STANDARD: dict[str, dict[str, Any]] = {
    "sienge": dict(
        sandbox_args={"customers": 40, "enterprises": 3},
        page_size=2,
        paging={
            "customers": Paging(lambda sb: len(sb.sienge.state.customer_ids)),
            "sales_contracts": Paging(lambda sb: len(sb.sienge.state.contracts)),
            "enterprises": Paging(lambda sb: len(sb.sienge.state.enterprises)),
            "units": Paging(lambda sb: len(sb.sienge.state.units)),
            "technical_assistances": Paging(lambda sb: len(sb.sienge.state.assistances), setup=_sienge_assistances),
            "hooks": Paging(lambda sb: len(sb.sienge.state.hooks), setup=_sienge_hooks),
        },
    ),
    "cvcrm": dict(
        sandbox_args={"customers": 20, "assistances": 5},
        page_size=2,
        paging={
            "reservas": Paging(lambda sb: len(sb.cvcrm.state.reservas), setup=_cvcrm_reservas),
            "assistencias": Paging(lambda sb: len(sb.cvcrm.state.assistencias)),
        },
        not_modelled={"streams.contratos_assinados": "the stand-in serves no v3 route but the login; PROVIDERS.md "
                                                     "§2 documents GET /v3/comercial/reservas/{id}/contratos-assinados"},
    ),
    "docusign": dict(
        sandbox_args={"customers": 4},
        page_size=2,
        paging={"envelopes": Paging(lambda sb: len(sb.docusign.state.envelopes), params={"from_date": "2000-01-01"},
                                    setup=_docusign_envelopes)},
    ),
    "clicksign": dict(
        sandbox_args={"customers": 4},
        paging={"envelopes": Paging(lambda sb: len(sb.clicksign.state.envelopes), setup=_clicksign_envelopes)},
        not_paged={name: _ONE_PAGE.format(name) for name in
                   ("documents", "signers", "signature_watchers", "requirements", "events")},
        webhook_routes={"events": ("POST", "/api/v3/webhooks")},
    ),
    "zapsign": dict(
        sandbox_args={"customers": 4},
        tenant_connector=lambda sb: {
            "spec": "zapsign", "values": {"base_url": sb.urls["zapsign"]},
            "credentials": {
                "api_token": {"env": "PONTE_STANDARD_ZAPSIGN_TOKEN", "default": sb.config.zapsign_token},
                "webhook_secret": {"env": "PONTE_STANDARD_ZAPSIGN_SECRET",
                                   "default": sb.config.zapsign_webhook_secret},
            }},
        paging={"docs": Paging(lambda sb: sum(1 for d in sb.zapsign.state.docs.values() if d["status"] != "deleted"),
                               setup=_zapsign_docs)},
    ),
    "whatsapp": dict(
        sandbox_args={"customers": 4},
        sample_call=Call("send_template", _whatsapp_message),
        # Meta's subscription is set in the app dashboard; the stand-in's control route takes its URL
        webhook_routes={"messages": ("POST", "/_sandbox/webhook")},
    ),
}


_HTTP_SPECS = http_spec_names(SPECS_DIR)

for _name in _HTTP_SPECS:
    if _name not in NO_SANDBOX:  # a spec without an entry runs on the defaults and fails naming what it needs
        _cls = standard_tests(_name, **STANDARD.get(_name, {}))
        globals()[_cls.__name__] = _cls
del _name, _cls


def test_every_http_spec_has_a_sandbox_or_a_reason() -> None:
    missing = [n for n in _HTTP_SPECS if n not in NO_SANDBOX
               and STANDARD.get(n, {}).get("sandbox_key", n) not in SANDBOX_SYSTEMS]
    assert not missing, "; ".join(f"add a sandbox for spec {n} or list it in NO_SANDBOX with a reason"
                                  for n in missing)
    stale = sorted(set(NO_SANDBOX) - set(_HTTP_SPECS)) + sorted(set(STANDARD) - set(_HTTP_SPECS))
    assert not stale, f"NO_SANDBOX/STANDARD name specs that connectors/specs does not hold: {stale}"
    unexplained = [n for n, reason in NO_SANDBOX.items() if not reason.strip()]
    assert not unexplained, f"NO_SANDBOX entries without a reason: {unexplained}"
