"""The transform library: examples for each transform, and round-trip properties (hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from stdnum.br import cnpj as stdnum_cnpj

from mappings.context import MappingContext, static_lookup
from mappings.transforms import REGISTRY, SAO_PAULO, build, catalogue
from ponte.errors import DataError
from schemas.documents import format_cnpj, format_cpf
from schemas.tenant import TenantConfig

#: per-test settings (a loaded profile would change every other module's hypothesis tests too)
FAST = settings(max_examples=100, deadline=None)


def fn(name: str, args: object = None):
    return build(name, args)[1]


# ---- strategies -----------------------------------------------------------------------------------

def _cpf_digits(base: str) -> str:
    first = sum((10 - i) * int(d) for i, d in enumerate(base)) * 10 % 11 % 10
    second = sum((11 - i) * int(d) for i, d in enumerate(base + str(first))) * 10 % 11 % 10
    return f"{base}{first}{second}"


cpfs = st.text("0123456789", min_size=9, max_size=9).filter(lambda b: len(set(b)) > 1).map(_cpf_digits)
cnpj_roots = st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=12, max_size=12)
cnpjs = cnpj_roots.map(lambda b: b + stdnum_cnpj.calc_check_digits(b)).filter(stdnum_cnpj.is_valid)
# Brazilian mobiles: a real area code, 9, then 8 digits
mobiles = st.tuples(st.sampled_from(["11", "21", "31", "41", "48", "51", "61", "62", "71", "81"]),
                    st.integers(0, 10**8 - 1)).map(lambda t: f"{t[0]}9{t[1]:08d}")
days = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False)


# ---- documents ----------------------------------------------------------------------------------

@FAST
@given(cpfs)
def test_cpf_round_trips_through_its_formatted_form(cpf: str) -> None:
    formatted = fn("cpf", {"format": True})(cpf)
    assert formatted == format_cpf(cpf)
    assert fn("cpf")(formatted) == cpf
    assert fn("digits")(formatted) == cpf


@FAST
@given(cnpjs)
def test_cnpj_numeric_and_alphanumeric_round_trip(cnpj: str) -> None:
    formatted = fn("cnpj", True)(cnpj)
    assert formatted == format_cnpj(cnpj)
    assert fn("cnpj")(formatted.lower()) == cnpj
    assert fn("tax_id")(formatted) == cnpj
    assert fn("document_kind")(cnpj) == "cnpj"


def test_document_errors_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="check digits"):
        fn("cpf")("529.982.247-26")
    with pytest.raises(ValueError, match="11 digits"):
        fn("cpf")("1234")
    with pytest.raises(ValueError, match="CPF has 11 digits and a CNPJ 14"):
        fn("tax_id")("123")
    assert fn("tax_id", {"format": True})("12ABC34501DE35") == "12.ABC.345/01DE-35"


@FAST
@given(st.text(max_size=30))
def test_digits_keeps_only_digits_and_is_idempotent(text: str) -> None:
    out = fn("digits")(text)
    if out is None:
        assert not any(ch.isdigit() for ch in text)
    else:
        assert out.isdigit() and fn("digits")(out) == out


# ---- phones -------------------------------------------------------------------------------------

@FAST
@given(mobiles)
def test_phone_e164_and_back_to_the_crm_format(national: str) -> None:
    e164 = fn("phone")(national)
    assert e164 == "+55" + national
    crm = fn("phone_format", "national")(e164)
    assert crm.startswith(f"({national[:2]}) ")
    assert fn("phone")(crm) == e164
    assert fn("phone_format", "digits")(e164) == national
    assert fn("phone_format", "whatsapp")(e164) == "55" + national
    assert fn("phone")("0" + national) == e164  # trunk prefix as Sienge sometimes stores it


def test_phone_invalid_fails_or_drops() -> None:
    with pytest.raises(ValueError, match="phone"):
        fn("phone")("123")
    assert fn("phone", {"on_invalid": "drop"})("123") is None


# ---- dates --------------------------------------------------------------------------------------

@FAST
@given(days)
def test_dates_round_trip_between_sienge_and_cvcrm(day: date) -> None:
    sienge = day.isoformat()
    cvcrm = fn("date_format", "cvcrm")(sienge)
    assert cvcrm == day.strftime("%d/%m/%Y")
    assert fn("date", "cvcrm")(cvcrm) == day
    assert fn("date", "sienge")(sienge) == day
    assert fn("date_format", "sienge")(fn("date", "cvcrm")(cvcrm)) == sienge


@FAST
@example(datetime(1999, 2, 21, 1, 0, tzinfo=UTC))  # 23:00 on 20 Feb, São Paulo's repeated hour
@example(datetime(1999, 2, 21, 2, 0, tzinfo=UTC))
@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_datetimes_land_in_sao_paulo_and_keep_the_instant(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    # compared in UTC: an aware datetime in a repeated local hour (the end of Brazilian summer time,
    # e.g. 1999-02-21 01:00 UTC) never equals one in another zone under ==, even at the same instant
    parsed = fn("datetime")(moment.isoformat())
    assert parsed.astimezone(UTC) == moment and parsed.tzinfo == SAO_PAULO
    assert fn("datetime", "epoch")(str(int(moment.timestamp()))).astimezone(UTC) == moment
    assert fn("datetime")(fn("datetime_format")(moment)).astimezone(UTC) == moment


def test_datetime_formats() -> None:
    assert fn("datetime")("2026-11-18T14:32:10").utcoffset() == timedelta(hours=-3)  # naive: Brasília
    assert fn("datetime", "auto")("18/11/2026 14:32:10") == datetime(2026, 11, 18, 14, 32, 10, tzinfo=SAO_PAULO)
    assert fn("datetime", "auto")("18/11/2026").hour == 0
    assert fn("datetime_format", "cvcrm")("2026-11-18T17:32:10Z") == "18/11/2026 14:32:10"
    assert fn("date")("2026-11-18T23:59:00-03:00") == date(2026, 11, 18)
    with pytest.raises(ValueError, match="not a date"):
        fn("date", "cvcrm")("2026-11-18")
    with pytest.raises(ValidationError, match="unknown time zone"):
        build("datetime", {"tz": "America/Sao_Pablo"})


# ---- money --------------------------------------------------------------------------------------

@FAST
@given(amounts)
def test_money_reads_plain_brazilian_and_numbers_alike(amount: Decimal) -> None:
    plain = fn("money_text")(amount)
    br = fn("money_text", "br")(amount)
    assert fn("money")(plain) == amount
    assert fn("money")(br) == amount
    assert fn("money")(f"R$ {br}") == amount
    assert fn("money")(float(plain)) == amount


def test_money_examples() -> None:
    assert fn("money")(612345.67) == Decimal("612345.67")
    assert fn("money")("1.234,5") == Decimal("1234.50")
    assert fn("money")(0.1) == Decimal("0.10")
    assert fn("money_text", "br")("1234567.891") == "1.234.567,89"
    assert fn("decimal")(72.455) == Decimal("72.455")
    with pytest.raises(ValueError, match="not an amount"):
        fn("money")("doze reais")


# ---- enums, text, lists -----------------------------------------------------------------------------

def test_enum_tables_and_maps() -> None:
    assert [fn("enum", "sienge_sale_situation")(v) for v in ("0", 1, "2", 3)] == [
        "requested", "authorized", "issued", "cancelled"]
    assert fn("enum", "sienge_civil_status")("CASADO(A)") == "married"
    assert fn("enum", "sienge_civil_status")("Viúva") == "widowed"
    assert fn("enum", {"table": "cvcrm_sale_situation", "reverse": True})("vendida") == "issued"
    assert fn("enum", {"map": {"S": True}, "default": False})("x") is False
    assert fn("enum", {"map": {"a": 1}, "passthrough": True})("b") == "b"
    with pytest.raises(ValueError, match="not in the map"):
        fn("enum", "docusign_event_kind")("envelope-exploded")
    with pytest.raises(ValueError, match="exactly one of map"):
        build("enum", {"map": {"a": 1}, "table": "whatsapp_status"})


def test_text_transforms() -> None:
    assert fn("strip")("  Maria   da  Silva ") == "Maria da Silva"
    assert fn("strip")("   ") is None
    assert fn("title")("MARIA DA SILVA E SOUZA") == "Maria da Silva e Souza"
    assert fn("truncate", 10)("Documento para assinatura") == "Documento…"
    assert fn("regex", r"-\s*([A-Z]{2})$")("Rua X, 1, Joinville - SC") == "SC"
    assert fn("format", "Apto {}")(502) == "Apto 502"
    assert fn("split_name", "first")("Maria da Silva") == "Maria"
    assert fn("split_name", "rest")("Maria da Silva") == "da Silva"
    assert fn("bool")("S") is True and fn("bool")("não") is False
    assert fn("yes_no")(True) == "S"
    assert fn("int")("042") == 42
    assert fn("str")(42.0) == "42"
    with pytest.raises(ValueError, match="whole number"):
        fn("int")(1.5)


@FAST
@given(st.lists(st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=5)), max_size=6))
def test_coalesce_and_concat_skip_missing_values(values: list[str | None]) -> None:
    present = [v for v in values if v]
    assert fn("coalesce")(tuple(values)) == (present[0] if present else None)
    joined = fn("concat", ", ")(tuple(values))
    expected = ", ".join(p.strip() for p in present if p.strip())
    assert joined == (expected or None)


def test_list_transforms() -> None:
    assert fn("first")([None, "", "a", "b"]) == "a"
    assert fn("compact")(["a", None, "", "a", "b"]) == ["a", "b"]
    assert fn("join")(["a", None, "b"]) == "a, b"
    assert fn("count")([1, 2]) == 2
    assert fn("list")("x") == ["x"]
    assert fn("text_parameters")({"nome": "Clara", "n": 3}) == [
        {"type": "text", "text": "Clara"}, {"type": "text", "text": "3"}]


# ---- context transforms -------------------------------------------------------------------------------

def test_lookup_uses_the_injected_id_map() -> None:
    ctx = MappingContext(lookup=static_lookup({("person", "sienge", "42", "cvcrm"): "9137"}))
    lookup = fn("lookup", {"entity": "person", "from": "sienge", "to": "cvcrm"})
    assert lookup(42, ctx) == "9137"
    with pytest.raises(DataError, match="no cvcrm id for sienge person 7"):
        lookup(7, ctx)
    assert fn("lookup", {"entity": "person", "from": "sienge", "to": "cvcrm", "required": False})(7, ctx) is None
    with pytest.raises(DataError, match="no id map"):
        lookup(42, MappingContext())


def test_signer_chain_transforms_read_the_tenant() -> None:
    tenant = TenantConfig.model_validate({
        "id": "t", "name": "T", "connectors": {"docusign": {"spec": "docusign"}},
        "options": {"signer_chain": [{"role": "client", "order": 1},
                                     {"role": "witness", "order": 2, "channel": "whatsapp"}]}})
    ctx = SimpleNamespace(tenant=tenant)
    assert fn("signer_order")("client", ctx) == 1
    assert fn("signer_order")("spouse", ctx) is None
    assert fn("signer_channel")("witness", ctx) == "whatsapp"
    assert fn("signer_channel")("client", ctx) == "email"
    assert fn("evidence_required")(("sim", "not_required")) is True
    assert fn("evidence_required")(("padrao", "required")) is True
    assert fn("evidence_required")((None, "not_required")) is False
    assert fn("evidence_required")(("no", "required")) is False


def test_add_days() -> None:
    start = datetime(2026, 11, 20, 10, tzinfo=SAO_PAULO)
    assert fn("add_days")((start, 15)) == start + timedelta(days=15)
    assert fn("add_days")((start, None)) is None


def test_every_transform_is_documented_and_validates_its_arguments() -> None:
    for spec in catalogue():
        assert spec.doc, f"transform {spec.name} has no docstring"
    assert {"strip", "digits", "cpf", "cnpj", "phone", "phone_format", "date", "datetime", "enum", "money",
            "concat", "split_name", "coalesce", "lookup"} <= set(REGISTRY)
    with pytest.raises(ValueError, match="takes no arguments"):
        build("strip", {"x": 1})


@FAST
@given(st.text(alphabet=st.sampled_from("ab é\t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u2028\u3000"), max_size=12))
def test_strip_collapses_every_kind_of_whitespace_like_the_regular_expression(text: str) -> None:
    import re

    expected = re.sub(r"\s+", " ", text).strip() or None
    assert fn("strip")(text) == expected


@FAST
@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_cvcrm_dates_are_written_as_strftime_writes_them(day: date) -> None:
    expected = day.strftime("%d/%m/%Y")
    assert fn("date_format", "cvcrm")(day) == expected
    assert fn("date_format", "cvcrm")(day.isoformat()) == expected


def _phone_as_before(text: str) -> str | None:
    """The phone transform as written before its fast path: a trunk 0 is dropped from the digits."""
    from schemas.documents import normalize_phone

    text = text.strip()
    if not text.startswith("+"):
        digits = "".join(ch for ch in text if ch.isdigit())
        if digits.startswith("0") and len(digits) in (11, 12):
            text = digits[1:]
    try:
        return normalize_phone(text, "BR")
    except ValueError:
        return None


_PHONE_TEXTS = st.one_of(
    st.builds(
        lambda trunk, area, number, spaced: (f"{trunk}({area}) {number[:-4]}-{number[-4:]}" if spaced
                                             else f"{trunk}{area}{number}"),
        st.sampled_from(["", "0", "00", " 0"]),
        st.sampled_from(["11", "21", "48", "61", "92"]),
        st.text("0123456789", min_size=8, max_size=9).map(lambda d: "9" + d[1:] if len(d) == 9 else d),
        st.booleans(),
    ),
    st.text(alphabet=st.sampled_from("0123456789 ()-.+²"), min_size=1, max_size=16),
)


@FAST
@given(_PHONE_TEXTS)
def test_the_phone_transform_reads_trunk_prefixes_as_before(text: str) -> None:
    try:
        got = fn("phone")(text)
    except ValueError:
        got = None
    assert got == _phone_as_before(text)


def test_an_evidence_only_document_can_be_dropped_instead_of_failing_the_record() -> None:
    """A signer's placeholder CPF in a Clicksign webhook must not stop the status from syncing back."""
    for name in ("cpf", "tax_id"):
        with pytest.raises(ValueError, match="placeholder"):
            fn(name)("111.111.111-11")
        assert fn(name, {"on_invalid": "drop"})("111.111.111-11") is None
        assert fn(name, {"on_invalid": "drop", "format": True})("52998224725") == "529.982.247-25"
    assert fn("cnpj", {"on_invalid": "drop"})("11.111.111/1111-11") is None


def test_a_clicksign_sign_event_with_a_placeholder_document_still_translates() -> None:
    import json

    from mappings import MappingContext, load_mapping
    from tests.mappings.conftest import SAMPLES

    payload = json.loads((SAMPLES / "clicksign" / "webhook_to_signing_event" / "sign.json").read_text())
    payload["event"]["data"]["signer"]["documentation"] = "111.111.111-11"
    [event] = [e for e in [load_mapping("clicksign/webhook_to_signing_event").run(payload, MappingContext())] if e]
    assert event.evidence is not None and event.evidence.document is None
