from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.runtime.auth import TOKEN_CACHE
from connectors.runtime.client import Connector
from connectors.spec import parse_spec
from ponte.yamlfile import YamlDocument
from tests.connectors.loopback import Loopback


@pytest.fixture
def server() -> Iterator[Loopback]:
    with Loopback() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    TOKEN_CACHE._tokens.clear()
    yield
    TOKEN_CACHE._tokens.clear()


def make_spec(data: dict[str, Any]) -> Any:
    """A spec from a dict, validated exactly as a YAML file would be."""
    base = {"kind": "http", "name": "test", "base_url": "{values.base_url}",
            "values": {"base_url": {"description": "server"}}}
    return parse_spec(YamlDocument(path="test.yaml", data={**base, **data}))  # type: ignore[arg-type]


class Sleeps(list):
    """Records the waits the runtime asked for instead of sleeping (fast, deterministic tests)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def open_on_loopback(spec: Any, server: Loopback, secrets: dict[str, str] | None = None,
                   values: dict[str, str] | None = None, **kwargs: Any) -> Connector:
    kwargs.setdefault("sleep", Sleeps())
    return Connector.open(spec, {"base_url": server.url, **(values or {})}, secrets or {}, **kwargs)
