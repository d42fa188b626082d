"""Masking of personal data and secrets in anything a person may read (logs, CLI output, errors).

LGPD treats CPF/CNPJ, e-mail and phone as personal data; tokens and passwords are secrets. Log lines
are built from records all day long, so masking cannot rely on every caller remembering: the logging
setup runs every line through :func:`redact`. Masks keep just enough (last digits, first letter, the
e-mail domain) for an operator to tell two records apart.
"""

from __future__ import annotations

import re
import threading

from stdnum.br import cnpj as _cnpj

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value (e.g. read from an env var) so it is masked wherever it appears."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def mask_cpf(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"***.***.***-{digits[-2:]}" if len(digits) == 11 else "***"


def mask_cnpj(value: str) -> str:
    chars = re.sub(r"[^0-9A-Za-z]", "", value)
    return f"**.***.***/****-{chars[-2:]}" if len(chars) == 14 else "***"


def mask_document(value: str) -> str:
    chars = re.sub(r"[^0-9A-Za-z]", "", value)
    return mask_cpf(value) if len(chars) == 11 else mask_cnpj(value)


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"+{'*' * max(len(digits) - 2, 3)}{digits[-2:]}" if digits else "***"


_SECRET_KEYS = (
    r"authorization|x-api-key|api[_-]?key|access[_-]?token|refresh[_-]?token|client[_-]?secret|"
    r"password|passwd|senha|secret|token|signature|content-hmac|x-hub-signature-256|"
    r"x-docusign-signature-\d+"
)

_PATTERNS: list[tuple[re.Pattern[str], object]] = [
    # Authorization schemes first, so the token after "Bearer" is masked whatever precedes it.
    (re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}", re.I), lambda m: f"{m.group(1)} ***"),
    # key=value / "key": "value" / key: value
    (
        re.compile(
            rf"""(?P<key>["']?(?:{_SECRET_KEYS})["']?\s*[:=]\s*)(?P<q>["']?)(?P<val>[^\s"',;&}}]+)""",
            re.I,
        ),
        lambda m: f"{m.group('key')}{m.group('q')}***",
    ),
    # E-mail addresses.
    (
        re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b"),
        lambda m: mask_email(m.group(0)),
    ),
    # Formatted CNPJ, numeric or alphanumeric (12.ABC.345/01DE-35).
    (
        re.compile(r"\b[0-9A-Z]{2}\.[0-9A-Z]{3}\.[0-9A-Z]{3}/[0-9A-Z]{4}-\d{2}\b"),
        lambda m: mask_cnpj(m.group(0)),
    ),
    # Formatted CPF.
    (re.compile(r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b"), lambda m: mask_cpf(m.group(0))),
    # Phones: +55 (11) 98765-4321, (11) 98765-4321, +5511987654321, 11 98765 4321.
    (
        re.compile(r"(?<![\w*])\+\d[\d\s().-]{9,18}\d\b|\(\d{2}\)\s?9?\d{4}[-\s]?\d{4}\b"),
        lambda m: mask_phone(m.group(0)),
    ),
    # Bare 14 digits (CNPJ) and 10-13 digits (CPF, phones with area code): masked whatever they are.
    (re.compile(r"(?<![\w*])\d{14}(?!\w)"), lambda m: mask_cnpj(m.group(0))),
    (re.compile(r"(?<![\w*])\d{11}(?!\w)"), lambda m: mask_cpf(m.group(0))),
    (re.compile(r"(?<![\w*])(?:\d{10}|\d{12,13})(?!\w)"), lambda m: mask_phone(m.group(0))),
    # Bare alphanumeric CNPJ: only when its check digits are right (random ids look alike).
    (
        re.compile(r"(?<![\w*])[0-9A-Z]{12}\d{2}(?!\w)"),
        lambda m: mask_cnpj(m.group(0)) if _cnpj.is_valid(m.group(0)) else m.group(0),
    ),
]


def redact(text: str) -> str:
    """Return ``text`` with personal data and secrets masked."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)  # type: ignore[arg-type]
    return text
