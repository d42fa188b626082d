"""Fixtures for the sandbox tests: one cheap shared sandbox, fresh ones where state or budgets matter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connectors.sandbox import Sandbox, start_sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
SPECS = REPO_ROOT.parent / "shared" / "specs"

SIENGE_AUTH = ("ponte-sandbox", "sandbox-secret")
CVCRM_HEADERS = {"email": "integracao@demo.cvcrm.com.br", "token": "cvcrm-sandbox-token"}
DOCUSIGN_HEADERS = {"Authorization": "Bearer docusign-sandbox-token"}
CLICKSIGN_HEADERS = {"Authorization": "clicksign-sandbox-token", "Content-Type": "application/vnd.api+json"}
WHATSAPP_HEADERS = {"Authorization": "Bearer whatsapp-sandbox-token"}


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """Shared sandbox (rate limits off: budgets are tested on their own sandboxes)."""
    with start_sandbox(customers=40, seed=7, rate_limits=False) as sb:
        yield sb


@pytest.fixture
def fresh() -> Iterator[Sandbox]:
    """A sandbox of one's own, for tests that change faults or state others rely on."""
    with start_sandbox(customers=20, seed=11, rate_limits=False) as sb:
        yield sb


@pytest.fixture(scope="session")
def sienge(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.api["sienge"], auth=SIENGE_AUTH, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def cvcrm(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.api["cvcrm"], headers=CVCRM_HEADERS, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def docusign(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.api["docusign"], headers=DOCUSIGN_HEADERS, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def clicksign(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.api["clicksign"], headers=CLICKSIGN_HEADERS, timeout=10) as client:
        yield client


@cache
def swagger(path: str) -> dict[str, Any]:
    """A spec file from ../shared/specs (YAML or JSON), parsed once."""
    file = SPECS / path
    if not file.exists():
        pytest.fail(
            f"published spec {file} is missing: the fidelity tests need ../shared/specs beside the repo"
        )
    text = file.read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return json.loads(text) if file.suffix == ".json" else yaml.load(text, Loader=loader)


def swagger_schema(path: str, definition: str, errata: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON Schema for ``#/definitions/<definition>`` with every definition embedded for $ref."""
    definitions = json.loads(json.dumps(swagger(path)["definitions"]))
    for dotted, replacement in (errata or {}).items():
        name, *keys = dotted.split(".")
        target = definitions[name]
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = replacement(target[keys[-1]]) if callable(replacement) else replacement
    return {"$ref": f"#/definitions/{definition}", "definitions": definitions}


def openapi_schema(path: str, component: str) -> dict[str, Any]:
    spec = swagger(path)
    return {
        "$ref": f"#/components/schemas/{component}",
        "components": {"schemas": spec["components"]["schemas"]},
    }


def pdf_b64(title: str = "Contrato de compra e venda") -> str:
    import base64

    from connectors.sandbox.documents import text_pdf

    return base64.b64encode(text_pdf(title, ["Cláusula 1: objeto.", "Cláusula 2: preço."])).decode()
