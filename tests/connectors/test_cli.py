"""`ponte connector ...` end to end: a tenant file, a loopback API, the real CLI."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestration.cli.app import app
from tests.connectors.loopback import Loopback, Received, Reply

runner = CliRunner()


@pytest.fixture(autouse=True)
def _drop_cli_log_handlers() -> Iterator[None]:
    """`ponte` installs a stderr handler; under CliRunner that stream closes after each invoke."""
    before = list(logging.getLogger().handlers)
    yield
    for handler in logging.getLogger().handlers:
        if handler not in before:
            logging.getLogger().removeHandler(handler)
BASIC = "Basic " + base64.b64encode(b"ponte-sandbox:sandbox-secret").decode()


def tenant_file(tmp_path: Path, server: Loopback) -> Path:
    path = tmp_path / "acme.yaml"
    path.write_text(f"""
id: acme
name: Acme Incorporadora
connectors:
  sienge:
    spec: sienge
    values: {{subdomain: demo, base_url: "{server.url}"}}
    credentials:
      username: {{env: ACME_SIENGE_USER}}
      password: {{env: ACME_SIENGE_PASSWORD}}
  docusign:
    spec: docusign
    values: {{account_id: acc, base_url: "{server.url}"}}
    credentials:
      access_token: {{env: ACME_DOCUSIGN_TOKEN, default: docusign-sandbox-token}}
      connect_hmac_key: {{env: ACME_DOCUSIGN_HMAC, default: docusign-connect-secret}}
""")
    return path


def sienge_api(server: Loopback, forbid: str | None = None) -> None:
    def listing(resource: str):  # type: ignore[no-untyped-def]
        def handler(req: Received) -> Reply:
            if req.headers.get("authorization") != BASIC:
                return Reply(401, {"status": 401})
            if resource == forbid:
                return Reply(403, {"status": 403, "developerMessage": "Permissão negada"})
            rows = [{"id": 1, "name": "Ana", "cpf": "529.982.247-25"}]
            return Reply(200, {"resultSetMetadata": {"count": 1, "offset": 0, "limit": 200}, "results": rows})
        return handler

    for resource in ("customers", "enterprises", "sales-contracts", "units"):
        server.route("GET", f"/demo/public/api/v1/{resource}", listing(resource))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_SIENGE_USER", "ponte-sandbox")
    monkeypatch.setenv("ACME_SIENGE_PASSWORD", "sandbox-secret")


def test_check_reports_each_stream(server: Loopback, tmp_path: Path, env: None) -> None:
    sienge_api(server, forbid="sales-contracts")
    result = runner.invoke(app, ["connector", "check", str(tenant_file(tmp_path, server)), "sienge"])
    assert result.exit_code == 1, result.output
    assert "customers" in result.output and "✓" in result.output
    assert "sales_contracts" in result.output and "403" in result.output


def test_check_passes_when_everything_works(server: Loopback, tmp_path: Path, env: None) -> None:
    sienge_api(server)
    result = runner.invoke(app, ["connector", "check", str(tenant_file(tmp_path, server)), "sienge"])
    assert result.exit_code == 0, result.output
    assert "all 4 checks passed" in result.output


def test_read_prints_masked_records(server: Loopback, tmp_path: Path, env: None) -> None:
    sienge_api(server)
    result = runner.invoke(app, ["connector", "read", str(tenant_file(tmp_path, server)), "sienge", "customers",
                                 "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert '"name": "Ana"' in result.output and "529.982.247-25" not in result.output
    assert "1 record(s)" in result.output


def test_missing_credential_is_a_clear_error(server: Loopback, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACME_SIENGE_USER", raising=False)
    result = runner.invoke(app, ["connector", "check", str(tenant_file(tmp_path, server)), "sienge"])
    assert result.exit_code == 2 and "ACME_SIENGE_USER" in result.output
    assert "Traceback" not in result.output


def test_unknown_stream_is_a_clear_error(server: Loopback, tmp_path: Path, env: None) -> None:
    result = runner.invoke(app, ["connector", "read", str(tenant_file(tmp_path, server)), "sienge", "buildings"])
    assert result.exit_code == 2 and "no stream 'buildings'" in result.output and "customers" in result.output


def test_validate_specs_and_a_broken_one(tmp_path: Path) -> None:
    assert runner.invoke(app, ["connector", "validate"]).exit_code == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: http\nname: broken\nbase_url: x\nstreams:\n  s: {path: /x, limt: 3}\n")
    result = runner.invoke(app, ["connector", "validate", str(broken)])
    assert result.exit_code == 1 and f"{broken}:5" in result.output.replace("\n", "")


def test_list_shows_streams_actions_and_webhooks() -> None:
    result = runner.invoke(app, ["connector", "list"])
    assert result.exit_code == 0 and "zapsign" in result.output and "sienge" in result.output
