"""The public verification page (``/verify/{code}``, HTML and JSON) shows masked data only.

Envelopes whose signers carry random valid CPFs/CNPJs, e-mails and phones are stored, and the page and
its JSON are scanned with the log scan's detectors: nothing may be in clear.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from orchestration.gateway.verify import verify_routes
from pipelines.store import Store, open_store
from pipelines.store.models import Envelope, EnvelopeSigner
from tests.security.logscan import known_secrets, scan_line
from tests.support.servers import serve_asgi

SECRETS = known_secrets()


def _check_digits(digits: list[int], weights: list[int]) -> int:
    rest = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
    return 0 if rest < 2 else 11 - rest


@st.composite
def cpfs(draw: st.DrawFn) -> str:
    base = draw(st.lists(st.integers(0, 9), min_size=9, max_size=9).filter(lambda d: len(set(d)) > 1))
    base.append(_check_digits(base, list(range(10, 1, -1))))
    base.append(_check_digits(base, list(range(11, 1, -1))))
    digits = "".join(map(str, base))
    return draw(st.sampled_from([digits, f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"]))


@st.composite
def cnpjs(draw: st.DrawFn) -> str:
    base = [*draw(st.lists(st.integers(0, 9), min_size=8, max_size=8).filter(lambda d: len(set(d)) > 1)), 0, 0, 0, 1]
    base.append(_check_digits(base, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]))
    base.append(_check_digits(base, [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]))
    return "".join(map(str, base))


names = st.lists(st.text("abcdefghijklmnopqrstuvwxyzáéíóúãõç", min_size=2, max_size=10).map(str.title),
                 min_size=1, max_size=4).map(" ".join)
emails = st.from_regex(r"[a-z][a-z0-9.]{0,10}@[a-z]{3,8}\.com\.br", fullmatch=True)
phones = st.from_regex(r"\+55[1-9][1-9]9[0-9]{8}", fullmatch=True)
signers = st.lists(st.tuples(names, cpfs() | cnpjs(), emails, phones), min_size=1, max_size=3)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'ponte.db'}")
    try:
        yield store
    finally:
        store.dispose()


def _clear(text: str) -> list[str]:
    return sorted({kind for kind, _, _ in scan_line(text, SECRETS)})


def test_the_verification_page_and_json_show_masked_data_only(store: Store) -> None:
    with serve_asgi(Starlette(routes=verify_routes(store))) as url, httpx.Client(base_url=url, timeout=10) as client:
        _fuzz_page(store, client)


def _fuzz_page(store: Store, client: httpx.Client) -> None:

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(people=signers)
    def check(people: list[tuple[str, str, str, str]]) -> None:
        code = uuid.uuid4().hex[:12].upper()
        with store.session() as session:
            env = Envelope(tenant="demo", contract_id=code, document_name="Contrato de compra e venda",
                           document_hash="0" * 64, idempotency_key=code, provider="docusign",
                           status="completed", signed_sha256="a" * 64, verification_code=code)
            env.signers = [
                EnvelopeSigner(role="client", routing_order=i + 1, name=name, email=email, document=doc, phone=phone,
                               status="signed", evidence={"email": email, "phone": phone, "document": doc})
                for i, (name, doc, email, phone) in enumerate(people)
            ]
            session.add(env)
        page = client.get(f"/verify/{code}")
        proof = client.get(f"/verify/{code}.json")
        assert page.status_code == 200 and proof.status_code == 200
        for text in (page.text, proof.text):
            assert _clear(text) == [], _clear(text)
            for name, doc, email, phone in people:
                assert doc not in text and email not in text and phone not in text and phone[3:] not in text
                if len(name.split()) > 1:
                    assert name not in text  # first name and initials only

    check()
