"""Tenant credentials only by environment reference; no secret in any tenant file or connector spec.

The one documented exception: a *sandbox* tenant (every base URL on loopback, like tenants/demo.yaml)
may give an ``{env: ..., default: ...}`` default, the local sandbox's published test credential, so
``make demo`` runs with nothing exported. That default is the only place such a value may appear in a
YAML file: not in values, comments, other tenants or connector specs. A production tenant has no
defaults at all.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError

from ponte.errors import ConfigurationError
from schemas.tenant import TenantConfig, load_tenant
from tests.security.logscan import KNOWN_SECRETS, tenant_credential_defaults

REPO = Path(__file__).resolve().parents[2]
TENANT_FILES = sorted((REPO / "tenants").glob("*.y*ml"))
SPEC_FILES = sorted((REPO / "connectors" / "specs").glob("*.y*ml"))
SECRETS = sorted({s for s in (*KNOWN_SECRETS, *tenant_credential_defaults()) if len(s) >= 6}, key=len, reverse=True)
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _strings(node: Any, path: tuple = ()) -> list[tuple[tuple, str]]:
    """Every string scalar (keys included) with its path."""
    out: list[tuple[tuple, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append(((*path, key, "<key>"), str(key)))
            out += _strings(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _strings(value, (*path, index))
    elif isinstance(node, str):
        out.append((path, node))
    return out


def is_sandbox(data: dict[str, Any]) -> bool:
    """Every HTTP connector's base_url and SMTP host on loopback: the tenant talks to the local sandbox."""
    hosts = []
    for connector in (data.get("connectors") or {}).values():
        values = (connector or {}).get("values") or {}
        if "base_url" in values:
            hosts.append(urlsplit(values["base_url"]).hostname)
        if "host" in values:
            hosts.append(values["host"])
    return bool(hosts) and all(h in LOOPBACK for h in hosts)


def test_there_are_tenant_files_and_specs() -> None:
    assert TENANT_FILES and SPEC_FILES
    assert "docusign-connect-secret" in SECRETS and "sienge-hook-token-demo" in SECRETS


@pytest.mark.parametrize("path", TENANT_FILES, ids=lambda p: p.name)
def test_tenant_credentials_are_environment_references_only(path: Path) -> None:
    data = _load(path)
    load_tenant(path)  # the model accepts it
    for key, connector in (data.get("connectors") or {}).items():
        for name, ref in ((connector or {}).get("credentials") or {}).items():
            where = f"{path.name}: connectors.{key}.credentials.{name}"
            assert isinstance(ref, dict), f"{where} is written in clear"
            assert set(ref) <= {"env", "default"}, f"{where} has keys {sorted(ref)}"
            assert ENV_NAME.match(str(ref.get("env", ""))), f"{where}: env must name a variable"
            if "default" in ref:
                assert is_sandbox(data), (f"{where} has a default, but {path.name} is not a sandbox tenant "
                                          "(only loopback base URLs may have sandbox credential defaults)")


@pytest.mark.parametrize("literal", ["s3cr3t-in-clear", {"value": "s3cr3t"}, {"env": "lower_case"}, {"env": ""}])
def test_the_tenant_model_refuses_credentials_written_in_clear(literal: Any) -> None:
    data = {"id": "x", "name": "X", "connectors": {"sienge": {"spec": "sienge", "credentials": {"password": literal}}}}
    with pytest.raises(ValidationError):
        TenantConfig.model_validate(data)


def test_a_tenant_file_with_a_clear_credential_does_not_load(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text("id: acme\nname: Acme\nconnectors:\n  sienge:\n    spec: sienge\n"
                    "    credentials:\n      password: hunter2-in-clear\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        load_tenant(path)
    assert "hunter2-in-clear" not in str(info.value)


@pytest.mark.parametrize("path", TENANT_FILES, ids=lambda p: p.name)
def test_no_known_secret_in_a_tenant_file_except_as_a_sandbox_default(path: Path) -> None:
    data = _load(path)
    allowed = 0
    for _key, connector in (data.get("connectors") or {}).items():
        for ref in ((connector or {}).get("credentials") or {}).values():
            if isinstance(ref, dict) and "default" in ref and is_sandbox(data):
                allowed += 1
    problems = []
    for where, text in _strings(data):
        is_default = len(where) == 5 and where[0] == "connectors" and where[2] == "credentials" and where[4] == "default"
        if is_default and is_sandbox(data):
            continue
        problems += [f"{'.'.join(map(str, where))}" for s in SECRETS if s in text]
    assert not problems, f"{path.name}: a known secret outside a sandbox credential default at {problems}"
    # comments too: each secret appears in the raw text only as often as it is an allowed default
    raw = path.read_text(encoding="utf-8")
    defaults = [ref["default"] for c in (data.get("connectors") or {}).values()
                for ref in ((c or {}).get("credentials") or {}).values() if isinstance(ref, dict) and "default" in ref]
    for secret in SECRETS:
        assert raw.count(secret) <= (defaults.count(secret) if is_sandbox(data) else 0), \
            f"{path.name}: {secret[:3]}… appears outside its env default (a comment or a value?)"
    assert allowed == len(defaults) or not is_sandbox(data)


#: fields of auth / verify / challenge blocks that carry a secret: always a {secrets.…} template
SECRET_FIELDS = {"token", "password", "secret", "value", "private_key", "integration_key", "client_secret",
                 "api_key", "username", "user_id", "client_id"}
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
LONG_RANDOM = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9+/=_-]{32,}$")


def _secret_blocks(spec: dict[str, Any]) -> list[tuple[str, Any]]:
    blocks = [("auth", spec.get("auth"))]
    for name, hook in (spec.get("webhooks") or {}).items():
        blocks += [(f"webhooks.{name}.verify", (hook or {}).get("verify")),
                   (f"webhooks.{name}.challenge", (hook or {}).get("challenge"))]
    return [(where, block) for where, block in blocks if block]


def spec_problems(spec: dict[str, Any], raw: str) -> list[str]:
    """What in a connector spec looks like an embedded secret (empty: none)."""
    problems = [f"contains a known secret ({secret[:3]}…)" for secret in SECRETS if secret in raw]
    for name, declaration in (spec.get("secrets") or {}).items():
        if not set(declaration or {}) <= {"description", "required"}:
            problems.append(f"secrets.{name} may only be described, never given a value ({sorted(declaration)})")
    for where, block in _secret_blocks(spec):
        header_auth = isinstance(block, dict) and block.get("type") == "headers"
        for field_path, text in _strings(block):
            if field_path and field_path[-1] == "<key>":
                continue
            key = next((str(p) for p in reversed(field_path) if isinstance(p, str)), "")
            if (key in SECRET_FIELDS or (header_auth and "headers" in field_path)) and "{secrets." not in text:
                problems.append(f"{where}.{key} is a literal ({text[:3]}…), not a {{secrets.…}} reference")
    for where, text in _strings(spec):
        if re.search(r"\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", text):
            problems.append(f"a token at {'.'.join(map(str, where))}")
        if LONG_RANDOM.match(text) and not text.startswith("/") and not UUID.match(text):
            problems.append(f"a long random literal at {'.'.join(map(str, where))} ({text[:3]}…)")
    return problems


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_connector_specs_never_embed_secrets(path: Path) -> None:
    assert spec_problems(_load(path), path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(("spec", "expected"), [
    ({"auth": {"type": "bearer", "token": "live-token-in-clear"}}, "auth.token is a literal"),
    ({"auth": {"type": "headers", "headers": {"x-api": "abc123"}}}, "auth.x-api is a literal"),
    ({"webhooks": {"e": {"verify": {"type": "header_secret", "header": "X", "value": "zap"}}}}, "verify.value"),
    ({"secrets": {"token": {"description": "t", "default": "x"}}}, "never given a value"),
    ({"headers": {"Authorization": "Bearer abcdefghijkl"}}, "a token at headers.Authorization"),
    ({"values": {"k": {"default": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"}}}, "a long random literal"),
])
def test_spec_check_catches_embedded_secrets(spec: dict[str, Any], expected: str) -> None:
    problems = spec_problems(spec, yaml.safe_dump(spec))
    assert any(expected in p for p in problems), problems
