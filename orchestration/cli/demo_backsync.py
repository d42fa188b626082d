"""The demo's back-sync step: signers sign at the sandbox provider (the client Ponte invited by WhatsApp
through the link in that message, the others at the stand-in directly), webhooks reach the gateway, the
back-sync run brings the stamped, verifiable PDF into the CRM."""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin

import httpx
import uvicorn
from sqlalchemy import func, select

from orchestration.gateway.factory import app_from_environment
from pipelines.connections import open_connector
from pipelines.store import Envelope, InboxEvent
from ponte import redact_url
from schemas import load_tenant

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
GATEWAY_PORT = 8088  # tenants/demo.yaml: options.verification_base_url


@contextmanager
def _gateway() -> Any:
    server = uvicorn.Server(
        uvicorn.Config(
            app_from_environment(),
            host="127.0.0.1",
            port=GATEWAY_PORT,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{GATEWAY_PORT}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _sign_through_whatsapp_links(sandbox: Any, gateway: str, console: Any) -> None:
    """What the client invited by WhatsApp does: open the message's link in a browser, sign, done."""
    links = [p for m in sandbox.whatsapp.messages() for p in m.get("parameters") or [] if f"{gateway}/sign/" in p]
    with httpx.Client(follow_redirects=False, timeout=15) as browser:
        for link in links:
            opened = browser.get(link)
            view = opened.headers.get("location", "")
            page = browser.get(view) if opened.status_code == 303 else None
            form = re.search(r'<form method="post" action="([^"]+/sign)"', page.text) if page is not None else None
            if form is None:
                console.print(f"[red]✗[/] the WhatsApp link {redact_url(link)} opened no signing page "
                              f"({opened.status_code})")
                continue
            back = browser.post(urljoin(view, form.group(1))).headers.get("location", "")
            again = browser.get(link)
            console.print(
                f"[green]✓[/] the client opened the WhatsApp link {redact_url(link)}: 303 to a fresh DocuSign "
                f"recipient view (single-use: {browser.get(view).status_code} when opened again), signed, back at "
                f"{redact_url(back)}; the same link again: {again.status_code} "
                f"\"{'Você já assinou' if 'já assinou' in again.text else again.text[:40]}\""
            )


def _inbox_count(store: Any) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).where(InboxEvent.connector == "docusign")) or 0


def run(*, store: Any, sandbox: Any, instance: Any, console: Any) -> None:
    from orchestration.definitions import defs

    tenant = load_tenant("demo")
    with store.session() as session:
        envelopes = [
            (e.id, e.contract_id, e.provider_envelope_id, [s.role for s in e.signers])
            for e in session.scalars(select(Envelope).where(Envelope.tenant == tenant.id))
        ]
    if not envelopes:
        return
    with _gateway() as gateway:
        with open_connector(tenant, "docusign", store=store) as docusign:
            docusign.register_webhook("connect", f"{gateway}/webhooks/{tenant.id}/docusign/connect")
        console.print(f"[green]✓[/] gateway on {gateway}; DocuSign Connect points at it")
        _sign_through_whatsapp_links(sandbox, gateway, console)
        for _id, _contract, provider_id, roles in envelopes:
            at_provider = sandbox.docusign.state.envelopes[provider_id]["recipients"]["signers"]
            done = {s["roleName"] for s in at_provider if s["status"] == "completed"}
            for role in roles:  # in routing order: the sandbox invites the next only after this one
                if role not in done:  # the client invited by WhatsApp signed through the link above
                    sandbox.sign(provider_id, role)
        before, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < 1.5:  # wait for the deliveries to settle
            count = _inbox_count(store)
            if count != before:
                before, stable_since = count, time.monotonic()
            time.sleep(0.2)
        console.print(
            f"  signers signed; {before} DocuSign webhook(s) stored in the inbox (duplicates collapsed)"
        )
        with console.status("back-sync through Dagster: events → state machines → signed PDF to the CRM…"):
            result = defs.resolve_job_def("signature_backsync").execute_in_process(
                partition_key="demo", instance=instance, run_config=QUIET, raise_on_error=False
            )
        if not result.success:
            console.print(f"[red]✗[/] back-sync run {result.run_id} failed; see `make ui`")
            return
        with store.session() as session:
            rows = list(session.scalars(select(Envelope).where(Envelope.tenant == tenant.id)))
        for row in rows:
            line = f"  contract {row.contract_id}: {row.status}"
            if row.verification_code:
                url = f"{gateway}/verify/{row.verification_code}.json"
                proof = httpx.get(url, timeout=10).json()
                line += (
                    f", SHA-256 {str(row.signed_sha256)[:16]}…, verification page {url} "
                    f"(shows {proof.get('sha256', '')[:16]}…)"
                )
            console.print(line)
