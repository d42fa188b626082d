"""Schemas: the canonical records, Brazilian document types, tenant configuration, and the JSON Schemas
exported from them (``schemas/json``). The bottom layer: it imports nothing from the layers above.

Public surface: the names in ``__all__`` below; the canonical records are in :mod:`schemas.canonical` and
the outside systems' payloads in :mod:`schemas.systems`, each with a surface of its own. The other layers
import from these roots, never from a submodule.
"""

from schemas.base import FileHost
from schemas.documents import (
    format_br_phone,
    format_cnpj,
    format_cpf,
    normalize_cnpj,
    normalize_cpf,
    normalize_phone,
    normalize_tax_id,
)
from schemas.tenant import (
    TENANT_ID,
    AssistanceOptions,
    DispatchTrigger,
    EnvelopePackage,
    SignerSlot,
    TenantConfig,
    TenantOptions,
    docusign_idv_hint,
    identity_verification_gap,
    list_tenants,
    load_tenant,
    scan_tenants,
)

__all__ = [
    "TENANT_ID",
    "AssistanceOptions",
    "DispatchTrigger",
    "EnvelopePackage",
    "FileHost",
    "SignerSlot",
    "TenantConfig",
    "TenantOptions",
    "docusign_idv_hint",
    "format_br_phone",
    "format_cnpj",
    "format_cpf",
    "identity_verification_gap",
    "list_tenants",
    "load_tenant",
    "normalize_cnpj",
    "normalize_cpf",
    "normalize_phone",
    "normalize_tax_id",
    "scan_tenants",
]
