"""Two webhook-gateway processes sharing one PostgreSQL inbox: every event is stored exactly once, however
many copies reach however many instances at the same time, and no delivery is answered with a 5xx."""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from pipelines.store import open_store
from pipelines.store.models import InboxEvent
from tests.deploy.gateways import gateway_processes
from tests.deploy.topology import POSTGRES_ADMIN_URL, REPO, create_database, drop_database, with_driver

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.postgres, pytest.mark.slow]

ROUTE = "/webhooks/demo/sienge/hooks"
TOKEN = "sienge-hook-token-demo"
REPEATED_EVENTS = 20  # each delivered twice to each instance, all at once
COPIES_PER_INSTANCE = 2
DISTINCT_EVENTS = 30  # delivered once, alternating instances


@pytest.fixture(scope="module")
def store_url() -> Iterator[str]:
    name = create_database("ponte_inbox")
    url = with_driver(POSTGRES_ADMIN_URL, "psycopg", name)
    try:
        open_store(url).dispose()  # migrate once, before the gateways start
        yield url
    finally:
        drop_database(name)


def _headers(event_id: str) -> dict[str, str]:
    return {
        "authorization": f"Bearer {TOKEN}",
        "x-sienge-event": "CUSTOMER_UPDATED",
        "x-sienge-id": event_id,
        "x-sienge-tenant": "demo",
        "content-type": "application/json",
    }


def test_two_gateways_share_the_inbox_and_store_each_event_once(store_url: str, tmp_path: Path) -> None:
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    shutil.copy(REPO / "tenants" / "demo.yaml", tenants / "demo.yaml")
    env = {"PONTE_DATABASE_URL": store_url, "PONTE_TENANTS_DIR": str(tenants)}

    repeated = [f"dup-{uuid.uuid4()}" for _ in range(REPEATED_EVENTS)]
    distinct = [f"one-{uuid.uuid4()}" for _ in range(DISTINCT_EVENTS)]

    with gateway_processes(2, env, tmp_path) as gateways:
        deliveries = [
            (gateway.url, event_id)
            for event_id in repeated
            for _ in range(COPIES_PER_INSTANCE)
            for gateway in gateways
        ]
        deliveries += [(gateways[i % 2].url, event_id) for i, event_id in enumerate(distinct)]

        with httpx.Client(timeout=15) as client:

            def deliver(target: tuple[str, str]) -> tuple[str, int, dict]:
                url, event_id = target
                response = client.post(
                    f"{url}{ROUTE}", content=b'{"customerId": 1}', headers=_headers(event_id)
                )
                body = response.json() if response.headers.get("content-type") == "application/json" else {}
                return event_id, response.status_code, body

            with ThreadPoolExecutor(max_workers=16) as pool:
                answers = list(pool.map(deliver, deliveries))
            stats = [client.get(f"{gateway.url}/health").json() for gateway in gateways]

        logs = "\n".join(gateway.log() for gateway in gateways)

    statuses = Counter(status for _, status, _ in answers)
    assert statuses == {200: len(deliveries)}, f"{statuses}\n{logs[-4000:]}"
    # exactly one delivery of each event was the first; every other copy was acknowledged as a duplicate
    firsts = Counter(event_id for event_id, _, body in answers if body.get("duplicate") is False)
    assert firsts == Counter(repeated + distinct)
    # both instances took part, and between them stored each event once
    assert all(s["stored"] + s["duplicates"] > 0 for s in stats), stats
    assert sum(s["stored"] for s in stats) == len(repeated) + len(distinct)
    copies = COPIES_PER_INSTANCE * len(gateways)
    assert sum(s["duplicates"] for s in stats) == len(repeated) * (copies - 1)

    store = open_store(store_url, upgrade=False)
    try:
        with store.session() as session:
            rows = session.execute(
                select(InboxEvent.event_id, func.count(), func.sum(InboxEvent.duplicates)).group_by(
                    InboxEvent.event_id
                )
            ).all()
    finally:
        store.dispose()
    per_event = {event_id: (count, dups) for event_id, count, dups in rows}
    assert set(per_event) == set(repeated) | set(distinct)
    assert all(count == 1 for count, _ in per_event.values())
    assert all(per_event[event_id][1] == copies - 1 for event_id in repeated)
    assert all(per_event[event_id][1] == 0 for event_id in distinct)
