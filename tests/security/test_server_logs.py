"""The ASGI server's own log lines (uvicorn's access log prints every full URL) show no secret.

Uvicorn's default when started directly on the app factory is an INFO access log; a CV CRM delivery
carries its secret in the URL path and WhatsApp's handshake its verify token in the query string.
ponte.logging masks those loggers' arguments (RedactingArgsFilter), whoever configured their handlers.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from orchestration.gateway.app import create_app
from pipelines.store import open_store
from schemas.tenant import load_tenant
from tests.security.logscan import known_secrets, scan_line

REPO = Path(__file__).resolve().parents[2]
DEMO = load_tenant(REPO / "tenants" / "demo.yaml")


class Lines(logging.Handler):
    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_uvicorn_access_lines_mask_url_secrets(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'ponte.db'}")
    cv_secret = DEMO.connector("cvcrm").resolve_credentials()["webhook_secret"]
    verify_token = DEMO.connector("whatsapp").resolve_credentials()["verify_token"]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # what `uvicorn orchestration.gateway.factory:app_from_environment --factory` does by default
    server = uvicorn.Server(uvicorn.Config(create_app(store, {"demo": DEMO}), log_level="info", lifespan="off"))
    access = logging.getLogger("uvicorn.access")
    lines = Lines(uvicorn.logging.AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s',
                                                  use_colors=False))
    access.addHandler(lines)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        base = f"http://127.0.0.1:{port}"
        body = b'{"idwebhook": 1, "funcionalidade": "AS", "gatilho": 1, "id": 7, "enviado_em": "2026-05-01 10:00:00"}'
        assert httpx.post(f"{base}/webhooks/demo/cvcrm/events/{cv_secret}", content=body).status_code == 200
        handshake = httpx.get(f"{base}/webhooks/demo/whatsapp/messages",
                              params={"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": "42"})
        assert handshake.text == "42"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        access.removeHandler(lines)
        store.dispose()
    assert len(lines.lines) == 2, lines.lines
    for line in lines.lines:
        assert cv_secret not in line and verify_token not in line, line
        assert scan_line(line, known_secrets()) == [], line
    assert "/webhooks/demo/cvcrm/events/***" in lines.lines[0] and "hub.verify_token=***" in lines.lines[1]
