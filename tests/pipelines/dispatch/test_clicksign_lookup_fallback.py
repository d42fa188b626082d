"""Never a second Clicksign envelope, even when Clicksign ignores what its collection does not show.

The Postman collection (../shared/specs/clicksign) shows no envelope listing and no envelope
``metadata``, yet they are how dispatch finds an envelope whose create landed but was never recorded
(a crash right after the POST, a cut connection). Both are UNCONFIRMED (docs/dispatch.md), so these
tests run the sandbox with a switch under which Clicksign ignores them (``clicksign_envelope_lookup``:
``ignored`` = ``filter[name]`` ignored, every envelope listed, metadata dropped; ``missing`` = no
listing at all), kill the dispatcher right after the create, resume, and count the envelopes at the
provider: exactly one, always. When the lookup cannot tell, the fallback is a dead letter asking a
person to check (never a silent second envelope); the person's replay then sends it once.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.connections import TenantConnectors
from pipelines.dispatch.flow import DispatchRequest, replay_dispatch, run_dispatch
from pipelines.store import deadletters, open_store
from pipelines.store.db import Store
from tests.pipelines.dispatch import crash_worker
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant_file


@pytest.fixture
def lookup_mode(sb) -> Iterator[Any]:
    """Set the sandbox Clicksign's envelope listing behaviour for one test (restored afterwards)."""
    before = sb.config.clicksign_envelope_lookup

    def set_mode(mode: str) -> None:
        sb.config.clicksign_envelope_lookup = mode

    yield set_mode
    sb.config.clicksign_envelope_lookup = before


@pytest.fixture
def world(sb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Store, str, TenantConnectors]]:
    url = f"sqlite:///{tmp_path / 'clicksign-crash.db'}"
    store = open_store(url)
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path / "tenants"))  # a replay loads the tenant by name
    tenant = sandbox_tenant_file(sb, tmp_path / "tenants", tenant_id="cs-crash", unthrottled=True,
                                 options={"signing_provider": "clicksign", "evidence": {"selfie": "required"}})
    verify_manager(store, tenant)
    conns = TenantConnectors(tenant, store)
    yield tenant, store, url, conns
    conns.close()
    store.dispose()


def _crash_after_create(url: str, tenant: Any, ref: str) -> None:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.pipelines.dispatch.crash_worker"])
    proc = ctx.Process(target=crash_worker.dispatch,
                       args=(url, tenant.model_dump_json(), ref, "after_provider_call"))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 137, "the dispatcher did not die right after Clicksign created the envelope"


def _resume(store: Store, tenant: Any, conns: TenantConnectors, ref: str, **request: Any) -> Any:
    """The next run after the crash (deferred while the dead worker's short lease lasts)."""
    deadline = time.monotonic() + 10
    while True:
        report = run_dispatch(store, tenant, DispatchRequest(contracts=[ref], lease_seconds=crash_worker.LEASE,
                                                             **request), conns)
        outcome = report.outcomes[0]
        if outcome.result != "deferred" or time.monotonic() > deadline:
            return outcome
        time.sleep(crash_worker.LEASE / 2)


def _new(sb: Any, before: set[str]) -> list[dict[str, Any]]:
    return [e for eid, e in sb.state.clicksign.envelopes.items() if eid not in before]


def _complete(envelope: dict[str, Any]) -> bool:
    return (envelope["attributes"]["status"] == "running" and len(envelope["documents"]) == 1
            and len(envelope["signers"]) >= 1 and len(envelope["requirements"]) >= 1)


def test_with_the_listing_as_assumed_the_crashed_create_is_found_not_repeated(sb, world, lookup_mode) -> None:
    tenant, store, url, conns = world
    lookup_mode("as_assumed")
    sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"))
    before = set(sb.state.clicksign.envelopes)
    _crash_after_create(url, tenant, sale.ref)
    outcome = _resume(store, tenant, conns, sale.ref)
    assert outcome.result == "found", outcome.reason
    [envelope] = _new(sb, before)
    assert _complete(envelope) and envelope["id"] == outcome.provider_envelope_id


def test_the_happy_path_does_not_need_the_undocumented_listing(sb, world, lookup_mode) -> None:
    tenant, store, _url, conns = world
    lookup_mode("missing")  # no GET /envelopes at all: nothing was unsure, so nothing is looked up
    sale = seed_sale(sb, tenant, roles=("titular",))
    before = set(sb.state.clicksign.envelopes)
    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]), conns)
    assert report.outcomes[0].result == "sent", report.outcomes[0].reason
    [envelope] = _new(sb, before)
    assert _complete(envelope)


@pytest.mark.parametrize("mode", ["ignored", "missing"])
def test_when_clicksign_ignores_the_lookup_a_crashed_create_is_a_dead_letter_never_a_second_envelope(
    sb, world, lookup_mode, mode: str
) -> None:
    tenant, store, url, conns = world
    lookup_mode(mode)
    sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"))
    before = set(sb.state.clicksign.envelopes)
    _crash_after_create(url, tenant, sale.ref)
    [orphan] = _new(sb, before)  # the create landed; the dispatcher died before recording its id
    assert orphan["attributes"]["status"] == "draft" and not orphan["documents"] and not orphan["signers"]

    outcome = _resume(store, tenant, conns, sale.ref)
    assert outcome.result == "dead_lettered", outcome
    assert len(_new(sb, before)) == 1  # no second envelope
    [letter] = deadletters.list_open(store, tenant.id, "dispatch")
    assert letter.record_key == f"contract:{sale.contract_id}"
    reason, hint = letter.reason, letter.hint or ""
    assert "may already have created" in reason and "Clicksign" in reason
    assert "draft" in hint and "ponte deadletter replay" in hint
    if mode == "ignored":  # the listing showed it (without Ponte's key): the letter names it
        assert orphan["id"] in reason

    # the next scheduled run changes nothing: still the letter, still one envelope
    again = _resume(store, tenant, conns, sale.ref)
    assert again.result == "dead_lettered" and len(_new(sb, before)) == 1

    if mode == "ignored":
        # a replay while the draft is still listed does not send either: the draft must go first
        replay_dispatch(store, letter, run_id="replay-1")
        assert len(_new(sb, before)) == 1
        [letter] = deadletters.list_open(store, tenant.id, "dispatch")

    # the person checks Clicksign's panel, deletes the empty draft (nobody was invited to it) and
    # replays the letter: that replay is the confirmation (with no listing at all, Ponte cannot see the
    # draft and takes the replay as the person's word), and the envelope goes once, complete
    del sb.state.clicksign.envelopes[orphan["id"]]
    replay_dispatch(store, letter, run_id="replay-2")
    [envelope] = _new(sb, before)
    assert _complete(envelope)
    assert deadletters.list_open(store, tenant.id, "dispatch") == []
    final = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]), conns).outcomes[0]
    assert final.result == "already_sent" and final.provider_envelope_id == envelope["id"]


@pytest.mark.parametrize("mode", ["as_assumed", "ignored"])
def test_a_create_cut_off_within_the_run_is_looked_up_by_key_before_it_is_sent_again(
    sb, world, lookup_mode, mode: str
) -> None:
    """The connection drops on the create (the sandbox cuts it before Clicksign acts on it): the runtime
    cannot tell whether it landed, so dispatch looks it up by its key before a second attempt."""
    tenant, store, _url, conns = world
    lookup_mode(mode)
    sale = seed_sale(sb, tenant, roles=("titular",))
    before = set(sb.state.clicksign.envelopes)
    sb.set_faults("clicksign", {"fail_next": [0]})
    try:
        outcome = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]), conns).outcomes[0]
    finally:
        sb.set_faults("clicksign", None)
    if mode == "as_assumed":  # the filtered listing shows nothing by that name: sent again, once
        assert outcome.result == "sent", outcome.reason
    else:  # a listing that ignores the filter cannot say "not there": a person checks first
        assert outcome.result == "dead_lettered" and "ignored the name filter" in (outcome.reason or "")
        assert _new(sb, before) == []
        [letter] = deadletters.list_open(store, tenant.id, "dispatch")
        replay_dispatch(store, letter, run_id="replay")
    [envelope] = _new(sb, before)
    assert _complete(envelope)
