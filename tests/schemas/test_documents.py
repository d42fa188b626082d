"""CPF, CNPJ (numeric and alphanumeric) and phone validation.

The oracle below is written from the Receita Federal's published algorithm, independently of the
library the code uses, so the property tests compare two implementations rather than one with itself.
"""

from __future__ import annotations

import string

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from schemas.documents import (
    CNPJ,
    CPF,
    PhoneE164,
    _br_national,
    _parse_phone,
    compact,
    format_br_phone,
    is_valid_cnpj,
    is_valid_cpf,
    normalize_phone,
    normalize_tax_id,
)

ALNUM = string.digits + string.ascii_uppercase


def _dv(values: list[int], weights: list[int]) -> int:
    rest = sum(v * w for v, w in zip(values, weights, strict=True)) % 11
    return 0 if rest < 2 else 11 - rest


def oracle_cpf(base9: str) -> str:
    values = [int(c) for c in base9]
    d1 = _dv(values, list(range(10, 1, -1)))
    d2 = _dv([*values, d1], list(range(11, 1, -1)))
    return f"{base9}{d1}{d2}"


def oracle_cnpj(base12: str) -> str:
    values = [ord(c) - 48 for c in base12]
    w1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    d1 = _dv(values, w1)
    d2 = _dv([*values, d1], [6, *w1])
    return f"{base12}{d1}{d2}"


cpf_bases = st.text(alphabet=string.digits, min_size=9, max_size=9).filter(lambda s: len(set(s)) > 1)
cnpj_numeric_bases = st.text(alphabet=string.digits, min_size=12, max_size=12).filter(
    lambda s: len(set(s)) > 1
)
cnpj_alnum_bases = st.text(alphabet=ALNUM, min_size=12, max_size=12).filter(
    lambda s: any(c.isalpha() for c in s)
)


@given(cpf_bases)
def test_every_valid_cpf_is_accepted_with_or_without_punctuation(base: str) -> None:
    number = oracle_cpf(base)
    assert is_valid_cpf(number)
    assert is_valid_cpf(f"{number[:3]}.{number[3:6]}.{number[6:9]}-{number[9:]}")


@given(st.one_of(cnpj_numeric_bases, cnpj_alnum_bases))
def test_every_valid_cnpj_is_accepted_numeric_and_alphanumeric(base: str) -> None:
    number = oracle_cnpj(base)
    assert is_valid_cnpj(number)
    assert is_valid_cnpj(f"{number[:2]}.{number[2:5]}.{number[5:8]}/{number[8:12]}-{number[12:]}")
    assert is_valid_cnpj(number.lower())  # typed in lower case, still the same CNPJ


def _corruptions(number: str, alphabet: str):
    for i, original in enumerate(number):
        for c in alphabet:
            if c != original:
                yield number[:i] + c + number[i + 1 :]


@settings(max_examples=150)
@given(cpf_bases)
def test_every_single_character_corruption_of_a_cpf_is_rejected(base: str) -> None:
    """Rejected unless the corruption is itself another person's valid CPF (no algorithm can tell)."""
    number = oracle_cpf(base)
    for corrupted in _corruptions(number, string.digits + "AX"):
        genuinely_valid = corrupted.isdigit() and oracle_cpf(corrupted[:9]) == corrupted
        assert is_valid_cpf(corrupted) == genuinely_valid, corrupted


@settings(max_examples=100)
@given(st.one_of(cnpj_numeric_bases, cnpj_alnum_bases))
def test_every_single_character_corruption_of_a_cnpj_is_rejected(base: str) -> None:
    number = oracle_cnpj(base)
    for corrupted in _corruptions(number, ALNUM):
        genuinely_valid = corrupted[12:].isdigit() and oracle_cnpj(corrupted[:12]) == corrupted
        assert is_valid_cnpj(corrupted) == genuinely_valid, corrupted


def test_check_digit_typos_are_always_caught() -> None:
    """The most common typo, in a check digit itself, can never yield a valid document."""
    cpf = oracle_cpf("529982247")
    cnpj = oracle_cnpj("12ABC34501DE")
    assert cpf == "52998224725" and cnpj == "12ABC34501DE35"
    for i in (9, 10):
        assert not any(is_valid_cpf(cpf[:i] + d + cpf[i + 1 :]) for d in string.digits if d != cpf[i])
    for i in (12, 13):
        assert not any(is_valid_cnpj(cnpj[:i] + d + cnpj[i + 1 :]) for d in string.digits if d != cnpj[i])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("529.982.247-2", "a CPF has 11 digits and a CNPJ 14 characters, got 10"),
        ("529.982.247-26", "CPF check digits do not match"),
        ("11.222.333/0001-82", "CNPJ check digits do not match"),
        ("12.ABC.345/01DE-3X", "check digits"),
        ("111.111.111-11", r"CPF \*\*\*\.\*\*\*\.\*\*\*-11 is a placeholder \(all digits the same\), not a real CPF"),
        ("00.000.000/0000-00", "CNPJ .*-00 is a placeholder"),
    ],
)
def test_bad_documents_explain_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_tax_id(value)


class _Holder(BaseModel):
    cpf: CPF | None = None
    cnpj: CNPJ | None = None
    phone: PhoneE164 | None = None


def test_models_store_documents_compact_and_phones_in_e164() -> None:
    holder = _Holder(cpf="529.982.247-25", cnpj="12.abc.345/01de-35", phone="(11) 98765-4321")
    assert holder.cpf == "52998224725"
    assert holder.cnpj == "12ABC34501DE35"
    assert holder.phone == "+5511987654321"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+55 11 98765-4321", "+5511987654321"),
        ("11987654321", "+5511987654321"),
        ("(48) 3222-1234", "+554832221234"),
        ("+351 912 345 678", "+351912345678"),
    ],
)
def test_phones_normalise_to_e164(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("11 3456-7890 ramal 21", "+551134567890"),
        ("(11) 3456-7890 r. 205", "+551134567890"),
        ("(48) 99123-4567 Ramal: 3", "+5548991234567"),
        ("(11) 98765-4321 (recado)", "+5511987654321"),
        ("11 98765-4321 falar com Ana", "+5511987654321"),
        ("(11) 3456-7890 ext. 21", "+551134567890"),
    ],
)
def test_notes_and_extensions_are_not_read_as_digits(raw: str, e164: str) -> None:
    """libphonenumber reads letters as keypad digits: "(recado)" made the number longer and invalid."""
    assert normalize_phone(raw) == e164


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["11987654321", "(11) 3456-7890", "+55 48 99123-4567", "011 98765 4321"]),
    st.sampled_from([" (recado)", " (falar com Ana)", " ramal 21", " r. 7", " Ramal: 305", " - comercial"]),
)
def test_a_note_after_a_number_never_changes_it(number: str, note: str) -> None:
    assert normalize_phone(number + note) == normalize_phone(number)


@pytest.mark.parametrize("raw", ["123", "(11) 1234", "not a phone", "+55 00 98765-4321", "não tem",
                                 "98765-4321 (recado)", "(recado)"])
def test_invalid_phones_are_rejected(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_phone(raw)
    with pytest.raises(ValidationError):
        _Holder(phone=raw)


# ---- the Brazilian fast path agrees with libphonenumber -------------------------------------------

def _library_e164(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, "BR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_SEPARATORS = st.sampled_from(["", " ", "-", ".", "(", ")", "  "])
# national numbers near the real plan: any two-digit area, 8 or 9 digits, biased to mobile/landline starts
_NATIONAL = st.builds(
    lambda area, first, rest: f"{area:02d}{first}{rest}",
    st.integers(0, 99),
    st.sampled_from(["9", "7", "2", "3", "4", "5", "6", "8", "1", "0", "99", "97", "90"]),
    st.text("0123456789", min_size=6, max_size=9),
)


@st.composite
def _phone_text(draw: st.DrawFn) -> str:
    national = draw(_NATIONAL)
    prefix = draw(st.sampled_from(["", "+55", "+55 ", "55", "+1", "0", "+"]))
    out = [prefix]
    for ch in national:
        if draw(st.integers(0, 5)) == 0:
            out.append(draw(_SEPARATORS))
        out.append(ch)
    return "".join(out)


@settings(max_examples=1500, deadline=None)
@given(_phone_text())
def test_brazilian_fast_path_normalises_exactly_like_libphonenumber(text: str) -> None:
    """Whatever the fast path answers, libphonenumber answers the same; the rest goes to the library."""
    fast = _br_national(text)
    if fast is not None:
        assert _library_e164(text) == "+55" + fast
    try:
        ours: str | None = _parse_phone(text, "BR")
    except ValueError:
        ours = None
    assert ours == _library_e164(text)


# numbers that mostly exist: a real area code (DDD), then a mobile (9 + 8), a landline (2-5 + 7) or odder
_DDDS = [11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38, 41, 42, 43, 44,
         45, 46, 47, 48, 49, 51, 53, 54, 55, 61, 62, 63, 64, 65, 66, 67, 68, 69, 71, 73, 74, 75, 77, 79, 81, 82,
         83, 84, 85, 86, 87, 88, 89, 91, 92, 93, 94, 95, 96, 97, 98, 99]
_LIKELY_VALID = st.builds(
    lambda area, first, rest: f"{area}{first}{rest}",
    st.sampled_from(_DDDS),
    st.sampled_from(["9", "2", "3", "4", "5", "7", "8"]),
    st.text("0123456789", min_size=7, max_size=8),
)


def _library_format(number: phonenumbers.PhoneNumber, style: str) -> str:
    if style == "digits":
        return phonenumbers.national_significant_number(number)
    kind = {"national": phonenumbers.PhoneNumberFormat.NATIONAL,
            "international": phonenumbers.PhoneNumberFormat.INTERNATIONAL}[style]
    return phonenumbers.format_number(number, kind)


@settings(max_examples=1500, deadline=None)
@given(_LIKELY_VALID, st.sampled_from(["national", "digits", "international"]))
def test_brazilian_phone_formats_match_libphonenumber(national: str, style: str) -> None:
    e164 = _library_e164("+55" + national)
    assume(e164 is not None)
    number = phonenumbers.parse(e164, None)
    expected = _library_format(number, style)
    fast = format_br_phone(e164, style)
    assert fast in (None, expected)
    if phonenumbers.number_type(number) in (phonenumbers.PhoneNumberType.MOBILE,
                                            phonenumbers.PhoneNumberType.FIXED_LINE):
        assert fast == expected  # the everyday numbers do take the fast path


@settings(max_examples=1500)
@given(
    st.one_of(
        st.text(alphabet=string.digits, min_size=11, max_size=11),
        cpf_bases.map(oracle_cpf),
        st.sampled_from([d * 11 for d in string.digits]),
        st.text(min_size=9, max_size=13),
    )
)
def test_the_fast_cpf_check_agrees_with_stdnum(number: str) -> None:
    """stdnum's arithmetic, and the Receita's placeholder rule stdnum does not apply to CPFs
    (``111.111.111-11`` passes its check; ``tests/schemas/test_document_rules.py`` has the rule)."""
    from stdnum.br import cpf as stdnum_cpf

    digits = compact(number)
    placeholder = len(set(digits)) == 1
    expected = len(digits) == 11 and digits.isdigit() and stdnum_cpf.is_valid(digits) and not placeholder
    assert is_valid_cpf(number) == expected, number


@settings(max_examples=1500)
@given(
    st.one_of(
        st.text(alphabet=string.digits, min_size=14, max_size=14),
        st.text(alphabet=ALNUM, min_size=14, max_size=14),
        cnpj_numeric_bases.map(oracle_cnpj),
        cnpj_alnum_bases.map(oracle_cnpj),
        st.sampled_from(["00000000000000", "00000000000191", "000000000001AB"]),
        st.text(min_size=12, max_size=16),
    )
)
def test_the_fast_cnpj_check_agrees_with_stdnum(number: str) -> None:
    from stdnum.br import cnpj as stdnum_cnpj

    chars = compact(number)
    placeholder = len(set(chars)) == 1  # stdnum's check digits already refuse every such CNPJ
    expected = len(chars) == 14 and stdnum_cnpj.is_valid(chars) and not placeholder
    assert is_valid_cnpj(number) == expected, number


@settings(max_examples=1000, deadline=None)
@given(_LIKELY_VALID, st.sampled_from(["national", "digits", "international"]))
def test_phones_normalised_first_are_formatted_like_libphonenumber(national: str, style: str) -> None:
    """The import formats the E.164 it normalised a moment before (the national part is remembered)."""
    e164 = _library_e164("+55" + national)
    assume(e164 is not None)
    assert normalize_phone(national) == e164
    expected = _library_format(phonenumbers.parse(e164, None), style)
    assert format_br_phone(e164, style) in (None, expected)
