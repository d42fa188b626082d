"""`ponte tenant verify-email` and `ponte sync dispatch` as an operator uses them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orchestration.cli.app import app
from tests.pipelines.dispatch.support import seed_sale
from tests.support.tenants import sandbox_tenant


def test_verify_email_then_dispatch_from_the_command_line(sb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = sandbox_tenant(sb, tenant_id="clitenant", unthrottled=True)
    (tmp_path / "clitenant.yaml").write_text(yaml.safe_dump(tenant.model_dump(mode="json", exclude_none=True)))
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path))
    monkeypatch.setenv("PONTE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    sale = seed_sale(sb, tenant)
    runner = CliRunner()
    manager = str(tenant.options.contract_managers[0])

    refused = runner.invoke(app, ["sync", "dispatch", "-t", "clitenant", "--contract", sale.ref])
    assert refused.exit_code != 0 and "no contract-manager e-mail is verified" in refused.output

    sent = runner.invoke(app, ["tenant", "verify-email", "-t", "clitenant", "--email", manager])
    assert sent.exit_code == 0, sent.output
    code = re.search(r"código de verificação (\d{6})", sb.smtp.wait_for(to=manager)[-1].subject)
    assert code is not None
    wrong = runner.invoke(app, ["tenant", "verify-email", "-t", "clitenant", "--email", manager, "--code", "000000"
                                if code.group(1) != "000000" else "111111"])
    assert wrong.exit_code != 0 and "wrong code" in wrong.output
    ok = runner.invoke(app, ["tenant", "verify-email", "-t", "clitenant", "--email", manager, "--code", code.group(1)])
    assert ok.exit_code == 0 and "is verified" in ok.output

    plan = runner.invoke(app, ["sync", "dispatch", "-t", "clitenant", "--contract", sale.ref, "--plan"], terminal_width=200)
    assert plan.exit_code == 0 and "would_send" in plan.output and "plan: nothing sent" in plan.output
    real = runner.invoke(app, ["sync", "dispatch", "-t", "clitenant", "--contract", sale.ref], terminal_width=200)
    assert real.exit_code == 0 and " sent " in real.output and "1:client/email" in real.output
