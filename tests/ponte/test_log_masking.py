"""No CPF/CNPJ, e-mail, phone or secret in clear in a log line."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponte.logging import RedactingFormatter, get_logger
from ponte.redaction import redact, register_secret

RECORD = {
    "nome": "Maria Souza",
    "documento": "529.982.247-25",
    "cpf_raw": "52998224725",
    "cnpj": "12.ABC.345/01DE-35",
    "cnpj_raw": "11222333000181",
    "email": "maria.souza@example.com.br",
    "telefone": "+55 (11) 98765-4321",
    "celular": "(48) 99876-5432",
    "token": "tok_live_9f8e7d6c5b4a",
}
CLEAR = [
    "529.982.247-25",
    "52998224725",
    "12.ABC.345/01DE-35",
    "11222333000181",
    "maria.souza@example.com.br",
    "98765-4321",
    "99876-5432",
    "tok_live_9f8e7d6c5b4a",
]


def test_a_log_line_built_from_a_record_shows_no_personal_data(caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger("tests.masking")
    with caplog.at_level(logging.INFO, logger="ponte"):
        log.info("importing customer %s", RECORD)
        log.info("headers Authorization: Bearer abcdef123456 email=%s", RECORD["email"])
    text = "\n".join(r.getMessage() for r in caplog.records)
    for value in CLEAR:
        assert value not in text
    assert "abcdef123456" not in text
    # still useful to an operator: the name and the last digits remain
    assert "Maria Souza" in text and "-25" in text


def test_tracebacks_are_masked_too() -> None:
    formatter = RedactingFormatter("%(message)s")
    try:
        raise ValueError(f"bad record {RECORD['documento']} {RECORD['email']}")
    except ValueError:
        import sys

        record = logging.LogRecord("ponte", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    out = formatter.format(record)
    assert "529.982.247-25" not in out and "maria.souza@example.com.br" not in out


def test_registered_secrets_are_masked_wherever_they_appear() -> None:
    register_secret("s3cr3t-value-from-env")
    assert "s3cr3t-value-from-env" not in redact("connecting with s3cr3t-value-from-env to host")


def test_ordinary_text_is_left_alone() -> None:
    text = "imported 1234 records in 5.2 s for tenant demo (run 42)"
    assert redact(text) == text


@given(st.from_regex(r"[1-9]\d{10}", fullmatch=True))
def test_any_eleven_digit_number_is_masked(number: str) -> None:
    assert number not in redact(f"value={number};")
