"""CV CRM webhooks start dispatch: the sensor leases each inbox event to exactly one run, the run marks it.

The sensor is evaluated with Dagster's ``build_sensor_context``; the run is the real asset, over the
sandbox, with the request's own run config.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunRequest,
    build_sensor_context,
    job,
    materialize,
    op,
)
from sqlalchemy import select, update

from orchestration.definitions import defs
from orchestration.dispatch.assets import signing_envelopes
from orchestration.dispatch.defs import DEFS
from orchestration.dispatch.sensors import SENSOR
from orchestration.gateway.app import create_app
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from pipelines.dispatch.flow import ContractOutcome, DispatchReport, DispatchRequest
from pipelines.dispatch.webhooks import (
    CLAIM_PREFIX,
    FAILURE_RETRY_SECONDS,
    MAX_ATTEMPTS,
    Trigger,
    dispatch_claimed,
    hand_over,
    parse_triggers,
    tenant_triggers,
)
from pipelines.store.db import Store
from pipelines.store.inbox import store_event
from pipelines.store.models import InboxEvent, utcnow
from ponte.errors import ConfigurationError
from schemas.tenant import TenantConfig, load_tenant
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.servers import serve_asgi
from tests.support.tenants import sandbox_tenant

REPO = Path(__file__).resolve().parents[3]
CV_SECRET = "cv-url-secret-demo-0123456789"  # tenants/demo.yaml's sandbox default


class FixedTenants(TenantsResource):
    """One tenant, whatever the tenant files say (a sandbox tenant, or the demo with other values)."""

    tenant_json: str

    def load(self, tenant_id: str) -> TenantConfig:
        return TenantConfig.model_validate_json(self.tenant_json)

    def all(self) -> list[TenantConfig]:
        return [self.load("")]


def demo(**cvcrm_values: str) -> TenantConfig:
    tenant = load_tenant(REPO / "tenants" / "demo.yaml")
    if cvcrm_values:
        tenant.connectors["cvcrm"].values.update(cvcrm_values)
    return tenant


def cv_body(event_type: str, subject: Any) -> bytes:
    funcionalidade, gatilho = event_type.split(":")
    return json.dumps({"idwebhook": 1, "funcionalidade": funcionalidade, "gatilho": int(gatilho), "id": subject,
                       "enviado_em": "2026-11-23 10:00:00"}).encode()


def stored(store: Store, event_type: str, subject: Any, *, connector: str = "cvcrm", body: bytes | None = None) -> int:
    result = store_event(store, tenant="demo", connector=connector, event_id=str(uuid.uuid4()),
                         event_type=event_type, body=cv_body(event_type, subject) if body is None else body)
    assert result.id is not None
    return result.id


def tick(store: Store, tenant: TenantConfig, instance: DagsterInstance) -> list[RunRequest]:
    sensor = next(s for s in DEFS.sensors if s.name == SENSOR)
    context = build_sensor_context(
        instance=instance,
        resources={"store": StoreResource(database_url=store.url), "tenants": FixedTenants(tenant_json=tenant.model_dump_json())},
        repository_def=defs.get_repository_def(),
    )
    return list(sensor.evaluate_tick(context).run_requests or [])


def inbox(store: Store, event_id: int) -> InboxEvent:
    with store.session() as session:
        return session.scalars(select(InboxEvent).where(InboxEvent.id == event_id)).one()


def config_of(request: RunRequest) -> dict[str, Any]:
    return request.run_config["ops"]["signing_envelopes"]["config"]


# -------------------------------------------------------------------------------------------- triggers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CV:*", [Trigger("CV", None, "contract")]),
        ("RS:14", [Trigger("RS", "14", "reservation")]),
        ("cv:3, RS:14=contract", [Trigger("CV", "3", "contract"), Trigger("RS", "14", "contract")]),
        ("RP:5=reservation", [Trigger("RP", "5", "reservation")]),
        ("", []),
    ],
)
def test_trigger_entries(text: str, expected: list[Trigger]) -> None:
    assert parse_triggers(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("AS:1", "belong to the assistance flow"),
        ("RP:5", "say whether its id names a contract or a reservation"),
        ("CV", "is not FUNCIONALIDADE:GATILHO"),
        ("CV:abc", "is not FUNCIONALIDADE:GATILHO"),
    ],
)
def test_bad_trigger_entries_name_the_value(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        parse_triggers(text, tenant="acme")
    assert info.value.field == "connectors.cvcrm.values.dispatch_events"


def test_the_spec_default_is_any_sale_contract_situation() -> None:
    assert tenant_triggers(demo()) == [Trigger("CV", None, "contract")]
    assert Trigger("CV", None, "contract").matches("CV:12") and not Trigger("RS", "14", "reservation").matches("RS:140")


# ---------------------------------------------------------------------------------------------- sensor


def test_a_cv_event_requests_exactly_one_run_for_its_contract(store: Store) -> None:
    event = stored(store, "CV:7", 801)
    others = [stored(store, "AS:1", 5), stored(store, "CL:0", 9)]
    with DagsterInstance.ephemeral() as instance:
        (request,) = tick(store, demo(), instance)
        assert request.partition_key == "demo" and request.tags["ponte/trigger"] == "webhook"
        config = config_of(request)
        assert config["contracts"] == ["801"] and config["reservations"] == []
        assert (config["all_ready"], config["ready_only"]) == (False, True)
        token = config["inbox_claim"]
        assert token.startswith(CLAIM_PREFIX) and request.run_key == f"dispatch-hooks-demo-{token.removeprefix(CLAIM_PREFIX)}"

        assert tick(store, demo(), instance) == []  # the event is leased to that run: never requested twice
    row = inbox(store, event)
    assert (row.status, row.claimed_by, row.attempts) == ("processing", token, 1)
    assert [inbox(store, i).status for i in others] == ["new", "new"]  # not dispatch's events


def test_unrelated_events_request_nothing(store: Store) -> None:
    ids = [stored(store, "AS:1", 5), stored(store, "CL:0", 9), stored(store, "RS:11", 3001),
           stored(store, "CV:7", 801, connector="sienge")]
    with DagsterInstance.ephemeral() as instance:
        assert tick(store, demo(), instance) == []
    assert {inbox(store, i).status for i in ids} == {"new"}


def test_a_tenant_with_a_dispatch_run_going_gets_no_second_one_until_it_ends(store: Store) -> None:
    event = stored(store, "CV:7", 801)
    with DagsterInstance.ephemeral() as instance:
        going = DagsterRun(job_name="envelope_dispatch", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED,
                           tags={"dagster/partition": "demo"})
        instance.add_run(going)
        assert tick(store, demo(), instance) == []
        assert inbox(store, event).status == "new"  # not leased: it waits for that run to end, not lost
        instance.report_run_failed(going)
        (request,) = tick(store, demo(), instance)
        assert config_of(request)["contracts"] == ["801"]


def test_reservation_triggers_and_one_contract_named_twice(store: Store) -> None:
    tenant = demo(dispatch_events="CV:*, RS:14")
    leased = [stored(store, "RS:14", 3001), stored(store, "CV:2", 801), stored(store, "CV:3", 801)]
    other = stored(store, "RS:15", 3002)
    with DagsterInstance.ephemeral() as instance:
        (request,) = tick(store, tenant, instance)
    assert (config_of(request)["contracts"], config_of(request)["reservations"]) == (["801"], ["3001"])
    assert {inbox(store, i).status for i in leased} == {"processing"} and inbox(store, other).status == "new"


def test_a_delivery_naming_nothing_is_given_up_not_retried(store: Store) -> None:
    empty = stored(store, "CV:7", None, body=b'{"idwebhook": 1, "funcionalidade": "CV", "gatilho": 7}')
    with DagsterInstance.ephemeral() as instance:
        assert tick(store, demo(), instance) == []
    row = inbox(store, empty)
    assert row.status == "dead" and "names no contract" in (row.last_error or "")


@op
def _noop() -> None:
    pass


@job
def _waiting() -> None:
    _noop()


def _expire(store: Store, event_id: int) -> None:
    with store.session() as session:
        session.execute(update(InboxEvent).where(InboxEvent.id == event_id)
                        .values(claimed_until=utcnow() - timedelta(seconds=1)))


def test_a_lease_that_ran_out_is_kept_for_a_waiting_run_and_handed_on_otherwise(store: Store) -> None:
    event = stored(store, "CV:7", 801)
    with DagsterInstance.ephemeral() as instance:
        (first,) = tick(store, demo(), instance)
        run = instance.create_run_for_job(_waiting, status=DagsterRunStatus.NOT_STARTED,
                                          tags={"dagster/run_key": first.run_key})
        _expire(store, event)
        assert tick(store, demo(), instance) == []  # its run has not started yet: the lease is renewed
        row = inbox(store, event)
        assert row.claimed_by == config_of(first)["inbox_claim"] and row.claimed_until > utcnow()

        instance.report_run_failed(run)  # the run died without marking the event
        _expire(store, event)
        (second,) = tick(store, demo(), instance)
        assert second.run_key != first.run_key and config_of(second)["contracts"] == ["801"]
        assert inbox(store, event).attempts == 2


def test_an_event_is_given_up_after_the_last_attempt(store: Store) -> None:
    event = stored(store, "CV:7", 801)
    with store.session() as session:
        session.execute(update(InboxEvent).where(InboxEvent.id == event)
                        .values(status="failed", attempts=MAX_ATTEMPTS, last_error="CV CRM answered 503"))
    with DagsterInstance.ephemeral() as instance:
        assert tick(store, demo(), instance) == []
    row = inbox(store, event)
    assert row.status == "dead" and "CV CRM answered 503" in (row.last_error or "")


# ------------------------------------------------------------------------------------------------- run


class FakeDispatch:
    def __init__(self, results: dict[str, str] | None = None, error: Exception | None = None) -> None:
        self.results, self.error = results or {}, error
        self.requests: list[DispatchRequest] = []

    def __call__(self, store: Store, tenant: TenantConfig, request: DispatchRequest, connectors: Any,
                 progress: Any = None) -> DispatchReport:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        report = DispatchReport(tenant=tenant.id, plan=False)
        for contract in request.contracts:
            result = self.results.get(contract, "sent")
            report.outcomes.append(ContractOutcome(contract, result, reason="DocuSign answered 503"
                                                   if result == "deferred" else None))
            progress(contract, result)
        return report


def test_the_run_marks_its_events_and_offers_deferred_ones_again(store: Store) -> None:
    sent, deferred = stored(store, "CV:7", 801), stored(store, "CV:7", 802)
    handover = hand_over(store, "demo", tenant_triggers(demo()))
    assert handover is not None and handover.contracts == ["801", "802"]
    fake = FakeDispatch({"802": "deferred"})
    outcome = dispatch_claimed(store, demo(), handover.token, DispatchRequest(run_id="r1"), dispatch=fake)
    (request,) = fake.requests
    assert (request.contracts, request.all_ready, request.ready_only, request.run_id) == (["801", "802"], False, True, "r1")
    assert (outcome.events, outcome.done, outcome.retry) == (2, 1, 1)
    assert inbox(store, sent).status == "done" and inbox(store, sent).processed_at is not None
    row = inbox(store, deferred)
    assert row.status == "failed" and row.available_at > utcnow() and "503" in (row.last_error or "")

    with store.session() as session:
        session.execute(update(InboxEvent).where(InboxEvent.id == deferred).values(available_at=utcnow()))
    again = hand_over(store, "demo", tenant_triggers(demo()))
    assert again is not None and again.contracts == ["802"]


def test_a_failed_run_keeps_its_events_for_a_retry_and_a_late_run_does_nothing(store: Store) -> None:
    event = stored(store, "CV:7", 801)
    handover = hand_over(store, "demo", tenant_triggers(demo()))
    assert handover is not None
    with pytest.raises(RuntimeError, match="CRM unreachable"):
        dispatch_claimed(store, demo(), handover.token, DispatchRequest(), dispatch=FakeDispatch(error=RuntimeError("CRM unreachable")))
    row = inbox(store, event)
    assert (row.status, row.claimed_by) == ("processing", handover.token) and "CRM unreachable" in (row.last_error or "")
    assert row.claimed_until <= utcnow() + timedelta(seconds=FAILURE_RETRY_SECONDS)

    late = FakeDispatch()
    nothing = dispatch_claimed(store, demo(), f"{CLAIM_PREFIX}0000000000000000", DispatchRequest(), dispatch=late)
    assert nothing.superseded and late.requests == []  # never "every ready contract"


# ------------------------------------------------------------------------------------------ end to end


def test_gateway_to_sensor_to_run_sends_the_ready_contract_once(sb, store: Store) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True)
    verify_manager(store, tenant)
    ready = seed_sale(sb, tenant)
    draft = seed_sale(sb, tenant, validado="N")  # the CRM says not validated: the webhook is only a hint
    with serve_asgi(create_app(store, {"demo": tenant})) as gateway:
        for sale in (ready, draft):
            answer = httpx.post(f"{gateway}/webhooks/demo/cvcrm/events/{CV_SECRET}", content=cv_body("CV:7", sale.contract_id))
            assert answer.status_code == 200
    resources = {"store": StoreResource(database_url=store.url), "tenants": FixedTenants(tenant_json=tenant.model_dump_json()),
                 "connectors": ConnectorsResource()}
    at_provider = len(sb.state.docusign.envelopes)
    with DagsterInstance.ephemeral() as instance:
        (request,) = tick(store, tenant, instance)
        assert config_of(request)["contracts"] == [str(ready.contract_id), str(draft.contract_id)]
        result = materialize([signing_envelopes], partition_key="demo", resources=resources,
                             run_config=request.run_config, instance=instance)
        assert result.success
        meta = {k: v.value for k, v in result.asset_materializations_for_node("signing_envelopes")[0].metadata.items()}
        assert (meta["sent"], meta["skipped"], meta["inbox_events"], meta["inbox_done"]) == (1, 1, 2, 2)
        assert tick(store, tenant, instance) == []
        with store.session() as session:
            assert set(session.scalars(select(InboxEvent.status).where(InboxEvent.connector == "cvcrm"))) == {"done"}

        late = materialize([signing_envelopes], partition_key="demo", resources=resources,
                           run_config=request.run_config, instance=instance)  # the same request launched twice
        meta = {k: v.value for k, v in late.asset_materializations_for_node("signing_envelopes")[0].metadata.items()}
        assert meta["superseded"] is True and meta["inbox_events"] == 0
    assert len(sb.state.docusign.envelopes) == at_provider + 1
