"""Sales contracts (Sienge) that become reservations (CV CRM)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import Field, model_validator

from schemas.base import CanonicalModel
from schemas.documents import TaxId


class SaleStatus(StrEnum):
    requested = "requested"  # Sienge 0 Solicitado
    authorized = "authorized"  # 1 Autorizado
    issued = "issued"  # 2 Emitido
    cancelled = "cancelled"  # 3 Cancelado


class SaleBuyer(CanonicalModel):
    person_source_id: str
    document: TaxId | None = None
    name: str | None = None
    main: bool = False
    spouse: bool = False
    share_percent: Decimal = Field(Decimal(100), ge=0, le=100)


class PaymentCondition(CanonicalModel):
    kind: str
    installments: int = Field(1, ge=0)
    total: Decimal = Field(ge=0)


class Sale(CanonicalModel):
    source_id: str
    number: str | None = None
    enterprise_source_id: str
    unit_source_ids: list[str] = Field(min_length=1)
    buyers: list[SaleBuyer] = Field(min_length=1, description="Exactly one is main (the first, if Sienge marks none)")
    status: SaleStatus
    contract_date: date | None = None
    issue_date: date | None = None
    value: Decimal = Field(ge=0)
    payment_conditions: list[PaymentCondition] = Field(default_factory=list)
    cancellation_date: date | None = None
    cancellation_reason: str | None = None

    @model_validator(mode="after")
    def _one_main_buyer(self) -> Sale:
        """Exactly one main buyer: the CRM holds one titular per reservation and lists the others as
        associates, so a sale Sienge marks no main buyer on takes its first buyer as the main one."""
        mains = sum(1 for buyer in self.buyers if buyer.main)
        if mains > 1:
            raise ValueError("a sale has at most one main buyer")
        if mains == 0:
            self.buyers[0].main = True
        return self
