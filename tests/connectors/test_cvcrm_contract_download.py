"""CV CRM's declared contract download: an absolute link bound as a value, fetched as the link says."""

from __future__ import annotations

import pytest

from connectors.runtime.client import Connector
from ponte.errors import DataError
from tests.connectors.conftest import Sleeps
from tests.connectors.loopback import Loopback, Received, Reply
from tests.connectors.test_provider_specs import CV_HEADERS

SECRETS = {**CV_HEADERS, "password": "cvcrm-sandbox-senha", "webhook_secret": "s" * 32}


def test_the_link_is_fetched_as_written_with_its_query_and_the_connectors_auth(server: Loopback) -> None:
    def pdf(req: Received) -> Reply:
        if req.headers.get("token") != CV_HEADERS["token"]:
            return Reply(401, {"codigo": 401})
        return Reply(200, b"%PDF-1.7 contrato", {"content-type": "application/pdf"})

    server.route("GET", "/arquivos/contratos/801/Contrato%20de%20venda.pdf", pdf)  # the raw path, as sent
    link = f"{server.url}/arquivos/contratos/801/Contrato%20de%20venda.pdf"
    for url, query in ((f"{link}?assinatura=a1b2", {"assinatura": "a1b2"}), (link, {})):
        values = {"base_url": server.url, "domain": "demo", "contrato_link": url}
        with Connector.open("cvcrm", values, SECRETS, sleep=Sleeps()) as conn:
            assert conn.download("download_contrato") == b"%PDF-1.7 contrato"
        assert server.hits("GET")[-1].query == query  # the path is not re-quoted, its query kept


def test_without_a_bound_link_the_download_names_the_missing_value(server: Loopback) -> None:
    conn = Connector.open("cvcrm", {"base_url": server.url, "domain": "demo"}, SECRETS, sleep=Sleeps())
    with conn, pytest.raises(DataError, match="contrato_link"):
        conn.download("download_contrato")
    assert server.hits() == []
