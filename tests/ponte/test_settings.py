"""Process settings read from the environment: a wrong value is a clear error, not a traceback."""

from __future__ import annotations

import os

import pytest

from ponte import settings
from ponte.errors import ConfigurationError


def test_import_workers_default_to_the_machines_cores_up_to_four(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PONTE_IMPORT_WORKERS", raising=False)
    assert settings.import_workers() == min(4, os.cpu_count() or 1)


@pytest.mark.parametrize("value, expected", [("0", 0), ("3", 3), (" 2 ", 2)])
def test_import_workers_take_a_whole_number(monkeypatch: pytest.MonkeyPatch, value: str, expected: int) -> None:
    monkeypatch.setenv("PONTE_IMPORT_WORKERS", value)
    assert settings.import_workers() == expected


@pytest.mark.parametrize("value", ["two", "-1", "1.5"])
def test_import_workers_refuse_anything_else_and_say_what_to_set(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PONTE_IMPORT_WORKERS", value)
    with pytest.raises(ConfigurationError, match="PONTE_IMPORT_WORKERS must be a whole number") as raised:
        settings.import_workers()
    assert raised.value.hint and "0" in raised.value.hint
