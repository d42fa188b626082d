"""Fault injection at start and at run time: errors, drops, latency, throttling, webhook chaos."""

from __future__ import annotations

import time

import httpx
import pytest

from connectors.sandbox import FaultConfig, Sandbox, start_sandbox

from .conftest import SIENGE_AUTH


def test_fail_next_then_heal(fresh: Sandbox) -> None:
    fresh.set_faults("sienge", {"fail_next": [503, 429, 500]})
    with httpx.Client(base_url=fresh.api["sienge"], auth=SIENGE_AUTH) as client:
        codes = [client.get("/enterprises") for _ in range(4)]
    assert [r.status_code for r in codes] == [503, 429, 500, 200]
    assert codes[0].json()["status"] == 503 and codes[1].headers["Retry-After"] == "1"


def test_dropped_connection(fresh: Sandbox) -> None:
    httpx.put(f"{fresh.urls['docusign']}/_sandbox/faults", json={"fail_next": [0]})
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{fresh.api['docusign']}/connect", headers={"Authorization": "Bearer docusign-sandbox-token"})
    assert httpx.get(f"{fresh.urls['docusign']}/_sandbox/faults").json()["fail_next"] == [0]  # config, not state


def test_latency_and_error_rate_at_start() -> None:
    faults = ["whatsapp.latency_ms=150", "cvcrm.errors=500:1.0"]
    with start_sandbox(customers=5, faults=faults, rate_limits=False) as sb:
        started = time.monotonic()
        httpx.post(f"{sb.api['whatsapp']}/messages", json={})
        assert time.monotonic() - started >= 0.15
        response = httpx.get(f"{sb.api['cvcrm']}/v1/relacionamento/assistencias",
                             headers={"email": "integracao@demo.cvcrm.com.br", "token": "cvcrm-sandbox-token"})
        assert response.status_code == 500 and response.json()["codigo"] == 500


def _hook(sb: Sandbox, name: str) -> None:
    httpx.post(f"{sb.api['sienge']}/hooks", auth=SIENGE_AUTH,
               json={"url": sb.sink.url(name), "events": ["CUSTOMER_UPDATED"]})


def test_webhook_duplicates_and_losses(fresh: Sandbox) -> None:
    _hook(fresh, "dup")
    fresh.set_faults("sienge", FaultConfig(webhook_duplicate_rate=1.0))
    fresh.sienge.mutate_customer(2, name="Duplicado")
    copies = fresh.sink.wait_for("dup", 2)
    assert copies[0].headers["x-sienge-id"] == copies[1].headers["x-sienge-id"]

    fresh.set_faults("sienge", FaultConfig(webhook_loss_rate=1.0))
    fresh.sienge.mutate_customer(2, name="Perdido")
    lost = fresh.dispatcher.wait_for(lambda a: any(x.outcome == "lost" for x in a))
    assert [a.event for a in lost if a.outcome == "lost"] == ["CUSTOMER_UPDATED"]
    assert len(fresh.sink.received("dup")) == 2


def test_webhooks_out_of_order(fresh: Sandbox) -> None:
    _hook(fresh, "order")
    fresh.set_faults("sienge", FaultConfig(webhook_reorder_window_ms=100))
    for customer in (1, 2, 3):
        fresh.sienge.mutate_customer(customer, note=f"n{customer}")
    received = fresh.sink.wait_for("order", 3)
    assert [r.json()["customerId"] for r in received] == [3, 2, 1]


def test_fault_config_validation(fresh: Sandbox) -> None:
    bad = httpx.put(f"{fresh.urls['sienge']}/_sandbox/faults", json={"errors": {"500": 2}})
    assert bad.status_code == 400
    with pytest.raises(Exception):  # noqa: B017 - pydantic's or ours, both refuse
        fresh.set_faults("sienge", {"throttle_rate": 3})
