"""How a Dagster step ends when a flow raises: a person's error fails at once, a passing one is retried.

Non-retryable Ponte errors (a broken tenant file, a missing credential) must fail the step on its first
attempt with the message and the fix, never be re-run by the step retry policy; retryable ones (what
the HTTP layer gave up on) are re-run by that policy. A bad run config (a bad ``since`` date, a
back-sync mode that does not exist) is refused before the run starts. Every asset and op that runs a
flow is checked through Dagster's own execution (``materialize`` / ``execute_in_process``).

The policy's delay is patched to zero so a retried step does not wait 30 s between attempts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterInvalidConfigError,
    RetryPolicy,
    materialize,
)

from connectors.runtime.errors import AmbiguousWriteError
from orchestration.assistance.assets import assistance_sync
from orchestration.backsync.defs import signature_backsync
from orchestration.definitions import defs
from orchestration.dispatch.assets import signing_envelopes
from orchestration.imports.assets import crm_customers_and_sales
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from orchestration.steps import STEP_RETRY
from ponte.errors import ConfigurationError, DataError, PonteError, RateLimitedError, TransientError

REPO = Path(__file__).resolve().parents[2]
ASSETS = {
    "import": crm_customers_and_sales,
    "dispatch": signing_envelopes,
    "assistance": assistance_sync,
}
FLOWS = [*ASSETS, "backsync"]


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Attempts follow each other at once (the policy's 30 s+ delays would make a retry slow, not wrong)."""
    monkeypatch.setattr(RetryPolicy, "calculate_delay", lambda self, attempt_num: 0)


def _demo() -> dict[str, Any]:
    return yaml.safe_load((REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A tenants folder holding ``demo.yaml`` (the test writes it) and resources on a fresh store."""
    tenants_dir = tmp_path / "tenants"
    tenants_dir.mkdir()
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(tenants_dir))
    resources = {
        "store": StoreResource(database_url=f"sqlite:///{tmp_path / 'ponte.db'}"),
        "tenants": TenantsResource(),
        "connectors": ConnectorsResource(),
    }
    yield tenants_dir / "demo.yaml", resources


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _run(flow: str, resources: dict[str, Any], config: dict[str, Any] | None = None):
    instance = DagsterInstance.ephemeral()
    if flow == "backsync":
        run_config = {"ops": {"backsync": {"config": config}}} if config else None
        return signature_backsync.execute_in_process(
            resources=resources, partition_key="demo", instance=instance, raise_on_error=False,
            run_config=run_config,
        )
    asset = ASSETS[flow]
    run_config = {"ops": {asset.op.name: {"config": config}}} if config else None
    return materialize(
        [asset], partition_key="demo", resources=resources, instance=instance, raise_on_error=False,
        run_config=run_config,
    )


def _events(result, kind: DagsterEventType) -> list[DagsterEvent]:
    return [e for e in result.all_events if e.event_type == kind]


def _failed_once(result) -> DagsterEvent:
    """The step failed on its first attempt and was never put up for retry; its failure event."""
    assert not result.success
    assert _events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert _events(result, DagsterEventType.STEP_RESTARTED) == []
    assert len(_events(result, DagsterEventType.STEP_START)) == 1
    (failure,) = _events(result, DagsterEventType.STEP_FAILURE)
    return failure


def _user_failure(event: DagsterEvent) -> tuple[str, dict[str, Any]]:
    data = event.step_failure_data.user_failure_data
    assert data is not None, "the step failed with a raw exception, not a dagster Failure"
    return data.description or "", {key: value.value for key, value in data.metadata.items()}


# ------------------------------------------------------------- a person's error: one attempt, then stop


@pytest.mark.parametrize("flow", FLOWS)
def test_a_broken_tenant_file_fails_every_flow_at_once_with_the_fix(world, flow: str) -> None:
    path, resources = world
    data = _demo()
    data["options"]["envelope_deadline_days"] = 0
    _write(path, data)
    description, metadata = _user_failure(_failed_once(_run(flow, resources)))
    assert "envelope_deadline_days" in description and "greater than or equal to 1" in description
    assert "(fix: correct the field in the tenant file" in description
    assert metadata["kind"] == "configuration"
    assert metadata["tenant"] == "demo"
    assert metadata["hint"].startswith("correct the field in the tenant file")


def test_a_missing_credential_fails_the_import_at_once(world, monkeypatch: pytest.MonkeyPatch) -> None:
    path, resources = world
    data = _demo()
    data["connectors"]["sienge"]["credentials"]["password"] = {"env": "PONTE_DEMO_SIENGE_PASSWORD"}
    _write(path, data)
    monkeypatch.delenv("PONTE_DEMO_SIENGE_PASSWORD", raising=False)
    description, metadata = _user_failure(_failed_once(_run("import", resources)))
    assert "environment variable PONTE_DEMO_SIENGE_PASSWORD is not set" in description
    assert "(fix: export PONTE_DEMO_SIENGE_PASSWORD=" in description
    assert metadata["kind"] == "configuration"
    assert (metadata["tenant"], metadata["field"]) == ("demo", "credentials.password")
    assert metadata["hint"].startswith("export PONTE_DEMO_SIENGE_PASSWORD=")


# A bad run config is refused at launch, by Dagster's config system, before any step starts (issue #21):
# these used to fail the step; now the run is never created.


@pytest.mark.parametrize(
    ("config", "said"),
    [({"mode": "since", "since": "2026-13-45"}, "'2026-13-45' is not a date; write it as yyyy-mm-dd"),
     ({"mode": "since"}, "mode=since needs since")],
)
def test_a_bad_since_date_is_refused_at_launch(world, config: dict[str, Any], said: str) -> None:
    path, resources = world
    _write(path, _demo())
    with pytest.raises(DagsterInvalidConfigError) as refused:
        _run("import", resources, config)
    assert said in str(refused.value)


@pytest.mark.parametrize(
    ("config", "said"),
    [({"mode": "contract"}, "mode=contract needs contract"), ({"mode": "sideways"}, "got sideways")],
)
def test_a_bad_backsync_mode_is_refused_at_launch(world, config: dict[str, Any], said: str) -> None:
    path, resources = world
    _write(path, _demo())
    with pytest.raises(DagsterInvalidConfigError) as refused:
        _run("backsync", resources, config)
    assert said in str(refused.value)


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (AmbiguousWriteError("POST /envelopes may have landed and cannot be looked up",
                             hint="look the contract up at the provider, then replay"), "may have landed"),
        (DataError("customer 123.456.789-09 has no e-mail", record="customer:42", field="email",
                   hint="fill it in for maria@example.com"), "has no e-mail"),
    ],
    ids=["ambiguous-write", "data"],
)
def test_non_retryable_errors_fail_once_and_are_masked(
    world, monkeypatch: pytest.MonkeyPatch, error: PonteError, said: str
) -> None:
    """The decision is ``PonteError.retryable``: an AmbiguousWriteError is a TransientError that must
    not be retried (a person decides); a leaked personal datum is masked in the description and metadata."""
    path, resources = world
    _write(path, _demo())
    calls = []

    def boom(*_args: Any, **_kwargs: Any) -> None:
        calls.append(1)
        raise error

    monkeypatch.setattr("orchestration.imports.assets.run_import", boom)
    description, metadata = _user_failure(_failed_once(_run("import", resources)))
    assert calls == [1]
    assert said in description and f"(fix: {error.hint.split(' for ')[0]}" in description
    assert "123.456.789-09" not in description and "maria@example.com" not in description
    assert "maria@example.com" not in str(metadata) and "123.456.789-09" not in str(metadata)
    assert metadata["kind"] == error.kind and metadata["tenant"] == "demo"
    if error.field:
        assert (metadata["record"], metadata["field"]) == (error.record, error.field)
        assert metadata["hint"] == "fill it in for m***@example.com"


# ------------------------------------------------------------------ a passing error: the retry policy


@pytest.mark.parametrize(
    "error",
    [TransientError("Sienge answered 503 five times"), RateLimitedError("CV CRM answered 429", retry_after=1)],
    ids=["transient", "rate-limited"],
)
def test_a_retryable_error_is_retried_by_the_step_policy(world, monkeypatch: pytest.MonkeyPatch, error: PonteError) -> None:
    path, resources = world
    _write(path, _demo())
    calls = []

    def flaky(*_args: Any, **_kwargs: Any) -> None:
        calls.append(1)
        raise error

    monkeypatch.setattr("orchestration.imports.assets.run_import", flaky)
    result = _run("import", resources)
    assert not result.success
    assert len(calls) == 1 + STEP_RETRY.max_retries
    assert len(_events(result, DagsterEventType.STEP_UP_FOR_RETRY)) == STEP_RETRY.max_retries
    assert len(_events(result, DagsterEventType.STEP_RESTARTED)) == STEP_RETRY.max_retries
    assert len(_events(result, DagsterEventType.STEP_FAILURE)) == 1


def test_a_transient_error_that_passes_succeeds_on_the_retry(world, monkeypatch: pytest.MonkeyPatch) -> None:
    path, resources = world
    _write(path, _demo())
    from pipelines.imports.report import ImportReport

    calls = []

    def once(*_args: Any, **_kwargs: Any) -> ImportReport:
        calls.append(1)
        if len(calls) == 1:
            raise TransientError("CV CRM answered 503 five times")
        return ImportReport(tenant="demo", plan=False)

    monkeypatch.setattr("orchestration.imports.assets.run_import", once)
    result = _run("import", resources)
    assert result.success and len(calls) == 2
    assert len(_events(result, DagsterEventType.STEP_UP_FOR_RETRY)) == 1


# --------------------------------------------------------------------------- one policy, every step


def test_every_flow_step_uses_the_one_step_retry_policy() -> None:
    """Every op of every job, except asset checks (they read the store; they run no flow)."""
    checks = {ad.op.name for ad in defs.resolve_asset_graph().assets_defs if not ad.keys}
    steps = {}
    for job in defs.resolve_all_job_defs():
        for node in job.nodes:
            if node.name not in checks:
                steps[node.name] = node.definition.retry_policy
    assert set(steps) >= {"crm_customers_and_sales", "signing_envelopes", "assistance_sync", "backsync"}
    assert {name: policy for name, policy in steps.items() if policy != STEP_RETRY} == {}


def test_the_step_retry_policy_is_defined_once() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "orchestration").rglob("*.py")
        if path.name != "steps.py" and "RetryPolicy(" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_configuration_errors_are_not_retryable_and_transient_ones_are() -> None:
    assert ConfigurationError("x").retryable is False
    assert TransientError("x").retryable is True
