"""Masking never garbles a message (issue #21): a missing-variable error after ``token:`` keeps its words,
a phone is masked as a phone (separators included), a CPF as a CPF; redaction is idempotent and leaves
prose alone."""

from __future__ import annotations

import re
import string
from unittest import mock

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from ponte import redaction
from ponte.redaction import redact

CPF_MASK = "***.***.***"


@pytest.mark.parametrize("text", [
    "environment variable PONTE_X is not set",
    "tenant acme, connector cvcrm, credential token: environment variable PONTE_X is not set",
    "secret: environment variable PONTE_ACME_SECRET is not set (fix: export it)",
    "password= environment variable PONTE_ACME_PASSWORD is not set",
    "webhook_secret: required by the spec",
    "Basic authentication failed",
    "the request had no Bearer token.",
])
def test_a_message_comes_out_intact(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", [
    "password: hunter22 token=abcdef", "token: environment", "Authorization: Bearer abcdefghij",
    "secret: required", "Bearer abcdef123456",
])
def test_values_after_secret_keys_are_still_masked(text: str) -> None:
    masked = redact(text)
    assert "***" in masked, masked
    for word in ("hunter22", "abcdef123456", "abcdefghij", "environment", "required"):
        assert word not in masked, masked


@pytest.mark.parametrize("phone", [
    "+55 48 99123-4567", "48991234567", "48 99123-4567", "(48) 99123-4567", "55 48 99123-4567",
    "48 9 9123-4567", "11 98765 4321", "+5548991234567", "5548991234567",
    # a mobile number whose digits also pass the CPF check: still a phone without a word saying CPF
    "48991651291",
])
def test_a_brazilian_phone_is_masked_as_a_phone(phone: str) -> None:
    masked = redact(f"notificação para {phone} enviada")
    assert CPF_MASK not in masked and "+*" in masked, masked
    assert not re.search(r"\d{3}", masked), masked
    assert masked.endswith(f"{phone[-2:]} enviada")


def test_a_landline_with_area_code_is_masked() -> None:
    assert redact("fixo 48 3222-1100") == "fixo +********00"


@pytest.mark.parametrize(("text", "expected"), [
    ("cpf 52998224725", "cpf ***.***.***-25"),
    ("CPF 529.982.247-25", "CPF ***.***.***-25"),
    ("documento 52998224725 (whatsapp)", "documento ***.***.***-25 (whatsapp)"),
    ("52998224725", "***.***.***-25"),  # 52 is no area code: not a phone
    ("CPF do comprador: 48991651291", "CPF do comprador: ***.***.***-91"),  # the word says CPF
])
def test_a_cpf_is_still_masked_as_a_cpf(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "imported 1234 records in 5.2 s for tenant demo (run 42)", "2024-01-15 12:30:00", "pages 10 2000 3000",
    "valor 12 3456 7890", "CEP 88015-200",
])
def test_numbers_that_are_not_phones_are_left_alone(text: str) -> None:
    assert redact(text) == text


# ------------------------------------------------------------------------------------- properties

_FRAGMENTS = [
    "cpf ", "52998224725", "529.982.247-25", "+55 48 99123-4567", "48 99123-4567", "48991651291",
    "maria@example.com", "a@@b.com", "token: ", "password=", "Bearer ", "Basic ", "environment variable ",
    "https://files.example.com/files/abc123DEF456ghi789JKL", "/download/x", " is not set", "11222333000181",
    "12.ABC.345/01DE-35", "(48) 3222-1100", "***", "+", "-", " ", "\n",
]
_ANY_TEXT = st.lists(
    st.one_of(st.sampled_from(_FRAGMENTS), st.text(string.ascii_letters + string.digits + " .-:=@/()+*", max_size=14)),
    max_size=12,
).map("".join)

#: prose: letters (accented too), spaces and punctuation; no digit, no @, no URL or path
_PROSE = st.text(string.ascii_letters + "áçãéêíóõúÁÇÉ" + " \n.,;:!?()'\"-_=*", max_size=80)
#: what introduces a credential in free text (a secret key, an auth scheme): masked by design
_CREDENTIAL_WORDS = re.compile(r"bearer|basic|token|secret|passw|senha|authorization|api.?key|signature|hmac", re.I)


@given(_ANY_TEXT)
@example("11222333000181/download/x")  # the masked CNPJ's "/" once started a path on the second pass
def test_redaction_is_idempotent(text: str) -> None:
    with mock.patch.object(redaction, "_secrets", set()):
        once = redact(text)
        assert redact(once) == once


@given(_PROSE)
def test_text_without_digits_or_at_is_never_changed(text: str) -> None:
    assume(not _CREDENTIAL_WORDS.search(text))
    with mock.patch.object(redaction, "_secrets", set()):
        assert redact(text) == text


@given(
    st.sampled_from(["token", "secret", "password", "webhook_secret", "access_token", "api_key", "senha"]),
    st.sampled_from([": ", "=", " = ", ": "]),
    st.from_regex(r"PONTE_[A-Z][A-Z0-9_]{0,20}", fullmatch=True),
)
def test_a_missing_variable_message_is_never_garbled(key: str, sep: str, name: str) -> None:
    text = f"tenant acme, credential {key}{sep}environment variable {name} is not set"
    with mock.patch.object(redaction, "_secrets", set()):
        assert redact(text) == text
