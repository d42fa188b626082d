"""`Connector.fetch_url`, the one way Ponte downloads a URL it was given, and the redirect rule of every call.

Found as an attacker would: the contract download followed a redirect to any host and sent what it got
to the signers as the contract; the signed-PDF and attachment downloads each had their own HTTP code
with their own rules. Now: the host is checked on the first URL and on every redirect hop, credentials
never cross to another origin, the size is capped while the body streams, and statuses are classified
once (a 429 is transient, not a bad record).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.runtime import ForeignHostError, ResponseTooLargeError
from connectors.runtime.client import Connector
from connectors.runtime.errors import HttpTransientError, UnexpectedStatusError
from connectors.spec.loader import load_spec
from ponte.errors import DataError, TransientError
from tests.connectors.conftest import Sleeps
from tests.connectors.loopback import Loopback, Reply
from tests.connectors.test_provider_specs import CV_HEADERS

SECRETS = {**CV_HEADERS, "password": "cvcrm-sandbox-senha", "webhook_secret": "s" * 32}
PDF = Reply(200, b"%PDF-1.7 contrato", {"content-type": "application/pdf"})
CREDENTIAL_HEADERS = {"token", "email", "authorization"}


def _cvcrm(crm: Loopback, **spec_update: Any) -> Connector:
    spec = load_spec("cvcrm")
    if spec_update:
        spec = spec.model_copy(update=spec_update)
    return Connector.open(spec, {"base_url": crm.url, "domain": "demo"}, SECRETS, sleep=Sleeps())


@pytest.fixture
def storage() -> Iterator[Loopback]:
    """Another origin on this machine (a storage bucket, or an attacker's host)."""
    with Loopback() as server:
        server.route("GET", "/bucket/801.pdf", Reply(200, b"%PDF-1.7 from storage"))
        yield server


def test_a_link_is_fetched_as_written_with_its_query_and_the_connectors_credentials(server: Loopback) -> None:
    server.route("GET", "/arquivos/contratos/801/Contrato%20de%20venda.pdf", PDF)  # the raw path, as sent
    link = f"{server.url}/arquivos/contratos/801/Contrato%20de%20venda.pdf"
    with _cvcrm(server) as conn:
        assert conn.fetch_url(f"{link}?assinatura=a1b2", credentials=True) == b"%PDF-1.7 contrato"
        assert conn.api_calls == 1  # counted like any call
    (hit,) = server.hits("GET")
    assert hit.query == {"assinatura": "a1b2"} and hit.headers.get("token") == CV_HEADERS["token"]


def test_a_foreign_host_is_refused_before_anything_is_sent(server: Loopback, storage: Loopback) -> None:
    with _cvcrm(server) as conn, pytest.raises(ForeignHostError, match="not a cvcrm host") as caught:
        conn.fetch_url(f"{storage.url}/bucket/801.pdf", what="contract PDF")
    assert storage.hits() == [] and conn.api_calls == 0
    assert isinstance(caught.value, DataError)  # the record is dead-lettered, the batch goes on
    assert "bucket" not in str(caught.value)  # the host is named, never the path (it may be a capability)


@pytest.mark.parametrize(
    "url",
    ["https://user:pw@demo.cvcrm.com.br/a.pdf", "ftp://demo.cvcrm.com.br/a.pdf", "https:///a.pdf",
     "https://demo.cvcrm.com.br.evil.example/a.pdf", "http://files.cvcrm.com.br/a.pdf",
     "https://files.cvcrm.com.br:8443/a.pdf", "https://[::1/a.pdf"],
)
def test_odd_or_look_alike_urls_are_not_allowed(server: Loopback, url: str) -> None:
    with _cvcrm(server, file_hosts=["*.cvcrm.com.br"]) as conn:
        assert conn.allows("https://files.cvcrm.com.br/contrato.pdf")
        assert not conn.allows(url)


def test_a_redirect_to_a_foreign_host_is_refused_and_nothing_is_fetched_there(
    server: Loopback, storage: Loopback
) -> None:
    server.route("GET", "/arquivos/801.pdf", Reply(302, b"", {"location": f"{storage.url}/bucket/801.pdf"}))
    with _cvcrm(server) as conn, pytest.raises(ForeignHostError, match=r"redirected to 127\.0\.0\.1"):
        conn.fetch_url(f"{server.url}/arquivos/801.pdf", credentials=True)
    assert storage.hits() == []


def test_an_api_action_does_not_follow_a_redirect_to_a_foreign_host(server: Loopback, storage: Loopback) -> None:
    """Every call goes through the same hop check, not only fetch_url (a spec's binary action, a read)."""
    server.route("GET", "/api/v1/comercial/reservas", Reply(307, b"", {"location": f"{storage.url}/bucket/801.pdf"}))
    with _cvcrm(server) as conn, pytest.raises(ForeignHostError):
        list(conn.read("reservas", limit=1))
    assert storage.hits() == []


def test_a_redirect_to_an_allowed_origin_carries_no_credentials(server: Loopback, storage: Loopback) -> None:
    server.route("GET", "/arquivos/801.pdf", Reply(302, b"", {"location": f"{storage.url}/bucket/801.pdf"}))
    with _cvcrm(server, file_hosts=[storage.url]) as conn:
        assert conn.fetch_url(f"{server.url}/arquivos/801.pdf", credentials=True) == b"%PDF-1.7 from storage"
    [at_crm] = server.hits("GET")
    [at_storage] = storage.hits("GET")
    assert at_crm.headers.get("token") == CV_HEADERS["token"]
    assert not CREDENTIAL_HEADERS & set(at_storage.headers)


def test_a_redirect_within_the_origin_keeps_the_credentials(server: Loopback) -> None:
    server.route("GET", "/arquivos/801.pdf", Reply(302, b"", {"location": "/arquivos/v2/801.pdf"}))
    server.route("GET", "/arquivos/v2/801.pdf", PDF)
    with _cvcrm(server) as conn:
        assert conn.fetch_url(f"{server.url}/arquivos/801.pdf", credentials=True) == b"%PDF-1.7 contrato"
        assert conn.api_calls == 2  # each hop counts in the rate budget
    assert server.hits("GET")[-1].headers.get("token") == CV_HEADERS["token"]


def test_a_file_host_of_the_provider_gets_no_credentials_unless_asked(server: Loopback, storage: Loopback) -> None:
    with _cvcrm(server, file_hosts=[storage.url]) as conn:
        assert conn.fetch_url(f"{storage.url}/bucket/801.pdf") == b"%PDF-1.7 from storage"
    [hit] = storage.hits("GET")
    assert not CREDENTIAL_HEADERS & set(hit.headers)


def test_endless_redirects_stop(server: Loopback) -> None:
    server.route("GET", "/loop", Reply(302, b"", {"location": "/loop"}))
    with _cvcrm(server) as conn, pytest.raises(UnexpectedStatusError, match="more than 5 redirects"):
        conn.fetch_url(f"{server.url}/loop")
    assert len(server.hits("GET")) == 6


def test_a_429_is_transient_and_retried_not_a_bad_record(server: Loopback) -> None:
    server.route("GET", "/a.pdf", [Reply(429, b"", {"retry-after": "1"}), PDF])
    with _cvcrm(server) as conn:
        assert conn.fetch_url(f"{server.url}/a.pdf") == b"%PDF-1.7 contrato"
    server.route("GET", "/b.pdf", Reply(503))
    with _cvcrm(server) as conn, pytest.raises(HttpTransientError) as caught:
        conn.fetch_url(f"{server.url}/b.pdf")
    assert isinstance(caught.value, TransientError) and caught.value.retryable


def test_a_declared_size_over_the_limit_is_refused_unread(server: Loopback) -> None:
    server.route("GET", "/big.pdf", Reply(200, b"%PDF" + b"x" * 5000))
    with _cvcrm(server, max_download_bytes=1000) as conn, pytest.raises(ResponseTooLargeError, match="larger than"):
        conn.fetch_url(f"{server.url}/big.pdf")


def test_the_same_limit_holds_for_a_binary_action(server: Loopback) -> None:
    """A spec's declared download (DocuSign's combined PDF) is capped the same way."""
    with Loopback() as docusign:
        docusign.route("GET", "/restapi/v2.1/accounts/acc/envelopes/e1/documents/combined",
                       Reply(200, b"%PDF" + b"x" * 5000))
        spec = load_spec("docusign").model_copy(update={"max_download_bytes": 1000})
        values = {"base_url": docusign.url, "account_id": "acc"}
        secrets = {"access_token": "docusign-test-token", "connect_hmac_key": "k" * 32}
        with Connector.open(spec, values, secrets, sleep=Sleeps()) as conn, pytest.raises(ResponseTooLargeError):
            conn.download("download_combined", envelope_id="e1")


class _EndlessBody:
    """A raw HTTP server that streams a chunked body without end (until the client hangs up)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sent = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        try:
            while self.sent < 512 * 1024 * 1024:  # bounded, should the client never hang up
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.sent += len(chunk)
        except OSError:
            pass
        finally:
            conn.close()
            self.sock.close()


def test_a_chunked_body_is_cut_while_it_streams(server: Loopback) -> None:
    endless = _EndlessBody()
    limited = _cvcrm(server, file_hosts=[endless.url], max_download_bytes=1024 * 1024)
    with limited as conn, pytest.raises(ResponseTooLargeError):
        conn.fetch_url(f"{endless.url}/huge.pdf")
    endless.thread.join(10)
    assert endless.sent < 64 * 1024 * 1024  # the client stopped reading near the limit, not at the end


def test_a_tenant_can_add_file_hosts_and_a_limit() -> None:
    from schemas.tenant import TenantConnector

    config = TenantConnector.model_validate(
        {"spec": "cvcrm", "file_hosts": ["*.storage.example", "http://127.0.0.1:9"], "max_download_bytes": 10}
    )
    assert config.file_hosts == ["*.storage.example", "http://127.0.0.1:9"]
    with pytest.raises(ValueError, match="file_hosts"):
        TenantConnector.model_validate({"spec": "cvcrm", "file_hosts": ["https://x/../y"]})
