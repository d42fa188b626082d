"""People (customers, spouses, co-buyers, witnesses), keyed by CPF or CNPJ."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import Field, model_validator

from schemas.base import CanonicalModel
from schemas.documents import PhoneE164, TaxId
from schemas.emails import EmailAddress


class PersonType(StrEnum):
    individual = "individual"  # pessoa física, CPF
    company = "company"  # pessoa jurídica, CNPJ


class CivilStatus(StrEnum):
    single = "single"
    married = "married"
    stable_union = "stable_union"
    divorced = "divorced"
    separated = "separated"
    widowed = "widowed"
    unknown = "unknown"


class Address(CanonicalModel):
    kind: str = "residential"
    street: str | None = None
    number: str | None = None
    complement: str | None = None
    neighborhood: str | None = None
    city: str | None = None
    state: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    zip_code: str | None = Field(None, pattern=r"^\d{8}$")


class Person(CanonicalModel):
    """A person as the hub knows it. ``document`` is the identity across all systems."""

    document: TaxId
    person_type: PersonType
    name: str = Field(min_length=1)
    email: EmailAddress | None = None
    phones: list[PhoneE164] = Field(default_factory=list)
    mobile: PhoneE164 | None = None
    birth_date: date | None = None
    civil_status: CivilStatus = CivilStatus.unknown
    spouse: Person | None = None
    addresses: list[Address] = Field(default_factory=list)
    source_ids: dict[str, str] = Field(
        default_factory=dict, description="Ids of this person in each system, e.g. {'sienge': '42'}"
    )

    @model_validator(mode="after")
    def _type_matches_document(self) -> Person:
        # the document is already compact: TaxId normalised it
        expected = PersonType.individual if len(self.document) == 11 else PersonType.company
        if self.person_type != expected:
            raise ValueError(
                f"person_type is {self.person_type.value} but the document is a "
                f"{'CPF' if expected is PersonType.individual else 'CNPJ'}"
            )
        return self
