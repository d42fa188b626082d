"""Reconciliation with lost webhooks, and the minimum-days check that stops a request before sending."""

from __future__ import annotations

from sqlalchemy import func, select

from pipelines.replay import replay
from pipelines.store import deadletters
from pipelines.store.models import OutboxItem


def _lost_since(env, system: str, before: int) -> bool:
    """Whether the event just fired was lost (the sandbox records the decision synchronously)."""
    return any(a.outcome == "lost" for a in env.sb.dispatcher.records(system)[before:])


def test_thirty_percent_lost_one_reconciliation_agrees_and_reports_exactly_the_losses(env_factory) -> None:
    env = env_factory(faults={"cvcrm": {"webhook_loss_rate": 0.3, "seed": 11},
                              "sienge": {"webhook_loss_rate": 0.3, "seed": 5}})
    lost_crm: set[str] = set()
    ids = []
    for n in range(16):
        before = len(env.sb.dispatcher.records("cvcrm"))
        crm_id = env.open_request(n)
        ids.append(crm_id)
        if _lost_since(env, "cvcrm", before):
            lost_crm.add(crm_id)
    env.settle("cvcrm", len(ids))
    env.run()
    sienge = {a["externalId"]: a["id"] for a in env.sb.state.sienge.assistances.values()}
    assert set(sienge) == set(ids) - lost_crm and 0 < len(lost_crm) < len(ids)

    actions = ["in-progress", "finish", "cancel", "delete"]
    lost_status: set[str] = set()
    moved = 0
    for n, crm_id in enumerate(sorted(sienge, key=int)):
        before = len(env.sb.dispatcher.records("sienge"))
        env.sb.sienge.move_assistance(sienge[crm_id], actions[n % 4])
        moved += 1
        if _lost_since(env, "sienge", before):
            lost_status.add(crm_id)
    env.settle("sienge", moved)
    env.run()
    assert lost_status, "the dice lost no Sienge hook: pick another seed"

    report = env.run(events=False, reconcile=True)
    drift = report.drift
    assert set(drift.missing_in_sienge) == lost_crm
    assert set(drift.status) == lost_status
    assert drift.unlinked_in_crm == [] and drift.orphaned_in_sienge == [] and drift.unrepaired == {}
    assert drift.total == len(lost_crm) + len(lost_status)

    # both sides agree now
    again = env.run(events=False, reconcile=True)
    assert again.drift.total == 0 and again.created == [] and again.updated == []
    by_external = {a["externalId"]: a for a in env.sb.state.sienge.assistances.values()}
    assert set(by_external) == set(ids)
    expected_situation = {"OPEN": 1, "IN_PROGRESS": 2, "FINISHED": 3, "CANCELED": 4}
    for crm_id in ids:
        crm, erp = env.crm(crm_id), by_external[crm_id]
        assert crm["idassistencia_erp"] == str(erp["id"])
        if erp["status"] == "DELETED":
            assert crm["ativo"] == "N"
        else:
            assert crm["idsituacao"] == expected_situation[erp["status"]]


def test_reconcile_plan_reports_without_writing(env_factory) -> None:
    env = env_factory(faults={"cvcrm": {"webhook_loss_rate": 1.0}})
    crm_id = env.open_request(0)
    report = env.run(events=False, reconcile=True, plan=True)
    assert report.drift.missing_in_sienge == [crm_id] and report.created == [(crm_id, None)]
    assert env.sb.state.sienge.assistances == {} and env.crm(crm_id)["idassistencia_erp"] is None


def test_item_without_minimum_days_is_stopped_with_the_documented_error_and_nothing_is_sent(
    env_factory, monkeypatch
) -> None:
    env = env_factory()
    crm_id = env.open_request(0, items=[
        {"iditem": 51, "descricao": "Infiltração no banheiro", "prazo_minimo_dias": 10},
        {"iditem": 52, "descricao": "Porta empenada"},
    ])
    env.settle("cvcrm", 1)
    calls_before = env.sienge.api_calls
    report = env.run()
    [(key, reason)] = report.failed
    assert key == f"assistencia:{crm_id}"
    assert "maintenance item 52 ('Porta empenada')" in reason
    assert "no minimum completion time in days" in reason and "nothing was sent" in reason
    assert "Prazo mínimo (dias)" in reason  # where to set it
    assert env.sb.state.sienge.assistances == {}
    assert env.sienge.api_calls - calls_before <= 1  # at most a customer lookup: no create
    with env.store.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxItem)) == 0
    [letter] = deadletters.list_open(env.store, "demo", "assistance")
    assert letter.error_kind == "data" and letter.field == "itens[iditem=52].prazo_minimo_dias"
    assert letter.payload["idassistencia"] == int(crm_id)

    # the CRM user fills the days in; the replay sends it and closes the dead letter
    with env.sb.cvcrm.lock:
        env.sb.state.cvcrm.assistencias[int(crm_id)]["itens"][1]["prazo_minimo_dias"] = 3
    monkeypatch.setattr("pipelines.assistance.replay.load_tenant", lambda _tenant_id: env.tenant)
    outcome = replay(env.store, letter)  # what `ponte deadletter replay` runs
    assert outcome.resolved
    [created] = env.sb.state.sienge.assistances.values()
    assert [i["minimumCompletionDays"] for i in created["items"]] == [10, 3]
