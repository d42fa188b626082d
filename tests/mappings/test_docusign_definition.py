"""The DocuSign envelope definition: the mapping builds all of it (recipient kinds and signature tabs
included), the connector spec renders it and writes Ponte's idempotency key once, as the custom field its
lookup searches (issue #22, "one place per rule")."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.spec import load_spec, render
from mappings import MappingContext, context_path, load_context, load_mapping
from tests.mappings.conftest import SAMPLES

SAMPLE = SAMPLES / "docusign/envelope_to_definition/tres_signatarios.json"
KINDS = SAMPLES / "docusign/envelope_to_definition/aprovador_e_copia.json"


def _definition() -> tuple[dict[str, Any], str]:
    record = json.loads(SAMPLE.read_text(encoding="utf-8"))
    mapping = load_mapping("docusign/envelope_to_definition")
    definition = mapping.apply(record, load_context(context_path(SAMPLE)))
    return definition, record["idempotency_key"]


def test_the_mapping_names_the_tenant_and_the_contract_but_never_carries_the_key() -> None:
    definition, key = _definition()
    fields = definition["customFields"]["textCustomFields"]
    assert [f["name"] for f in fields] == ["ponte_tenant", "ponte_contract_id"]
    assert all(f["value"] != key for f in fields)


def test_the_spec_writes_the_key_in_one_custom_field_the_one_its_lookup_searches() -> None:
    definition, key = _definition()
    create = load_spec("docusign").actions["create_envelope"]
    context = {"values": {}, "record": definition,
               "meta": {"idempotency_key": key, "lookup_from_date": "2026-01-01"}}
    body = render(create.body.template, context)
    fields = body["customFields"]["textCustomFields"]
    carrying = [f for f in fields if f["value"] == key]
    assert carrying == [{"name": "ponte_key", "value": key, "show": "false", "required": "false"}]
    assert create.find_existing is not None
    assert render(create.find_existing.params, context)["custom_field"] == f"ponte_key={key}"
    # the mapping's own fields follow, as the mapping wrote them
    assert fields[1:] == definition["customFields"]["textCustomFields"]


def test_the_summary_is_the_blurb_cut_to_docusigns_limit_and_absent_without_one() -> None:
    record = json.loads(SAMPLE.read_text(encoding="utf-8"))
    ctx = load_context(context_path(SAMPLE))
    mapping = load_mapping("docusign/envelope_to_definition")
    long = "x" * 10_050
    cut = mapping.apply(record, ctx.with_params(**{**ctx.params, "email_blurb": long}))
    assert cut["emailBlurb"] == long[:10_000]
    assert "emailBlurb" not in mapping.apply(record, ctx.with_params(**{**ctx.params, "email_blurb": None}))


def _body(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    """The request body the connector spec renders from the mapping's definition."""
    definition = load_mapping("docusign/envelope_to_definition").apply(record, ctx)
    context = {"values": {}, "record": definition,
               "meta": {"idempotency_key": record["idempotency_key"], "lookup_from_date": "2026-01-01"}}
    return render(load_spec("docusign").actions["create_envelope"].body.template, context)


def _tenant_ctx(ctx: MappingContext, **options: Any) -> MappingContext:
    assert ctx.tenant is not None
    data = ctx.tenant.model_dump(mode="json")
    for section, values in options.items():
        data["options"][section] = {**data["options"][section], **values}
    return MappingContext(tenant=type(ctx.tenant).model_validate(data), now=ctx.now, params=ctx.params)


def test_a_kind_nobody_is_sent_as_is_left_out_of_the_body() -> None:
    record = json.loads(SAMPLE.read_text(encoding="utf-8"))  # everyone signs
    recipients = _body(record, load_context(context_path(SAMPLE)))["recipients"]
    assert list(recipients) == ["signers"]
    for signer in record["signers"]:
        signer["interaction"] = "approve"
    recipients = _body(record, load_context(context_path(SAMPLE)))["recipients"]
    assert recipients["signers"] == []  # always sent, empty when nobody signs
    assert [r["recipientId"] for r in recipients["certifiedDeliveries"]] == ["1", "2", "3"]
    assert "carbonCopies" not in recipients


def test_approvers_are_embedded_and_checked_like_signers_and_copies_never_are() -> None:
    record = json.loads(KINDS.read_text(encoding="utf-8"))
    ctx = _tenant_ctx(load_context(context_path(KINDS)), notifications={"by": "ponte"},
                      evidence={"docusign_idv_workflow_id": "wf-1"})
    recipients = _body(record, ctx)["recipients"]
    (client,), (spouse,), (witness,) = (recipients[k] for k in ("signers", "certifiedDeliveries", "carbonCopies"))
    assert client["clientUserId"] == "ponte-771-client" and spouse["clientUserId"] == "ponte-771-spouse"
    assert client["identityVerification"] == spouse["identityVerification"] == {"workflowId": "wf-1"}
    assert set(witness) == {"recipientId", "routingOrder", "name", "email", "roleName"}


def test_a_signer_without_positions_keeps_the_anchor_tab() -> None:
    record = json.loads(KINDS.read_text(encoding="utf-8"))
    record["signers"][1]["interaction"] = "sign"  # the spouse signs now, and has a position
    record["signers"][2]["interaction"] = "sign"  # the witness signs, with no position
    signers = _body(record, load_context(context_path(KINDS)))["recipients"]["signers"]
    tabs = {s["roleName"]: s["tabs"]["signHereTabs"] for s in signers}
    assert [t["pageNumber"] for t in tabs["client"]] == ["1", "4"]
    assert tabs["spouse"] == [{"documentId": "1", "pageNumber": "4", "xPosition": "211", "yPosition": "727"}]
    assert tabs["witness"] == [{"anchorString": "/assinatura_witness/", "anchorXOffset": "0",
                                "anchorYOffset": "0", "anchorUnits": "pixels", "anchorIgnoreIfNotPresent": "true"}]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 2000, allow_nan=False), st.floats(0, 2000, allow_nan=False)),
                min_size=1, max_size=3))
def test_positions_are_whole_points_rounded_as_python_rounds(points: list[tuple[float, float]]) -> None:
    record = json.loads(KINDS.read_text(encoding="utf-8"))
    record["positions"] = [{"role": "client", "page": n + 1, "x": x, "y": y, "width": 170, "height": 48}
                           for n, (x, y) in enumerate(points)]
    (client,) = load_mapping("docusign/envelope_to_definition").apply(
        record, load_context(context_path(KINDS)))["recipients"]["signers"]
    assert [(t["xPosition"], t["yPosition"]) for t in client["tabs"]["signHereTabs"]] == [
        (str(round(x)), str(round(y))) for x, y in points]
