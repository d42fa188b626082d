"""Shared helpers for the mapping tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappings import clear_cache

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "samples"
REPO = HERE.parent.parent
SHARED_SPECS = REPO.parent / "shared" / "specs"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Compiled mappings are cached per file; tests that write files must not see stale ones."""
    clear_cache()
