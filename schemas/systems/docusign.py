"""DocuSign eSignature v2.1 payloads: the envelope definition Ponte sends and the Connect events it
receives (JSON SIM). Names follow DocuSign's OpenAPI definitions in the eSignature swagger
(``docusign/esignature.rest.swagger-v2.json`` in ../shared/specs: ``envelopeDefinition``,
``EnvelopeRecipients``, ``signer``, ``certifiedDelivery``, ``carbonCopy``, ``signHere``,
``textCustomField``) and ``connect.schema-v2.json`` beside it; DocuSign sends numbers as strings in
many places. Each model below declares the fields Ponte writes, a subset of its swagger definition."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.systems.base import Payload, RequestBody


class DsDocument(RequestBody):
    documentBase64: str
    name: str
    fileExtension: str = "pdf"
    documentId: str


class DsSignHere(RequestBody):
    anchorString: str | None = None
    anchorXOffset: str | None = None
    anchorYOffset: str | None = None
    anchorUnits: Literal["pixels", "inches", "mms", "cms"] | None = None
    anchorIgnoreIfNotPresent: str | None = None
    documentId: str | None = None
    pageNumber: str | None = None
    xPosition: str | None = None
    yPosition: str | None = None
    tabLabel: str | None = None


class DsTabs(RequestBody):
    signHereTabs: list[DsSignHere] = Field(default_factory=list)


class DsPhoneNumber(RequestBody):
    """``RecipientPhoneNumber``: the country calling code and the national number, digits only."""

    countryCode: str = Field(pattern=r"^\d{1,3}$")
    number: str = Field(pattern=r"^\d{4,14}$")


class DsAdditionalNotification(RequestBody):
    """``RecipientAdditionalNotification`` (eSignature 2.1, "SMS and WhatsApp delivery", PROVIDERS.md
    §3.7): DocuSign also sends its own signing link by WhatsApp or SMS, beside the e-mail."""

    secondaryDeliveryMethod: Literal["WhatsApp", "SMS"]
    phoneNumber: DsPhoneNumber


class DsIdentityVerification(RequestBody):
    """``recipientIdentityVerification``: one of the account's ID Verification workflows (listed by
    ``GET /accounts/{accountId}/identity_verification``)."""

    workflowId: str = Field(min_length=1)


class DsRecipient(RequestBody):
    """What every recipient kind of the swagger's ``recipients`` carries."""

    email: str
    name: str
    recipientId: str
    routingOrder: str
    roleName: str | None = None


class DsSigner(DsRecipient):
    #: set: an embedded recipient, who signs through a recipient view Ponte asks for (PROVIDERS.md §3.7)
    clientUserId: str | None = Field(None, max_length=100)
    #: one secondary delivery method per recipient
    additionalNotifications: list[DsAdditionalNotification] | None = Field(None, max_length=1)
    #: the account's ID Verification workflow, for a signer who must show a document photo or a selfie
    identityVerification: DsIdentityVerification | None = None
    tabs: DsTabs | None = None


class DsCertifiedDelivery(DsRecipient):
    """``certifiedDelivery``: a recipient who "must receive the completed documents for the envelope to
    be completed, but ... does not need to sign" (an approver). The swagger gives it no tabs and no
    ``additionalNotifications``; it may be embedded (``clientUserId``) and asked for ID Verification."""

    clientUserId: str | None = Field(None, max_length=100)
    identityVerification: DsIdentityVerification | None = None


class DsCarbonCopy(DsRecipient):
    """``carbonCopy``: a recipient who "should receive a copy of the envelope, but does not need to sign
    it". No tabs; DocuSign e-mails the copy itself when the routing order reaches it, so Ponte never
    makes it embedded."""


class DsRecipients(RequestBody):
    """``EnvelopeRecipients``: one list per recipient kind. ``recipientId`` and ``routingOrder`` run
    across the kinds (one id per recipient of the envelope, one routing order for all of them).
    ``signers`` is always sent, empty when every recipient approves or receives a copy."""

    signers: list[DsSigner]
    certifiedDeliveries: list[DsCertifiedDelivery] | None = None
    carbonCopies: list[DsCarbonCopy] | None = None


class DsTextCustomField(RequestBody):
    """``textCustomField``: an envelope custom field (``show`` "false": kept off the certificate of
    completion; ``required``, as the swagger spells it)."""

    name: str
    value: str
    show: str = "false"
    required: str | None = None


class DsCustomFields(RequestBody):
    textCustomFields: list[DsTextCustomField] = Field(default_factory=list)


class DsExpirations(RequestBody):
    expireEnabled: str = "true"
    expireAfter: str
    expireWarn: str | None = None


class DsNotification(RequestBody):
    useAccountDefaults: str = "false"
    expirations: DsExpirations | None = None


class DocusignEnvelopeDefinition(RequestBody):
    """``POST /restapi/v2.1/accounts/{accountId}/envelopes``."""

    emailSubject: str = Field(max_length=100)
    emailBlurb: str | None = None
    documents: list[DsDocument] = Field(min_length=1)
    recipients: DsRecipients
    customFields: DsCustomFields | None = None
    notification: DsNotification | None = None
    status: Literal["sent", "created"] = "sent"


class DsConnectRecipient(Payload):
    recipientId: str
    email: str | None = None
    name: str | None = None
    status: str | None = None
    routingOrder: str | None = None
    roleName: str | None = None
    signedDateTime: str | None = None
    deliveredDateTime: str | None = None
    declinedReason: str | None = None


class DsConnectRecipients(Payload):
    signers: list[DsConnectRecipient] = Field(default_factory=list)
    certifiedDeliveries: list[DsConnectRecipient] = Field(default_factory=list)
    carbonCopies: list[DsConnectRecipient] = Field(default_factory=list)


class DsEnvelopeSummary(Payload):
    envelopeId: str | None = None
    status: str | None = None
    emailSubject: str | None = None
    statusChangedDateTime: str | None = None
    completedDateTime: str | None = None
    recipients: DsConnectRecipients | None = None
    customFields: Any = None


class DsConnectData(Payload):
    accountId: str | None = None
    userId: str | None = None
    envelopeId: str
    recipientId: str | None = None
    envelopeSummary: DsEnvelopeSummary | None = None


class DocusignConnectEvent(Payload):
    """A Connect (webhook) message, JSON SIM format."""

    event: str = Field(description="envelope-sent, recipient-completed, ...")
    uri: str | None = None
    retryCount: int | None = None
    configurationId: int | None = None
    apiVersion: str | None = None
    generatedDateTime: str
    data: DsConnectData
