"""Fixtures for dispatch: a sandbox per test module (state is per envelope, so tests can share one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.sandbox import Sandbox, start_sandbox


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with start_sandbox(customers=10, seed=5, rate_limits=False) as sandbox:
        yield sandbox
