"""Named enum tables: each outside system's codes and spellings, and the canonical value each one means.

A mapping names a table in the ``enum`` transform (``{enum: sienge_civil_status}``, see
:mod:`mappings.transforms`); matching folds case and accents, so a table lists a spelling once. A table's
name starts with the system whose values it reads or writes. Adding a table here makes it available
to every mapping; ``docs/mappings.md`` lists them.
"""

from __future__ import annotations

from typing import Any

#: Sienge's codes and spellings -> canonical values
SIENGE_TABLES: dict[str, dict[str, Any]] = {
    "sienge_sale_situation": {"0": "requested", "1": "authorized", "2": "issued", "3": "cancelled"},
    "sienge_person_type": {"física": "individual", "f": "individual", "fisica": "individual",
                           "jurídica": "company", "j": "company", "juridica": "company"},
    "sienge_civil_status": {
        "solteiro(a)": "single", "solteiro": "single", "solteira": "single",
        "casado(a)": "married", "casado": "married", "casada": "married",
        "união estável": "stable_union", "uniao estavel": "stable_union", "convivente": "stable_union",
        "divorciado(a)": "divorced", "divorciado": "divorced", "divorciada": "divorced",
        "separado(a)": "separated", "separado": "separated", "separada": "separated",
        "separado(a) judicialmente": "separated",
        "viúvo(a)": "widowed", "viuvo": "widowed", "viúvo": "widowed", "viúva": "widowed",
        "outros": "unknown", "": "unknown",
    },
    "sienge_assistance_status": {"open": "open", "in_progress": "in_progress", "finished": "finished",
                                 "canceled": "cancelled", "cancelled": "cancelled", "deleted": "deleted"},
}

#: CV CRM's spellings <-> canonical values (civil status and sale situation are written to the CRM)
CVCRM_TABLES: dict[str, dict[str, Any]] = {
    "cvcrm_civil_status": {
        "single": "Solteiro(a)", "married": "Casado(a)", "stable_union": "União Estável",
        "divorced": "Divorciado(a)", "separated": "Separado(a)", "widowed": "Viúvo(a)", "unknown": None,
    },
    "cvcrm_sale_situation": {"requested": "solicitada", "authorized": "autorizada", "issued": "vendida",
                             "cancelled": "cancelada"},
    "cvcrm_signer_role": {"titular": "client", "cliente": "client", "comprador": "client",
                          "conjuge": "spouse", "cônjuge": "spouse", "cocomprador": "co_buyer",
                          "testemunha": "witness", "representante": "company_representative",
                          "testemunha_empresa": "company_witness"},
    "cvcrm_override": {"sim": "yes", "s": "yes", "nao": "no", "não": "no", "n": "no", "padrao": "default",
                       "padrão": "default"},
    "cvcrm_signature_pages": {"todas": "all", "primeira": "first", "ultima": "last", "última": "last"},
}

#: the signing providers' and WhatsApp's event and status names -> canonical kinds
PROVIDER_TABLES: dict[str, dict[str, Any]] = {
    "docusign_event_kind": {
        "envelope-sent": "sent", "recipient-sent": "sent",
        "envelope-delivered": "view", "recipient-delivered": "view",
        "recipient-completed": "signature", "envelope-completed": "completion",
        "envelope-declined": "refusal", "recipient-declined": "refusal",
        "envelope-voided": "cancellation", "recipient-autoresponded": "delivery_failure",
    },
    "clicksign_event_kind": {
        "sign": "signature", "view": "view", "refusal": "refusal", "close": "completion",
        "auto_close": "completion", "deadline": "expiry", "cancel": "cancellation",
    },
    "whatsapp_status": {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"},
}

#: every named table (``{enum: <name>}``), by name
ENUM_TABLES: dict[str, dict[str, Any]] = {**SIENGE_TABLES, **CVCRM_TABLES, **PROVIDER_TABLES}

__all__ = ["CVCRM_TABLES", "ENUM_TABLES", "PROVIDER_TABLES", "SIENGE_TABLES"]
