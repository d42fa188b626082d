"""CPF and CNPJ as the Receita Federal defines them, checked against a rule written here.

The rule below is written from the Receita's published definitions, not from python-stdnum nor from
``schemas.documents``:

- CPF: 9 base digits and 2 check digits, each ``11 - (weighted sum mod 11)`` (0 when the rest is 0 or
  1), weights 10..2 for the first and 11..2 for the second; a CPF whose 11 digits are all the same
  (``000.000.000-00`` ... ``999.999.999-99``) is not valid although its check digits add up.
- CNPJ: 12 base characters and 2 check digits, weights 5,4,3,2,9,8,7,6,5,4,3,2 for the first and
  6,5,4,3,2,9,8,7,6,5,4,3,2 for the second; since the alphanumeric CNPJ (IN RFB 2.229/2024, in force
  from July 2026) a base character is a digit or an upper-case letter and counts as its ASCII code
  minus 48 (``0`` = 0, ``A`` = 17, ``Z`` = 42); the check digits stay numeric. A CNPJ whose 14 digits
  are all the same is not valid.

Everything the project validates a document with is held to that rule: the hand-written check-digit
fast paths, the normalisers the mappings and the canonical models use, the mapping transforms and the
import's translation (the hot path, caches included).
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from mappings.transforms import build
from ponte.errors import DataError
from schemas.documents import (
    CNPJ,
    CPF,
    TaxId,
    is_valid_cnpj,
    is_valid_cpf,
    normalize_cnpj,
    normalize_cpf,
    normalize_tax_id,
)

DIGITS = string.digits
ALNUM = string.digits + string.ascii_uppercase

CPF_FIRST_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
CPF_SECOND_WEIGHTS = (11, 10, 9, 8, 7, 6, 5, 4, 3, 2)
CNPJ_FIRST_WEIGHTS = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
CNPJ_SECOND_WEIGHTS = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)


# ---- the rule, from the Receita's definition -------------------------------------------------------


def _value(char: str) -> int:
    """A character's value in the check-digit sums: its ASCII code minus 48."""
    return ord(char) - 48


def _check_digit(chars: str, weights: tuple[int, ...]) -> str:
    rest = sum(_value(c) * w for c, w in zip(chars, weights, strict=True)) % 11
    return "0" if rest < 2 else str(11 - rest)


def rule_cpf(base: str) -> str:
    """The CPF of a 9-digit base: the base and its two check digits."""
    first = _check_digit(base, CPF_FIRST_WEIGHTS)
    return base + first + _check_digit(base + first, CPF_SECOND_WEIGHTS)


def rule_cnpj(base: str) -> str:
    """The CNPJ of a 12-character base (digits and upper-case letters)."""
    first = _check_digit(base, CNPJ_FIRST_WEIGHTS)
    return base + first + _check_digit(base + first, CNPJ_SECOND_WEIGHTS)


def rule_says_cpf(number: str) -> bool:
    """Whether 11 compact characters are a valid CPF."""
    return (
        len(number) == 11
        and all(c in DIGITS for c in number)
        and len(set(number)) > 1
        and rule_cpf(number[:9]) == number
    )


def rule_says_cnpj(number: str) -> bool:
    """Whether 14 compact upper-case characters are a valid CNPJ."""
    return (
        len(number) == 14
        and all(c in ALNUM for c in number[:12])
        and all(c in DIGITS for c in number[12:])
        and len(set(number)) > 1
        and rule_cnpj(number[:12]) == number
    )


def punctuated_cpf(n: str) -> str:
    return f"{n[:3]}.{n[3:6]}.{n[6:9]}-{n[9:]}"


def punctuated_cnpj(n: str) -> str:
    return f"{n[:2]}.{n[2:5]}.{n[5:8]}/{n[8:12]}-{n[12:]}"


REPEATED_CPFS = [d * 11 for d in DIGITS]
REPEATED_CNPJS = [d * 14 for d in DIGITS]


def test_the_rule_reproduces_the_published_examples() -> None:
    """The rule is checked before anything is checked against it: the Receita's (SERPRO's) worked
    example of the alphanumeric CNPJ, ``12.ABC.345/01DE`` with check digits 35, the numeric base
    ``000000000001`` with 91 (Banco do Brasil's 00.000.000/0001-91), the CNPJ ``11.222.333/0001-81``
    and the CPF ``529.982.247-25`` used throughout the project."""
    assert rule_cnpj("12ABC34501DE") == "12ABC34501DE35"
    assert rule_cnpj("000000000001") == "00000000000191"
    assert rule_cnpj("112223330001") == "11222333000181"
    assert rule_cpf("529982247") == "52998224725"
    # the placeholders do add up, which is why the rule names them separately
    assert all(rule_cpf(d * 9) == d * 11 for d in DIGITS)
    assert rule_cnpj("0" * 12) == "0" * 14
    assert not any(rule_says_cpf(n) for n in REPEATED_CPFS)
    assert not any(rule_says_cnpj(n) for n in REPEATED_CNPJS)


# ---- strategies --------------------------------------------------------------------------------------

cpf_bases = st.text(alphabet=DIGITS, min_size=9, max_size=9)
cnpj_numeric_bases = st.text(alphabet=DIGITS, min_size=12, max_size=12)
cnpj_alnum_bases = st.text(alphabet=ALNUM, min_size=12, max_size=12)
cnpj_bases = st.one_of(cnpj_numeric_bases, cnpj_alnum_bases)

# near misses as well as documents: valid ones, one character off, placeholders, noise of the right size
cpf_candidates = st.one_of(
    cpf_bases.map(rule_cpf),
    st.tuples(cpf_bases.map(rule_cpf), st.integers(0, 10), st.sampled_from(DIGITS)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
    ),
    st.sampled_from(REPEATED_CPFS),
    st.text(alphabet=DIGITS, min_size=11, max_size=11),
)
cnpj_candidates = st.one_of(
    cnpj_bases.map(rule_cnpj),
    st.tuples(cnpj_bases.map(rule_cnpj), st.integers(0, 13), st.sampled_from(ALNUM)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
    ),
    st.sampled_from(REPEATED_CNPJS),
    st.text(alphabet=ALNUM, min_size=12, max_size=12).map(lambda b: b + "00"),
    st.text(alphabet=ALNUM, min_size=14, max_size=14),
)


def _accepts(normalize, value: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        normalize(value)
    except ValueError:
        return False
    return True


# ---- the rule, property by property --------------------------------------------------------------


@settings(max_examples=500)
@given(cpf_bases)
def test_a_cpf_computed_from_any_base_is_accepted_unless_it_is_a_placeholder(base: str) -> None:
    number = rule_cpf(base)
    real = len(set(number)) > 1
    for text in (number, punctuated_cpf(number)):
        assert is_valid_cpf(text) is real, text
        assert _accepts(normalize_cpf, text) is real, text
        assert _accepts(normalize_tax_id, text) is real, text
    if real:
        assert normalize_cpf(punctuated_cpf(number)) == normalize_tax_id(number) == number


@settings(max_examples=500)
@given(cnpj_bases)
def test_a_cnpj_computed_from_any_base_numeric_or_alphanumeric_is_accepted(base: str) -> None:
    number = rule_cnpj(base)
    real = len(set(number)) > 1  # only "0" * 12 makes a placeholder: its check digits are 00
    for text in (number, punctuated_cnpj(number), number.lower(), punctuated_cnpj(number).lower()):
        assert is_valid_cnpj(text) is real, text
        assert _accepts(normalize_cnpj, text) is real, text
        assert _accepts(normalize_tax_id, text) is real, text
    if real:
        assert normalize_cnpj(punctuated_cnpj(number).lower()) == normalize_tax_id(number.lower()) == number


@settings(max_examples=300)
@given(cpf_bases.filter(lambda b: len(set(b)) > 1))
def test_any_change_to_a_cpf_check_digit_is_refused(base: str) -> None:
    number = rule_cpf(base)
    for position in (9, 10):
        for char in DIGITS + "AX":
            if char == number[position]:
                continue
            typo = number[:position] + char + number[position + 1 :]
            for text in (typo, punctuated_cpf(typo)):
                assert not is_valid_cpf(text), text
                with pytest.raises(ValueError):
                    normalize_cpf(text)
                with pytest.raises(ValueError):
                    normalize_tax_id(text)


@settings(max_examples=300)
@given(cnpj_bases.filter(lambda b: b != "0" * 12))
def test_any_change_to_a_cnpj_check_digit_is_refused(base: str) -> None:
    number = rule_cnpj(base)
    for position in (12, 13):
        for char in ALNUM:
            if char == number[position]:
                continue
            typo = number[:position] + char + number[position + 1 :]
            for text in (typo, punctuated_cnpj(typo), typo.lower()):
                assert not is_valid_cnpj(text), text
                with pytest.raises(ValueError):
                    normalize_cnpj(text)
                with pytest.raises(ValueError):
                    normalize_tax_id(text)


@settings(max_examples=1500)
@given(cpf_candidates)
def test_cpf_validation_is_the_rule_formatted_or_not(number: str) -> None:
    expected = rule_says_cpf(number)
    for text in (number, punctuated_cpf(number), f" {punctuated_cpf(number)} "):
        assert is_valid_cpf(text) is expected, text
        assert _accepts(normalize_cpf, text) is expected, text
        assert _accepts(normalize_tax_id, text) is expected, text


@settings(max_examples=1500)
@given(cnpj_candidates)
def test_cnpj_validation_is_the_rule_formatted_or_not_in_any_case(number: str) -> None:
    expected = rule_says_cnpj(number)
    for text in (number, punctuated_cnpj(number), number.lower(), punctuated_cnpj(number).lower()):
        assert is_valid_cnpj(text) is expected, text
        assert _accepts(normalize_cnpj, text) is expected, text
        assert _accepts(normalize_tax_id, text) is expected, text


# ---- placeholders: refused everywhere, with a reason a person can act on ----------------------------


class _Holder(BaseModel):
    cpf: CPF | None = None
    cnpj: CNPJ | None = None
    document: TaxId | None = None


@pytest.mark.parametrize("number", REPEATED_CPFS)
def test_every_repeated_digit_cpf_is_refused_as_a_placeholder(number: str) -> None:
    masked = f"***.***.***-{number[-2:]}"
    for text in (number, punctuated_cpf(number)):
        assert not is_valid_cpf(text)
        for normalize in (normalize_cpf, normalize_tax_id):
            with pytest.raises(ValueError) as caught:
                normalize(text)
            message = str(caught.value)
            assert message.startswith(f"CPF {masked} is a placeholder (all digits the same), not a real CPF")
            assert "correct it" in message
            assert number not in message and punctuated_cpf(number) not in message  # masked
        with pytest.raises(ValidationError, match="placeholder"):
            _Holder(cpf=text)
        with pytest.raises(ValidationError, match="placeholder"):
            _Holder(document=text)


@pytest.mark.parametrize("number", REPEATED_CNPJS)
def test_every_repeated_digit_cnpj_is_refused_as_a_placeholder(number: str) -> None:
    masked = f"**.***.***/****-{number[-2:]}"
    for text in (number, punctuated_cnpj(number)):
        assert not is_valid_cnpj(text)
        for normalize in (normalize_cnpj, normalize_tax_id):
            with pytest.raises(ValueError) as caught:
                normalize(text)
            message = str(caught.value)
            assert message.startswith(f"CNPJ {masked} is a placeholder (all digits the same), not a real CNPJ")
            assert "correct it" in message
            assert number not in message and punctuated_cnpj(number) not in message
        with pytest.raises(ValidationError, match="placeholder"):
            _Holder(cnpj=text)
        with pytest.raises(ValidationError, match="placeholder"):
            _Holder(document=text)


def test_placeholders_are_refused_again_after_real_documents_filled_the_caches() -> None:
    """The normalisers remember what they accepted (``schemas.memo``); nothing about a placeholder is
    remembered, and a real document met before does not open the door to it."""
    for _ in range(3):
        assert normalize_tax_id("529.982.247-25") == normalize_cpf("52998224725") == "52998224725"
        assert normalize_tax_id("12.abc.345/01de-35") == normalize_cnpj("12ABC34501DE35") == "12ABC34501DE35"
        for number in REPEATED_CPFS:
            for normalize in (normalize_cpf, normalize_tax_id):
                with pytest.raises(ValueError, match="placeholder"):
                    normalize(punctuated_cpf(number))
        for number in REPEATED_CNPJS:
            for normalize in (normalize_cnpj, normalize_tax_id):
                with pytest.raises(ValueError, match="placeholder"):
                    normalize(number)


def test_the_receita_example_of_an_alphanumeric_cnpj_is_accepted() -> None:
    for text in ("12.ABC.345/01DE-35", "12ABC34501DE35", "12.abc.345/01de-35", "12abc34501de35"):
        assert is_valid_cnpj(text)
        assert normalize_cnpj(text) == normalize_tax_id(text) == "12ABC34501DE35"
        assert _Holder(cnpj=text, document=text).cnpj == "12ABC34501DE35"
    assert normalize_tax_id("00.000.000/0001-91") == "00000000000191"  # leading zeros are not a placeholder


# ---- the hot path: mapping transforms and the import's translation ---------------------------------


def _transform(name: str, args: object = None):  # type: ignore[no-untyped-def]
    return build(name, args)[1]


@pytest.mark.parametrize(
    ("name", "args", "value"),
    [
        ("cpf", None, "111.111.111-11"),
        ("cpf", {"format": True}, "00000000000"),
        ("tax_id", None, "999.999.999-99"),
        ("tax_id", {"format": True}, "55555555555"),
        ("document_kind", None, "333.333.333-33"),
        ("cnpj", None, "11.111.111/1111-11"),
        ("cnpj", {"format": True}, "00000000000000"),
        ("tax_id", None, "22.222.222/2222-22"),
        ("document_kind", None, "77777777777777"),
    ],
)
def test_mapping_transforms_refuse_placeholders(name: str, args: object, value: str) -> None:
    with pytest.raises(ValueError, match="placeholder"):
        _transform(name, args)(value)


@settings(max_examples=200)
@given(st.one_of(cpf_candidates, cnpj_candidates))
def test_the_tax_id_transforms_follow_the_rule(number: str) -> None:
    expected = rule_says_cpf(number) if len(number) == 11 else rule_says_cnpj(number)
    assert _accepts(_transform("tax_id"), number) is expected
    assert _accepts(_transform("tax_id", {"format": True}), number.lower()) is expected
    assert _accepts(_transform("document_kind"), number) is expected


def _customer(**fields: object) -> dict[str, object]:
    return {"id": 77, "personType": "Física", "name": "Maria Placeholder", "email": "maria@example.com",
            "phones": [{"type": "Celular", "number": "(11) 98765-4321"}], "addresses": [], **fields}


@pytest.fixture(scope="module")
def translator():  # type: ignore[no-untyped-def]
    from pipelines.imports import parallel
    from pipelines.imports.translate import Translator
    from schemas.tenant import load_tenant
    from tests.support.tenants import REPO

    return Translator(load_tenant(REPO / "tenants" / "demo.yaml"), parallel._no_lookup)


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"cpf": "111.111.111-11"}, "document"),
        ({"cpf": "00000000000"}, "document"),
        ({"cnpj": "44.444.444/4444-44", "personType": "Jurídica"}, "document"),
        ({"cpf": "529.982.247-25", "spouse": {"cpf": "888.888.888-88", "name": "João"}}, "spouse"),
    ],
)
def test_the_import_dead_letters_a_placeholder_with_the_reason(translator, fields, where) -> None:  # type: ignore[no-untyped-def]
    """The import's translation (in the run or in a worker: both call ``Translator.staged``) refuses a
    customer whose CPF/CNPJ is a placeholder with a DataError the dead-letter store keeps, masked."""
    from pipelines.imports import parallel

    for _ in range(2):  # the second time the validators' caches are warm
        [staged] = parallel.stage_batch(translator, "customer", [_customer(**fields)])
        assert isinstance(staged, DataError), staged
        text = str(staged)
        assert "is a placeholder (all digits the same)" in text, text
        assert where in text, text
        for value in (v for v in [fields.get("cpf"), fields.get("cnpj")] if v and v != "529.982.247-25"):
            assert str(value) not in text
    payload, _digest = translator.staged("customer", _customer(cpf="529.982.247-25"))
    assert payload[0]["documento"] in ("52998224725", "529.982.247-25")


# ---- the hand-written arithmetic, on its own --------------------------------------------------------


@settings(max_examples=1500)
@given(st.one_of(cpf_candidates, st.sampled_from(REPEATED_CPFS)))
def test_the_fast_cpf_arithmetic_is_the_rules_arithmetic(number: str) -> None:
    """The speed-written check digits agree with the rule's on every 11 digits, placeholders included
    (they add up: the placeholder rule is a separate test, applied before the arithmetic)."""
    from schemas.documents import _cpf_check_digits_match

    assert _cpf_check_digits_match(number) is (rule_cpf(number[:9]) == number)


@settings(max_examples=1500)
@given(st.one_of(cnpj_candidates.filter(lambda n: n[12:].isdigit()), st.sampled_from(REPEATED_CNPJS)))
def test_the_fast_cnpj_arithmetic_is_the_rules_arithmetic(number: str) -> None:
    from schemas.documents import _cnpj_check_digits_match

    assert _cnpj_check_digits_match(number) is (rule_cnpj(number[:12]) == number)


@pytest.mark.parametrize("digit", ["\u0661", "\u0665", "\uff11"])  # Arabic-Indic one and five, fullwidth one
def test_placeholders_in_other_scripts_are_refused_on_the_library_path(digit: str) -> None:
    """Digits outside ASCII never reach the hand-written arithmetic: stdnum decides, after the rule."""
    from schemas.documents import _is_valid_compact_cnpj, _is_valid_compact_cpf

    assert not _is_valid_compact_cpf(digit * 11)
    assert not _is_valid_compact_cnpj(digit * 14)
    assert not is_valid_cpf(digit * 11) and not is_valid_cnpj(digit * 14)
