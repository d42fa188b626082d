"""``ponte sandbox`` commands: help text and driving a running sandbox's signers and faults."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner

from connectors.sandbox import Sandbox
from orchestration.cli.sandbox import app

from .conftest import DOCUSIGN_HEADERS
from .test_fidelity import _envelope_body

runner = CliRunner()


def test_help_explains() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "Sienge" in result.output
    up = runner.invoke(app, ["up", "--help"])
    assert "--customers" in up.output and "--faults" in up.output and "--port-base" in up.output
    sign = runner.invoke(app, ["sign", "--help"])
    assert "--as" in sign.output and "--action" in sign.output


def test_sign_through_the_control_api(fresh: Sandbox) -> None:
    client = httpx.Client(base_url=fresh.api["docusign"], headers=DOCUSIGN_HEADERS)
    eid = client.post("/envelopes", json=_envelope_body("cli-1", signers=3)).json()["envelopeId"]
    result = runner.invoke(app, ["sign", eid, "--as", "cliente", "--provider", "docusign",
                                 "--url", fresh.urls["docusign"]])
    assert result.exit_code == 0, result.output
    assert "Signatário 1: completed" in result.output
    early = runner.invoke(app, ["sign", eid, "--as", "testemunha", "--url", fresh.urls["docusign"],
                                "--provider", "docusign"])
    assert early.exit_code == 2 and "409" in early.output
    bad = runner.invoke(app, ["sign", eid, "--as", "conjuge", "--action", "dance"])
    assert bad.exit_code == 2 and "unknown action" in bad.output


def test_faults_at_run_time(fresh: Sandbox) -> None:
    result = runner.invoke(app, ["faults", "sienge.fail_next=503", "--url", fresh.urls["sienge"]])
    assert result.exit_code == 0, result.output
    assert fresh.sienge.faults.config.fail_next == [503]
    bad = runner.invoke(app, ["faults", "sienge.color=red", "--url", fresh.urls["sienge"]])
    assert bad.exit_code == 2 and "unknown key" in bad.output
