"""``--customers 50000`` seeds fast and serves the whole list within Sienge's page limit."""

from __future__ import annotations

import httpx
import pytest

from connectors.sandbox import start_sandbox
from connectors.sandbox.documents import normalize_document

from .conftest import SIENGE_AUTH


@pytest.mark.slow
def test_fifty_thousand_customers_page_fully() -> None:
    # how long seeding and paging take is measured by `make bench`, not asserted (machines are noisy)
    with start_sandbox(customers=50_000, seed=3) as sb:
        ids: set[int] = set()
        requests = 0
        with httpx.Client(base_url=sb.api["sienge"], auth=SIENGE_AUTH, timeout=30) as client:
            offset, count = 0, None
            while count is None or offset < count:
                response = client.get("/customers", params={"limit": 200, "offset": offset})
                requests += 1
                if response.status_code == 429:  # the real 200/min budget is on: obey it like a client must
                    sb.reset_rate_limits()  # (a test does not wait a real minute)
                    continue
                page = response.json()
                count = page["resultSetMetadata"]["count"]
                assert len(page["results"]) <= 200
                ids.update(c["id"] for c in page["results"])
                offset += 200
            assert len(ids) == 50_000 == count
            assert requests >= 250

            # modifiedAfter: a customer changed now is the only one modified after the seed's dates.
            target = sb.sienge.state.customers[31_337]
            sb.sienge.mutate_customer(31_337, email="novo.email@example.com.br")
            recent = client.get("/customers", params={"modifiedAfter": "2026-11-02", "limit": 200}).json()
            assert [c["id"] for c in recent["results"]] == [31_337]
            document = target.get("cpf") or target.get("cnpj")
            by_doc = client.get("/customers", params={"cpf" if target.get("cpf") else "cnpj": document}).json()
            assert [c["id"] for c in by_doc["results"]] == [31_337]
            assert normalize_document(by_doc["results"][0].get("cpf") or by_doc["results"][0]["cnpj"]) == document
