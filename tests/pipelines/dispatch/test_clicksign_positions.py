"""Clicksign signature positions: Ponte's placement (bottom band of the chosen pages, right to left, PDF
points from the top-left) sent as Clicksign's positioned requirement, with the connector value
``signature_positions: coordinates``.

The Postman collection has no positioned requirement (UNCONFIRMED): the shape is ``{action: rubricate,
kind, positions: [{page: "1", position: [x, y]}]}``, x and y proportions of the page from its top-left
corner (docs/dispatch.md). The request is held to the collection's requirement shape, the two fields it
does not show (``positions``, ``kind``) being the only difference allowed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from connectors.sandbox.base import EXCHANGE_OBSERVERS, Exchange
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.providers import clicksign_positions
from pipelines.documents.placement import A4, place
from pipelines.store.db import Store
from schemas.canonical.signing import Envelope
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant
from tests.support.vendor_specs import check_request

NO_ID_EVIDENCE = {"selfie": "not_required", "document_photo": "not_required"}
#: what the collection's requirement examples do not show, and only that
BEYOND_COLLECTION = {"data.attributes.positions", "data.attributes.kind"}


@pytest.fixture
def exchanges() -> Iterator[list[Exchange]]:
    seen: list[Exchange] = []
    EXCHANGE_OBSERVERS.append(seen.append)
    try:
        yield seen
    finally:
        EXCHANGE_OBSERVERS.remove(seen.append)


def test_points_from_the_top_left_become_page_proportions() -> None:
    positions = place(["client", "spouse"], 3, "all", A4)
    envelope = Envelope.model_validate({
        "tenant": "demo", "contract_id": "1", "provider": "clicksign", "document_name": "c.pdf",
        "document_sha256": "0" * 64, "idempotency_key": "k", "expires_in_days": 30,
        "positions": [p.model_dump() for p in positions],
        "signers": [{"role": "client", "routing_order": 1, "name": "Maria Silva", "document": "52998224725",
                     "email": "m@example.com"}],
    })
    client = clicksign_positions(envelope, "client", A4)
    assert [p["page"] for p in client] == ["1", "2", "3"]
    first = next(p for p in positions if p.role == "client" and p.page == 1)
    x, y = client[0]["position"]
    assert x == round((first.x + first.width / 2) / A4[0], 4)  # the block's centre, from the left edge
    assert y == round((first.y + first.height / 2) / A4[1], 4)  # ... from the top edge
    assert 0.9 < y < 1 and 0.5 < x < 1  # bottom right


@pytest.mark.spec_check_allow("the positioned requirement is beyond the Postman collection (UNCONFIRMED); "
                              "this test checks the bodies itself, allowing only positions and kind")
def test_positions_reach_clicksign_one_per_signer_per_page_right_to_left(sb, store: Store, exchanges) -> None:
    chain = [{"role": "client", "order": 1}, {"role": "spouse", "order": 2}]
    tenant = sandbox_tenant(
        sb, unthrottled=True,
        connectors={"clicksign": {"values": {"signature_positions": "coordinates"}}},
        options={"signer_chain": chain, "signing_provider": "clicksign", "signature_pages": "all",
                 "notifications": {"by": "provider"}, "evidence": NO_ID_EVIDENCE},
    )
    sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"), pdf_pages=2)
    verify_manager(store, tenant)
    outcome = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert outcome.result == "sent", outcome.reason

    def requirements() -> list[Exchange]:
        return [e for e in exchanges if e.system == "clicksign" and e.method == "POST"
                and e.path.endswith("/requirements")]

    deadline = time.monotonic() + 5
    while len(requirements()) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    positioned = []
    for exchange in requirements():
        body = json.loads(exchange.request_body)
        problems = check_request("clicksign", "POST", exchange.path, body)
        assert problems is not None
        assert {p.field for p in problems} <= BEYOND_COLLECTION, [str(p) for p in problems]
        assert all(p.problem == "unknown field" for p in problems)
        if body["data"]["attributes"]["action"] == "rubricate":
            positioned.append(body["data"])
    assert len(positioned) == 2  # one per signer

    env = sb.state.clicksign.envelopes[outcome.provider_envelope_id]
    pages = len({p["page"] for d in positioned for p in d["attributes"]["positions"]})
    assert pages == 2  # every chosen page ("all" of a 2-page contract)
    by_signer = {}
    for data in positioned:
        signer = env["signers"][data["relationships"]["signer"]["data"]["id"]]["attributes"]["email"]
        points = data["attributes"]["positions"]
        assert [p["page"] for p in points] == ["1", "2"]  # one position per chosen page
        assert all(0.9 < p["position"][1] < 1 for p in points)  # bottom of the page
        by_signer[signer] = points[0]["position"][0]
    client_x = by_signer[sale.people["titular"]["email"]]
    spouse_x = by_signer[sale.people["Cônjuge"]["email"]]
    assert client_x > spouse_x  # right to left in routing order
    held = [r for r in env["requirements"].values() if r["attributes"]["action"] == "rubricate"]
    assert len(held) == 2 and all(r["attributes"]["kind"] == "manuscript" for r in held)


def test_without_the_value_no_positions_are_sent(sb, store: Store, exchanges) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True, options={
        "signer_chain": [{"role": "client", "order": 1}], "signing_provider": "clicksign",
        "notifications": {"by": "provider"}, "evidence": NO_ID_EVIDENCE})
    sale = seed_sale(sb, tenant, roles=("titular",))
    verify_manager(store, tenant)
    outcome = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert outcome.result == "sent", outcome.reason
    env = sb.state.clicksign.envelopes[outcome.provider_envelope_id]
    assert env["requirements"] and not [r for r in env["requirements"].values()
                                        if r["attributes"]["action"] == "rubricate"]
