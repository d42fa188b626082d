"""E-mail addresses, validated by email-validator (through pydantic) with a fast path for plain ones.

pydantic's ``EmailStr`` costs ~300 µs per address (email-validator checks Unicode, IDNA and more); an
import meets one or two per record, which made it a seventh of the import's time. Almost every address
in a CRM is plain ASCII (``ana.souza@example.com.br``); for those the rules are a regular expression,
and the answer is the one email-validator gives (local part kept, domain lower-cased). Anything else
(Unicode, quoted local parts, IDNA labels, display names, special-use domains) goes to email-validator.
Tests check that both always agree.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from schemas.memo import remember

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>(?:{_LABEL}\.)+[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?)")
#: RFC 6761 / email-validator's special-use names, refused as domains
_SPECIAL_USE = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})
#: addresses already normalized (``schemas.memo``): the mapping and the model meet each one twice
_SEEN: dict[str, str] = {}


def _plain(value: str) -> str | None:
    """The normalized address when it is a plain ASCII one, else None (let email-validator decide)."""
    if len(value) > 254:
        return None
    match = _PLAIN.fullmatch(value)
    if match is None:
        return None
    local, domain = match["local"], match["domain"].lower()
    if len(local) > 64 or len(domain) > 253 or "--" in domain or not domain[-1].isalpha():
        return None
    if domain.rpartition(".")[2] in _SPECIAL_USE:  # the pattern requires a dot: the last label decides
        return None
    return f"{local}@{domain}"


def normalize_email(value: str) -> str:
    """The address as email-validator normalizes it (no deliverability check); ValueError otherwise."""
    seen = _SEEN.get(value)
    if seen is not None:
        return seen
    fast = _plain(value)
    if fast is not None:
        return remember(_SEEN, value, fast)
    from pydantic.networks import validate_email

    try:
        return validate_email(value)[1]
    except PydanticCustomError as exc:
        raise ValueError(str(exc)) from None


EmailAddress = Annotated[
    str,
    AfterValidator(normalize_email),
    WithJsonSchema({"type": "string", "format": "email"}),
    Field(examples=["ana.souza@example.com.br"]),
]
