"""Attachment links come from CRM records: only CV CRM's own hosts are fetched (``Connector.fetch_url``).

A link elsewhere is refused before any request leaves, and the assistance becomes a dead letter saying
which tenant, record and attachment, and what to do; nothing partial reaches Sienge. Links on the CRM's
host keep working, and a CRM link cannot redirect the download to another host.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from connectors.runtime.client import Connector
from connectors.spec.loader import load_spec
from pipelines.replay import replay
from pipelines.store import deadletters
from pipelines.store.models import OutboxItem
from ponte.errors import DataError
from tests.support.servers import serve_asgi

PHOTO = b"\xff\xd8\xff\xe0 foto da infiltracao \xff\xd9"
REPORT = b"%PDF-1.4 laudo tecnico"


@contextmanager
def foreign_host(redirect_to: str | None = None) -> Iterator[tuple[str, list[str]]]:
    """A server that is not the CRM, serving a file (or a redirect); yields its URL and the paths it was asked."""
    hits: list[str] = []

    async def serve(request: Request) -> Response:
        hits.append(request.url.path)
        if redirect_to is not None:
            return RedirectResponse(redirect_to, status_code=302)
        return Response(REPORT, media_type="application/pdf")

    app = Starlette(routes=[Route("/{path:path}", serve)])
    with serve_asgi(app) as url:
        yield url, hits


def test_a_foreign_attachment_link_is_not_fetched_and_the_request_is_dead_lettered(env_factory, monkeypatch) -> None:
    env = env_factory()
    with foreign_host() as (elsewhere, hits):
        crm_id = env.open_request(0, files={"foto.jpg": PHOTO}, links={"laudo.pdf": f"{elsewhere}/laudo.pdf"})
        ok_id = env.open_request(1, files={"foto.jpg": PHOTO})  # the same batch, only CRM-hosted files
        env.settle("cvcrm", 2)
        report = env.run()
    assert hits == []  # no request ever left for the foreign host

    # the other request of the batch went through, attachment included
    assert [c for c, _ in report.created] == [ok_id]
    [created] = env.sb.state.sienge.assistances.values()
    assert created["externalId"] == ok_id and [a["name"] for a in created["attachments"]] == ["foto.jpg"]

    # the refused one: nothing sent, a dead letter with where, why and what to do
    [(key, reason)] = report.failed
    host = elsewhere.removeprefix("http://")
    assert key == f"assistencia:{crm_id}"
    assert "tenant demo" in reason and f"record assistencia {crm_id}" in reason and "field anexos[laudo.pdf]" in reason
    assert f"refusing to download the attachment from {host}: not a cvcrm host" in reason
    assert "nothing was fetched" in reason and "attach the file" in reason
    with env.store.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxItem)) == 1  # only the good request
    [letter] = deadletters.list_open(env.store, "demo", "assistance")
    assert (letter.record_key, letter.error_kind, letter.field) == (f"assistencia:{crm_id}", "data", "anexos[laudo.pdf]")
    assert host in letter.reason and "ponte deadletter replay" in (letter.hint or "")
    assert env.crm(crm_id)["idassistencia_erp"] is None

    # what the hint says: attach the file itself in the CRM, then replay
    with env.sb.cvcrm.lock:
        env.sb.state.cvcrm.assistencias[int(crm_id)]["anexos"][1]["link"] = env.crm_file(REPORT)
    monkeypatch.setattr("pipelines.assistance.replay.load_tenant", lambda _tenant_id: env.tenant)
    assert replay(env.store, letter).resolved
    mine = next(a for a in env.sb.state.sienge.assistances.values() if a["externalId"] == crm_id)
    assert [(a["name"], a["size"]) for a in mine["attachments"]] == [("foto.jpg", len(PHOTO)),
                                                                    ("laudo.pdf", len(REPORT))]
    assert hits == []


@pytest.mark.parametrize("link", [
    "https://cvcrm.com.br.files.example.net/laudo.pdf",  # a look-alike host
    "http://demo.cvcrm.com.br/laudo.pdf",                # a CRM host, but not over HTTPS
    "https://user:pw@demo.cvcrm.com.br/laudo.pdf",       # credentials in the link
])
def test_look_alike_and_plain_http_links_are_refused_too(env_factory, link: str) -> None:
    env = env_factory()
    crm_id = env.open_request(0, links={"laudo.pdf": link})
    env.settle("cvcrm", 1)
    report = env.run()
    [(key, reason)] = report.failed
    assert key == f"assistencia:{crm_id}" and "not a cvcrm host" in reason and "pw" not in reason
    assert env.sb.state.sienge.assistances == {}
    [letter] = deadletters.list_open(env.store, "demo", "assistance")
    assert letter.field == "anexos[laudo.pdf]"


def test_a_crm_link_cannot_redirect_the_download_to_another_host() -> None:
    with foreign_host() as (elsewhere, foreign_hits), foreign_host(redirect_to=f"{elsewhere}/laudo.pdf") as (crm, _):
        secrets = {"email": "i@demo.cvcrm.com.br", "token": "cv-test-token-1"}
        refused = pytest.raises(DataError, match=re.escape(f"redirected to {elsewhere.removeprefix('http://')},"))
        with Connector.open("cvcrm", {"base_url": crm, "domain": "demo"}, secrets) as cvcrm, refused:
            cvcrm.fetch_url(f"{crm}/files/abc", what="attachment", credentials=False)
        assert foreign_hits == []
        # a redirect that stays on the CRM's hosts is followed
        with foreign_host() as (target, _), foreign_host(redirect_to=f"{target}/files/abc") as (hop, _):
            spec = load_spec("cvcrm").model_copy(update={"file_hosts": [target]})
            with Connector.open(spec, {"base_url": hop, "domain": "demo"}, secrets) as cvcrm:
                assert cvcrm.fetch_url(f"{hop}/files/x", what="attachment", credentials=False) == REPORT
