"""Rule-based dispatch triggers (``options.dispatch_triggers``): the schema, ``ponte validate``, the rule
matching (unit and property tests), and CV CRM sandbox webhooks through the gateway, the sensor and the
run: a contract of a flagged type is sent, one of another type is skipped with its reason, a reservation
entering a configured situation sends its ready contracts.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance, RunRequest, build_sensor_context, materialize
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select

from orchestration.cli.validate import run_checks
from orchestration.definitions import defs
from orchestration.dispatch.assets import signing_envelopes
from orchestration.dispatch.defs import DEFS
from orchestration.dispatch.sensors import SENSOR
from orchestration.gateway.app import create_app
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from pipelines.dispatch.webhooks import (
    OPTION,
    Rule,
    Trigger,
    decide,
    evaluate,
    hand_over,
    matching,
    rules_of,
    tenant_rules,
    tenant_triggers,
    trigger_problems,
)
from pipelines.documents.render import text_to_pdf
from pipelines.store.db import Store
from pipelines.store.inbox import store_event
from pipelines.store.models import Envelope, InboxEvent
from ponte.errors import ConfigurationError
from schemas.tenant import DispatchTrigger, TenantConfig, load_tenant
from tests.pipelines.dispatch.support import _cvcrm, seed_sale, verify_manager
from tests.support.servers import serve_asgi
from tests.support.tenants import sandbox_tenant

REPO = Path(__file__).resolve().parents[3]
CV_SECRET = "cv-url-secret-demo-0123456789"  # tenants/demo.yaml's sandbox default
SALE = "Contrato de compra e venda"  # the sandbox's contract type 1 (its default)
TERMO = "Termo de ciência"  # type 2


def demo_data(**options: Any) -> dict[str, Any]:
    data = yaml.safe_load((REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8"))
    data.setdefault("options", {}).update(options)
    return data


def demo(**options: Any) -> TenantConfig:
    return TenantConfig.model_validate(demo_data(**options))


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / f"{data['id']}.yaml"
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    path.write_text(text.replace("'on':", "on:"), encoding="utf-8")  # as people write it (YAML 1.1: true)
    return path


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


# ------------------------------------------------------------------------------------------------ schema


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"on": "contract_situation"}, "needs situations"),
        ({"on": "reservation_situation", "situations": ["14"]}, "valid integer"),
        ({"on": "reservation_situation", "situations": [14.5]}, "valid integer"),
        ({"on": "reservation_situation", "situations": [True]}, "valid integer"),
        ({"on": "reservation_situation", "situations": [14, 14]}, "twice"),
        ({"on": "contract_saved", "situations": [3]}, "only for contract_situation"),
        ({"on": "webhook", "event": "RP:5"}, "needs event"),
        ({"on": "webhook", "event": "AS:1", "names": "contract"}, "assistance flow"),
        ({"on": "webhook", "event": "RP", "names": "contract"}, "should match pattern"),
        ({"on": "contract_saved", "event": "CV:1"}, "only for on: webhook"),
        ({"on": "contract_saved", "contract_types": [SALE, " contrato de COMPRA e venda"]}, "repeated"),
        ({"on": "contract_saved", "contract_types": [""]}, "at least 1 character"),
        ({"on": "order_created"}, "Input should be"),
    ],
)
def test_a_malformed_rule_is_refused(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DispatchTrigger.model_validate(rule)


def test_a_bad_rule_in_a_tenant_file_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, demo_data(dispatch_triggers=[{"on": "contract_saved"},
                                                        {"on": "reservation_situation", "situations": ["x"]}]))
    with pytest.raises(ConfigurationError) as info:
        load_tenant(path)
    text = str(info.value)
    assert f"{path}:" in text and "options.dispatch_triggers.1.situations.0" in text


def test_rules_say_which_event_types_they_listen_to() -> None:
    rules = rules_of([
        DispatchTrigger(on="contract_saved", contract_types=[SALE, 3]),
        DispatchTrigger(on="contract_situation", situations=[31, 32], when_validated=False),
        DispatchTrigger(on="reservation_situation", situations=[11]),
        DispatchTrigger(on="webhook", event="RP:5", names="reservation"),
    ])
    assert [(r.trigger, r.where) for r in rules] == [
        (Trigger("CV", None, "contract"), f"{OPTION}.0"),
        (Trigger("CV", "31", "contract"), f"{OPTION}.1"),
        (Trigger("CV", "32", "contract"), f"{OPTION}.1"),
        (Trigger("RS", "11", "reservation"), f"{OPTION}.2"),
        (Trigger("RP", "5", "reservation"), f"{OPTION}.3"),
    ]
    assert rules[0].contract_types == {"contrato de compra e venda", "#3"} and not rules[1].when_validated
    assert [r.where for r in matching(rules, "CV:31")] == [f"{OPTION}.0", f"{OPTION}.1"]
    assert matching(rules, "RS:12") == [] and matching(rules, "AS:1") == []


def test_without_rules_dispatch_events_works_as_before_and_with_rules_it_is_not_read() -> None:
    legacy = demo()
    legacy.connectors["cvcrm"].values["dispatch_events"] = "CV:*, RS:14"
    assert tenant_triggers(legacy) == [Trigger("CV", None, "contract"), Trigger("RS", "14", "reservation")]
    assert tenant_rules(legacy) == [Rule(Trigger("CV", None, "contract")), Rule(Trigger("RS", "14", "reservation"))]
    ruled = demo(dispatch_triggers=[{"on": "reservation_situation", "situations": [11, 12]}])
    assert tenant_triggers(ruled) == [Trigger("RS", "11", "reservation"), Trigger("RS", "12", "reservation")]
    assert tenant_triggers(demo(dispatch_triggers=[])) == []  # declared empty: the poll alone


def test_rules_and_dispatch_events_together_are_refused() -> None:
    both = demo(dispatch_triggers=[{"on": "contract_saved"}])
    both.connectors["cvcrm"].values["dispatch_events"] = "CV:*"
    with pytest.raises(ConfigurationError, match="keep one") as info:
        tenant_triggers(both)
    assert info.value.field == OPTION


# -------------------------------------------------------------------------------------------- validate


def _checks(path: Path) -> str:
    (check,) = run_checks([path])
    return check.error or ""


def test_validate_passes_good_rules(tmp_path: Path) -> None:
    path = write(tmp_path, demo_data(dispatch_triggers=[{"on": "contract_saved", "contract_types": [SALE]},
                                                        {"on": "reservation_situation", "situations": [11]}]))
    assert trigger_problems(load_tenant(path)) == []
    assert "dispatch_triggers" not in _checks(path)


def test_validate_refuses_rules_whose_webhook_the_connector_cannot_verify(tmp_path: Path) -> None:
    data = demo_data(dispatch_triggers=[{"on": "contract_saved"}])
    del data["connectors"]["cvcrm"]["credentials"]["webhook_secret"]
    path = write(tmp_path, data)
    error = _checks(path)
    expected = f"{path}:{line_of(path, 'dispatch_triggers')}: tenant field {OPTION}:"
    assert expected in error and "connectors.cvcrm.credentials.webhook_secret" in error, error


def test_validate_refuses_both_declarations_and_conflicting_rules(tmp_path: Path) -> None:
    data = demo_data(dispatch_triggers=[{"on": "contract_saved"}])
    data["connectors"]["cvcrm"]["values"]["dispatch_events"] = "CV:*"
    path = write(tmp_path, data)
    assert f"{path}:{line_of(path, 'dispatch_triggers')}: tenant field {OPTION}: both" in _checks(path)

    conflicting = write(tmp_path, demo_data(dispatch_triggers=[
        {"on": "contract_saved"}, {"on": "webhook", "event": "CV:31", "names": "reservation"}]))
    error = _checks(conflicting)
    assert f"tenant field {OPTION}.1: listens to CV:31 as a reservation id" in error, error
    assert f"{conflicting}:{line_of(conflicting, 'on: webhook')}:" in error


def test_validate_reports_a_bad_dispatch_events_value(tmp_path: Path) -> None:
    data = demo_data()
    data["connectors"]["cvcrm"]["values"]["dispatch_events"] = "AS:1"
    path = write(tmp_path, data)
    error = _checks(path)
    assert f"{path}:{line_of(path, 'dispatch_events')}: tenant field connectors.cvcrm.values.dispatch_events" in error


# ----------------------------------------------------------------------------------------- rule matching


def contract(tipo: str | None = SALE, idtipo: int | None = 1, validado: str = "S", assinado: str = "N") -> dict[str, Any]:
    return {"idreservacontrato": 801, "tipo": tipo, "idtipo": idtipo, "validado": validado, "assinado": assinado}


def rule(*types: str | int, when_validated: bool = True) -> Rule:
    (compiled,) = rules_of([DispatchTrigger(on="contract_saved", contract_types=list(types),
                                            when_validated=when_validated)])
    return compiled


def test_contract_types_match_names_whatever_the_case_and_ids() -> None:
    assert decide([rule("  contrato de COMPRA  e venda")], contract()).dispatch
    assert decide([rule(1)], contract()).dispatch and decide([rule("1")], contract()).dispatch
    assert decide([rule()], contract(tipo=None, idtipo=None)).dispatch  # no filter: every type
    skip = decide([rule(TERMO, 2)], contract())
    assert (skip.kind, skip.reason) == ("type", f"contract type {SALE!r} (#1) is not a trigger")
    assert decide([rule(2)], contract(tipo=None, idtipo=None)).reason == \
        "contract type (none given by the CRM) is not a trigger"


def test_validation_and_signature_are_read_from_the_crm_record() -> None:
    assert decide([rule()], contract(validado="N")).kind == "not_ready"
    assert decide([rule(when_validated=False)], contract(validado="N")).dispatch
    assert decide([rule(when_validated=False)], contract(assinado="S")).kind == "signed"
    # a rule that accepts the type but wants validation, and one that does not care but rejects the type
    assert decide([rule(SALE), rule(TERMO, when_validated=False)], contract(validado="N")).kind == "not_ready"


NAMES = [SALE, TERMO, "Aditivo contratual"]
contracts = st.builds(
    contract,
    tipo=st.one_of(st.none(), st.sampled_from(NAMES).map(lambda n: n.upper()), st.sampled_from(NAMES)),
    idtipo=st.one_of(st.none(), st.integers(1, 4)),
    validado=st.sampled_from(["S", "N", "s", ""]),
    assinado=st.sampled_from(["S", "N", "s", ""]),
)
declared_types = st.lists(st.one_of(st.sampled_from(NAMES), st.integers(1, 4)), max_size=3, unique_by=lambda t: str(t).casefold())
rules = st.builds(lambda types, validated: rule(*types, when_validated=validated), declared_types, st.booleans())


def oracle(rules_: list[Rule], record: dict[str, Any]) -> bool:
    """Send iff unsigned and some rule takes its type (by name, case-insensitive, or id) and, if it asks,
    the CRM shows it validated."""
    if str(record["assinado"]).upper() == "S":
        return False
    name = str(record["tipo"]).casefold() if record["tipo"] else None
    ident = f"#{record['idtipo']}" if record["idtipo"] is not None else None
    return any(
        (not r.contract_types or name in r.contract_types or ident in r.contract_types)
        and (not r.when_validated or str(record["validado"]).upper() == "S")
        for r in rules_
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(rules, max_size=4), contracts)
def test_decide_is_the_rule_semantics(rules_: list[Rule], record: dict[str, Any]) -> None:
    decision = decide(rules_, record)
    assert decision.dispatch == oracle(rules_, record)
    assert decision.dispatch == (decision.reason is None)
    if decision.kind == "type":
        assert "is not a trigger" in (decision.reason or "")
        assert not any(r.type_matches(record) for r in rules_)


@settings(max_examples=200, deadline=None)
@given(st.lists(rules, min_size=1, max_size=4), rules, contracts, st.randoms(use_true_random=False))
def test_more_rules_never_send_less_and_order_does_not_matter(rules_: list[Rule], extra: Rule,
                                                              record: dict[str, Any], rnd: Any) -> None:
    decision = decide(rules_, record)
    shuffled = list(rules_)
    rnd.shuffle(shuffled)
    assert decide(shuffled, record) == decision
    if decision.dispatch:
        assert decide([*rules_, extra], record).dispatch


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 60), min_size=1, max_size=5), st.sampled_from(["CV", "RS", "AS", "RP"]),
       st.integers(0, 60))
def test_situation_rules_match_exactly_their_situations(situations: set[int], func: str, gatilho: int) -> None:
    for on, own in (("contract_situation", "CV"), ("reservation_situation", "RS")):
        compiled = rules_of([DispatchTrigger(on=on, situations=sorted(situations))])
        assert bool(matching(compiled, f"{func}:{gatilho}")) == (func == own and gatilho in situations)
    saved = rules_of([DispatchTrigger(on="contract_saved")])
    assert bool(matching(saved, f"{func}:{gatilho}")) == (func == "CV")


# ----------------------------------------------------------------------------------- evaluate (no CRM)


class FakeCV:
    """Just enough of the CV CRM connector for :func:`evaluate`: reservations, their contracts, people."""

    def __init__(self, reservas: dict[str, list[dict[str, Any]]]) -> None:
        self.reservas = reservas

    def read(self, stream: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if stream == "reservas":
            return [{"idreserva": rid} for rid in self.reservas]
        if stream == "contratos":
            return self.reservas[str((params or {})["idreserva"])]
        return []

    def read_one(self, stream: str, rid: str) -> dict[str, Any]:
        from ponte.errors import NotFoundError

        if str(rid) not in self.reservas:
            raise NotFoundError(f"no reservation {rid}")
        return {"idreserva": str(rid)}


def test_a_reservation_sends_its_ready_contracts_of_flagged_types_and_notes_the_others() -> None:
    cv = FakeCV({"3001": [
        {"idreservacontrato": 801, "tipo": SALE, "validado": "S", "assinado": "N", "pessoas": []},
        {"idreservacontrato": 802, "tipo": TERMO, "validado": "S", "assinado": "N", "pessoas": []},
        {"idreservacontrato": 803, "tipo": SALE, "validado": "N", "assinado": "N", "pessoas": []},
        {"idreservacontrato": 804, "tipo": SALE, "validado": "S", "assinado": "S", "pessoas": []},
    ]})
    flagged = [rule(SALE)]
    result = evaluate(cv, [("reservation", "3001", flagged), ("reservation", "3999", flagged)])
    assert [r["idreservacontrato"] for r in result.records] == [801]
    assert [(o.contract_id, o.result, o.reason) for o in result.skipped] == [
        ("802", "skipped", f"contract type {TERMO!r} is not a trigger")]  # 803/804: not ready, as always
    assert result.notes[("reservation", "3001")] == [f"skipped: contract type {TERMO!r} is not a trigger (contract 802)"]
    assert result.notes[("reservation", "3999")][0].startswith("reservation not read")

    named = evaluate(cv, [("contract", "802", flagged), ("contract", "3001:803", flagged)])
    assert named.records == [] and [o.reason for o in named.skipped] == [
        f"contract type {TERMO!r} is not a trigger", "not ready to sign in the CRM (not validated)"]
    # named twice, by a rule that rejects its type and one that takes it: sent once
    twice = evaluate(cv, [("contract", "802", flagged), ("reservation", "3001", [rule(TERMO)])])
    assert [r["idreservacontrato"] for r in twice.records] == [802] and twice.skipped[0].contract_id == "801"


# ------------------------------------------------------------------------------------ through the sandbox


class FixedTenants(TenantsResource):
    tenant_json: str

    def load(self, tenant_id: str) -> TenantConfig:
        return TenantConfig.model_validate_json(self.tenant_json)

    def all(self) -> list[TenantConfig]:
        return [self.load("")]


def tick(store: Store, tenant: TenantConfig, instance: DagsterInstance) -> list[RunRequest]:
    sensor = next(s for s in DEFS.sensors if s.name == SENSOR)
    context = build_sensor_context(
        instance=instance,
        resources={"store": StoreResource(database_url=store.url),
                   "tenants": FixedTenants(tenant_json=tenant.model_dump_json())},
        repository_def=defs.get_repository_def(),
    )
    return list(sensor.evaluate_tick(context).run_requests or [])


def run(store: Store, tenant: TenantConfig, request: RunRequest, instance: DagsterInstance) -> dict[str, Any]:
    resources = {"store": StoreResource(database_url=store.url), "connectors": ConnectorsResource(),
                 "tenants": FixedTenants(tenant_json=tenant.model_dump_json())}
    result = materialize([signing_envelopes], partition_key=tenant.id, resources=resources,
                         run_config=request.run_config, instance=instance)
    assert result.success
    return {k: v.value for k, v in result.asset_materializations_for_node("signing_envelopes")[0].metadata.items()}


def inbox(store: Store) -> dict[str, InboxEvent]:
    """The tenant's CV CRM inbox rows by their delivery's ``id`` (the last row wins)."""
    with store.session() as session:
        rows = session.scalars(select(InboxEvent).where(InboxEvent.connector == "cvcrm").order_by(InboxEvent.id))
        return {str(json.loads(row.body)["id"]): row for row in rows}


def sent_contracts(store: Store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(select(Envelope.contract_id)))


def subscribe(sb: Any, tenant: TenantConfig, gateway: str, funcionalidade: str) -> None:
    """Register Ponte's CV CRM webhook at the sandbox CRM (gatilho 0: every situation)."""
    _cvcrm(tenant).register_webhook("events", f"{gateway}/webhooks/{tenant.id}/cvcrm/events/{CV_SECRET}",
                                    funcionalidade=funcionalidade, gatilho=0)


def delivered(sb: Any, before: int, count: int) -> None:
    """Wait until ``count`` more CV CRM deliveries reached the gateway."""
    sb.dispatcher.wait_for(
        lambda attempts: sum(1 for a in attempts if a.system == "cvcrm" and a.outcome == "delivered") >= before + count,
        timeout=20)


def delivered_so_far(sb: Any) -> int:
    return sum(1 for a in sb.dispatcher.records("cvcrm") if a.outcome == "delivered")


@pytest.fixture
def unsubscribe(sb: Any) -> Any:
    yield
    sb.state.cvcrm.webhooks.clear()  # the sandbox is shared by the module: no delivery to a closed gateway


def test_a_saved_contract_of_a_flagged_type_is_sent_and_one_of_another_type_is_skipped_with_its_reason(
    sb: Any, store: Store, unsubscribe: None
) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True, options={"dispatch_triggers": [
        {"on": "contract_saved", "contract_types": [SALE]}]})
    assert trigger_problems(tenant) == []
    verify_manager(store, tenant)
    with serve_asgi(create_app(store, {tenant.id: tenant})) as gateway:
        subscribe(sb, tenant, gateway, "CV")
        before = delivered_so_far(sb)
        flagged = seed_sale(sb, tenant)  # the upload saves the contract: CV fires CV:31 (validated)
        other = seed_sale(sb, tenant)
        delivered(sb, before, 2)
        saved = sb.cvcrm.save_contrato(other.contract_id, tipo=TERMO)  # a CRM user changes its type and saves
        assert (saved["tipo"], saved["idtipo"]) == (TERMO, 2)
        delivered(sb, before, 3)
    rows = inbox(store)
    assert {rows[str(flagged.contract_id)].event_type, rows[str(other.contract_id)].event_type} == {"CV:31"}
    with DagsterInstance.ephemeral() as instance:
        (request,) = tick(store, tenant, instance)
        contracts = request.run_config["ops"]["signing_envelopes"]["config"]["contracts"]
        assert {str(flagged.contract_id), str(other.contract_id)} <= set(contracts)
        meta = run(store, tenant, request, instance)
        assert tick(store, tenant, instance) == []
    assert (meta["sent"], meta["skipped"]) == (1, 1), meta
    reason = f"skipped: contract type {TERMO!r} (#2) is not a trigger"
    assert any(reason in note for note in meta["inbox_notes"]), meta["inbox_notes"]
    assert sent_contracts(store) == {str(flagged.contract_id)}
    with store.session() as session:
        events = list(session.scalars(select(InboxEvent).where(InboxEvent.connector == "cvcrm")))
    assert {e.status for e in events} == {"done"}  # none dropped, none left behind
    notes = {json.loads(e.body)["id"]: e.last_error for e in events}
    assert notes[flagged.contract_id] is None and notes[other.contract_id] == reason


def test_a_reservation_entering_a_configured_situation_sends_its_ready_contracts(
    sb: Any, store: Store, unsubscribe: None
) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True, options={"dispatch_triggers": [
        {"on": "reservation_situation", "situations": [11], "contract_types": [1]}]})  # 11: Vendida
    verify_manager(store, tenant)
    with serve_asgi(create_app(store, {tenant.id: tenant})) as gateway:
        subscribe(sb, tenant, gateway, "RS")
        before = delivered_so_far(sb)
        sale = seed_sale(sb, tenant)  # the reservation is created sold: RS:11
        delivered(sb, before, 1)
    pdf, _ = text_to_pdf("Termo", "Termo de ciência do comprador.")
    up = _cvcrm(tenant).call("upload_contrato", {"idreserva_cv": sale.reservation_id, "contratos": [
        {"contrato_base64": base64.b64encode(pdf).decode(), "contrato_nome": "Termo", "assinado": "N",
         "validado": "S"}]})
    termo = int(up.data["contratos"][0]["idreservacontrato"])
    sb.cvcrm.save_contrato(termo, idtipo=2)  # no CV webhook subscribed: nothing delivered for contracts
    assert inbox(store)[str(sale.reservation_id)].event_type == "RS:11"
    with DagsterInstance.ephemeral() as instance:
        (request,) = tick(store, tenant, instance)
        config = request.run_config["ops"]["signing_envelopes"]["config"]
        assert (config["contracts"], config["reservations"]) == ([], [str(sale.reservation_id)])
        meta = run(store, tenant, request, instance)
    assert (meta["sent"], meta["skipped"], meta["inbox_done"]) == (1, 1, 1), meta
    assert sent_contracts(store) == {str(sale.contract_id)}
    row = inbox(store)[str(sale.reservation_id)]
    assert row.status == "done"
    assert row.last_error == f"skipped: contract type {TERMO!r} (#2) is not a trigger (contract {termo})"


def test_events_no_rule_listens_to_are_left_for_other_flows(store: Store) -> None:
    tenant = demo(dispatch_triggers=[{"on": "reservation_situation", "situations": [11]}])
    body = json.dumps({"idwebhook": 1, "funcionalidade": "CV", "gatilho": 31, "id": 801,
                       "enviado_em": "2026-11-23 10:00:00"}).encode()
    store_event(store, tenant="demo", connector="cvcrm", event_id=str(uuid.uuid4()), event_type="CV:31", body=body)
    assert hand_over(store, "demo", tenant_triggers(tenant)) is None
    assert {row.status for row in inbox(store).values()} == {"new"}


def test_the_poll_applies_the_contract_type_flag_too(sb, store: Store) -> None:
    """The poll is the fallback for a missed webhook, so it sends what the rules would: a contract of an
    unflagged type is skipped with its reason, a flagged one is sent."""
    from pipelines.dispatch.flow import DispatchRequest, run_dispatch

    rules = [{"on": "contract_saved", "contract_types": ["Contrato de compra e venda"]}]
    tenant = sandbox_tenant(sb, tenant_id="polltypes", unthrottled=True, options={"dispatch_triggers": rules})
    verify_manager(store, tenant)
    flagged, other = seed_sale(sb, tenant, roles=("titular",)), seed_sale(sb, tenant, roles=("titular",))
    (contract,) = sb.state.cvcrm.contratos[other.reservation_id]
    contract.update(tipo="Termo de ciência", idtipo=2)
    report = run_dispatch(store, tenant, DispatchRequest(
        reservations=[str(flagged.reservation_id), str(other.reservation_id)]))
    results = {o.contract_id: (o.result, o.reason) for o in report.outcomes}
    assert results[str(flagged.contract_id)][0] == "sent"
    assert results[str(other.contract_id)] == (
        "skipped", "contract type 'Termo de ciência' (#2) is not a trigger (options.dispatch_triggers)")
