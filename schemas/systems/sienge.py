"""Sienge public API v1 payloads that mappings read or write (field names as Sienge spells them).

Shapes follow the Swagger files Sienge publishes (customers, enterprises, units, sales contracts). Sienge
sends dates as ``yyyy-MM-dd`` strings and money as JSON numbers; the models keep them as they arrive
(strings, numbers) because converting is the mappings' job, where each conversion is visible.

Technical assistance is not in Sienge's public catalogue; :class:`SiengeTechnicalAssistance` is Ponte's
documented default shape for the private CV↔Sienge assistance endpoint.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.systems.base import Payload, RequestBody


class SiengePhone(Payload):
    number: str | None = None
    main: bool | None = None
    type: str | None = Field(None, description="Residencial, Comercial, Celular, ...")
    note: str | None = None
    idd: str | None = Field(None, description="International dialling code, e.g. 55")


class SiengeAddress(Payload):
    type: str | None = Field(None, description="Residencial, Comercial, ...")
    streetName: str | None = None
    number: str | None = None
    complement: str | None = None
    neighborhood: str | None = None
    cityId: int | None = None
    city: str | None = None
    state: str | None = None
    zipCode: str | None = None
    mail: bool | None = None


class SiengeSpouse(Payload):
    cpf: str | None = None
    name: str | None = None
    email: str | None = None
    sex: str | None = None
    birthDate: str | None = None
    civilStatus: str | None = None
    numberIdentityCard: str | None = None
    cellphoneNumber: str | None = None
    phoneNumber: str | None = None
    profession: str | None = None
    nationality: str | None = None


class SiengeCustomer(Payload):
    """``GET /customers/{id}`` (CustomerGet)."""

    id: int
    personType: str | None = Field(None, description="Física / Jurídica (F / J on writes)")
    name: str
    cpf: str | None = None
    cnpj: str | None = None
    fantasyName: str | None = None
    email: str | None = None
    birthDate: str | None = Field(None, description="yyyy-MM-dd")
    civilStatus: str | None = Field(None, description="Description from Sienge's civil status table")
    sex: str | None = None
    numberIdentityCard: str | None = None
    issuingBody: str | None = None
    nationality: str | None = None
    profession: str | None = None
    foreigner: str | None = None
    internationalId: str | None = None
    matrimonialRegime: str | None = None
    marriageDate: str | None = None
    establishmentDate: str | None = None
    stateRegistrationNumber: str | None = None
    contactName: str | None = None
    createdAt: str | None = None
    modifiedAt: str | None = None
    clientType: str | None = None
    mailingAddress: str | None = None
    subTypes: list[dict[str, Any]] = Field(default_factory=list)
    phones: list[SiengePhone] = Field(default_factory=list)
    addresses: list[SiengeAddress] = Field(default_factory=list)
    spouse: SiengeSpouse | None = None
    procurators: Any = None
    familyIncome: list[Any] = Field(default_factory=list)


class SiengeEnterprise(Payload):
    """``GET /enterprises/{id}``. ``adress`` is spelt that way by Sienge: one free-text line."""

    id: int
    name: str
    commercialName: str | None = None
    enterpriseObservation: str | None = None
    cnpj: str | None = None
    type: str | None = Field(None, description="1 obra+CC, 2 obra, 3 CC, 4 CC linked to obra")
    adress: str | None = Field(None, description="Free text, e.g. 'Rua X, 100, Florianópolis - SC'")
    creationDate: str | None = None
    modificationDate: str | None = None
    createdBy: str | None = None
    modifiedBy: str | None = None
    companyId: int | None = None
    companyName: str | None = None
    costDatabaseId: int | None = None
    costDatabaseDescription: str | None = None
    buildingTypeId: int | None = None
    buildingTypeDescription: str | None = None


class SiengeGrouping(Payload):
    groupingDescription: str | None = None
    valueGroupingDescription: str | None = None


class SiengeUnit(Payload):
    """``GET /units/{id}``."""

    id: int
    enterpriseId: int
    contractId: int | None = None
    contractNumber: str | None = None
    name: str
    propertyType: str | None = None
    note: str | None = None
    commercialStock: str | None = Field(None, description="D available, V sold, R reserved, ...")
    floor: str | None = None
    privateArea: float | None = None
    commonArea: float | None = None
    terrainArea: float | None = None
    usableArea: float | None = None
    terrainValue: float | None = None
    deliveryDate: str | None = Field(None, description="yyyy-MM-dd")
    legalRegistrationNumber: str | None = None
    groupings: list[SiengeGrouping] = Field(default_factory=list)
    childUnits: list[dict[str, Any]] = Field(default_factory=list)
    specialValues: list[dict[str, Any]] = Field(default_factory=list)
    links: list[dict[str, Any]] = Field(default_factory=list)


class SiengeContractCustomer(Payload):
    id: int
    name: str | None = None
    main: bool | None = None
    spouse: bool | None = None
    participationPercentage: float | None = None


class SiengeContractUnit(Payload):
    id: int
    main: bool | None = None
    name: str | None = None
    participationPercentage: float | None = None


class SiengePaymentCondition(Payload):
    conditionTypeId: str | None = None
    conditionTypeName: str | None = None
    installmentsNumber: int | None = None
    totalValue: float | None = None
    outstandingBalance: float | None = None
    firstPayment: str | None = None


class SiengeBroker(Payload):
    id: int
    main: bool | None = None


class SiengeSalesContract(Payload):
    """``GET /sales-contracts/{id}`` (SalesContractGet). ``situation``: 0 Solicitado, 1 Autorizado,
    2 Emitido, 3 Cancelado (a string)."""

    id: int
    companyId: int | None = None
    companyName: str | None = None
    enterpriseId: int
    enterpriseName: str | None = None
    receivableBillId: int | None = None
    number: str | None = None
    externalId: str | None = None
    situation: str
    contractDate: str | None = None
    issueDate: str | None = None
    accountingDate: str | None = None
    expectedDeliveryDate: str | None = None
    keysDeliveredAt: str | None = None
    correctionType: str | None = None
    value: float | None = None
    totalSellingValue: float | None = None
    cancellationDate: str | None = None
    cancellationReason: str | None = None
    financialInstitutionNumber: str | None = None
    financialInstitutionDate: str | None = None
    specialClause: str | None = None
    salesContractCustomers: list[SiengeContractCustomer] = Field(default_factory=list)
    salesContractUnits: list[SiengeContractUnit] = Field(default_factory=list)
    paymentConditions: list[SiengePaymentCondition] = Field(default_factory=list)
    brokers: list[SiengeBroker] = Field(default_factory=list)
    links: list[dict[str, Any]] = Field(default_factory=list)


class SiengeAssistanceItem(Payload):
    id: int | None = None
    description: str
    minimumCompletionDays: int = Field(ge=1, description="Sienge rejects an item without it")
    status: str | None = None


class SiengeAssistanceAttachment(Payload):
    id: int | None = None
    name: str
    contentBase64: str | None = Field(None, description="Sent on create; not returned on reads")
    size: int | None = None


class SiengeTechnicalAssistance(Payload):
    """Technical assistance as Ponte's default Sienge endpoint reads and writes it.

    The create body is this without ``id``/``status``/timestamps; reads add them.
    """

    id: int | None = None
    externalId: str = Field(description="The CV CRM assistance id: makes the create idempotent")
    enterpriseId: int
    unitId: int
    customerId: int
    description: str
    openedAt: str | None = None
    status: Literal["OPEN", "IN_PROGRESS", "FINISHED", "CANCELED", "DELETED"] | None = None
    createdAt: str | None = None
    modifiedAt: str | None = None
    items: list[SiengeAssistanceItem] = Field(min_length=1)
    attachments: list[SiengeAssistanceAttachment] = Field(default_factory=list)


class SiengeHookCreate(RequestBody):
    """``POST /hooks``: Sienge sends ``token`` back as ``Authorization: Bearer``."""

    url: str
    events: list[str] = Field(min_length=1)
    token: str | None = None
