"""Property tests for the sandbox's parsers and state machines."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.br import cnpj, cpf

from connectors.sandbox import FaultConfig, RateLimit, parse_fault_spec
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.documents import make_cnpj, make_cpf
from connectors.sandbox.docusign import DocusignSandbox
from connectors.sandbox.ratelimit import RateLimiter
from connectors.sandbox.webhooks import Dispatcher
from ponte.errors import ConfigurationError

systems = st.sampled_from(["sienge", "cvcrm", "docusign", "clicksign", "whatsapp"])
rates = st.floats(min_value=0, max_value=1, allow_nan=False).map(lambda r: round(r, 3))


@given(system=systems, latency=st.integers(0, 5000), drop=rates,
       errors=st.dictionaries(st.sampled_from([429, 500, 502, 503]), st.floats(0, 0.25).map(lambda r: round(r, 3)),
                              max_size=4),
       fail_next=st.lists(st.sampled_from([0, 429, 500, 503]), max_size=5))
def test_fault_spec_round_trip(system: str, latency: int, drop: float, errors: dict[int, float],
                               fail_next: list[int]) -> None:
    items = [f"{system}.latency_ms={latency}", f"{system}.drop_rate={drop}"]
    if errors:
        items.append(f"{system}.errors=" + "+".join(f"{s}:{r}" for s, r in errors.items()))
    if fail_next:
        items.append(f"{system}.fail_next=" + "+".join(map(str, fail_next)))
    parsed = parse_fault_spec(",".join(items))
    assert parsed == {system: FaultConfig(latency_ms=latency, drop_rate=drop, errors=errors, fail_next=fail_next)}


@given(st.text(max_size=40))
def test_fault_spec_never_crashes_unexpectedly(text: str) -> None:
    with contextlib.suppress(ConfigurationError):
        parse_fault_spec(text)


@given(seed=st.integers(0, 2**32))
def test_generated_documents_are_valid(seed: int) -> None:
    rng = random.Random(seed)
    assert cpf.is_valid(make_cpf(rng))
    assert cnpj.is_valid(make_cnpj(rng))
    alnum = make_cnpj(rng, alphanumeric=True)
    assert cnpj.is_valid(alnum) and not alnum[:12].isdigit()


@given(limit=st.integers(1, 20), steps=st.lists(st.floats(0, 3, allow_nan=False), max_size=60),
       block=st.sampled_from([0.0, 1.0]))
def test_rate_limiter_never_allows_more_than_the_budget(limit: int, steps: list[float], block: float) -> None:
    now = [1000.0]
    limiter = RateLimiter(RateLimit(limit=limit, window_seconds=1.0, block_seconds=block), clock=lambda: now[0])
    allowed_at: list[float] = []
    for step in steps:
        now[0] += step
        verdict = limiter.hit("k")
        if verdict.allowed:
            allowed_at.append(now[0])
            assert verdict.remaining >= 0
        else:
            assert verdict.retry_after > 0
    # Fixed windows: any one-second span holds at most two windows' worth of allowed calls...
    for index, moment in enumerate(allowed_at):
        assert sum(1 for t in allowed_at[index:] if t < moment + 1.0) <= 2 * limit
    # ...and after a full idle window (plus the block, if any) the budget is back.
    now[0] += 1.0 + block + 0.001
    assert limiter.hit("k").allowed


class _NoDispatch(Dispatcher):
    def submit(self, delivery, faults) -> None:  # type: ignore[no-untyped-def]
        return None


@settings(max_examples=60, deadline=None)
@given(orders=st.lists(st.integers(1, 3), min_size=1, max_size=5), attempts=st.lists(st.integers(0, 4), max_size=20))
def test_docusign_signers_complete_only_in_routing_order(orders: list[int], attempts: list[int]) -> None:
    from connectors.sandbox.base import ApiError

    ds = DocusignSandbox(SandboxConfig(), _NoDispatch())
    signers = [{"recipientId": str(i + 1), "name": f"S{i}", "email": f"s{i}@x.com", "routingOrder": str(o),
                "status": "created"} for i, o in enumerate(orders)]
    envelope = {"envelopeId": "e", "status": "created", "recipients": {"signers": signers, "carbonCopies": []},
                "emailSubject": "x"}
    ds.state.envelopes["e"] = envelope
    ds.state.evidence["e"] = {}
    ds.state.audit["e"] = []
    ds._send(envelope)
    completed_orders: list[int] = []
    for attempt in attempts:
        if attempt >= len(signers):
            continue
        signer = signers[attempt]
        lower_pending = any(int(s["routingOrder"]) < int(signer["routingOrder"]) and s["status"] != "completed"
                            for s in signers)
        try:
            ds.act("e", signer["recipientId"], "sign")
        except ApiError:
            assert lower_pending or signer["status"] == "completed"
            continue
        assert not lower_pending
        completed_orders.append(int(signer["routingOrder"]))
    assert completed_orders == sorted(completed_orders)
    assert (envelope["status"] == "completed") == all(s["status"] == "completed" for s in signers)


@pytest.mark.parametrize("bad", ["sienge", "nope.latency_ms=1", "sienge.color=red", "sienge.errors=500:2"])
def test_fault_spec_errors_name_the_item(bad: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        parse_fault_spec(bad)
    assert bad.split("=")[0].split(".")[0] in str(err.value) or "faults for" in str(err.value)
