"""Signer and evidence transforms: a signer role's place in the tenant's signer chain, the channel it
is invited by, and whether a selfie or a document photo is asked of it.

They read the tenant's options (``needs_ctx``) or the contract's overrides, so they belong to envelope
mappings (``cvcrm/contrato_to_envelope``) rather than to the generic library; they register in the
same :data:`mappings.transforms.REGISTRY`, so a mapping names them like any other transform.
"""

from __future__ import annotations

from typing import Any

from mappings.transforms import Fn, fold, transform
from ponte import DataError


def _tenant_options(ctx: Any) -> Any:
    tenant = getattr(ctx, "tenant", None)
    if tenant is None:
        raise DataError("this mapping reads tenant options but the run has no tenant",
                        hint="pass MappingContext(tenant=...)")
    return tenant.options


@transform("signer_order", needs_ctx=True)
def _signer_order(_: None) -> Fn:
    """A signer role's routing order in the tenant's signer chain; a role not in the chain is
    missing (so the signer is left out of the envelope)."""

    def signer_order(role: Any, ctx: Any) -> int | None:
        for slot in _tenant_options(ctx).signer_chain:
            if slot.role.value == role:
                return slot.order
        return None

    return signer_order


@transform("signer_channel", needs_ctx=True)
def _signer_channel(_: None) -> Fn:
    """The channel a signer role is invited by: its slot's channel, else the tenant's default."""

    def signer_channel(role: Any, ctx: Any) -> str:
        options = _tenant_options(ctx)
        for slot in options.signer_chain:
            if slot.role.value == role and slot.channel is not None:
                return str(slot.channel.value)
        return str(options.default_channel.value)

    return signer_channel


@transform("evidence_required", takes_many=True)
def _evidence_required(_: None) -> Fn:
    """Whether an evidence (selfie, document photo) is required: the contract's override
    (yes/no/default) first, then the tenant default (required/not_required)."""

    def evidence_required(values: tuple[Any, ...]) -> bool:
        override, tenant_default = (*values, None, None)[:2]
        override = getattr(override, "value", override)
        tenant_default = getattr(tenant_default, "value", tenant_default)
        said = fold(str(override)) if override is not None else "default"
        if said in ("yes", "sim", "s", "true"):
            return True
        if said in ("no", "nao", "n", "false"):
            return False
        return tenant_default in ("required", True)

    return evidence_required
