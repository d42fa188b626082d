"""The connector spec language: pydantic v2 models, one per concept, unions tagged by ``type``.

These models are the only definition of the language: they validate YAML specs at load time and are
exported as the JSON Schema editors use (``connectors.spec.json_schema``). One representation, not three.

Template-bearing fields say which namespaces they may use (see :mod:`connectors.spec.templates`):
``values`` (tenant values, declared in the spec), ``secrets`` (tenant credentials, declared),
``record`` (the canonical record an action writes), ``params`` (what the caller passes to a read),
``parent`` (the parent record of a child stream), ``token`` (the token a login call returned),
``meta`` (about the call: ``meta.idempotency_key``, ``meta.lookup_from_date`` = 30 days ago).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from connectors.spec.templates import TemplateSyntaxError, check
from schemas import FileHost


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)  # shared via the loader cache


def _template(*namespaces: str) -> AfterValidator:
    def validate(value: Any, info: ValidationInfo) -> Any:
        declared = (info.context or {}).get("declared")
        try:
            check(value, namespaces, declared)
        except TemplateSyntaxError as exc:
            raise ValueError(str(exc)) from None
        return value

    return AfterValidator(validate)


# Template types by where they may appear.
UrlTpl = Annotated[str, _template("values")]
SecretTpl = Annotated[str, _template("values", "secrets")]
ReadTpl = Annotated[Any, _template("values", "params", "parent")]
WriteTpl = Annotated[Any, _template("values", "secrets", "record", "meta")]
LookupTpl = Annotated[Any, _template("values", "record", "meta")]
LoginValueTpl = Annotated[str, _template("token")]


def _shorthand(value: Any) -> Any:
    """dlt-style string shorthand: ``pagination: none`` means ``{type: none}``."""
    return {"type": value} if isinstance(value, str) else value


# ---------------------------------------------------------------------------------------------- values


class ValueDecl(Model):
    """A non-secret tenant value the spec's templates use (subdomain, account id, base URL)."""

    description: str
    default: Annotated[str | None, _template("values")] = Field(
        None, description="Used when the tenant does not set the value; may use other values"
    )
    example: str | None = None


class SecretDecl(Model):
    """A tenant credential the spec's templates use; tenants map it to an environment variable."""

    description: str
    required: bool = Field(True, description="False when an alternative auth option can do without it")


# ------------------------------------------------------------------------------------------------ auth


class NoAuth(Model):
    type: Literal["none"]


class BasicAuth(Model):
    """HTTP Basic (Sienge's API user)."""

    type: Literal["basic"]
    username: SecretTpl
    password: SecretTpl


class BearerAuth(Model):
    """A static token sent as ``Authorization: <scheme> <token>``."""

    type: Literal["bearer"]
    token: SecretTpl
    scheme: str = Field("Bearer", description="Empty string sends the raw token (Clicksign)")


class HeadersAuth(Model):
    """Custom header tokens, e.g. CV CRM's ``email`` + ``token`` headers."""

    type: Literal["headers"]
    headers: dict[str, SecretTpl]


class ApiKeyAuth(Model):
    """An API key in a header or a query parameter."""

    type: Literal["api_key"]
    name: str
    location: Literal["header", "query"] = Field("header", alias="in")
    value: SecretTpl


class OAuth2ClientCredentials(Model):
    """OAuth2 client-credentials grant; the token is cached until shortly before it expires."""

    type: Literal["oauth2_client_credentials"]
    token_url: SecretTpl
    client_id: SecretTpl
    client_secret: SecretTpl
    scope: str | None = None
    client_auth: Literal["basic", "body"] = Field("body", description="How the client proves itself")
    refresh_margin_seconds: int = Field(60, ge=0)


class LoginAuth(Model):
    """A token obtained by a login call and cached until it expires (CV CRM v3)."""

    type: Literal["login"]
    method: Literal["POST", "GET"] = "POST"
    url: SecretTpl = Field(description="Absolute URL template, e.g. '{values.base_url}/api/v3/auth/token'")
    body: Annotated[Any, _template("values", "secrets")] = None
    body_type: Literal["json", "form"] = "json"
    token_path: str = Field("token", description="Dotted path of the token in the login response")
    expires_in_path: str | None = Field(None, description="Dotted path of the lifetime in seconds, if any")
    expires_in_seconds: int = Field(3600, ge=1, description="Lifetime when the response does not say")
    refresh_margin_seconds: int = Field(60, ge=0)
    header: str = "Authorization"
    value: LoginValueTpl = Field("Bearer {token}", description="Header value; '{token}' is the token")


class HookAuth(Model):
    """A registered Python strategy for what YAML cannot say (DocuSign's JWT grant)."""

    type: Literal["hook"]
    name: str = Field(description="Name the hook was registered under in connectors.hooks")
    options: Annotated[dict[str, Any], _template("values", "secrets")] = Field(default_factory=dict)


class FirstOfAuth(Model):
    """The first option whose required secrets the tenant provides (JWT grant, else static token)."""

    type: Literal["first_of"]
    options: list[Auth] = Field(min_length=1)


Auth = Annotated[
    Annotated[
        NoAuth | BasicAuth | BearerAuth | HeadersAuth | ApiKeyAuth | OAuth2ClientCredentials | LoginAuth
        | HookAuth | FirstOfAuth,
        Field(discriminator="type"),
    ]
    | Literal["none"],  # shorthand, turned into {type: none} before validation
    BeforeValidator(_shorthand),
]

# ------------------------------------------------------------------------------------------ pagination


class _Sized(Model):
    page_size: int | None = Field(None, ge=1, description="Records per page Ponte asks for")
    max_page_size: int | None = Field(None, ge=1, description="The API's maximum; page_size is capped by it")

    @model_validator(mode="after")
    def _cap(self) -> _Sized:
        if self.page_size and self.max_page_size and self.page_size > self.max_page_size:
            raise ValueError(f"page_size {self.page_size} is above the API's max_page_size {self.max_page_size}")
        return self


class NoPagination(Model):
    type: Literal["none"]


class OffsetPagination(_Sized):
    """``limit``/``offset``; stops at the total when the response has one (Sienge's resultSetMetadata)."""

    type: Literal["offset"]
    limit_param: str = "limit"
    offset_param: str = "offset"
    start: int = 0
    total_path: str | None = Field(None, description="Dotted path of the total count, e.g. resultSetMetadata.count")


class PageNumberPagination(_Sized):
    type: Literal["page_number"]
    page_param: str = "page"
    size_param: str | None = None
    start_page: int = 1
    total_pages_path: str | None = None


class CursorPagination(_Sized):
    """A token from the body is sent back as a parameter for the next page."""

    type: Literal["cursor"]
    cursor_path: str = Field(description="Dotted path of the next cursor in the body")
    cursor_param: str = "cursor"
    size_param: str | None = None


class NextUrlPagination(_Sized):
    """The body holds the next page's full URL (JSON:API ``links.next``)."""

    type: Literal["next_url"]
    next_url_path: str = "links.next"
    size_param: str | None = None


class LinkHeaderPagination(_Sized):
    """RFC 8288 ``Link: <…>; rel="next"``."""

    type: Literal["link_header"]
    rel: str = "next"
    size_param: str | None = None


Pagination = Annotated[
    Annotated[
        NoPagination | OffsetPagination | PageNumberPagination | CursorPagination | NextUrlPagination
        | LinkHeaderPagination,
        Field(discriminator="type"),
    ]
    # shorthands for types whose fields all have defaults: `pagination: none`
    | Literal["none", "offset", "page_number", "next_url", "link_header"],
    BeforeValidator(_shorthand),
]

# --------------------------------------------------------------------------------------------- streams


class Incremental(Model):
    """Read only what changed since a cursor, re-reading a lookback window to catch late writes."""

    param: str = Field(description="Query parameter taking the lower bound, e.g. modifiedAfter")
    cursor_field: str = Field(description="Record field holding the change time, e.g. modifiedAt")
    format: str = Field("%Y-%m-%dT%H:%M:%S", description="strftime format of the parameter, or 'epoch'")
    lookback_seconds: int = Field(0, ge=0, description="Subtracted from the cursor before each read")


class ParentRef(Model):
    """A child stream is read once per record of its parent (units of each enterprise)."""

    stream: str
    include: dict[str, str] = Field(
        default_factory=dict, description="Child record key -> parent field copied into each child"
    )


class ById(Model):
    """How to read one object by id (``{params.id}``)."""

    path: ReadTpl
    records: str | None = Field(None, description="Dotted path of the object in the body (None: the body)")


class Stream(Model):
    """A read: list endpoint, selector, key, incremental cursor, parent."""

    description: str | None = None
    path: ReadTpl
    params: ReadTpl = Field(default_factory=dict)
    headers: ReadTpl = Field(default_factory=dict)
    records: str | None = Field(None, description="Dotted path of the record list (None: the body is the list)")
    primary_key: str | list[str] | None = None
    pagination: Pagination | None = Field(None, description="Overrides the spec's default pagination")
    incremental: Incremental | None = None
    parent: ParentRef | None = None
    by_id: ById | None = None
    auth: str | None = Field(None, description="Name of an entry in the spec's 'auths' to use instead of 'auth'")
    empty_on: list[int] = Field(
        default_factory=list, description="Statuses that mean 'no records' for this read (CV answers 404)"
    )


# --------------------------------------------------------------------------------------------- actions


class JsonBody(Model):
    type: Literal["json"]
    template: WriteTpl


class JsonApiBody(Model):
    """A JSON:API document ``{data: {type, id?, attributes, relationships}}`` (Clicksign)."""

    type: Literal["jsonapi"]
    resource: str
    id: WriteTpl = None
    attributes: WriteTpl = Field(default_factory=dict)
    relationships: dict[str, JsonApiRelationship] = Field(default_factory=dict)


class JsonApiRelationship(Model):
    type: str
    id: WriteTpl


class FormBody(Model):
    type: Literal["form"]
    fields: WriteTpl


class FilePart(Model):
    field: str
    filename: WriteTpl
    content: WriteTpl = Field(description="Reference to bytes, or to base64 text with encoding: base64")
    encoding: Literal["raw", "base64"] = "raw"
    content_type: str = "application/octet-stream"


class MultipartBody(Model):
    type: Literal["multipart"]
    fields: WriteTpl = Field(default_factory=dict)
    files: list[FilePart] = Field(default_factory=list)


Body = Annotated[JsonBody | JsonApiBody | FormBody | MultipartBody, Field(discriminator="type")]


class FindExisting(Model):
    """How to find an object we may already have created, by our external key, before retrying a create."""

    stream: str | None = Field(None, description="A stream to read with the params below")
    path: LookupTpl = None
    params: LookupTpl = Field(default_factory=dict)
    records: str | None = None
    match: LookupTpl = Field(
        default_factory=dict, description="Response field -> expected value; all must match (client-side)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> FindExisting:
        if (self.stream is None) == (self.path is None):
            raise ValueError("set exactly one of 'stream' or 'path'")
        return self


class ResultSpec(Model):
    id_path: str | None = Field(None, description="Dotted path of the created object's id")
    records: str | None = Field(None, description="Dotted path of the object in the body")


class Action(Model):
    """A write or a download."""

    description: str | None = None
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: WriteTpl
    params: WriteTpl = Field(default_factory=dict)
    headers: WriteTpl = Field(default_factory=dict)
    body: Body | None = None
    expect: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])
    response: Literal["json", "binary", "none"] = "json"
    result: ResultSpec = Field(default_factory=ResultSpec)
    idempotent: bool | None = Field(None, description="Default: GET/PUT/DELETE yes, POST/PATCH no")
    idempotency_header: str | None = Field(None, description="Header carrying our idempotency key, if the API has one")
    find_existing: FindExisting | None = None
    auth: str | None = Field(None, description="Name of an entry in the spec's 'auths' to use instead of 'auth'")

    @property
    def is_idempotent(self) -> bool:
        return self.idempotent if self.idempotent is not None else self.method in ("GET", "PUT", "DELETE")


# -------------------------------------------------------------------------------------------- webhooks


class HmacVerify(Model):
    """HMAC of the raw body (or one body field) in one of several headers; one match is enough."""

    type: Literal["hmac"]
    secret: SecretTpl
    headers: list[str] = Field(min_length=1, description="Headers that may carry a signature (key rotation)")
    algorithm: Literal["sha256", "sha1", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field("", description="Text before the digest, e.g. 'sha256='")
    over_field: str | None = Field(None, description="Sign this body field instead of the raw body (D4Sign)")


class BearerVerify(Model):
    """The sender presents a shared token as ``Authorization: Bearer <token>`` (Sienge hooks)."""

    type: Literal["bearer"]
    token: SecretTpl
    header: str = "Authorization"
    scheme: str = "Bearer"


class HeaderSecretVerify(Model):
    """A custom header with a shared secret (ZapSign's configured headers)."""

    type: Literal["header_secret"]
    header: str
    value: SecretTpl


class UrlSecretVerify(Model):
    """A long secret in the delivery URL (CV CRM, which signs nothing)."""

    type: Literal["url_secret"]
    param: str = Field(description="Query or path parameter holding the secret")
    value: SecretTpl


class StandardWebhooksVerify(Model):
    """Standard Webhooks: ``webhook-id``/``-timestamp``/``-signature: v1,<base64>`` over ``id.ts.body``.

    The signed ``webhook-timestamp`` is the attempt's send time, so a delivery further than
    ``tolerance_seconds`` from now, in the past or the future, is refused as a replay (or a clock far
    off) before it is stored. The only scheme with such a window: the others sign no send time.
    """

    type: Literal["standard_webhooks"]
    secret: SecretTpl = Field(description="The whsec_… secret (base64 after the prefix)")
    tolerance_seconds: Annotated[int, Field(ge=1)] | UrlTpl = Field(
        300,
        description="Replay window in seconds, either side of now (default 300); a number, or a "
        "{values.<name>} template so each tenant can set it in its connector values",
    )


Verify = Annotated[
    HmacVerify | BearerVerify | HeaderSecretVerify | UrlSecretVerify | StandardWebhooksVerify,
    Field(discriminator="type"),
]


class Locator(Model):
    """Where a value of a delivery is: a header, a body path, a query parameter, or derived."""

    header: str | None = None
    body: str | None = Field(None, description="Dotted body path; numbers index lists")
    query: str | None = None
    constant: str | None = None
    composite: list[str] | None = Field(None, description="Body paths joined by ':' (an id the sender omits)")
    hash_of_body: bool = Field(False, description="sha256 of the raw body (an id the sender omits)")
    format: Literal["iso", "epoch", "epoch_ms", "text"] = Field("text", description="For event_time")

    @model_validator(mode="after")
    def _one(self) -> Locator:
        chosen = [
            k for k in ("header", "body", "query", "constant", "composite") if getattr(self, k) is not None
        ] + (["hash_of_body"] if self.hash_of_body else [])
        if len(chosen) != 1:
            raise ValueError("set exactly one of header, body, query, constant, composite, hash_of_body")
        return self


class Register(Model):
    """How to register the webhook at the system: an action, with the record it is called with."""

    action: str
    record: Annotated[dict[str, Any], _template("values", "secrets")] = Field(default_factory=dict)


class Challenge(Model):
    """A GET handshake the system makes before deliveries (WhatsApp's hub.challenge)."""

    mode_param: str = "hub.mode"
    mode: str = "subscribe"
    token_param: str = "hub.verify_token"
    token: SecretTpl
    challenge_param: str = "hub.challenge"


class Webhook(Model):
    description: str | None = None
    verify: Verify
    event_id: Locator
    event_type: Locator
    event_time: Locator | None = None
    subject_id: Locator | None = Field(None, description="The object the event is about, to re-read it")
    events: list[UrlTpl] = Field(default_factory=list, description="Event names to subscribe to")
    registration: Register | None = None
    challenge: Challenge | None = None


# --------------------------------------------------------------------------------------------- signing

#: templates of the signing section read the envelope dispatch is sending (``{envelope.idempotency_key}``)
EnvelopeTpl = Annotated[Any, _template("envelope")]


class SignerIds(Model):
    """The provider's id of each signer, from the create answer's signer list (``signing.signers``)."""

    id: str = Field(description="Field of each listed signer holding the provider's signer id, e.g. 'token'")
    match: list[Literal["email", "order"]] = Field(
        default_factory=lambda: ["email", "order"],
        description="Tried in turn: 'email' (the one listed signer with the signer's e-mail), 'order' (the "
        "listed signer at the position Ponte sent it)",
    )


class SigningCreate(Model):
    """The action that creates the envelope; its record is the canonical envelope (``record.signers``...)
    plus ``record.document_base64``, ``record.external_key`` (Ponte's idempotency key) and ``record.name``."""

    action: str
    envelope_id: str | None = Field(
        None, description="Dotted path of the provider's envelope id in the answer (default: the action's result.id_path)"
    )
    signer_ids: SignerIds | None = None


class SigningSend(Model):
    """An action that sends the created envelope (omit it for a provider that sends on create)."""

    action: str


class SigningLookup(Model):
    """How to find an envelope by Ponte's key before anything is sent again (after a crash or an unsure
    create). "Not there" is trusted only when every record the stream returned passed ``match`` (so the
    filter was applied) and the listing ended; otherwise the contract is dead-lettered for a person."""

    stream: str
    params: EnvelopeTpl = Field(default_factory=dict, description="Read parameters, e.g. {external_id: '{envelope.idempotency_key}'}")
    match: EnvelopeTpl = Field(description="Record path -> expected value; all must hold for the record to be ours")
    id: str | None = Field(None, description="Dotted path of the envelope id in a listed record (default: create.envelope_id)")
    limit: int = Field(100, ge=1, description="Records read at most; a listing that reaches it cannot say 'not there'")


class SigningStatus(Model):
    """The provider's current state of one envelope (reads are the truth), as canonical signing events."""

    stream: str = Field(description="A stream with by_id; read with the provider's envelope id")
    mappings: list[str] = Field(
        min_length=1,
        description="Mappings from signing/provider_payload ({provider, body: the read, signers}) to "
        "canonical/signing_event",
    )


class SigningDownload(Model):
    """Where the signed PDF is: a link in the status read (fetched from the spec's own hosts and file_hosts)."""

    from_status: str = Field(description="Dotted path of the signed file's URL in the status read")
    webhook_hint: str | None = Field(
        None, description="Dotted path of a signed-file link in a webhook body: a hint, tried once, then the status read"
    )


class SigningVoid(Model):
    action: str


class Signing(Model):
    """What dispatch and back-sync need from a signing provider described in YAML alone."""

    create: SigningCreate
    signers: str | None = Field(
        None,
        description="Dotted path of the signer list in the provider's envelope JSON (create answer, status "
        "read, webhook body); mappings get it as `signers` beside `body`",
    )
    send: SigningSend | None = None
    lookup: SigningLookup | None = Field(
        None, description="Without it, an unsure create is a dead letter for a person to check (never resent)"
    )
    status: SigningStatus | None = None
    download: SigningDownload | None = None
    webhook_mappings: list[str] = Field(
        default_factory=list,
        description="Mappings from signing/provider_payload ({provider, body: the delivery, signers}) to "
        "canonical/signing_event",
    )
    void: SigningVoid | None = None

    @model_validator(mode="after")
    def _signers_listed(self) -> Signing:
        if self.create.signer_ids is not None and self.signers is None:
            raise ValueError("create.signer_ids needs `signers`: where the answer lists the signers")
        return self


# ---------------------------------------------------------------------------------- budgets and retries


class RateLimit(Model):
    """The API's request budget; Ponte paces itself below it instead of waiting for a 429."""

    per_second: float | None = Field(None, gt=0)
    per_minute: float | None = Field(None, gt=0)
    per_hour: float | None = Field(None, gt=0)
    per_day: float | None = Field(None, gt=0)


class RetryPolicy(Model):
    max_attempts: int = Field(5, ge=1)
    max_elapsed_seconds: float = Field(120, gt=0)
    initial_backoff_seconds: float = Field(0.5, gt=0)
    max_backoff_seconds: float = Field(30, gt=0)
    retry_statuses: list[int] = Field(default_factory=lambda: [429, 502, 503, 504])


class Timeouts(Model):
    connect: float = 5
    read: float = 30
    write: float = 30
    pool: float = 5


# ------------------------------------------------------------------------------------------ top level


class _Common(Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str | None = None
    description: str | None = None
    docs: list[str] = Field(default_factory=list, description="Where the API facts come from")
    values: dict[str, ValueDecl] = Field(default_factory=dict)
    secrets: dict[str, SecretDecl] = Field(default_factory=dict)
    rate_limit: RateLimit | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


class CheckRead(Model):
    """A stream `ponte connector check` reads, with the parameters it needs (DocuSign's from_date)."""

    stream: str
    params: dict[str, str] = Field(default_factory=dict)


class HttpConnectorSpec(_Common):
    """An HTTP API: base URL, auth, streams, actions, webhooks."""

    kind: Literal["http"]
    base_url: UrlTpl
    headers: Annotated[dict[str, Any], _template("values", "secrets")] = Field(default_factory=dict)
    auth: Auth = Field(default_factory=lambda: NoAuth(type="none"))
    auths: dict[str, Auth] = Field(
        default_factory=dict, description="Other auth schemes by name, for streams/actions that need them (CV v3)"
    )
    pagination: Pagination = Field(default_factory=lambda: NoPagination(type="none"))
    timeouts: Timeouts = Field(default_factory=Timeouts)
    streams: dict[str, Stream] = Field(default_factory=dict)
    actions: dict[str, Action] = Field(default_factory=dict)
    webhooks: dict[str, Webhook] = Field(default_factory=dict)
    check: list[str | CheckRead] = Field(default_factory=list, description="Streams `ponte connector check` reads")
    file_hosts: list[FileHost] = Field(
        default_factory=list,
        description=(
            "Where files named in this system's payloads (a signed document's link, an attachment) may "
            "be downloaded from, and where a redirect may lead, besides the base URL's own origin: host "
            "patterns, HTTPS only (`*.clicksign.com`), or exact origins (`http://127.0.0.1:8080`)."
        ),
    )
    max_download_bytes: int = Field(
        50 * 1024 * 1024,
        gt=0,
        description="The largest file a download may bring (counted while it streams; a bigger one is a bad record).",
    )
    signing: Signing | None = Field(
        None, description="A signing provider's capability, read by dispatch and back-sync (docs/dispatch.md)"
    )


class SmtpConnectorSpec(_Common):
    """An SMTP server: a connector of its own kind (no streams; one `send`)."""

    kind: Literal["smtp"]
    host: UrlTpl
    port: UrlTpl = "587"
    security: UrlTpl = Field("starttls", description="starttls | tls | none (a template: tenants choose)")
    username: SecretTpl | None = None
    password: SecretTpl | None = None
    from_address: UrlTpl = Field(alias="from")
    timeout_seconds: float = 30


ConnectorSpec = Annotated[HttpConnectorSpec | SmtpConnectorSpec, Field(discriminator="kind")]
