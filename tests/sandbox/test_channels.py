"""WhatsApp template sends and signed status webhooks; the SMTP server keeps what it receives."""

from __future__ import annotations

import hashlib
import hmac
import smtplib
from email.message import EmailMessage

import httpx

from connectors.sandbox import Sandbox

from .conftest import WHATSAPP_HEADERS


def _template(name: str = "ponte_convite_assinatura", params: tuple[str, ...] = ("Maria", "https://x/y"),
              to: str = "5548991234567") -> dict:
    return {"messaging_product": "whatsapp", "to": to, "type": "template",
            "template": {"name": name, "language": {"code": "pt_BR"},
                         "components": [{"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}]}}


def test_whatsapp_validation(sandbox: Sandbox) -> None:
    url = f"{sandbox.api['whatsapp']}/messages"
    unknown = httpx.post(url, json=_template("nao_aprovado"), headers=WHATSAPP_HEADERS)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == 132001
    wrong_count = httpx.post(url, json=_template(params=("Maria",)), headers=WHATSAPP_HEADERS)
    assert wrong_count.json()["error"]["code"] == 132000
    bad_to = httpx.post(url, json=_template(to="+55 (48) 9"), headers=WHATSAPP_HEADERS)
    assert bad_to.status_code == 400 and set(bad_to.json()["error"]) >= {"message", "type", "code", "fbtrace_id"}
    text = {**_template(), "type": "text", "text": {"body": "oi"}}
    assert httpx.post(url, json=text, headers=WHATSAPP_HEADERS).json()["error"]["code"] == 131047
    wrong_phone = httpx.post(url.replace("100000000000001", "999"), json=_template(), headers=WHATSAPP_HEADERS)
    assert wrong_phone.json()["error"]["code"] == 100


def test_whatsapp_status_webhooks(fresh: Sandbox) -> None:
    httpx.post(f"{fresh.urls['whatsapp']}/_sandbox/webhook", json={"url": fresh.sink.url("wa")})
    sent = httpx.post(f"{fresh.api['whatsapp']}/messages", json=_template(), headers=WHATSAPP_HEADERS).json()
    wamid = sent["messages"][0]["id"]
    fresh.whatsapp.set_status(wamid, "read")
    failed = httpx.post(f"{fresh.api['whatsapp']}/messages", json=_template(to="5548990000000"),
                        headers=WHATSAPP_HEADERS).json()["messages"][0]["id"]
    received = fresh.sink.wait_for("wa", 4)
    statuses = [(r.json()["entry"][0]["changes"][0]["value"]["statuses"][0]["id"],
                 r.json()["entry"][0]["changes"][0]["value"]["statuses"][0]["status"]) for r in received]
    assert statuses == [(wamid, "sent"), (wamid, "delivered"), (wamid, "read"), (failed, "failed")]
    for r in received:
        expected = hmac.new(b"whatsapp-app-secret", r.body, hashlib.sha256).hexdigest()
        assert r.headers["x-hub-signature-256"] == f"sha256={expected}"
    assert received[-1].json()["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"] == 131026
    assert [m["template"] for m in fresh.whatsapp.messages()] == ["ponte_convite_assinatura"] * 2


def test_smtp_inbox(sandbox: Sandbox) -> None:
    message = EmailMessage()
    message["From"] = "Ponte <nao-responda@ponte.example.com.br>"
    message["To"] = "maria@example.com"
    message["Subject"] = "Contrato disponível para assinatura"
    message.set_content("Olá Maria, acesse o link para assinar.")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="contrato.pdf")
    with smtplib.SMTP(sandbox.smtp.host, sandbox.smtp.port, timeout=10) as smtp:
        smtp.login("ponte-sandbox", "sandbox-secret")
        smtp.send_message(message)
    stored = sandbox.smtp.wait_for(to="maria@example.com")[0]
    assert stored.subject == "Contrato disponível para assinatura"
    assert "acesse o link" in stored.text() and stored.authenticated_as == "ponte-sandbox"
    assert stored.to_dict()["attachments"] == ["contrato.pdf"]
    with smtplib.SMTP(sandbox.smtp.host, sandbox.smtp.port, timeout=10) as smtp:
        try:
            smtp.login("ponte-sandbox", "wrong")
            raise AssertionError("wrong SMTP password accepted")
        except smtplib.SMTPAuthenticationError:
            pass
    inbox = httpx.get(f"{sandbox.urls['sink']}/_sandbox/smtp/messages").json()
    assert any(m["subject"] == "Contrato disponível para assinatura" for m in inbox)
