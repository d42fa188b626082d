"""Bad input, property-based: webhook verifiers, payload mappings and Retry-After never crash.

For every verification scheme a shipped spec uses (bearer, URL secret, header secret, HMAC hex with a
prefix, HMAC base64 over one of several headers) and the timestamped Standard Webhooks scheme:

- random bodies, headers and URL parameters raise only the documented errors (a WebhookAuthError
  subclass, or MalformedDeliveryError for an authentic but unreadable body), never anything else;
- a correctly signed random body always passes authentication;
- any single-byte change of a signed body is refused (schemes that sign the body), and any
  single-character change of the token is refused (schemes that only carry a token: they do not sign
  the body, by the provider's design, so an altered body with the right token is accepted);
- a timestamp outside the tolerance is refused (the only scheme that signs one).

Every mapping is fed random JSON-like records and mutated copies of its golden samples: it answers a
valid canonical record (or None / a list for filtered and split mappings) or raises DataError.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from connectors.runtime.client import Connector
from connectors.runtime.errors import (
    MalformedDeliveryError,
    MissingSignatureError,
    SignatureMismatchError,
    StaleDeliveryError,
    WebhookAuthError,
)
from connectors.runtime.retry import parse_retry_after
from connectors.runtime.webhooks import WebhookDelivery, parse_time
from mappings import MappingContext, list_mappings, load_mapping
from mappings.samples import SAMPLE_NOW, context_path, load_context
from pipelines.connections import open_connector
from ponte.errors import DataError
from schemas.documents import normalize_cnpj, normalize_cpf, normalize_phone, normalize_tax_id
from schemas.tenant import load_tenant
from tests.connectors.conftest import make_spec
from tests.security.signing import (
    sign_clicksign,
    sign_cvcrm,
    sign_docusign,
    sign_sienge,
    sign_whatsapp,
    sign_zapsign,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "mappings" / "samples"
DEMO = load_tenant(REPO / "tenants" / "demo.yaml")
GOLDEN = load_tenant(SAMPLES / "golden.yaml")

#: the errors verification may raise on bad input: nothing else, ever
DOCUMENTED = (MissingSignatureError, SignatureMismatchError, StaleDeliveryError, MalformedDeliveryError)

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------- strategies

header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
#: header names worth guessing: every scheme's own plus noise
SIGNATURE_HEADERS = [
    "Authorization",
    "Content-Hmac",
    "X-Hub-Signature-256",
    "X-DocuSign-Signature-1",
    "X-DocuSign-Signature-3",
    "X-Ponte-Secret",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-sienge-id",
    "x-sienge-event",
    "Event",
]
header_names = st.sampled_from(SIGNATURE_HEADERS) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), min_size=1, max_size=30
)
random_headers = st.dictionaries(
    header_names,
    header_text
    | st.sampled_from(
        ["Bearer ", "sha256=", "v1,", "sha256=" + "0" * 64, "Bearer sienge-hook-token", "0", "-1", "1e309"]
    ),
    max_size=6,
)
random_params = st.dictionaries(
    st.sampled_from(["secret", "hub.mode", "hub.verify_token", "x"]) | st.text(max_size=8),
    st.text(max_size=40),
    max_size=3,
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
#: bodies: raw bytes, JSON documents, and form-encoded text (D4Sign style)
bodies = st.one_of(
    st.binary(max_size=1024),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=8), st.text(max_size=16), max_size=4).map(
        lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode("utf-8", "surrogatepass")
    ),
)


def _one_byte_changed(body: bytes, data: st.DataObject) -> bytes:
    """``body`` with exactly one byte changed (or one byte added/removed when it is empty)."""
    if not body:
        return data.draw(st.binary(min_size=1, max_size=1), label="added byte")
    index = data.draw(st.integers(0, len(body) - 1), label="index")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]), label="new byte")
    return body[:index] + bytes([new]) + body[index + 1 :]


def _one_char_changed(token: str, data: st.DataObject) -> str:
    index = data.draw(st.integers(0, len(token) - 1), label="index")
    new = data.draw(st.characters(min_codepoint=33, max_codepoint=126).filter(lambda c: c != token[index]))
    return token[:index] + new + token[index + 1 :]


# ----------------------------------------------------------------------------------------- schemes


class Scheme:
    """One shipped webhook, its connector for the demo tenant and how to sign a body for it."""

    def __init__(
        self,
        name: str,
        connector: Callable[[], Connector],
        webhook: str,
        sign: Callable[[Connector, bytes], tuple[dict[str, str], dict[str, str]]],
        signs_body: bool,
        token: Callable[[Connector], str] | None = None,
        wellformed: Callable[[int], tuple[dict[str, str], bytes, str]] | None = None,
    ) -> None:
        self.name, self.webhook, self.sign, self.signs_body = name, webhook, sign, signs_body
        self._connector, self._conn = connector, None
        self.token = token
        self.wellformed = wellformed

    @property
    def conn(self) -> Connector:
        if self._conn is None:
            self._conn = self._connector()
        return self._conn

    def verify(
        self,
        headers: dict[str, str],
        body: bytes,
        params: dict[str, str] | None = None,
        now: datetime | None = None,
    ) -> WebhookDelivery:
        return self.conn.verify_webhook(self.webhook, headers, body, params or {}, now=now)


def _demo(key: str) -> Callable[[], Connector]:
    return lambda: open_connector(DEMO, key)


SW_KEY = b"standard-webhooks-key-32-bytes!!"
SW_SPEC = make_spec(
    {
        "secrets": {"secret": {"description": "s"}},
        "webhooks": {
            "events": {
                "verify": {
                    "type": "standard_webhooks",
                    "secret": "{secrets.secret}",
                    "tolerance_seconds": 300,
                },
                "event_id": {"header": "webhook-id"},
                "event_type": {"body": "type"},
                "event_time": {"header": "webhook-timestamp", "format": "epoch"},
            }
        },
    }
)


def _sw_headers(body: bytes, stamp: int, msg_id: str = "msg_1") -> dict[str, str]:
    sig = base64.b64encode(
        hmac.new(SW_KEY, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": f"v1,{sig}"}


def _standard(conn: Connector, body: bytes) -> tuple[dict[str, str], dict[str, str]]:
    return _sw_headers(body, int(datetime.now(UTC).timestamp())), {}


def _wf_docusign(n: int) -> tuple[dict[str, str], bytes, str]:
    body = {
        "event": "envelope-completed",
        "generatedDateTime": "2026-05-01T13:00:00.000Z",
        "data": {"envelopeId": f"env-{n}"},
    }
    return {}, json.dumps(body).encode(), f"envelope-completed:env-{n}:"  # no recipient; no message time


def _wf_cvcrm(n: int) -> tuple[dict[str, str], bytes, str]:
    body = {
        "idwebhook": 3,
        "funcionalidade": "AS",
        "gatilho": 12,
        "id": n,
        "enviado_em": "2026-05-01 10:00:00",
    }
    return {}, json.dumps(body).encode(), f"3:AS:12:{n}:2026-05-01 10:00:00"


SCHEMES = [
    Scheme(
        "sienge bearer",
        _demo("sienge"),
        "hooks",
        sign_sienge,
        signs_body=False,
        token=lambda c: c.secrets["webhook_token"],
    ),
    Scheme(
        "cvcrm url secret",
        _demo("cvcrm"),
        "events",
        sign_cvcrm,
        signs_body=False,
        token=lambda c: c.secrets["webhook_secret"],
        wellformed=_wf_cvcrm,
    ),
    Scheme(
        "docusign hmac base64",
        _demo("docusign"),
        "connect",
        sign_docusign,
        signs_body=True,
        wellformed=_wf_docusign,
    ),
    Scheme("clicksign content-hmac", _demo("clicksign"), "events", sign_clicksign, signs_body=True),
    Scheme("whatsapp x-hub-signature-256", _demo("whatsapp"), "messages", sign_whatsapp, signs_body=True),
    Scheme(
        "zapsign header secret",
        lambda: Connector.open(
            "zapsign",
            {"base_url": "http://127.0.0.1:1"},
            {"api_token": "zap-token", "webhook_secret": "zap-header-secret"},
        ),
        "events",
        sign_zapsign,
        signs_body=False,
        token=lambda c: c.secrets["webhook_secret"],
    ),
    Scheme(
        "standard webhooks",
        lambda: Connector.open(
            SW_SPEC,
            {"base_url": "http://127.0.0.1:1"},
            {"secret": "whsec_" + base64.b64encode(SW_KEY).decode()},
        ),
        "events",
        _standard,
        signs_body=True,
    ),
]
BY_NAME = {s.name: s for s in SCHEMES}
scheme_ids = pytest.mark.parametrize("scheme", SCHEMES, ids=[s.name for s in SCHEMES])


@scheme_ids
@FUZZ
@given(headers=random_headers, body=bodies, params=random_params)
def test_random_deliveries_raise_only_documented_errors(scheme: Scheme, headers, body, params) -> None:
    try:
        delivery = scheme.verify(headers, body, params)
    except DOCUMENTED as exc:
        assert exc.tenant, "the error names the tenant"
        return
    pytest.fail(f"an unsigned random delivery was accepted: {delivery!r}")


@scheme_ids
@FUZZ
@given(body=bodies)
def test_a_correctly_signed_random_body_is_always_authenticated(scheme: Scheme, body: bytes) -> None:
    headers, params = scheme.sign(scheme.conn, body)
    try:
        delivery = scheme.verify(headers, body, params)
    except MalformedDeliveryError:
        return  # authentic but unreadable (not JSON, or no event id where the spec says): a 400, not a 401
    except WebhookAuthError as exc:  # pragma: no cover - the property under test
        pytest.fail(f"a correctly signed body was refused: {exc}")
    assert delivery.event_id and delivery.event_type
    assert not any(k in delivery.headers for k in ("authorization", "content-hmac", "x-hub-signature-256"))


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s.wellformed], ids=lambda s: s.name)
@FUZZ
@given(n=st.integers(0, 10**12))
def test_a_signed_wellformed_delivery_yields_its_event_id(scheme: Scheme, n: int) -> None:
    extra, body, event_id = scheme.wellformed(n)  # type: ignore[misc]
    headers, params = scheme.sign(scheme.conn, body)
    assert scheme.verify({**headers, **extra}, body, params).event_id == event_id


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s.signs_body], ids=lambda s: s.name)
@FUZZ
@given(body=bodies, data=st.data())
def test_any_single_byte_change_of_a_signed_body_is_refused(scheme: Scheme, body: bytes, data) -> None:
    headers, params = scheme.sign(scheme.conn, body)
    altered = _one_byte_changed(body, data)
    with pytest.raises(SignatureMismatchError):
        scheme.verify(headers, altered, params)


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s.token], ids=lambda s: s.name)
@FUZZ
@given(body=bodies, data=st.data())
def test_any_single_character_change_of_the_token_is_refused(scheme: Scheme, body: bytes, data) -> None:
    token = scheme.token(scheme.conn)  # type: ignore[misc]
    forged = _one_char_changed(token, data)
    headers, params = scheme.sign(scheme.conn, body)
    headers = {k: v.replace(token, forged) for k, v in headers.items()}
    params = {k: v.replace(token, forged) for k, v in params.items()}
    with pytest.raises(SignatureMismatchError):
        scheme.verify(headers, body, params)


@FUZZ
@given(body=bodies, skew=st.integers(301, 10**9) | st.integers(-(10**9), -301))
def test_standard_webhooks_refuse_a_timestamp_outside_the_tolerance(body: bytes, skew: int) -> None:
    scheme = BY_NAME["standard webhooks"]
    now = datetime.now(UTC)
    headers = _sw_headers(body, int(now.timestamp()) + skew)  # correctly signed, but stale or from the future
    with pytest.raises(StaleDeliveryError):
        scheme.verify(headers, body, now=now)


@FUZZ
@given(body=bodies, stamp=header_text)
def test_standard_webhooks_garbage_timestamps_are_refused(body: bytes, stamp: str) -> None:
    scheme = BY_NAME["standard webhooks"]
    headers = {**_sw_headers(body, int(datetime.now(UTC).timestamp())), "webhook-timestamp": stamp}
    with pytest.raises((MissingSignatureError, SignatureMismatchError, StaleDeliveryError)):
        scheme.verify(headers, body)


@FUZZ
@given(value=json_values, fmt=st.sampled_from(["epoch", "epoch_ms", "iso", "text"]))
def test_parse_time_never_raises_anything_but_malformed(value: Any, fmt: str) -> None:
    try:
        when = parse_time(value, fmt)
    except MalformedDeliveryError:
        assert fmt != "text"
        return
    assert when is None or when.tzinfo is not None


def test_whatsapp_challenge_with_random_params_is_refused() -> None:
    scheme = BY_NAME["whatsapp x-hub-signature-256"]

    @FUZZ
    @given(params=random_params)
    def check(params: dict[str, str]) -> None:
        with pytest.raises((WebhookAuthError, MalformedDeliveryError)):
            scheme.conn.webhook_challenge("messages", params)

    check()


# ------------------------------------------------------------------------------------ Retry-After


retry_after_values = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-(10**30), 10**30).map(str),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)).map(
        lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")
    ),
    st.sampled_from(
        [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "  120 ",
            "1e309",
            "-0",
            "nan",
            "inf",
            "Mon, 99 Foo 2026 99:99:99 GMT",
            "Tue, 31 Dec 9999 23:59:59 +9999",
        ]
    ),
)


@settings(max_examples=400, deadline=None)
@given(value=retry_after_values, now=st.datetimes(timezones=st.just(UTC)))
def test_retry_after_never_raises_and_is_never_negative(value: str | None, now: datetime) -> None:
    seconds = parse_retry_after(value, now=now)
    assert seconds is None or (isinstance(seconds, float) and math.isfinite(seconds) and seconds >= 0)


def test_retry_after_reads_both_forms() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("Fri, 01 May 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Fri, 01 May 2026 11:00:00 GMT", now=now) == 0.0  # a past date: go now


# ------------------------------------------------------------------------------- document parsers


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(max_size=40) | st.from_regex(r"[0-9A-Z .\-/]{10,20}", fullmatch=True),
    parser=st.sampled_from([normalize_cpf, normalize_cnpj, normalize_tax_id, normalize_phone]),
)
def test_document_normalizers_raise_only_value_error(value: str, parser: Callable[[str], str]) -> None:
    try:
        out = parser(value)
    except ValueError:
        return
    assert isinstance(out, str) and out


# ----------------------------------------------------------------------------------------- mappings


def _samples(name: str) -> list[Path]:
    folder = SAMPLES / name
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.glob("*.json") if not p.name.endswith((".expected.json", ".context.json"))
    )


def _context(name: str) -> MappingContext:
    for sample in _samples(name):
        if context_path(sample).exists():
            return load_context(context_path(sample))
    return MappingContext(tenant=GOLDEN, now=SAMPLE_NOW)


_DELETE = object()


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _replace(node: Any, path: tuple, value: Any) -> Any:
    if not path:
        return node if value is _DELETE else value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        copy = dict(node)
        if not rest and value is _DELETE:
            copy.pop(head, None)
        else:
            copy[head] = _replace(node[head], rest, value)
        return copy
    copy = list(node)
    if not rest and value is _DELETE:
        del copy[head]
    else:
        copy[head] = _replace(node[head], rest, value)
    return copy


#: values that tend to break parsers: wrong types, edge numbers, odd dates and documents
NASTY = st.sampled_from(
    [
        None,
        "",
        " ",
        0,
        -1,
        2**63,
        1e308,
        -1e308,
        True,
        [],
        {},
        "null",
        "2026-13-45",
        "2026-02-30T25:61:00Z",
        "not a date",
        "9" * 40,
        "000.000.000-00",
        "111.111.111-11",
        "12.ABC.345/01DE-00",
        "+55",
        "()",
        "💥",
        "\x00",
        "1e309",
        "-0",
        "NaN",
        [None],
        [{}],
        {"": None},
        "@",
        "a@",
        "@b",
        "x" * 10_000,
    ]
)


@st.composite
def mutated(draw: st.DrawFn, sample: Any) -> Any:
    record = sample
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(record)
        path = draw(st.sampled_from(paths))
        value = draw(st.just(_DELETE) | NASTY | json_values) if path else draw(NASTY | json_values)
        record = _replace(record, path, value)
    return record


def _check_mapping_output(out: Any) -> None:
    items = out if isinstance(out, list) else [out]
    for item in items:
        if item is None:
            continue
        assert isinstance(item, BaseModel)
        type(item).model_validate(item.model_dump())  # a valid canonical (or target) record


def _run(name: str, record: Any, ctx: MappingContext) -> None:
    mapping = load_mapping(name)
    try:
        out = mapping.run(record, ctx)
    except DataError:
        return
    _check_mapping_output(out)


MAPPINGS = list_mappings()

#: found by this fuzz and fixed: a malformed split path (a number, a string) raised TypeError


@pytest.mark.parametrize("entry", [-1, " ", [3], [{"changes": 5}]])
def test_split_mapping_on_a_malformed_delivery_raises_data_error(entry: Any) -> None:
    ctx = _context("whatsapp/status_to_notification")
    with pytest.raises(DataError):
        load_mapping("whatsapp/status_to_notification").run(
            {"object": "whatsapp_business_account", "entry": entry}, ctx
        )


@pytest.mark.parametrize("name", MAPPINGS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=json_values | st.dictionaries(st.text(max_size=12), json_values, max_size=8), data=st.data())
def test_every_mapping_on_random_records_raises_only_data_error(name: str, record: Any, data) -> None:
    _run(name, record, _context(name))


@pytest.mark.parametrize("name", [n for n in MAPPINGS if _samples(n)])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_mapping_on_mutated_samples_raises_only_data_error(name: str, data) -> None:
    sample_path = data.draw(st.sampled_from(_samples(name)), label="sample")
    sample = json.loads(sample_path.read_text(encoding="utf-8"))
    record = data.draw(mutated(sample), label="record")
    _run(name, record, _context(name))


def test_every_webhook_reading_mapping_is_fuzzed() -> None:
    webhook_mappings = {
        "docusign/connect_to_signing_event",
        "clicksign/webhook_to_signing_event",
        "whatsapp/status_to_notification",
    }
    assert webhook_mappings <= set(MAPPINGS)
    assert all(_samples(n) for n in webhook_mappings)
