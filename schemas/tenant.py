"""Tenant configuration: one YAML file per tenant (``tenants/<id>.yaml``).

Secrets never live in the file: credentials name environment variables (``{env: VAR}``), so a tenant
file can be committed and reviewed. A literal secret is rejected with a message that says how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ponte import ConfigurationError, load_yaml, parse_model, register_secret, settings
from schemas.base import ConfigModel, FileHost
from schemas.emails import EmailAddress

TENANT_ID = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class EnvRef(ConfigModel):
    """A secret read from an environment variable at run time."""

    env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$", description="Environment variable name")]
    default: str | None = Field(
        None, description="Value when the variable is unset; only for non-production sandboxes."
    )

    def resolve(self, *, tenant: str | None = None, name: str | None = None) -> str:
        value = os.environ.get(self.env, self.default)
        if value is None or value == "":
            raise ConfigurationError(
                f"environment variable {self.env} is not set",
                tenant=tenant,
                field=f"credentials.{name}" if name else None,
                hint=f"export {self.env}=... before running, or put it in your secrets manager",
            )
        register_secret(value)
        return value


class TenantConnector(ConfigModel):
    """Which connector spec a tenant uses for one role, with its template values and credentials."""

    spec: Annotated[str, Field(description="Connector spec name, e.g. sienge, cvcrm, docusign")]
    values: dict[str, str] = Field(
        default_factory=dict,
        description="Non-secret values for the spec's URL/header templates (subdomain, account_id, base_url).",
    )
    credentials: dict[str, EnvRef] = Field(
        default_factory=dict, description="Secrets, each read from an environment variable."
    )

    rate_limit: dict[Literal["per_second", "per_minute", "per_hour", "per_day"], float] | None = Field(
        None,
        description=(
            "Overrides the spec's request budget for this tenant (e.g. the Sienge daily quota of the "
            "package the developer bought: {per_day: 30000})."
        ),
    )

    file_hosts: list[FileHost] = Field(
        default_factory=list,
        description=(
            "More places files may be downloaded from for this tenant, added to the spec's file_hosts "
            "(e.g. the storage host a CRM's file links redirect to): host patterns, HTTPS only "
            "(`*.example-storage.com`), or exact origins (`https://files.example.com:8443`)."
        ),
    )
    max_download_bytes: int | None = Field(
        None, gt=0, description="Overrides the spec's largest download for this tenant (bytes)."
    )

    @field_validator("rate_limit")
    @classmethod
    def _positive_limits(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value and any(v <= 0 for v in value.values()):
            raise ValueError("rate limits must be positive numbers")
        return value

    @field_validator("credentials", mode="before")
    @classmethod
    def _no_literal_secrets(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, str):
                    raise ValueError(
                        f"credential {key!r} is written in clear; write it as {{env: VARIABLE_NAME}} and "
                        "set that variable instead"
                    )
        return value

    def resolve_credentials(self, tenant: str | None = None) -> dict[str, str]:
        return {name: ref.resolve(tenant=tenant, name=name) for name, ref in self.credentials.items()}


class SignerRole(StrEnum):
    client = "client"
    spouse = "spouse"
    witness = "witness"
    company_representative = "company_representative"
    company_witness = "company_witness"
    co_buyer = "co_buyer"


class Channel(StrEnum):
    email = "email"
    whatsapp = "whatsapp"


class Requirement(StrEnum):
    """Tenant default for an evidence requirement; a contract may override with yes/no/default."""

    required = "required"
    not_required = "not_required"


class Interaction(StrEnum):
    """What a signer does with the document (Signi's interaction types), per role of the chain.

    Each provider maps it onto its own recipient kinds (docs/dispatch.md): DocuSign ``signers`` (sign),
    ``certifiedDeliveries`` (approve: must open the document to complete), ``carbonCopies``
    (receive_copy); Clicksign's signer requirement roles.
    """

    sign = "sign"
    approve = "approve"
    receive_copy = "receive_copy"


class SignerSlot(ConfigModel):
    role: SignerRole
    order: Annotated[int, Field(ge=1, le=20, description="Routing order: 1 signs first")]
    required: bool = Field(
        True, description="If false, the slot is skipped when the contract has no such person"
    )
    channel: Channel | None = Field(None, description="Overrides options.default_channel for this role")
    interaction: Interaction = Field(
        Interaction.sign, description="sign, approve, or only receive a copy (per provider: docs/dispatch.md)"
    )


class CompanySigner(ConfigModel):
    """A signer the developer provides for every contract (its legal representative, its witness).

    Tenant-level, so no CRM record is needed: they join the chain in their role, after the buyers (the
    chain's ``order`` says where). ``provider_ids`` holds the provider-side identity where a provider
    keeps one (e.g. a Clicksign signer already registered for the company), keyed by connector spec.
    """

    role: Literal[SignerRole.company_representative, SignerRole.company_witness]
    name: Annotated[str, Field(min_length=1)]
    email: EmailAddress
    document: Annotated[str, Field(min_length=11, description="CPF of the person who signs")]
    phone: str | None = None
    provider_ids: dict[str, str] = Field(default_factory=dict)


class EnvelopePackage(ConfigModel):
    """The envelope package the developer bought."""

    id: str = Field("default", description="Package identifier (shown in notices and the ledger)")
    size: int | Literal["unlimited"] = Field(description="Envelopes in the package: a number or 'unlimited'")
    valid_from: date
    valid_until: date
    warn_at_percent: list[int] = Field(default_factory=lambda: [80, 95, 100])

    @field_validator("size")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be a positive whole number or 'unlimited'")
        return value

    @model_validator(mode="after")
    def _dates(self) -> EnvelopePackage:
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self


class EvidenceDefaults(ConfigModel):
    selfie: Requirement = Requirement.not_required
    document_photo: Requirement = Requirement.not_required
    docusign_idv_workflow_id: Annotated[str, Field(min_length=1)] | None = Field(
        None,
        description="DocuSign only: the workflowId of the account's ID Verification workflow. Signers who "
        "must show a document photo or a selfie get it as their identityVerification; without it such a "
        "contract is refused (dead letter). The account's workflows: `ponte connector read <tenant> "
        "docusign identity_verification`.",
    )


def docusign_idv_hint(tenant_id: str) -> str:
    """Where a tenant's DocuSign ID Verification workflow id goes and where to find it."""
    return (
        f"set options.evidence.docusign_idv_workflow_id in tenants/{tenant_id}.yaml to the workflowId of the "
        "DocuSign account's ID Verification workflow (the product must be enabled for the account in "
        "DocuSign eSignature Admin; the account's workflows and their ids are listed by `ponte connector "
        f"read {tenant_id} docusign identity_verification`, DocuSign's GET "
        "/restapi/v2.1/accounts/{accountId}/identity_verification)"
    )


class Notifications(ConfigModel):
    by: Literal["provider", "ponte"] = Field(
        "provider", description="Who invites signers: the signing provider, or Ponte by SMTP/WhatsApp"
    )
    whatsapp_template: str = "ponte_convite_assinatura"
    whatsapp_language: str = "pt_BR"
    email_subject: str = "Documento para assinatura: {document}"
    summary_text: str = Field(
        "Valor: {valor_total} · {prazo_meses} parcelas de {parcela}",
        description=(
            "The sale's summary line in invitations: in Ponte's e-mail (by: ponte) and in the provider's "
            "own invitation message (by: provider: DocuSign emailBlurb, Clicksign notification message). "
            "Placeholders: {valor_total}, {parcela}, {prazo_meses}. When the contract lacks a value the "
            "line uses, no summary line is sent at all; an empty text turns the line off."
        ),
    )
    summary_fallback: str = Field(
        "Valor: {valor_total}",
        description="The summary line when summary_text cannot be filled (e.g. the CRM knows the amount but "
        "not the instalments); the same rule applies to it; empty turns it off",
    )
    whatsapp_summary_template: str | None = Field(
        None,
        description=(
            "With by: ponte, the approved WhatsApp template used instead of whatsapp_template when the "
            "contract has its whole summary; its body takes five text parameters in this order: name, "
            "link, valor_total, parcela, prazo_meses. Unset: WhatsApp invitations carry no summary."
        ),
    )
    signing_link_days: Annotated[int, Field(ge=1, le=365)] | None = Field(
        None,
        description=(
            "With by: ponte, how many days the signing link Ponte sends stays valid (never past the "
            "envelope's deadline); unset: until the envelope's deadline. The link opens "
            "GET /sign/{token} on the gateway at options.verification_base_url."
        ),
    )

    def summary_line(self, summary: dict[str, Any] | None) -> str | None:
        """:attr:`summary_text` filled from an envelope's summary, else :attr:`summary_fallback`; None
        when neither can be filled whole (never a half-filled "Valor: "), or when both are empty."""
        import string

        if not summary:
            return None
        values = {k: str(v).strip() for k, v in summary.items() if v is not None and str(v).strip()}
        for text in (self.summary_text.strip(), self.summary_fallback.strip()):
            if not text:
                continue
            try:
                names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
                if all(name and name in values for name in names):
                    return text.format_map(values)
            except (KeyError, ValueError, IndexError, AttributeError):
                continue
        return None


class AssistanceOptions(ConfigModel):
    """How Sienge assistance events map onto this tenant's CV CRM workflow (workflows differ per tenant)."""

    situation_in_progress: int | None = None
    situation_finished: int | None = None
    situation_cancelled: int | None = None
    situation_opened: int | None = None
    reconcile_cron: str = "0 3 * * *"


class DispatchTrigger(ConfigModel):
    """One rule of ``options.dispatch_triggers``: which CV CRM event starts a dispatch (docs/dispatch.md,
    "Rule-based triggers"). A webhook is only a hint: the run re-reads the contract and applies
    ``contract_types`` and ``when_validated`` to the CRM's record."""

    on: Literal["contract_saved", "contract_situation", "reservation_situation", "webhook"] = Field(
        description="contract_saved: any CV (sale contract) delivery; contract_situation / "
        "reservation_situation: a CV / RS delivery for one of `situations`; webhook: the delivery type "
        "`event` (FUNCIONALIDADE:GATILHO), whose id is what `names` says"
    )
    situations: list[Annotated[int, Field(strict=True, ge=0)]] = Field(
        default_factory=list,
        description="The CV CRM situation ids (the webhook gatilhos, per tenant) that trigger; required "
        "for contract_situation and reservation_situation only",
    )
    contract_types: list[Annotated[int, Field(strict=True, ge=0)] | Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Only contracts of these CV CRM contract types (a name matches `tipo`, a number "
        "`idtipo`); empty: every type",
    )
    when_validated: bool = Field(
        True, description="Only contracts the CRM shows validated and unsigned; false: unsigned ones too"
    )
    event: Annotated[str, Field(pattern=r"^[A-Z]{2}:(\d+|\*)$")] | None = Field(
        None, description="on: webhook only: the delivery type, e.g. RP:5 or CV:*"
    )
    names: Literal["contract", "reservation"] | None = Field(
        None, description="on: webhook only: what the delivery's id names"
    )

    @model_validator(mode="before")
    @classmethod
    def _unquoted_on(cls, data: Any) -> Any:
        # YAML 1.1 (PyYAML) reads an unquoted `on:` key as the boolean true: take it as `on`
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data

    @model_validator(mode="after")
    def _shape(self) -> DispatchTrigger:
        situated = self.on in ("contract_situation", "reservation_situation")
        if situated and not self.situations:
            raise ValueError(f"on: {self.on} needs situations: [ids] (CV CRM situation ids, integers)")
        if not situated and self.situations:
            hint = "every situation already triggers" if self.on == "contract_saved" else "put it in event"
            raise ValueError(f"situations is only for contract_situation / reservation_situation ({hint})")
        if len(set(self.situations)) != len(self.situations):
            raise ValueError("situations lists a situation twice")
        if self.on == "webhook":
            if self.event is None or self.names is None:
                raise ValueError("on: webhook needs event: FUNCIONALIDADE:GATILHO and names: contract|reservation")
            if self.event.startswith("AS:"):
                raise ValueError("AS deliveries belong to the assistance flow, not to dispatch")
        elif self.event is not None or self.names is not None:
            raise ValueError("event and names are only for on: webhook")
        types = [str(t).strip().casefold() if isinstance(t, str) else f"#{t}" for t in self.contract_types]
        if any(not t for t in types) or len(set(types)) != len(types):
            raise ValueError("contract_types has an empty or repeated type")
        return self


class OnSigned(ConfigModel):
    """What back-sync does in CV CRM once every signer signed, besides attaching the stamped PDF
    (docs/backsync.md, "The CRM contract, complete"). Unset: the original contract is marked signed,
    the evidence summary is kept by Ponte only, and the reservation is not moved."""

    reservation_situation: Annotated[int, Field(strict=True, ge=0)] | None = Field(
        None,
        description="CV CRM reservation situation id (the RS workflow's, per tenant) the reservation moves to "
        "when the contract is signed (activation); unset: it is not moved",
    )
    validate_contract: bool = Field(
        False, description="Also mark the original CRM contract validated (validado S) when marking it signed"
    )
    evidence_document_type: Annotated[int, Field(strict=True, ge=0)] | None = Field(
        None,
        description="CV CRM document type id (idtipo) the evidence summary PDF is attached to the reservation "
        "as; unset: Ponte keeps it (its path is in the contract's history) and attaches nothing",
    )


class TenantOptions(ConfigModel):
    envelope_package: EnvelopePackage | None = None
    envelope_deadline_days: Annotated[int, Field(ge=1, le=365)] = 30
    signer_chain: list[SignerSlot] = Field(
        default_factory=lambda: [
            SignerSlot(role=SignerRole.client, order=1),
            SignerSlot(role=SignerRole.spouse, order=2, required=False),
            SignerSlot(role=SignerRole.witness, order=3, required=False),
        ]
    )
    default_channel: Channel = Channel.email
    channels: list[Channel] = Field(default_factory=lambda: [Channel.email, Channel.whatsapp])
    company_signers: list[CompanySigner] = Field(
        default_factory=list,
        description="The developer's legal representative and witness: they sign every contract in the "
        "roles company_representative / company_witness, where the signer_chain puts those roles",
    )
    evidence: EvidenceDefaults = Field(default_factory=EvidenceDefaults)
    notifications: Notifications = Field(default_factory=Notifications)
    signing_provider: str = Field("docusign", description="Key in `connectors` of the signing provider")
    signature_pages: Literal["all", "first", "last"] | list[int] = "last"
    responsible_emails: list[EmailAddress] = Field(default_factory=list)
    contract_managers: list[EmailAddress] = Field(
        default_factory=list, description="Must include at least one verified e-mail before sending"
    )
    import_cron: str = "*/15 * * * *"
    reconcile_cron: str = Field("30 3 * * *", description="When the signing and import reconciliation runs "
                                "(America/Sao_Paulo; docs/reliability.md, \"Reconciliation\")")
    auto_send_missed: bool = Field(
        False,
        description="Reconciliation dispatches CRM contracts that are ready but were never sent (default: "
        "it reports them with the command to send them)",
    )
    lookback_minutes: Annotated[int, Field(ge=0)] = 10
    dead_letter_error_threshold: Annotated[int, Field(ge=1)] = Field(
        1000,
        description="Open dead letters of a flow past which its Dagster dead-letter check is an error "
        "(any open one is a warning)",
    )
    assistance: AssistanceOptions = Field(default_factory=AssistanceOptions)
    on_signed: OnSigned = Field(default_factory=OnSigned)
    dispatch_triggers: list[DispatchTrigger] | None = Field(
        None,
        description="Which CV CRM events start a dispatch (docs/dispatch.md, \"Rule-based triggers\"); unset: "
        "the CV CRM connector value dispatch_events; [] : no webhook dispatch, the poll alone",
    )
    verification_base_url: str = "http://127.0.0.1:8088"
    timezone: str = Field("America/Sao_Paulo", description="IANA time zone the public pages show times in")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (ValueError, LookupError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/Sao_Paulo)") from None
        return value

    @model_validator(mode="after")
    def _chain(self) -> TenantOptions:
        roles = [slot.role for slot in self.signer_chain]
        if len(set(roles)) != len(roles):
            raise ValueError("signer_chain lists a role twice")
        company = [signer.role for signer in self.company_signers]
        if len(set(company)) != len(company):
            raise ValueError("company_signers lists a role twice")
        for role in company:
            if role not in roles:
                raise ValueError(
                    f"company_signers has a {role.value} but signer_chain has no slot for that role "
                    f"(add {{role: {role.value}, order: N}} to signer_chain)"
                )
        if self.default_channel not in self.channels:
            raise ValueError(f"default_channel {self.default_channel.value!r} is not in channels")
        return self


class TenantConfig(ConfigModel):
    id: Annotated[str, Field(pattern=TENANT_ID, description="Tenant id: lowercase letters, digits, - and _")]
    name: str
    connectors: dict[str, TenantConnector]
    options: TenantOptions = Field(default_factory=TenantOptions)

    @model_validator(mode="after")
    def _provider_exists(self) -> TenantConfig:
        if self.options.signing_provider not in self.connectors:
            raise ValueError(
                f"options.signing_provider names {self.options.signing_provider!r}, which is not a key "
                f"of connectors ({', '.join(sorted(self.connectors))})"
            )
        return self

    def connector(self, name: str) -> TenantConnector:
        try:
            return self.connectors[name]
        except KeyError:
            raise ConfigurationError(
                f"tenant has no connector {name!r} (it has: {', '.join(sorted(self.connectors))})",
                tenant=self.id,
                hint=f"add connectors.{name} to tenants/{self.id}.yaml",
            ) from None

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def identity_verification_gap(config: TenantConfig) -> str | None:
    """Why the tenant's default evidence cannot be asked of its signing provider, or None.

    DocuSign checks a document photo or a selfie only through an ID Verification workflow of the
    account; a DocuSign tenant requiring either without ``options.evidence.docusign_idv_workflow_id``
    would have every contract refused by dispatch, so ``ponte validate`` refuses the file.
    """
    connector = config.connectors.get(config.options.signing_provider)
    evidence = config.options.evidence
    if connector is None or connector.spec != "docusign" or evidence.docusign_idv_workflow_id:
        return None
    wanted = [name for name, value in (("a selfie", evidence.selfie), ("a document photo", evidence.document_photo))
              if value == Requirement.required]
    if not wanted:
        return None
    return (
        f"options.evidence requires {' and '.join(wanted)} and the signing provider is DocuSign, which "
        "checks them only through an ID Verification workflow, but options.evidence.docusign_idv_workflow_id "
        f"is not set, so every contract would be refused: {docusign_idv_hint(config.id)}"
    )


def tenant_path(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        return candidate
    if not re.match(TENANT_ID, str(name_or_path)):
        raise ConfigurationError(
            f"{name_or_path!r} is neither a tenant id nor a YAML file",
            hint="pass a tenant id such as 'demo' or a path such as tenants/demo.yaml",
        )
    return settings.tenants_dir() / f"{name_or_path}.yaml"


def load_tenant(name_or_path: str | Path) -> TenantConfig:
    """Load and validate one tenant file; errors name the file, line, field and the fix."""
    path = tenant_path(name_or_path)
    if not path.exists():
        available = ", ".join(sorted(p.stem for p in settings.tenants_dir().glob("*.yaml"))) or "none"
        raise ConfigurationError(
            f"no tenant file {path}",
            hint=f"create it (see docs/tenants.md); tenants available: {available}",
        )
    doc = load_yaml(path)
    config = parse_model(
        doc, TenantConfig, "tenant", hint="correct the field in the tenant file; see docs/tenants.md"
    )
    if config.id != path.stem:
        raise ConfigurationError(
            f"{doc.where(('id',))}: tenant id {config.id!r} does not match the file name {path.name!r}",
            hint=f"rename the file to {config.id}.yaml or set id: {path.stem}",
        )
    return config


@dataclass(frozen=True)
class BrokenTenant:
    """A tenant file that does not load, with the error that says where and what to fix."""

    id: str
    path: Path
    error: ConfigurationError

    @property
    def message(self) -> str:
        return str(self.error)


def scan_tenants() -> tuple[list[TenantConfig], list[BrokenTenant]]:
    """Every tenant file, each loaded on its own: the good ones, and the broken ones with their error.

    One broken file never hides the others: schedules, sensors, the gateway and `ponte tenant list`
    go on with every tenant that loads, and report the broken ones (`ponte validate` fails on them).
    """
    good: list[TenantConfig] = []
    broken: list[BrokenTenant] = []
    for path in sorted(settings.tenants_dir().glob("*.yaml")):
        try:
            good.append(load_tenant(path))
        except ConfigurationError as exc:
            broken.append(BrokenTenant(path.stem, path, exc))
    return good, broken


def list_tenants() -> list[TenantConfig]:
    """The tenants whose files load (see :func:`scan_tenants` for the broken ones)."""
    return scan_tenants()[0]
