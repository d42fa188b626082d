"""An import over the sandbox where most records fail (issue #17, point 2).

Before: one dead-letter lookup and insert per failed record (the lookup read every open letter of the
tenant's flow) and one WARNING line per failed record. Now the letters go out with their batch, the
log keeps the first few failures of each reason and then counts, and the report (CLI, Dagster) ends
with the counts by reason and the commands to inspect and replay them.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from typer.testing import CliRunner

from connectors.sandbox import Sandbox, start_sandbox
from orchestration.cli.app import app
from pipelines.connections import open_connector
from pipelines.imports.flow import ImportRequest, run_import
from pipelines.imports.report import LOGGED_PER_REASON
from pipelines.store import Store
from pipelines.store.models import DeadLetter
from tests.support.tenants import sandbox_tenant, sandbox_tenant_file

CUSTOMERS = 320
BROKEN = 280


def break_documents(sandbox: Sandbox, count: int) -> tuple[Counter[str], dict[int, dict[str, str]]]:
    """Make ``count`` customers invalid at Sienge, four ways; returns how many of each (by a phrase of
    the reason each must fail with) and the values as they were."""
    made: Counter[str] = Counter()
    originals: dict[int, dict[str, str]] = {}
    for index, (customer_id, customer) in enumerate(list(sandbox.state.sienge.customers.items())[:count]):
        field = "cpf" if customer.get("cpf") else "cnpj"
        digits = re.sub(r"[^0-9A-Za-z]", "", customer[field])
        wrong_check = digits[:-1] + str((int(digits[-1]) + 1) % 10)
        if field == "cnpj":
            value, phrase = wrong_check, "CNPJ check digits"
        elif index % 5 < 2:
            value, phrase = wrong_check, "CPF check digits"
        elif index % 5 < 4:
            value, phrase = str(index % 10) * 11, "placeholder"
        else:
            value, phrase = digits[:6], "digits and a CNPJ"
        originals[customer_id] = {field: customer[field]}
        sandbox.sienge.mutate_customer(customer_id, **{field: value})
        made[phrase] += 1
    return made, originals


@pytest.fixture
def broken() -> Iterator[tuple[Sandbox, Counter[str], dict[int, dict[str, str]]]]:
    with start_sandbox(customers=CUSTOMERS, seed=11, rate_limits=False) as sandbox:
        yield sandbox, *break_documents(sandbox, BROKEN)


def _by_phrase(reasons: dict[str, int], phrases: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for reason, n in reasons.items():
        [phrase] = [p for p in phrases if p in reason] or ["?" + reason]
        counts[phrase] += n
    return counts


def test_many_failures_are_dead_lettered_in_batches_summarised_and_counted_by_reason(
    broken: tuple[Sandbox, Counter[str], dict], store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, made, originals = broken
    tenant = sandbox_tenant(sandbox, unthrottled=True)
    touching: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "dead_letters" in statement:
            touching.append(statement)

    with open_connector(tenant, "sienge", store=store) as sienge, open_connector(tenant, "cvcrm", store=store) as crm:
        event.listen(store.engine, "before_cursor_execute", count)
        try:
            with caplog.at_level(logging.WARNING, logger="ponte.import"):
                report = run_import(store, tenant, sienge, crm)
        finally:
            event.remove(store.engine, "before_cursor_execute", count)
        customers = report.entities["customer"]
        sales = report.entities["sale"]
        assert customers.dead_lettered == BROKEN and customers.created == CUSTOMERS - BROKEN
        assert sales.dead_lettered > 0, "sales of refused buyers are dead-lettered too"

        # the store saw a few statements a batch, not two a failure
        batches = -(-report.total("read") // 200) + 4  # pages, plus each stage's last commit
        assert len(touching) <= 3 * batches, f"{len(touching)} dead-letter statements for {batches} batches"

        # the log: the first few of each reason, then one line that counts the rest
        warnings = [r for r in caplog.records if r.name == "ponte.import" and r.levelno == logging.WARNING]
        for phrase in made:
            one_by_one = [r for r in warnings if phrase in r.getMessage() and " failed: " in r.getMessage()]
            assert len(one_by_one) <= LOGGED_PER_REASON * 2, (phrase, len(one_by_one))
        assert len(warnings) < 40, f"{len(warnings)} WARNING lines for {report.total('failed')} failures"
        summary = "\n".join(r.getMessage() for r in warnings)
        assert "not logged one by one" in summary and "ponte deadletter list" in summary

        # counts by reason: values differ from record to record, reasons do not
        reasons = report.dead_letters_by_reason
        assert sum(reasons.values()) == report.total("dead_lettered")
        customer_reasons = {r: n for r, n in reasons.items() if "document" in r}
        assert _by_phrase(customer_reasons, list(made)) == made
        assert len(reasons) <= len(made) + 3

        # a re-run that fails the same records updates their letters: no duplicates
        again = run_import(store, tenant, sienge, crm, ImportRequest(full=True))
        assert again.entities["customer"].dead_lettered == BROKEN
        assert again.dead_letters_by_reason == reasons
        with store.session() as session:
            rows = session.execute(
                select(DeadLetter.status, DeadLetter.failures, func.count())
                .where(DeadLetter.record_key.like("customer:%"))
                .group_by(DeadLetter.status, DeadLetter.failures)).all()
        assert rows == [("open", 2, BROKEN)]

        # fixed at the source: the next run closes every letter, a batch at a time
        for customer_id, fields in originals.items():
            sandbox.sienge.mutate_customer(customer_id, **fields)
        touching.clear()
        event.listen(store.engine, "before_cursor_execute", count)
        try:
            fixed = run_import(store, tenant, sienge, crm, ImportRequest(full=True))
        finally:
            event.remove(store.engine, "before_cursor_execute", count)
    assert fixed.total("dead_lettered") == 0 and fixed.entities["customer"].created == BROKEN
    with store.session() as session:
        assert session.scalar(select(func.count()).where(DeadLetter.status == "open")) == 0
    assert len(touching) <= 3 * batches, f"{len(touching)} dead-letter statements to close {BROKEN} letters"


def test_a_clean_run_makes_one_dead_letter_query_per_stage(store: Store) -> None:
    """Nothing open, nothing failing: no per-record dead-letter query on the hot path."""
    with start_sandbox(customers=250, seed=3, rate_limits=False) as sandbox:
        tenant = sandbox_tenant(sandbox, unthrottled=True)
        touching: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if "dead_letters" in statement:
                touching.append(statement)

        with open_connector(tenant, "sienge", store=store) as sienge, \
                open_connector(tenant, "cvcrm", store=store) as crm:
            event.listen(store.engine, "before_cursor_execute", count)
            try:
                report = run_import(store, tenant, sienge, crm)
            finally:
                event.remove(store.engine, "before_cursor_execute", count)
    assert report.total("dead_lettered") == 0 and report.total("created") > 250
    assert len(touching) <= 4, touching


def test_the_cli_import_ends_with_the_counts_by_reason_and_the_commands(
    broken: tuple[Sandbox, Counter[str], dict], db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, made, _originals = broken
    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path / "tenants"))
    monkeypatch.setenv("PONTE_DATABASE_URL", db_url)
    sandbox_tenant_file(sandbox, tmp_path / "tenants", unthrottled=True)

    result = CliRunner().invoke(app, ["sync", "import", "--tenant", "demo"])

    assert result.exit_code == 1, result.output  # done, with dead letters (README, "Exit codes")
    out = " ".join(result.output.split())  # a table may wrap a long reason
    assert "dead letters by reason" in out
    for phrase, count in made.items():
        assert phrase in out
        assert str(count) in out
    assert "ponte deadletter list --tenant demo --flow import --reason" in out
    assert "ponte deadletter replay --all --tenant demo --flow import" in out
    # and the list groups them the same way (a terminal wide enough for a reason on one line)
    monkeypatch.setenv("COLUMNS", "250")
    listed = CliRunner().invoke(app, ["deadletter", "list", "--tenant", "demo", "--flow", "import", "--by-reason"])
    assert listed.exit_code == 0, listed.output
    assert all(phrase in " ".join(listed.output.split()) for phrase in made)
