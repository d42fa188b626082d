"""The transform library: small, named, registered conversions a mapping chains per field.

Each transform is a *factory*: it receives its arguments once, validated by a pydantic model when the
mapping loads (so a bad argument is a load error naming file and line), and returns a plain function
the compiled mapping calls per record. Conventions every transform follows:

- ``None`` never reaches a transform: the compiled code skips the rest of a chain when a value is
  missing, so a transform only handles real values.
- A transform that cannot convert a value raises ``ValueError`` with a sentence a person can act on;
  the compiled mapping turns it into a :class:`~ponte.errors.DataError` naming the mapping file, line,
  field and record.
- Transforms that take several values (``from: [a, b]``) are marked ``takes_many``; those that need the
  run's :class:`~mappings.context.MappingContext` (id-map lookup, tenant options) are ``needs_ctx``.

This module holds the generic transforms and the registry every transform joins (:func:`transform`).
Each system's enum tables live in :mod:`mappings.tables` (read by ``enum``); the signer and evidence
transforms (``signer_order``, ``signer_channel``, ``evidence_required``) in :mod:`mappings.signers`,
imported at the end of this module so that they are registered whenever it is.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mappings.linear_regex import compile_pattern
from mappings.tables import ENUM_TABLES
from ponte import DataError
from schemas import (
    format_br_phone,
    format_cnpj,
    format_cpf,
    normalize_cnpj,
    normalize_cpf,
    normalize_phone,
    normalize_tax_id,
)

SAO_PAULO = ZoneInfo("America/Sao_Paulo")

Fn = Callable[..., Any]


class Args(BaseModel):
    """Arguments of one transform, as written in the mapping (unknown keys are typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class TransformSpec:
    name: str
    factory: Callable[[Any], Fn]
    args: type[Args] | None
    doc: str
    takes_many: bool = False
    needs_ctx: bool = False
    #: the argument a scalar fills: ``{date: cvcrm}`` means ``{date: {format: cvcrm}}``
    shorthand: str | None = None


REGISTRY: dict[str, TransformSpec] = {}


def transform(
    name: str,
    args: type[Args] | None = None,
    *,
    takes_many: bool = False,
    needs_ctx: bool = False,
    shorthand: str | None = None,
) -> Callable[[Callable[[Any], Fn]], Callable[[Any], Fn]]:
    """Register a transform factory under ``name``."""

    def register(factory: Callable[[Any], Fn]) -> Callable[[Any], Fn]:
        doc = (factory.__doc__ or "").strip().splitlines()[0] if factory.__doc__ else ""
        REGISTRY[name] = TransformSpec(name, factory, args, doc, takes_many, needs_ctx, shorthand)
        return factory

    return register


def build(name: str, raw_args: Any = None) -> tuple[TransformSpec, Fn]:
    """Validate ``raw_args`` for transform ``name`` and return its spec and function.

    Raises KeyError for an unknown name and pydantic's ValidationError / ValueError for bad arguments;
    the compiler turns both into a ConfigurationError at the mapping's line.
    """
    spec = REGISTRY[name]
    if spec.args is None:
        if raw_args not in (None, {}):
            raise ValueError(f"transform {name!r} takes no arguments")
        return spec, spec.factory(None)
    if raw_args is None:
        raw_args = {}
    elif not isinstance(raw_args, Mapping):
        if spec.shorthand is None:
            raise ValueError(f"transform {name!r} takes named arguments ({', '.join(spec.args.model_fields)})")
        raw_args = {spec.shorthand: raw_args}
    return spec, spec.factory(spec.args.model_validate(dict(raw_args)))


# ---- text -----------------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_NON_DIGITS = re.compile(r"[^0-9]")
_LOWER_PARTICLES = frozenset({"da", "de", "do", "das", "dos", "e", "di", "du"})


def _only_digits(text: str) -> str:
    """The digits of ``text`` (str.isdigit's idea of a digit, so superscripts count as well)."""
    if text.isascii():
        return _NON_DIGITS.sub("", text)
    return "".join(ch for ch in text if ch.isdigit())


@functools.lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Case- and accent-insensitive form, for matching people's spellings of enum values (cached: an
    import meets the same few spellings on every record)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


@transform("strip")
def _strip(_: None) -> Fn:
    """Trim spaces and collapse inner runs of whitespace; an empty text becomes missing."""

    sub = _SPACES.sub

    def strip(value: Any) -> str | None:
        text = value if value.__class__ is str else str(value)
        # every whitespace character but the ASCII space is unprintable, so a printable text without
        # two spaces in a row has nothing to collapse (most do: the regex was a tenth of a mapping)
        if "  " in text or not text.isprintable():
            text = sub(" ", text)
        return text.strip() or None

    return strip


@transform("upper")
def _upper(_: None) -> Fn:
    """Upper-case."""
    return lambda value: _text(value).upper()


@transform("lower")
def _lower(_: None) -> Fn:
    """Lower-case (e-mails, codes)."""
    return lambda value: _text(value).strip().lower()


@transform("title")
def _title(_: None) -> Fn:
    """Name case: 'MARIA DA SILVA' -> 'Maria da Silva' (Portuguese particles stay lower-case)."""

    def title(value: Any) -> str:
        words = _SPACES.sub(" ", _text(value)).strip().split(" ")
        out = []
        for index, word in enumerate(words):
            low = word.lower()
            out.append(low if index and low in _LOWER_PARTICLES else low[:1].upper() + low[1:])
        return " ".join(out)

    return title


class TruncateArgs(Args):
    length: int = Field(ge=1)
    ellipsis: str = "…"


@transform("truncate", TruncateArgs, shorthand="length")
def _truncate(args: TruncateArgs) -> Fn:
    """Cut a text to ``length`` characters (ellipsis included), for fields with a size limit."""
    cut = args.length - len(args.ellipsis)

    def truncate(value: Any) -> str:
        text = _text(value)
        return text if len(text) <= args.length else text[: max(cut, 0)] + args.ellipsis

    return truncate


class RegexArgs(Args):
    pattern: str
    group: int | str = 1


@transform("regex", RegexArgs, shorthand="pattern")
def _regex(args: RegexArgs) -> Fn:
    """Extract a group of a regular expression (e.g. the state from 'Rua X, 10, Joinville - SC');
    no match means missing. Linear time in the text (:mod:`mappings.linear_regex`); a pattern that
    needs backtracking is refused at load (RegexRefused, with what to write instead)."""
    pattern = compile_pattern(args.pattern)
    if isinstance(args.group, int) and args.group > pattern.groups:
        raise ValueError(f"group {args.group} does not exist: the pattern has {pattern.groups} group(s)")
    if isinstance(args.group, str) and args.group not in pattern.groupindex:
        raise ValueError(f"the pattern has no group named {args.group!r}")

    def regex(value: Any) -> str | None:
        found = pattern.search(_text(value))
        return found.group(args.group) if found else None

    return regex


class TemplateTextArgs(Args):
    text: str


@transform("format", TemplateTextArgs, shorthand="text")
def _format(args: TemplateTextArgs) -> Fn:
    """Put the value into a short text: ``{format: 'Apto {}'}``."""
    if args.text.count("{}") != 1:
        raise ValueError("the text must contain exactly one {} where the value goes")
    before, after = args.text.split("{}")
    return lambda value: f"{before}{value}{after}"


# ---- numbers and scalars --------------------------------------------------------------------------


@transform("digits")
def _digits(_: None) -> Fn:
    """Keep digits only ('(48) 9912-3456' -> '4899123456'); no digit at all means missing."""

    def digits(value: Any) -> str | None:
        return _only_digits(_text(value)) or None

    return digits


@transform("str")
def _str(_: None) -> Fn:
    """Any scalar to text (Sienge's integer ids become the canonical string ids)."""

    def to_str(value: Any) -> str:
        if value.__class__ is int:
            return str(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return value if isinstance(value, str) else str(value)

    return to_str


@transform("int")
def _int(_: None) -> Fn:
    """Text or number to an integer ('042' -> 42); a fraction is an error, not a silent cut."""

    def to_int(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("expected a number, got a yes/no value")
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"expected a whole number, got {value}")
            return int(value)
        text = _text(value).strip()
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None

    return to_int


_TRUE = frozenset({"s", "sim", "y", "yes", "true", "1", "t", "v", "verdadeiro"})
_FALSE = frozenset({"n", "nao", "não", "no", "false", "0", "f"})


@transform("bool")
def _bool(_: None) -> Fn:
    """S/N, sim/não, true/false, 1/0 to a boolean."""

    def to_bool(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = fold(_text(value))
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"expected a yes/no value (S/N, true/false), got {value!r}")

    return to_bool


class YesNoArgs(Args):
    yes: Any = "S"
    no: Any = "N"


@transform("yes_no", YesNoArgs)
def _yes_no(args: YesNoArgs) -> Fn:
    """A boolean to the target's spelling of yes/no (CV CRM: 'S'/'N')."""
    parse = _bool(None)
    return lambda value: args.yes if parse(value) else args.no


class MoneyArgs(Args):
    places: int = Field(2, ge=0, le=8)


_BR_MONEY = re.compile(r"^-?\d{1,3}(\.\d{3})*(,\d+)?$|^-?\d+,\d+$")


def parse_money(value: Any) -> Decimal:
    """Decimal from a JSON number, '1234.56', '1.234,56' or 'R$ 1.234,56'; floats go through their
    shortest text form so 0.1 stays 0.1."""
    if isinstance(value, bool):
        raise ValueError("expected an amount, got a yes/no value")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = _text(value).replace("R$", "").replace("\u00a0", "").replace(" ", "").strip()
    if _BR_MONEY.match(text) and ("," in text or text.count(".") > 1):
        text = text.replace(".", "").replace(",", ".")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r} (use 1234.56 or 1.234,56)") from None
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return amount


class DecimalArgs(Args):
    places: int | None = Field(None, ge=0, le=12, description="Round to this many places (default: keep)")


@transform("decimal", DecimalArgs, shorthand="places")
def _decimal(args: DecimalArgs) -> Fn:
    """A number as Decimal (areas, percentages), optionally rounded; accepts '1.234,5' too."""
    if args.places is None:
        return parse_money
    quantum = Decimal(1).scaleb(-args.places)
    return lambda value: parse_money(value).quantize(quantum, rounding=ROUND_HALF_EVEN)


@transform("money", MoneyArgs, shorthand="places")
def _money(args: MoneyArgs) -> Fn:
    """An amount as Decimal rounded to ``places`` (half-even, as accounting does)."""
    quantum = Decimal(1).scaleb(-args.places)
    return lambda value: parse_money(value).quantize(quantum, rounding=ROUND_HALF_EVEN)


class MoneyTextArgs(Args):
    style: Literal["plain", "br"] = "plain"
    places: int = Field(2, ge=0, le=8)


@transform("money_text", MoneyTextArgs, shorthand="style")
def _money_text(args: MoneyTextArgs) -> Fn:
    """An amount as text: plain '1234.56' (APIs) or br '1.234,56' (people)."""
    quantum = Decimal(1).scaleb(-args.places)

    def money_text(value: Any) -> str:
        amount = parse_money(value).quantize(quantum, rounding=ROUND_HALF_EVEN)
        if args.style == "plain":
            return f"{amount:f}"
        text = f"{amount:,.{args.places}f}"
        return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")

    return money_text


# ---- Brazilian documents and phones ----------------------------------------------------------------


class DocumentArgs(Args):
    format: bool = Field(False, description="Punctuated (000.000.000-00) instead of compact")
    on_invalid: Literal["fail", "drop"] = Field(
        "fail",
        description="drop: an invalid document becomes missing instead of failing the record (for a "
        "field that is only evidence, such as the document a signer typed at the provider)",
    )


def _droppable(fn: Fn, args: DocumentArgs) -> Fn:
    if args.on_invalid == "fail":
        return fn

    def or_missing(value: Any) -> Any:
        try:
            return fn(value)
        except ValueError:
            return None

    return or_missing


@transform("cpf", DocumentArgs, shorthand="format")
def _cpf(args: DocumentArgs) -> Fn:
    """A CPF, check digits verified: 11 digits, or punctuated with ``format: true``."""
    if args.format:
        return _droppable(lambda value: format_cpf(normalize_cpf(value)), args)
    return _droppable(normalize_cpf, args)


@transform("cnpj", DocumentArgs, shorthand="format")
def _cnpj(args: DocumentArgs) -> Fn:
    """A CNPJ (numeric or alphanumeric), check digits verified; punctuated with ``format: true``."""
    if args.format:
        return _droppable(lambda value: format_cnpj(normalize_cnpj(value)), args)
    return _droppable(normalize_cnpj, args)


@transform("tax_id", DocumentArgs, shorthand="format")
def _tax_id(args: DocumentArgs) -> Fn:
    """A CPF or a CNPJ, told apart by length, check digits verified."""
    if not args.format:
        return _droppable(normalize_tax_id, args)

    def formatted(value: Any) -> str:
        chars = normalize_tax_id(value)
        return format_cpf(chars) if len(chars) == 11 else format_cnpj(chars)

    return _droppable(formatted, args)


class DocumentKindArgs(Args):
    cpf: Any = "cpf"
    cnpj: Any = "cnpj"


@transform("document_kind", DocumentKindArgs)
def _document_kind(args: DocumentKindArgs) -> Fn:
    """Which document a CPF/CNPJ is, spelt as the target wants (CV CRM ``documento_tipo``)."""

    def kind(value: Any) -> Any:
        return args.cpf if len(normalize_tax_id(value)) == 11 else args.cnpj

    return kind


class PhoneArgs(Args):
    region: str = Field("BR", pattern=r"^[A-Z]{2}$")
    on_invalid: Literal["fail", "drop"] = Field(
        "fail", description="drop: an invalid number becomes missing instead of failing the record"
    )


@transform("phone", PhoneArgs, shorthand="region")
def _phone(args: PhoneArgs) -> Fn:
    """A phone number in E.164 (+5548991234567); national numbers are read in ``region``."""
    region, drop = args.region, args.on_invalid == "drop"

    def phone(value: Any) -> str | None:
        text = _text(value).strip()
        first = text[:1]
        # a trunk prefix is a leading 0: a text that starts with another digit has none
        if region == "BR" and first != "+" and not (first.isdigit() and first != "0"):
            digits = _only_digits(text)
            if digits.startswith("0") and len(digits) in (11, 12):
                text = digits[1:]  # trunk prefix: 048 99123-4567
        try:
            return normalize_phone(text, region)
        except ValueError:
            if drop:
                return None
            raise

    return phone


class PhoneFormatArgs(Args):
    style: Literal["national", "digits", "international", "e164", "whatsapp"] = "national"


@transform("phone_format", PhoneFormatArgs, shorthand="style")
def _phone_format(args: PhoneFormatArgs) -> Fn:
    """A phone (E.164 or national) in a system's format: national '(48) 99123-4567' (CV CRM), digits
    '48991234567' (area code and number), whatsapp '5548991234567', international or e164."""
    style = args.style

    def phone_format(value: Any) -> str:
        e164 = normalize_phone(_text(value), "BR")
        if style == "e164":
            return e164
        if style == "whatsapp":
            return e164[1:]
        fast = format_br_phone(e164, style)
        if fast is not None:
            return fast
        number = phonenumbers.parse(e164, None)
        if style == "digits":
            return phonenumbers.national_significant_number(number)
        if style == "international":
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)

    return phone_format


# ---- dates and times ------------------------------------------------------------------------------

#: named formats; anything else is a strftime pattern
DATE_FORMATS = {"iso": "%Y-%m-%d", "sienge": "%Y-%m-%d", "cvcrm": "%d/%m/%Y", "br": "%d/%m/%Y"}


class DateArgs(Args):
    format: str = Field("iso", description="iso | sienge (yyyy-MM-dd) | cvcrm (DD/MM/AAAA) | a strftime pattern")

    @field_validator("format")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in DATE_FORMATS and "%" not in value:
            raise ValueError(f"use one of {', '.join(DATE_FORMATS)} or a strftime pattern such as %d.%m.%Y")
        return value


def _as_date(value: Any, pattern: str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(SAO_PAULO).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    text = _text(value).strip()
    if pattern == "%Y-%m-%d":
        if len(text) > 10 and text[10] in "T ":
            text = text[:10]  # a datetime where a date is expected: keep the day Sienge meant
        if len(text) == 10:  # the common case, without strptime's cost
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
    try:
        return datetime.strptime(text, pattern).date()
    except ValueError:
        raise ValueError(f"not a date in the form {pattern.replace('%', '')}: {text!r}") from None


@transform("date", DateArgs, shorthand="format")
def _date(args: DateArgs) -> Fn:
    """Parse a date written in ``format`` (Sienge yyyy-MM-dd, CV CRM DD/MM/AAAA)."""
    pattern = DATE_FORMATS.get(args.format, args.format)
    return lambda value: _as_date(value, pattern)


@transform("date_format", DateArgs, shorthand="format")
def _date_format(args: DateArgs) -> Fn:
    """Write a date (or an ISO date text) in ``format``."""
    pattern = DATE_FORMATS.get(args.format, args.format)
    if pattern == "%d/%m/%Y":
        return lambda value: _day_month_year(_as_date(value, "%Y-%m-%d"))
    return lambda value: _as_date(value, "%Y-%m-%d").strftime(pattern)


def _day_month_year(day: date) -> str:
    """``strftime("%d/%m/%Y")`` (the year unpadded, as the C library writes it) at a third of its cost:
    CV CRM wants every birth date in this form."""
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (e.g. America/Sao_Paulo)") from None


class DateTimeArgs(Args):
    format: str = Field(
        "iso", description="iso | epoch | cvcrm (DD/MM/AAAA HH:MM[:SS]) | auto (iso or cvcrm) | a strftime pattern"
    )
    tz: str = Field("America/Sao_Paulo", description="Zone of times written without one; output zone")

    @field_validator("tz")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        _zone(value)
        return value


def parse_datetime(value: Any, pattern: str, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif pattern == "epoch" or (isinstance(value, int | float) and not isinstance(value, bool)):
        try:
            moment = datetime.fromtimestamp(float(value), UTC)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"not a Unix timestamp: {value!r}") from None
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        text = _text(value).strip()
        if pattern == "auto":
            pattern = "cvcrm" if re.match(r"^\d{2}/\d{2}/\d{4}", text) else "iso"
            if pattern == "cvcrm" and len(text) == 10:
                text += " 00:00"
        try:
            if pattern == "iso":
                moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
            elif pattern == "cvcrm":
                moment = datetime.strptime(text, "%d/%m/%Y %H:%M:%S" if len(text) > 16 else "%d/%m/%Y %H:%M")
            else:
                moment = datetime.strptime(text, pattern)
        except ValueError:
            raise ValueError(f"not a date-time in the form {pattern}: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(zone)


@transform("datetime", DateTimeArgs, shorthand="format")
def _datetime(args: DateTimeArgs) -> Fn:
    """Parse a date-time (ISO 8601, epoch seconds, CV CRM's DD/MM/AAAA HH:MM:SS) into an aware datetime
    in ``tz``; a time written without a zone is taken as ``tz`` (Brasília for Sienge and CV CRM)."""
    zone = _zone(args.tz)
    pattern = args.format
    return lambda value: parse_datetime(value, pattern, zone)


@transform("datetime_format", DateTimeArgs, shorthand="format")
def _datetime_format(args: DateTimeArgs) -> Fn:
    """Write a date-time in ``tz`` as ISO 8601 with offset (or ``format``)."""
    zone = _zone(args.tz)
    pattern = args.format

    def datetime_format(value: Any) -> str:
        moment = parse_datetime(value, "iso", zone)
        if pattern == "iso":
            return moment.isoformat(timespec="seconds")
        if pattern == "epoch":
            return str(int(moment.timestamp()))
        if pattern == "cvcrm":
            return moment.strftime("%d/%m/%Y %H:%M:%S")
        return moment.strftime(pattern)

    return datetime_format


# ---- enums --------------------------------------------------------------------------------------

class EnumArgs(Args):
    map: dict[str, Any] | None = Field(None, description="source value -> target value")
    table: str | None = Field(None, description=f"a named table: {', '.join(ENUM_TABLES)}")
    reverse: bool = Field(False, description="use the table from target value to source value")
    default: Any = Field(None, description="value for anything not in the map (else the record fails)")
    passthrough: bool = Field(False, description="keep values not in the map as they are")

    @field_validator("table")
    @classmethod
    def _table_exists(cls, value: str | None) -> str | None:
        if value is not None and value not in ENUM_TABLES:
            raise ValueError(f"no enum table {value!r}; tables: {', '.join(ENUM_TABLES)}")
        return value


_MISSING = object()


@transform("enum", EnumArgs, shorthand="table")
def _enum(args: EnumArgs) -> Fn:
    """Translate a code through a map (``map:``) or a named table (``table:``), matching without case
    or accents; unknown values fail the record unless ``default`` or ``passthrough`` is given."""
    if (args.map is None) == (args.table is None):
        raise ValueError("give exactly one of map (inline) or table (a named table)")
    source = args.map if args.map is not None else ENUM_TABLES[args.table or ""]
    if args.reverse:
        source = {str(v): k for k, v in source.items() if v is not None}
    table = {fold(str(k)): v for k, v in source.items()}
    exact = {str(k): v for k, v in source.items()}  # most values arrive spelt as in the table
    known = ", ".join(sorted(str(k) for k in source))
    default = args.default if "default" in args.model_fields_set else _MISSING
    passthrough = args.passthrough

    def enum(value: Any) -> Any:
        text = value if isinstance(value, str) else str(value)
        found = exact.get(text, _MISSING)
        if found is not _MISSING:
            return found
        found = table.get(fold(text), _MISSING)
        if found is not _MISSING:
            return found
        if passthrough:
            return value
        if default is not _MISSING:
            return default
        raise ValueError(f"value {value!r} is not in the map (known: {known})")

    return enum


# ---- several values -------------------------------------------------------------------------------


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


@transform("coalesce", takes_many=True)
def _coalesce(_: None) -> Fn:
    """The first present (not missing, not empty) of several values."""

    def coalesce(values: tuple[Any, ...]) -> Any:
        for value in values:
            if _present(value):
                return value
        return None

    return coalesce


class ConcatArgs(Args):
    sep: str = " "


@transform("concat", ConcatArgs, takes_many=True, shorthand="sep")
def _concat(args: ConcatArgs) -> Fn:
    """Join the present values with ``sep`` ('Rua X', '100' -> 'Rua X, 100' with sep ', ')."""
    sep = args.sep

    def concat(values: tuple[Any, ...]) -> str | None:
        parts = [_text(v).strip() for v in values if _present(v)]
        joined = sep.join(p for p in parts if p)
        return joined or None

    return concat


class SplitNameArgs(Args):
    part: Literal["first", "last", "rest"]


@transform("split_name", SplitNameArgs, shorthand="part")
def _split_name(args: SplitNameArgs) -> Fn:
    """One part of a full name: first word, last word, or everything after the first."""
    part = args.part

    def split_name(value: Any) -> str | None:
        words = _text(value).split()
        if not words:
            return None
        if part == "first":
            return words[0]
        if part == "last":
            return words[-1]
        return " ".join(words[1:]) or None

    return split_name


# ---- lists --------------------------------------------------------------------------------------


@transform("first")
def _first(_: None) -> Fn:
    """The first present item of a list."""

    def first(values: Any) -> Any:
        for value in values if isinstance(values, list | tuple) else [values]:
            if _present(value):
                return value
        return None

    return first


@transform("list")
def _list(_: None) -> Fn:
    """Wrap one value in a list (a single phone into ``phones``); a list stays as it is."""
    return lambda value: list(value) if isinstance(value, list | tuple) else [value]


@transform("compact")
def _compact(_: None) -> Fn:
    """Drop missing and empty items (and duplicates, keeping order) from a list."""

    def compact(values: Any) -> list[Any]:
        out: list[Any] = []
        for value in values:
            if _present(value) and value not in out:
                out.append(value)
        return out

    return compact


class JoinArgs(Args):
    sep: str = ", "


@transform("join", JoinArgs, shorthand="sep")
def _join(args: JoinArgs) -> Fn:
    """Join a list's present items into one text."""
    return lambda values: args.sep.join(_text(v) for v in values if _present(v)) or None


@transform("count")
def _count(_: None) -> Fn:
    """The number of items of a list."""
    return len


@transform("text_parameters")
def _text_parameters(_: None) -> Fn:
    """Values (a list, or a dict in its order) as WhatsApp template text parameters."""

    def text_parameters(values: Any) -> list[dict[str, str]]:
        items = values.values() if isinstance(values, Mapping) else values
        return [{"type": "text", "text": _text(v)} for v in items if _present(v)]

    return text_parameters


# ---- the id map and deadlines ---------------------------------------------------------------------


class LookupArgs(Args):
    entity: str = Field(description="person, enterprise, unit, sale, assistance, ...")
    from_: str = Field(alias="from", description="System the value's id belongs to (e.g. sienge)")
    to: str = Field(description="System whose id is wanted (e.g. cvcrm)")
    required: bool = Field(True, description="Fail the record when the id map has no entry")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@transform("lookup", LookupArgs, needs_ctx=True)
def _lookup(args: LookupArgs) -> Fn:
    """The id of the same entity in another system, from the id map the pipeline injects
    (``MappingContext.lookup``): Sienge customer 42 -> CV CRM person 9137."""
    entity, source, target, required = args.entity, args.from_, args.to, args.required

    def lookup(value: Any, ctx: Any) -> str | None:
        resolver = getattr(ctx, "lookup", None)
        if resolver is None:
            raise DataError(
                f"this mapping looks ids up ({entity} {source} -> {target}) but the run has no id map",
                hint="pass MappingContext(lookup=...) (pipelines supply the state store's resolver)",
            )
        found = resolver(entity, source, _text(value), target)
        if found is None and required:
            raise DataError(
                f"no {target} id for {source} {entity} {value} in the id map",
                hint=f"import the {entity} into {target} first (if it failed, its own dead letter says why), "
                "then `ponte deadletter replay` this record (a full import run retries it too; an "
                "incremental one reads only records that changed)",
            )
        return found

    return lookup


class AddDaysArgs(Args):
    tz: str = "America/Sao_Paulo"


@transform("add_days", AddDaysArgs, takes_many=True)
def _add_days(args: AddDaysArgs) -> Fn:
    """A date-time plus a number of days: ``from: [$now, expires_in_days]`` gives a deadline."""
    zone = _zone(args.tz)

    def add_days(values: tuple[Any, ...]) -> datetime | None:
        moment, days = (*values, None, None)[:2]
        if moment is None or days is None:
            return None
        return parse_datetime(moment, "iso", zone) + timedelta(days=int(days))

    return add_days


def catalogue() -> list[TransformSpec]:
    """Every registered transform, by name (for docs and ``ponte mapping explain``)."""
    return [REGISTRY[name] for name in sorted(REGISTRY)]


# the transforms of their own modules register here when imported: importing them with this module keeps
# REGISTRY whole for whoever reads it (the compiler, the mapping JSON Schema, ``catalogue``)
from mappings import signers as _signers  # noqa: E402, F401
