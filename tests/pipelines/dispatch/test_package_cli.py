"""The envelope package: `ponte tenant package`, and its consumption notices, once per threshold, in order.

Envelopes are really dispatched to the DocuSign sandbox and the notices really go to the sandbox's SMTP
server; earlier consumption is put in the ledger directly (as if sent before the responsible e-mails
were set), so a few dispatches cross the thresholds of a 20-envelope package.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orchestration.cli.app import app
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.package import PackageError
from pipelines.store import open_store
from pipelines.store.models import PackageLedgerEntry, utcnow
from ponte.logging import configure_logging
from tests.pipelines.dispatch import crash_worker
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant_file


@pytest.fixture(autouse=True)
def _logging_outlives_the_cli() -> None:
    """Install the log handler on the test's stderr before a CliRunner does it on its own short-lived
    one (a later log line would hit a closed file)."""
    configure_logging()


PACKAGE = {"id": "p20", "size": 20, "valid_from": "2026-01-01", "valid_until": "2030-12-31"}


def _subject(percent: int) -> str:
    return f"Pacote de envelopes p20: {percent}% utilizado"


def _setup(sb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str, used: int):
    """A tenant file with the 20-envelope package, its store with ``used`` envelopes already counted,
    a verified manager, and a finance inbox of its own (the module's sandbox is shared)."""
    tenant_id = f"pkg{uuid.uuid4().hex[:6]}"
    finance = f"financeiro-{tenant_id}@pkg.example.com"
    tenant = sandbox_tenant_file(sb, tmp_path / "tenants", tenant_id, unthrottled=True,
                                 options={"envelope_package": PACKAGE, "responsible_emails": [finance]})
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path / "tenants"))
    monkeypatch.setenv("PONTE_DATABASE_URL", db_url)
    store = open_store(db_url)
    with store.session() as session:
        session.add_all(PackageLedgerEntry(tenant=tenant.id, package_id="p20", envelope_key=f"earlier:{i}",
                                           delta=1, at=utcnow()) for i in range(used))
    verify_manager(store, tenant)
    return tenant, finance, store


def _package(tenant_id: str) -> dict:
    result = CliRunner().invoke(app, ["tenant", "package", tenant_id, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _subjects(sb, finance: str) -> list[str]:
    return [m.subject for m in sb.smtp.inbox(to=finance)]


def test_one_run_from_75_to_95_percent_notifies_80_then_95_once(sb, tmp_path, monkeypatch, db_url) -> None:
    tenant, finance, store = _setup(sb, tmp_path, monkeypatch, db_url, used=15)
    before = _package(tenant.id)
    assert (before["used"], before["remaining"], before["percent"], before["notices"]) == (15, 5, 75.0, [])

    sales = [seed_sale(sb, tenant, roles=("titular",)) for _ in range(5)]
    report = run_dispatch(store, tenant, DispatchRequest(contracts=[s.ref for s in sales[:4]]))
    assert [o.result for o in report.outcomes] == ["sent"] * 4  # 16, 17, 18, 19 of 20
    sb.smtp.wait_for(to=finance, count=2)
    assert _subjects(sb, finance) == [_subject(80), _subject(95)]  # in order, each once

    view = _package(tenant.id)
    assert {k: view[k] for k in ("package", "size", "used", "remaining", "percent", "status")} == {
        "package": "p20", "size": 20, "used": 19, "remaining": 1, "percent": 95.0, "status": "ok"}
    assert [(n["percent"], n["status"]) for n in view["notices"]] == [(80, "sent"), (95, "sent")]
    assert all(n["at"] for n in view["notices"]) and view["reached"] == [80, 95]
    assert view["valid_until"] == "2030-12-31" and view["days_left"] > 0 and not view["expired"]

    again = run_dispatch(store, tenant, DispatchRequest(contracts=[s.ref for s in sales[:4]]))
    assert [o.result for o in again.outcomes] == ["already_sent"] * 4
    last = run_dispatch(store, tenant, DispatchRequest(contracts=[sales[4].ref]))  # 20 of 20
    assert [o.result for o in last.outcomes] == ["sent"]
    sb.smtp.wait_for(to=finance, count=3)
    with pytest.raises(PackageError, match=r"used up \(20 of 20"):
        run_dispatch(store, tenant, DispatchRequest(contracts=[seed_sale(sb, tenant, roles=("titular",)).ref]))
    time.sleep(0.3)  # anything sent late would have arrived
    assert _subjects(sb, finance) == [_subject(80), _subject(95), _subject(100)]

    text = CliRunner().invoke(app, ["tenant", "package", tenant.id], terminal_width=120)
    assert text.exit_code == 0, text.output
    assert "used up" in text.output and "buy a new package" in text.output
    for expected in ("p20", "20", "2026-01-01 to 2030-12-31", "80 %: sent", "95 %: sent", "100 %: sent"):
        assert expected in text.output, expected
    assert _package(tenant.id)["status"] == "used_up"
    store.dispose()


def test_one_dispatch_crossing_two_thresholds_sends_both_in_order(sb, tmp_path, monkeypatch, db_url) -> None:
    """18 of 20 counted without a notice (e.g. before the responsible e-mails were set): the next
    envelope makes it 95 %, and that one dispatch sends the 80 % notice, then the 95 % one."""
    tenant, finance, store = _setup(sb, tmp_path, monkeypatch, db_url, used=18)
    sale = seed_sale(sb, tenant, roles=("titular",))
    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))
    assert [o.result for o in report.outcomes] == ["sent"]
    sb.smtp.wait_for(to=finance, count=2)
    assert _subjects(sb, finance) == [_subject(80), _subject(95)]
    assert "19 de 20 envelopes" in sb.smtp.inbox(to=finance)[0].text()
    run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))
    time.sleep(0.3)
    assert len(sb.smtp.inbox(to=finance)) == 2
    store.dispose()


def test_smtp_down_defers_the_notice_without_failing_the_envelope(sb, tmp_path, monkeypatch, db_url) -> None:
    """The 80 % notice cannot go: the envelope still counts as sent and the run goes on; the next
    dispatch sends the 80 % notice first, then the 95 % one."""
    from connectors.smtp import SmtpConnector, SmtpTransientError

    tenant, finance, store = _setup(sb, tmp_path, monkeypatch, db_url, used=15)
    real_send = SmtpConnector.send
    down = {"on": True}

    def send(self, email):
        if down["on"] and email.subject.startswith("Pacote"):
            raise SmtpTransientError("SMTP sandbox unreachable: ConnectionRefusedError")
        return real_send(self, email)

    monkeypatch.setattr(SmtpConnector, "send", send)
    sales = [seed_sale(sb, tenant, roles=("titular",)) for _ in range(4)]
    first = run_dispatch(store, tenant, DispatchRequest(contracts=[s.ref for s in sales[:3]]))  # 16..18
    assert [o.result for o in first.outcomes] == ["sent"] * 3
    assert _subjects(sb, finance) == []
    assert [(n["percent"], n["status"]) for n in _package(tenant.id)["notices"]] == [(80, "failed")]
    down["on"] = False
    run_dispatch(store, tenant, DispatchRequest(contracts=[sales[3].ref]))  # 19: 95 %
    sb.smtp.wait_for(to=finance, count=2)
    assert _subjects(sb, finance) == [_subject(80), _subject(95)]
    store.dispose()


def test_a_crash_while_notifying_never_sends_a_notice_twice(sb, tmp_path, monkeypatch, db_url) -> None:
    """The dispatcher dies right after the SMTP server took the 80 % notice, before the outbox knew: no
    later run sends it again, and the 95 % notice still goes when its turn comes."""
    tenant, finance, store = _setup(sb, tmp_path, monkeypatch, db_url, used=15)
    sales = [seed_sale(sb, tenant, roles=("titular",)) for _ in range(4)]
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.pipelines.dispatch.crash_worker"])
    proc = ctx.Process(target=crash_worker.dispatch,
                       args=(db_url, tenant.model_dump_json(), sales[0].ref, "after_package_warning_sent"))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 137, "the crash point after the notice was not reached"
    assert _subjects(sb, finance) == [_subject(80)]

    time.sleep(crash_worker.LEASE * 2)  # the dead worker's lease on the notice runs out
    rerun = run_dispatch(store, tenant, DispatchRequest(contracts=[sales[0].ref]))
    assert [o.result for o in rerun.outcomes] == ["already_sent"]
    more = run_dispatch(store, tenant, DispatchRequest(contracts=[s.ref for s in sales[1:]]))  # 17..19
    assert [o.result for o in more.outcomes] == ["sent"] * 3
    sb.smtp.wait_for(to=finance, count=2)
    time.sleep(0.3)
    assert _subjects(sb, finance) == [_subject(80), _subject(95)]
    assert [(n["percent"], n["status"]) for n in _package(tenant.id)["notices"]] == [(80, "unsure"), (95, "sent")]
    store.dispose()


def test_a_tenant_without_a_package_says_so(sb, tmp_path, monkeypatch) -> None:
    sandbox_tenant_file(sb, tmp_path / "tenants", "nopkg")
    loaded = yaml.safe_load((tmp_path / "tenants" / "nopkg.yaml").read_text(encoding="utf-8"))
    del loaded["options"]["envelope_package"]
    (tmp_path / "tenants" / "nopkg.yaml").write_text(yaml.safe_dump(loaded, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path / "tenants"))
    monkeypatch.setenv("PONTE_DATABASE_URL", f"sqlite:///{tmp_path / 'nopkg.db'}")
    text = CliRunner().invoke(app, ["tenant", "package", "nopkg"], terminal_width=160)
    assert text.exit_code == 0 and "has no envelope package" in text.output
    assert _package("nopkg") == {"tenant": "nopkg", "package": None, "status": "none", "notices": []}
    missing = CliRunner().invoke(app, ["tenant", "package", "no-such-tenant"])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_the_dispatch_asset_reports_the_package(sb, tmp_path, monkeypatch, db_url) -> None:
    from dagster import materialize

    from orchestration.dispatch.assets import signing_envelopes
    from orchestration.resources import ConnectorsResource, StoreResource
    from tests.pipelines.dispatch.test_dagster import SandboxTenants

    tenant, finance, store = _setup(sb, tmp_path, monkeypatch, db_url, used=15)
    sale = seed_sale(sb, tenant, roles=("titular",))
    resources = {"store": StoreResource(database_url=db_url), "connectors": ConnectorsResource(),
                 "tenants": SandboxTenants(tenant_json=tenant.model_dump_json())}
    config = {"ops": {"signing_envelopes": {"config": {"contracts": [sale.ref], "all_ready": False}}}}
    result = materialize([signing_envelopes], partition_key="demo", resources=resources, run_config=config)
    meta = result.asset_materializations_for_node("signing_envelopes")[0].metadata
    assert meta["sent"].value == 1
    package = meta["package"].value
    assert {k: package[k] for k in ("package", "used", "remaining", "percent", "valid_until", "status")} == {
        "package": "p20", "used": 16, "remaining": 4, "percent": 80.0, "valid_until": "2030-12-31", "status": "ok"}
    assert package["notices_sent"] == [80] and sb.smtp.wait_for(to=finance)[0].subject == _subject(80)
    assert meta["package_percent"].value == 80.0 and meta["package_valid_until"].value == "2030-12-31"
    assert meta["envelopes_by_status"].value == {"pending": 1}
    store.dispose()
