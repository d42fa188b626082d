"""DocuSign's ``audit_events`` stream (EnvelopeAuditEvents: listAuditEvents), where back-sync reads the
evidence each signer left: on the wire (path under the account, one unpaginated GET) and against the
sandbox stand-in (one event per signer action, with IP, device and geolocation)."""

from __future__ import annotations

from typing import Any

from connectors.runtime.client import Connector
from connectors.sandbox.launcher import start_sandbox
from connectors.sandbox.signing import Evidence
from tests.connectors.conftest import Sleeps
from tests.connectors.loopback import Loopback, Reply

ACCOUNT = "00000000-0000-0000-0000-0000000d0c05"
DS = f"/restapi/v2.1/accounts/{ACCOUNT}"
SECRETS = {"access_token": "docusign-sandbox-token", "connect_hmac_key": "docusign-connect-secret"}


def _fields(event: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in event["eventFields"]}


def test_audit_events_is_one_get_under_the_account_and_yields_each_event(server: Loopback) -> None:
    events = [
        {"eventFields": [{"name": "logTime", "value": "2026-11-02T13:01:02.1234567Z"},
                         {"name": "Action", "value": "Sent Invitations"}, {"name": "UserName", "value": "Ponte"}]},
        {"eventFields": [{"name": "Action", "value": "Signed"}, {"name": "UserName", "value": "Ana Souza"},
                         {"name": "ClientIPAddress", "value": "200.160.2.3"},
                         {"name": "GeoLocation", "value": "-23.5613,-46.6565"}]},
    ]
    server.route("GET", f"{DS}/envelopes/env-7/audit_events", lambda req: Reply(200, {"auditEvents": events}))
    with Connector.open("docusign", {"base_url": server.url, "account_id": ACCOUNT}, SECRETS, sleep=Sleeps()) as ds:
        assert "audit_events" in ds.spec.streams
        got = list(ds.read("audit_events", params={"envelope_id": "env-7"}))
    assert got == events
    [hit] = server.hits("GET")
    assert hit.query == {}  # the endpoint takes no paging parameters


def test_sandbox_audit_events_carry_each_signers_ip_device_and_geolocation() -> None:
    left = Evidence(ip="177.71.4.9", latitude=-27.6012, longitude=-48.5217,
                    device="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/128.0 Safari/537.36")
    with start_sandbox(customers=5, seed=3, rate_limits=False) as sb:
        c = sb.credentials()["docusign"]
        with Connector.open("docusign", {"base_url": sb.urls["docusign"], "account_id": c["account_id"]},
                            {"access_token": c["token"], "connect_hmac_key": c["connect_hmac_key"]}) as ds:
            created = ds.call("create_envelope", {
                "emailSubject": "Contrato 993", "status": "sent",
                "documents": [{"documentId": "1", "name": "Contrato", "fileExtension": "txt",
                               "documentBase64": "Q29udHJhdG8="}],
                "recipients": {"signers": [{"recipientId": "1", "routingOrder": "1", "name": "Ana Souza",
                                            "email": "ana@example.com", "roleName": "client",
                                            "tabs": {"signHereTabs": [{"anchorString": "/assinatura/"}]}}]},
            }, idempotency_key="sandbox:993:v1")
            sb.sign(str(created.id), "client", evidence=left)
            events = [_fields(e) for e in ds.read("audit_events", params={"envelope_id": created.id})]
    by_action = {e["Action"]: e for e in events}
    assert list(by_action) == ["Registered", "Sent Invitations", "Viewed", "Signed", "Completed"]
    for action in ("Viewed", "Signed"):
        signer = by_action[action]
        assert signer["UserName"] == "Ana Souza" and signer["ClientIPAddress"] == left.ip
        assert signer["Information"] == left.device and signer["GeoLocation"] == "-27.6012,-48.5217"
    assert by_action["Completed"]["EnvelopeStatus"] == "completed"
