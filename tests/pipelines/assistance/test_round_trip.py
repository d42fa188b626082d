"""End to end over the sandbox and the real gateway: CRM -> Sienge create, Sienge hooks -> CRM moves."""

from __future__ import annotations

import base64

from sqlalchemy import func, select

from pipelines.store import deadletters
from pipelines.store.models import AuditEntry, IdMap, InboxEvent, OutboxItem

PHOTO = b"\xff\xd8\xff\xe0 foto da infiltracao \xff\xd9"
PLAN = b"%PDF-1.4 laudo tecnico"


def test_new_request_reaches_sienge_with_items_and_attachments_and_the_crm_shows_sienges_id(env_factory) -> None:
    env = env_factory()
    crm_id = env.open_request(1, items=[
        {"iditem": 11, "descricao": "Infiltração no banheiro", "prazo_minimo_dias": 10},
        {"iditem": 12, "descricao": "Trinca na parede da sala", "prazo_minimo_dias": 15},
    ], files={"foto.jpg": PHOTO, "laudo.pdf": PLAN})
    env.settle("cvcrm", 1)

    report = env.run()
    assert report.events == 1 and [c for c, _ in report.created] == [crm_id]
    [created] = env.sb.state.sienge.assistances.values()
    assert created["externalId"] == crm_id and created["status"] == "OPEN"
    assert [(i["description"], i["minimumCompletionDays"]) for i in created["items"]] == [
        ("Infiltração no banheiro", 10), ("Trinca na parede da sala", 15)]
    assert [(a["name"], a["size"]) for a in created["attachments"]] == [("foto.jpg", len(PHOTO)),
                                                                        ("laudo.pdf", len(PLAN))]
    assert env.crm(crm_id)["idassistencia_erp"] == str(created["id"])

    # the mapped customer, unit and development are Sienge's own ids
    contract = [c for c in env.sb.seed_data.contracts if c["situation"] == "2"][1]  # buyer 1
    assert created["customerId"] == contract["salesContractCustomers"][0]["id"]
    assert created["unitId"] == contract["salesContractUnits"][0]["id"]

    # exactly once: outbox done, id map, audit; running again (or replaying the webhook) sends nothing
    with env.store.session() as session:
        [item] = session.scalars(select(OutboxItem)).all()
        assert (item.idempotency_key, item.status, item.external_id) == (
            f"demo:assistance:{crm_id}", "done", str(created["id"]))
        assert item.payload["attachments"][0]["contentBase64"] == len(base64.b64encode(PHOTO).decode())
        row = session.scalars(select(IdMap).where(IdMap.entity == "assistance")).one()
        assert (row.source_id, row.target_id) == (crm_id, str(created["id"]))
        actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.flow == "assistance")))
        assert {"created", "linked"} <= actions
    again = env.run(poll=True, crm_ids=[crm_id])
    assert again.created == [] and len(env.sb.state.sienge.assistances) == 1


def test_sienge_events_move_the_crm_in_any_order_with_duplicates(env_factory) -> None:
    env = env_factory(faults={"sienge": {"webhook_duplicate_rate": 0.5, "webhook_reorder_window_ms": 300,
                                         "seed": 3}})
    ids = [env.open_request(n) for n in range(4)]
    env.settle("cvcrm", 4)
    env.run()
    sienge = {a["externalId"]: a["id"] for a in env.sb.state.sienge.assistances.values()}
    assert sorted(sienge) == sorted(ids)

    moves = {
        ids[0]: ["in-progress"],
        ids[1]: ["in-progress", "finish"],
        ids[2]: ["cancel"],
        ids[3]: ["in-progress", "finish", "delete"],
    }
    fired = 0
    for crm_id, actions in moves.items():
        for action in actions:
            env.sb.sienge.move_assistance(sienge[crm_id], action)
            fired += 1
    env.settle("sienge", fired)
    with env.store.session() as session:
        stored = session.scalar(select(func.count()).select_from(InboxEvent).where(InboxEvent.connector == "sienge"))
        dupes = session.scalar(select(func.sum(InboxEvent.duplicates)).where(InboxEvent.connector == "sienge"))
    assert stored == fired and (dupes or 0) >= 1  # the gateway collapsed the duplicate deliveries

    report = env.run()
    assert report.failed == []
    assert env.crm(ids[0])["idsituacao"] == 2                       # in progress
    assert env.crm(ids[1])["idsituacao"] == 3                       # finished (final situation)
    assert env.crm(ids[1])["data_conclusao"]
    assert env.crm(ids[2])["idsituacao"] == 4                       # cancelled
    assert env.crm(ids[3])["ativo"] == "N"                          # deleted: deactivated
    assert all(env.crm(i)["idassistencia_erp"] == str(sienge[i]) for i in ids)

    # a late "in progress" after "finished" (and a repeated delivery) changes nothing
    prefix = "TECHNICAL_ASSISTANCE"
    env.sb.sienge.emit(f"{prefix}_IN_PROGRESS", {"technicalAssistanceId": sienge[ids[1]]})
    env.sb.sienge.emit(f"{prefix}_CANCELED", {"technicalAssistanceId": sienge[ids[2]]})
    env.settle("sienge", fired + 2)
    late = env.run()
    assert late.events == 2 and late.updated == []
    assert env.crm(ids[1])["idsituacao"] == 3 and env.crm(ids[2])["idsituacao"] == 4

    # and reconciliation agrees: nothing drifted
    assert env.run(events=False, reconcile=True).drift.total == 0


def test_situations_and_event_names_are_tenant_configuration(env_factory) -> None:
    """Another tenant's workflow: 'finished' is its situation 3 but 'in progress' is unmapped (2 stays)."""
    env = env_factory(event_prefix="ASSISTENCIA_TECNICA", situation_in_progress=None,
                      situation_cancelled=4, situation_finished=3, situation_opened=1)
    crm_id = env.open_request(0)
    env.settle("cvcrm", 1)
    env.run()
    [sienge_id] = list(env.sb.state.sienge.assistances)
    # the hook was registered with this tenant's event names; Sienge sends those
    hooks = list(env.sienge.read("hooks"))
    assert "ASSISTENCIA_TECNICA_FINISHED" in hooks[0]["events"]
    env.sb.sienge.move_assistance(sienge_id, "finish")  # the sandbox fires its default name: not subscribed
    env.sb.sienge.emit("ASSISTENCIA_TECNICA_FINISHED", {"technicalAssistanceId": sienge_id})
    env.settle("sienge", 1)
    report = env.run()
    assert report.events == 1 and report.updated == [(crm_id, "open", "finished")]
    assert env.crm(crm_id)["idsituacao"] == 3


def test_unconfigured_situation_is_a_dead_letter_naming_the_option(env_factory) -> None:
    env = env_factory(situation_in_progress=None)
    crm_id = env.open_request(0)
    env.settle("cvcrm", 1)
    env.run()
    [sienge_id] = list(env.sb.state.sienge.assistances)
    env.sb.sienge.move_assistance(sienge_id, "in-progress")
    env.settle("sienge", 1)
    report = env.run()
    [(key, reason)] = report.failed
    assert key == f"technical_assistance:{sienge_id}" and "situation_in_progress" in reason
    [letter] = deadletters.list_open(env.store, "demo", "assistance")
    assert letter.error_kind == "configuration" and env.crm(crm_id)["idsituacao"] == 1
