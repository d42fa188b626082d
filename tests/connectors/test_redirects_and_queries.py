"""Credentials never follow a redirect to another origin, and a path's own query survives the params.

Both found with the CV CRM contract download: its links point at the CRM's file host, which may
redirect to storage elsewhere, and carry their own query (a signature hash).
"""

from __future__ import annotations

from connectors.runtime.client import Connector
from tests.connectors.conftest import Sleeps
from tests.connectors.loopback import Loopback, Reply
from tests.connectors.test_provider_specs import CV_HEADERS

SECRETS = {**CV_HEADERS, "password": "cvcrm-sandbox-senha", "webhook_secret": "s" * 32}
PDF = Reply(200, b"%PDF-1.7 contrato", {"content-type": "application/pdf"})


def _download(crm: Loopback, link: str) -> bytes:
    values = {"base_url": crm.url, "domain": "demo", "contrato_link": link}
    with Connector.open("cvcrm", values, SECRETS, sleep=Sleeps()) as conn:
        return conn.download("download_contrato", query={})


def test_a_redirect_to_another_origin_carries_no_credential_headers(server: Loopback) -> None:
    with Loopback() as storage:
        storage.route("GET", "/bucket/801.pdf", PDF)
        server.route("GET", "/arquivos/801.pdf", Reply(302, b"", {"location": f"{storage.url}/bucket/801.pdf"}))
        assert _download(server, f"{server.url}/arquivos/801.pdf") == b"%PDF-1.7 contrato"
        [at_crm] = server.hits("GET")
        [at_storage] = storage.hits("GET")
    assert at_crm.headers.get("token") == CV_HEADERS["token"]
    sent = {k.lower() for k in at_storage.headers}
    assert "token" not in sent and "email" not in sent and "authorization" not in sent


def test_a_redirect_within_the_origin_keeps_the_credentials(server: Loopback) -> None:
    server.route("GET", "/arquivos/801.pdf", Reply(302, b"", {"location": "/arquivos/v2/801.pdf"}))
    server.route("GET", "/arquivos/v2/801.pdf", PDF)
    assert _download(server, f"{server.url}/arquivos/801.pdf") == b"%PDF-1.7 contrato"
    assert server.hits("GET")[-1].headers.get("token") == CV_HEADERS["token"]


def test_a_links_own_query_is_kept_when_the_action_adds_none(server: Loopback) -> None:
    server.route("GET", "/arquivos/801.pdf", PDF)
    assert _download(server, f"{server.url}/arquivos/801.pdf?hash=abc") == b"%PDF-1.7 contrato"
    assert server.hits("GET")[0].query == {"hash": "abc"}
