"""Settings of a sandbox run: credentials, rate limits, webhook retry schedule.

Every default here is a *contract* with the connector specs written against the sandbox (see
docs/sandbox.md): change a value and a connector spec or tenant file that relies on it must change too.
Everything is overridable so a test can, for example, shrink a rate-limit window to one second instead
of waiting a real minute.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from connectors.sandbox.faults import FaultConfig


class RateLimit(BaseModel):
    """A fixed-window request budget: ``limit`` calls per ``window_seconds``.

    ``block_seconds`` models CV CRM, which after a 429 refuses everything for the next window; 0 means
    the budget simply refills at the next window like Sienge's and DocuSign's.
    """

    limit: int = Field(gt=0)
    window_seconds: float = Field(gt=0)
    block_seconds: float = Field(default=0, ge=0)
    enabled: bool = True


class SiengeUser(BaseModel):
    """An API user: password plus the resources granted in its "Autorizações" tab (``*`` = all)."""

    password: str
    grants: list[str] = Field(default_factory=lambda: ["*"])


class CvcrmUser(BaseModel):
    """A CV CRM administrative user: its API token, panel password and the modules it may call."""

    token: str
    senha: str
    modules: list[str] = Field(default_factory=lambda: ["*"])


class Template(BaseModel):
    """An approved WhatsApp message template: languages it exists in and its body parameter count."""

    languages: list[str] = Field(default_factory=lambda: ["pt_BR"])
    body_params: int = 0


def _sienge_users() -> dict[str, SiengeUser]:
    every = [
        "customers",
        "sales-contracts",
        "enterprises",
        "units",
        "hooks",
        "technical-assistances",
    ]
    return {
        "ponte-sandbox": SiengeUser(password="sandbox-secret", grants=["*"]),
        "ponte-limited": SiengeUser(
            password="sandbox-secret", grants=[g for g in every if g != "sales-contracts"]
        ),
    }


def _cvcrm_users() -> dict[str, CvcrmUser]:
    return {
        "integracao@demo.cvcrm.com.br": CvcrmUser(token="cvcrm-sandbox-token", senha="cvcrm-sandbox-senha"),
        # Lacks the "relacionamento" module (assistências): exercises the CRM's 403.
        "limitado@demo.cvcrm.com.br": CvcrmUser(
            token="cvcrm-limited-token", senha="cvcrm-sandbox-senha", modules=["cadastros", "comercial"]
        ),
    }


def _templates() -> dict[str, Template]:
    return {
        "ponte_convite_assinatura": Template(languages=["pt_BR"], body_params=2),
        "ponte_verificacao": Template(languages=["pt_BR"], body_params=1),
        "ponte_lembrete_assinatura": Template(languages=["pt_BR"], body_params=2),
        # name, link, amount, monthly instalment, duration (notifications.whatsapp_summary_template)
        "ponte_convite_assinatura_resumo": Template(languages=["pt_BR"], body_params=5),
    }


class SandboxConfig(BaseModel):
    """Everything a sandbox run needs; the defaults are the documented sandbox credentials."""

    # seed data
    seed: int = 7
    customers: int = 40
    enterprises: int | None = None
    assistances: int = 3

    # Sienge
    sienge_subdomain: str = "demo"
    sienge_users: dict[str, SiengeUser] = Field(default_factory=_sienge_users)
    sienge_rate_limit: RateLimit = RateLimit(limit=200, window_seconds=60)
    #: Compressed stand-in for Sienge's +10 min, +30 min, +1 h, +3 h, +5 h retry schedule.
    sienge_retry_delays: list[float] = Field(default_factory=lambda: [0.2, 0.5, 1.0, 1.5, 2.0])
    #: Sienge waits 2.5 s for the receiver's answer.
    sienge_delivery_timeout: float = 2.5

    # CV CRM
    cvcrm_users: dict[str, CvcrmUser] = Field(default_factory=_cvcrm_users)
    cvcrm_rate_limit: RateLimit = RateLimit(limit=200, window_seconds=60, block_seconds=60)
    cvcrm_bearer_ttl: int = 21600
    cvcrm_retry_delays: list[float] = Field(default_factory=lambda: [0.2, 0.5, 1.0])
    #: When False, the contract upload answers 404 as a CRM without a default contract type does.
    cvcrm_default_contract_type: bool = True
    #: What a write over a record CV already holds does with the fields its body leaves out, for the
    #: clientes upsert (by documento) and the reservation PUT: ``merge`` keeps them, ``replace`` drops
    #: them (the body is the whole record). CV CRM does not document which (PROVIDERS.md §2 says only
    #: "upsert by documento"), so the import must keep the CRM's own fields under both.
    cvcrm_upsert: Literal["merge", "replace"] = "merge"

    # DocuSign
    docusign_account_id: str = "00000000-0000-0000-0000-0000000d0c05"
    docusign_static_token: str = "docusign-sandbox-token"
    docusign_connect_key: str = "docusign-connect-secret"
    #: Integration keys accepted as JWT ``iss``; empty accepts any well-formed RS256 JWT.
    docusign_integration_keys: list[str] = Field(default_factory=list)
    docusign_rate_limit: RateLimit = RateLimit(limit=3000, window_seconds=3600)
    docusign_retry_delays: list[float] = Field(default_factory=lambda: [0.2, 0.5, 1.0])
    #: The account's ID Verification workflows (``GET .../identity_verification``): workflowId -> name.
    #: A signer's ``identityVerification.workflowId`` must be one of them; tenants/demo.yaml names it.
    docusign_idv_workflows: dict[str, str] = Field(
        default_factory=lambda: {"00000000-0000-0000-0000-0000000001d5": "DocuSign ID Verification"}
    )

    # Clicksign
    clicksign_token: str = "clicksign-sandbox-token"
    clicksign_webhook_secret: str = "clicksign-webhook-secret"
    clicksign_retry_delays: list[float] = Field(default_factory=lambda: [0.2, 0.5, 1.0])
    #: What the stand-in does with what the Postman collection does not show, the envelope listing
    #: (``GET /api/v3/envelopes?filter[name]=``) and envelope ``metadata``: ``as_assumed`` filters by
    #: name and keeps metadata; ``ignored`` lists every envelope whatever the filter and drops envelope
    #: metadata; ``missing`` has no listing (404). Dispatch's lookup after an unsure create must never
    #: make a second envelope under any of them (docs/dispatch.md).
    clicksign_envelope_lookup: Literal["as_assumed", "ignored", "missing"] = "as_assumed"

    # ZapSign (PROVIDERS.md §3.3; connectors/sandbox/zapsign.py)
    zapsign_token: str = "zapsign-sandbox-token"
    #: the value the sandbox tenant asks ZapSign to send in its X-Ponte-Secret webhook header
    zapsign_webhook_secret: str = "zapsign-webhook-secret"
    zapsign_retry_delays: list[float] = Field(default_factory=lambda: [0.2, 0.5, 1.0])
    #: The document listing and its ``external_id`` filter are not in PROVIDERS.md: ``as_assumed``
    #: filters, ``ignored`` lists every document whatever the filter, ``missing`` has no listing (404).
    #: Dispatch's lookup must never make a second document under any of them (docs/dispatch.md).
    zapsign_doc_lookup: Literal["as_assumed", "ignored", "missing"] = "as_assumed"

    # WhatsApp
    whatsapp_token: str = "whatsapp-sandbox-token"
    whatsapp_phone_number_id: str = "100000000000001"
    whatsapp_app_secret: str = "whatsapp-app-secret"
    whatsapp_templates: dict[str, Template] = Field(default_factory=_templates)
    #: Statuses the sandbox reports by itself after a send; "read" and "failed" are driven by tests.
    whatsapp_auto_statuses: list[str] = Field(default_factory=lambda: ["sent", "delivered"])
    whatsapp_retry_delays: list[float] = Field(default_factory=lambda: [0.2, 0.5, 1.0])

    # SMTP
    smtp_user: str = "ponte-sandbox"
    smtp_password: str = "sandbox-secret"

    # fault injection per system name (sienge, cvcrm, docusign, clicksign, zapsign, whatsapp)
    faults: dict[str, FaultConfig] = Field(default_factory=dict)

    def without_rate_limits(self) -> SandboxConfig:
        """A copy with every rate limit disabled (demos that hammer the sandbox on purpose)."""
        copy = self.model_copy(deep=True)
        for limit in (copy.sienge_rate_limit, copy.cvcrm_rate_limit, copy.docusign_rate_limit):
            limit.enabled = False
        return copy
