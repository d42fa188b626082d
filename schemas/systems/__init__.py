"""Payloads of the outside systems that mappings read or write.

``SYSTEM_SCHEMAS`` names each by ``<system>/<payload>``; mappings reference them by that key
(``source: sienge/customer``) and the exporter writes ``schemas/json/systems/<key>.schema.json``.
"""

from __future__ import annotations

from pydantic import BaseModel

from schemas.systems.clicksign import (
    ClicksignDocumentCreate,
    ClicksignEnvelopeCreate,
    ClicksignEnvelopeRequests,
    ClicksignSignerCreate,
    ClicksignWebhook,
)
from schemas.systems.cvcrm import (
    UNCONFIRMED_LIMIT,
    CvAssistencia,
    CvAssistenciaUpdate,
    CvCliente,
    CvContrato,
    CvReserva,
)
from schemas.systems.docusign import DocusignConnectEvent, DocusignEnvelopeDefinition
from schemas.systems.sienge import (
    SiengeCustomer,
    SiengeEnterprise,
    SiengeHookCreate,
    SiengeSalesContract,
    SiengeTechnicalAssistance,
    SiengeUnit,
)
from schemas.systems.signing import SigningProviderPayload
from schemas.systems.whatsapp import WhatsappTemplateMessage, WhatsappWebhook

SYSTEM_SCHEMAS: dict[str, type[BaseModel]] = {
    "sienge/customer": SiengeCustomer,
    "sienge/enterprise": SiengeEnterprise,
    "sienge/unit": SiengeUnit,
    "sienge/sales_contract": SiengeSalesContract,
    "sienge/technical_assistance": SiengeTechnicalAssistance,
    "sienge/hook_create": SiengeHookCreate,
    "cvcrm/cliente": CvCliente,
    "cvcrm/reserva": CvReserva,
    "cvcrm/contrato": CvContrato,
    "cvcrm/assistencia": CvAssistencia,
    "cvcrm/assistencia_update": CvAssistenciaUpdate,
    "docusign/envelope_definition": DocusignEnvelopeDefinition,
    "docusign/connect_event": DocusignConnectEvent,
    "clicksign/envelope_create": ClicksignEnvelopeCreate,
    "clicksign/document_create": ClicksignDocumentCreate,
    "clicksign/signer_create": ClicksignSignerCreate,
    "clicksign/envelope_requests": ClicksignEnvelopeRequests,
    "clicksign/webhook": ClicksignWebhook,
    "whatsapp/template_message": WhatsappTemplateMessage,
    "whatsapp/webhook": WhatsappWebhook,
    "signing/provider_payload": SigningProviderPayload,
}

__all__ = [
    "SYSTEM_SCHEMAS",
    "UNCONFIRMED_LIMIT",
]
