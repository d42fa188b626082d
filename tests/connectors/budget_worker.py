"""A worker process for the shared-rate-budget test: N reads through one connector, then exit.

Run as ``python -m tests.connectors.budget_worker SPEC BASE_URL STORE_URL|memory N START_AT``.
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    spec_path, base_url, store_url, count, start_at = sys.argv[1:6]
    from connectors.runtime.client import Connector
    from connectors.runtime.ratelimit import InMemoryRateBudget

    if store_url == "memory":
        budget = InMemoryRateBudget()
    else:
        from pipelines.store.db import Store
        from pipelines.store.rate_budget import SqlRateBudget

        budget = SqlRateBudget(Store(store_url))
    conn = Connector.open(spec_path, {"base_url": base_url}, {}, tenant="acme", budget=budget)
    time.sleep(max(0.0, float(start_at) - time.time()))
    for _ in range(int(count)):
        list(conn.read("ping"))
    print(conn.api_calls)


if __name__ == "__main__":
    main()
