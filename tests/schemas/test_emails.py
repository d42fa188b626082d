"""The plain-address fast path answers exactly what email-validator (pydantic's EmailStr) answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic.networks import validate_email
from pydantic_core import PydanticCustomError

from schemas.emails import EmailAddress, _plain, normalize_email


def _reference(value: str) -> str | None:
    try:
        return validate_email(value)[1]
    except PydanticCustomError:
        return None


def _ours(value: str) -> str | None:
    try:
        return normalize_email(value)
    except ValueError:
        return None


_LOCAL_CHARS = "abcXYZ019._-+!#'~é"
_DOMAIN_CHARS = "abcXYZ019.-ç"


@st.composite
def _near_addresses(draw: st.DrawFn) -> str:
    """Addresses and near misses: odd dots, hyphens, numeric or special-use TLDs, Unicode, length."""
    local = draw(st.text(_LOCAL_CHARS, min_size=0, max_size=70))
    labels = draw(st.lists(st.text(_DOMAIN_CHARS, min_size=0, max_size=12), min_size=1, max_size=4))
    tld = draw(st.sampled_from(["com", "com.br", "br", "test", "local", "localhost", "c1", "1", "x", "io", "XN--P1AI"]))
    at = draw(st.sampled_from(["@", "@", "@", "", "@@"]))
    return f"{local}{at}{'.'.join(labels)}.{tld}"


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.emails(), _near_addresses()))
def test_fast_path_agrees_with_email_validator(value: str) -> None:
    fast = _plain(value)
    reference = _reference(value)
    if fast is not None:
        assert fast == reference
    assert _ours(value) == reference


def test_everyday_addresses_take_the_fast_path_and_keep_the_local_part() -> None:
    assert _plain("Ana.Souza+crm@Example.COM.br") == "Ana.Souza+crm@example.com.br"


@pytest.mark.parametrize("value", ["ana@", "ana..souza@example.com", "ana@example", "ana@exemplo.test"])
def test_models_reject_bad_addresses_with_the_reason(value: str) -> None:
    class Holder(BaseModel):
        email: EmailAddress

    with pytest.raises(ValidationError, match="not a valid email address"):
        Holder(email=value)
