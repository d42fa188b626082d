"""Developments (enterprises) and their units."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import Field

from schemas.base import CanonicalModel
from schemas.documents import CNPJ


class Enterprise(CanonicalModel):
    source_id: str
    name: str = Field(min_length=1)
    commercial_name: str | None = None
    cnpj: CNPJ | None = None
    company_id: str | None = None
    city: str | None = None
    state: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    delivery_date: date | None = None


class Unit(CanonicalModel):
    source_id: str
    enterprise_source_id: str
    name: str = Field(min_length=1)
    property_type: str | None = None
    floor: str | None = None
    private_area_m2: Decimal | None = Field(None, ge=0)
    commercial_stock: str | None = None
    delivery_date: date | None = None
