"""Brazilian documents and phone numbers, validated for real.

CPF and CNPJ follow the Receita Federal's rules: mod-11 check digits, including the alphanumeric CNPJ
in force since July 2026 (letters count as their ASCII code minus 48), and no document whose digits are
all the same (``111.111.111-11``, ``00.000.000/0000-00``): those are placeholders typed to get past a
form, and their check digits add up, so python-stdnum accepts the CPFs among them. The check digits of
an ASCII document are computed here, written for speed; anything else goes to stdnum. Tests hold both
to the Receita's rules written independently, and the fast arithmetic equal to stdnum's.
Phones are parsed by ``phonenumbers`` (Google's libphonenumber metadata) with Brazil as the default
region and stored in E.164.
"""

from __future__ import annotations

import operator
import re
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, BeforeValidator, Field
from stdnum.br import cnpj as _cnpj
from stdnum.br import cpf as _cpf

from ponte import mask_document
from schemas.memo import remember

_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")


def compact(value: str) -> str:
    """Strip punctuation and spaces; upper-case letters (alphanumeric CNPJ)."""
    return _NON_ALNUM.sub("", value).upper()


def is_valid_cpf(value: str) -> bool:
    return _is_valid_compact_cpf(compact(value))


def _is_valid_compact_cpf(digits: str) -> bool:
    if len(digits) != 11 or not digits.isdigit() or _is_placeholder(digits):
        return False
    if digits.isascii():  # the everyday case, without stdnum's generic cleaning (a fifth of its time)
        return _cpf_check_digits_match(digits)
    return _cpf.is_valid(digits)


def _is_placeholder(chars: str) -> bool:
    """All characters the same (``11111111111``): never issued by the Receita, though the check digits
    of every such CPF, and of ``00000000000000``, add up."""
    return chars == chars[0] * len(chars)


def _placeholder(kind: str, chars: str) -> ValueError:
    return ValueError(
        f"{kind} {mask_document(chars)} is a placeholder (all digits the same), not a real {kind}: "
        "correct it where the record was entered (Sienge, for imported records)"
    )


_CPF_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_ZERO = ord("0")
#: what the ASCII codes of the digits add to each weighted sum, taken off once
_CPF_OFFSET, _CPF_SECOND_OFFSET = _ZERO * sum(_CPF_WEIGHTS), _ZERO * 9


def _cpf_check_digits_match(digits: str) -> bool:
    """stdnum's CPF arithmetic on 11 ASCII digits; a property test holds the two equal. The digits are
    summed as bytes (their ASCII codes) and the codes of nine zeros taken off once."""
    codes = digits.encode("ascii")
    first = sum(map(operator.mul, codes, _CPF_WEIGHTS)) - _CPF_OFFSET  # map stops at the 9 weights
    d1 = (11 - first) % 11 % 10
    second = first + sum(codes[:9]) - _CPF_SECOND_OFFSET + 2 * d1  # the second weights: the first plus one
    d2 = (11 - second) % 11 % 10
    return codes[9] - _ZERO == d1 and codes[10] - _ZERO == d2


def is_valid_cnpj(value: str) -> bool:
    return _is_valid_compact_cnpj(compact(value))


def _is_valid_compact_cnpj(chars: str) -> bool:
    if len(chars) != 14 or _is_placeholder(chars):
        return False
    if chars.isascii() and chars[12:].isdigit():  # numeric or alphanumeric, without stdnum's cleaning
        return not chars.startswith("000000000000") and _cnpj_check_digits_match(chars)
    return _cnpj.is_valid(chars)


_CNPJ_WEIGHTS = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_SECOND_WEIGHTS = (6, *_CNPJ_WEIGHTS[:11])  # for the 12 base characters; the first check digit weighs 2
_CNPJ_OFFSET, _CNPJ_SECOND_OFFSET = _ZERO * sum(_CNPJ_WEIGHTS), _ZERO * sum(_CNPJ_SECOND_WEIGHTS)


def _cnpj_check_digits_match(chars: str) -> bool:
    """stdnum's CNPJ arithmetic (a letter counts as its ASCII code minus 48) on 14 upper-case ASCII
    characters, the last two digits; a property test holds the two equal."""
    codes = chars.encode("ascii")
    first = sum(map(operator.mul, codes, _CNPJ_WEIGHTS)) - _CNPJ_OFFSET
    d1 = (11 - first) % 11 % 10
    second = sum(map(operator.mul, codes, _CNPJ_SECOND_WEIGHTS)) - _CNPJ_SECOND_OFFSET
    d2 = (11 - second - 2 * d1) % 11 % 10
    return codes[12] - _ZERO == d1 and codes[13] - _ZERO == d2


def normalize_cpf(value: str) -> str:
    """Digits only, or ValueError with a message a person can act on."""
    cached = _CPFS.get(value) if isinstance(value, str) else None
    if cached is not None:
        return cached
    return remember(_CPFS, str(value), _checked_cpf(compact(str(value))))


def _checked_cpf(digits: str) -> str:
    """``digits`` (compacted already) when they are a CPF, remembered as one; ValueError otherwise."""
    known = _CPFS.get(digits)
    if known is not None:
        return known
    if len(digits) != 11 or not digits.isdigit():
        raise ValueError(f"a CPF has 11 digits, got {len(digits)} characters")
    if _is_placeholder(digits):
        raise _placeholder("CPF", digits)
    if not _is_valid_compact_cpf(digits):
        raise ValueError("CPF check digits do not match (typo in the number?)")
    return remember(_CPFS, digits, digits)


def normalize_cnpj(value: str) -> str:
    """14 characters (digits, or letters in the first 12 for the alphanumeric CNPJ)."""
    chars = compact(str(value))
    if len(chars) != 14:
        raise ValueError(f"a CNPJ has 14 characters, got {len(chars)}")
    if not chars[12:].isdigit():
        raise ValueError("the last two characters of a CNPJ (check digits) must be digits")
    if _is_placeholder(chars):
        raise _placeholder("CNPJ", chars)
    if not _is_valid_compact_cnpj(chars):
        raise ValueError("CNPJ check digits do not match (typo in the number?)")
    return chars


def normalize_tax_id(value: str) -> str:
    """A CPF (11 digits) or a CNPJ (14 characters), told apart by length."""
    cached = _TAX_IDS.get(value) if isinstance(value, str) else None
    if cached is not None:
        return cached
    chars = compact(str(value))
    if len(chars) == 11:
        return remember(_TAX_IDS, str(value), _checked_cpf(chars), chars)
    if len(chars) == 14:
        return remember(_TAX_IDS, str(value), normalize_cnpj(chars), chars)
    raise ValueError(f"a CPF has 11 digits and a CNPJ 14 characters, got {len(chars)}")


def format_cpf(value: str) -> str:
    d = compact(value)
    return f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"


def format_cnpj(value: str) -> str:
    d = compact(value)
    return f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"


#: parsed phones, CPFs and CNPJs by input (``schemas.memo``): libphonenumber's parse costs ~100 µs and
#: a check-digit test ~5 µs; outputs map to themselves (normalising is idempotent)
_PHONES: dict[tuple[str, str], str] = {}
_CPFS: dict[str, str] = {}
_TAX_IDS: dict[str, str] = {}
_FORMATTED: dict[tuple[str, str], str | None] = {}
#: national numbers of the E.164 phones ``_br_national`` accepted
_NATIONAL: dict[str, str] = {}


def normalize_phone(value: str, region: str = "BR") -> str:
    """E.164 (``+5511987654321``); national numbers are read as Brazilian."""
    text = (value if value.__class__ is str else str(value)).strip()
    cached = _PHONES.get((text, region))
    if cached is not None:
        return cached
    return remember(_PHONES, (text, region), _parse_phone(text, region))


def _br_pattern() -> re.Pattern[str]:
    """libphonenumber's own Brazilian metadata: a number of the whole plan (the lookahead, anchored at
    the end) that is a landline or a mobile, in one pattern for ``fullmatch``."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region("BR")
    assert meta is not None and meta.general_desc and meta.fixed_line and meta.mobile
    general = meta.general_desc.national_number_pattern
    kinds = f"(?:{meta.fixed_line.national_number_pattern})|(?:{meta.mobile.national_number_pattern})"
    return re.compile(f"(?=(?:{general})\\Z)(?:{kinds})")


_BR_LANDLINE_OR_MOBILE = _br_pattern()
_PHONE_PUNCTUATION = str.maketrans("", "", " ()-.")


def _br_national(text: str) -> str | None:
    """The national number of an everyday Brazilian landline or mobile, or None when unsure.

    A fast path for the common case (``(11) 98765-4321``, ``11987654321``, ``+55 11 98765-4321``):
    a full parse costs ~100 µs and an import meets a phone or two per record. It only answers when the
    number matches libphonenumber's own landline/mobile patterns, and tests check that it agrees with
    the library on everything it answers; anything else (trunk or carrier prefixes, 0800, short codes,
    letters) goes to the library.
    """
    compacted = text.translate(_PHONE_PUNCTUATION)
    if compacted.startswith("+"):
        if not compacted.startswith("+55"):
            return None
        national = compacted[3:]
    else:
        national = compacted
    if len(national) not in (10, 11) or not national.isdigit() or not national.isascii():
        return None
    return national if _BR_LANDLINE_OR_MOBILE.fullmatch(national) else None


def format_br_phone(e164: str, style: str) -> str | None:
    """A Brazilian landline/mobile E.164 in CV CRM's national, digits or international style; None
    when the number is not one (the caller asks libphonenumber). Same output as the library's."""
    key = (e164, style)
    if key in _FORMATTED:
        return _FORMATTED[key]
    return remember(_FORMATTED, key, _format_br_phone(e164, style))


def _format_br_phone(e164: str, style: str) -> str | None:
    national = _NATIONAL.get(e164)
    if national is None and e164.startswith("+55"):
        national = _br_national(e164)
    if national is None:
        return None
    if style == "digits":
        return national
    area, local = national[:2], national[2:]
    if style == "national":
        return f"({area}) {local[:-4]}-{local[-4:]}"
    if style == "international":
        return f"+55 {area} {local[:-4]}-{local[-4:]}"
    return None


#: Brazilian extension words (ramal 21, ram. 21, r. 21, ramal: 21), read as libphonenumber's "ext."
_RAMAL = re.compile(r"\b(?:ramal|ram\.|r\.)\s*:?\s*(?=\d)", re.IGNORECASE)
#: a note in parentheses without digits: "(recado)", "(falar com Ana)"
_NOTE_IN_PARENS = re.compile(r"\([^()\d]*\)")
#: words of letters left after that (a note such as "falar com Ana"), except libphonenumber's extension marks
_WORDS = re.compile(r"[^\W\d_]+")
_EXTENSION_MARKS = frozenset({"ext", "x"})


def _without_notes(text: str) -> str:
    """A Brazilian phone as people type it into an ERP, minus what is not the number.

    libphonenumber reads letters as keypad digits (vanity numbers), so "98765-4321 (recado)" became a
    longer, invalid number and "ramal 21" was glued onto it. Notes are dropped and "ramal" becomes the
    library's own "ext." (the extension is parsed apart; E.164 leaves it out). A text that is only a
    note ("não tem") has no digits left and stays invalid.
    """
    text = _RAMAL.sub(" ext. ", text)
    text = _NOTE_IN_PARENS.sub(" ", text)
    return _WORDS.sub(lambda m: m.group(0) if m.group(0).lower() in _EXTENSION_MARKS else " ", text).strip()


def _parse_phone(text: str, region: str) -> str:
    if region == "BR":
        national = _br_national(text)
        if national is not None:
            e164 = "+55" + national
            _PHONES[(e164, region)] = e164
            remember(_NATIONAL, e164, national)  # formatting it for CV CRM need not match it again
            return e164
        text = _without_notes(text)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number for its region (check the area code and digit count)")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    _PHONES[(e164, region)] = e164
    return e164


def is_mobile(e164: str) -> bool:
    number = phonenumbers.parse(e164, None)
    kind = phonenumbers.number_type(number)
    return kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def _str(value: object) -> object:
    return str(value) if isinstance(value, int) else value


CPF = Annotated[
    str,
    BeforeValidator(_str),
    AfterValidator(normalize_cpf),
    Field(description="CPF, 11 digits, check digits verified", examples=["52998224725"]),
]
CNPJ = Annotated[
    str,
    BeforeValidator(_str),
    AfterValidator(normalize_cnpj),
    Field(
        description="CNPJ, 14 characters (numeric or alphanumeric), check digits verified",
        examples=["11222333000181", "12ABC34501DE35"],
    ),
]
TaxId = Annotated[
    str,
    BeforeValidator(_str),
    AfterValidator(normalize_tax_id),
    Field(description="CPF (11 digits) or CNPJ (14 characters), check digits verified"),
]
PhoneE164 = Annotated[
    str,
    BeforeValidator(_str),
    AfterValidator(normalize_phone),
    Field(description="Phone number in E.164", examples=["+5511987654321"]),
]
