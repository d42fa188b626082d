"""Authentication, grants, paging limits and rate budgets behave as the real APIs do."""

from __future__ import annotations

import httpx
import pytest

from connectors.sandbox import RateLimit, start_sandbox

from .conftest import CLICKSIGN_HEADERS, CVCRM_HEADERS, DOCUSIGN_HEADERS, SIENGE_AUTH


def test_sienge_401_and_403(sandbox) -> None:
    base = sandbox.api["sienge"]
    assert httpx.get(f"{base}/customers").status_code == 401
    wrong = httpx.get(f"{base}/customers", auth=("ponte-sandbox", "nope"))
    assert wrong.status_code == 401 and set(wrong.json()) == {"status", "developerMessage", "clientMessage", "errors"}
    limited = ("ponte-limited", "sandbox-secret")
    assert httpx.get(f"{base}/customers", auth=limited).status_code == 200
    forbidden = httpx.get(f"{base}/sales-contracts", auth=limited)
    assert forbidden.status_code == 403 and forbidden.json()["status"] == 403
    assert "sales-contracts" in forbidden.json()["developerMessage"]


def test_other_systems_refuse_bad_credentials(sandbox) -> None:
    assert httpx.get(f"{sandbox.api['cvcrm']}/v1/relacionamento/assistencias").status_code == 401
    limited = {"email": "limitado@demo.cvcrm.com.br", "token": "cvcrm-limited-token"}
    denied = httpx.get(f"{sandbox.api['cvcrm']}/v1/relacionamento/assistencias", headers=limited)
    assert denied.status_code == 403 and denied.json()["mensagem"] == "Permissão de acesso desabilitada"
    assert httpx.get(f"{sandbox.api['docusign']}/envelopes", params={"from_date": "2020-01-01"}).status_code == 401
    bearer = {**CLICKSIGN_HEADERS, "Authorization": "Bearer clicksign-sandbox-token"}
    assert httpx.get(f"{sandbox.api['clicksign']}/envelopes", headers=bearer).status_code == 401
    assert httpx.post(f"{sandbox.api['whatsapp']}/messages", json={}).status_code == 401


def test_cvcrm_v3_login_gives_a_bearer(sandbox) -> None:
    login = httpx.post(f"{sandbox.api['cvcrm']}/v3/auth/token",
                       json={"email": "integracao@demo.cvcrm.com.br", "senha": "cvcrm-sandbox-senha", "painel": "gestor"})
    assert login.status_code == 200 and login.json()["expires_in"] == 21600
    ok = httpx.get(f"{sandbox.api['cvcrm']}/v1/relacionamento/assistencias",
                   headers={"Authorization": f"Bearer {login.json()['token']}"})
    assert ok.status_code == 200


def test_docusign_jwt_grant(sandbox) -> None:
    import base64
    import json

    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    jwt = f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'iss': 'ik', 'sub': 'u', 'aud': 'account-d'})}.sig"
    token = httpx.post(f"{sandbox.urls['docusign']}/oauth/token",
                       data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt})
    assert token.status_code == 200 and token.json()["token_type"] == "Bearer"
    listing = httpx.get(f"{sandbox.api['docusign']}/envelopes", params={"from_date": "2020-01-01"},
                        headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert listing.status_code == 200
    bad = httpx.post(f"{sandbox.urls['docusign']}/oauth/token",
                     data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x.y"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"


def test_sienge_paging_limit(sienge: httpx.Client) -> None:
    too_big = sienge.get("/customers", params={"limit": 201})
    assert too_big.status_code == 400 and too_big.json()["errors"][0]["field"] == "limit"
    seen: list[int] = []
    offset = 0
    while True:
        page = sienge.get("/customers", params={"limit": 7, "offset": offset}).json()
        assert page["resultSetMetadata"] == {"count": 40, "offset": offset, "limit": 7}
        seen += [c["id"] for c in page["results"]]
        offset += 7
        if offset >= page["resultSetMetadata"]["count"]:
            break
    assert seen == list(range(1, 41))


def test_sienge_429_with_retry_after() -> None:
    with start_sandbox(customers=5, sienge_rate_limit=RateLimit(limit=5, window_seconds=30)) as sb, \
            httpx.Client(base_url=sb.api["sienge"], auth=SIENGE_AUTH) as client:
        statuses = [client.get("/enterprises").status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        refused = client.get("/enterprises")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["status"] == 429
        # The limited user shares the subdomain's budget, as Sienge counts per subdomain.
        assert client.get("/units", auth=("ponte-limited", "sandbox-secret")).status_code == 429
        sb.reset_rate_limits()
        assert client.get("/enterprises").status_code == 200


def test_cvcrm_blocks_the_next_window() -> None:
    limit = RateLimit(limit=3, window_seconds=30, block_seconds=30)
    with start_sandbox(customers=5, cvcrm_rate_limit=limit) as sb, \
            httpx.Client(base_url=sb.api["cvcrm"], headers=CVCRM_HEADERS) as client:
        codes = [client.get("/v1/relacionamento/assistencias").status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        blocked = client.get("/v1/relacionamento/assistencias")
        assert int(blocked.headers["Retry-After"]) >= 29


def test_docusign_rate_headers_and_429() -> None:
    with start_sandbox(customers=5, docusign_rate_limit=RateLimit(limit=3, window_seconds=3600)) as sb, \
            httpx.Client(base_url=sb.api["docusign"], headers=DOCUSIGN_HEADERS) as client:
        first = client.get("/connect")
        assert first.headers["X-RateLimit-Limit"] == "3" and first.headers["X-RateLimit-Remaining"] == "2"
        assert int(first.headers["X-RateLimit-Reset"]) > 0
        client.get("/connect")
        client.get("/connect")
        refused = client.get("/connect")
        assert refused.status_code == 429 and refused.headers["X-RateLimit-Remaining"] == "0"
        assert refused.json()["errorCode"] == "HOURLY_APIINVOCATION_LIMIT_EXCEEDED"
        assert int(refused.headers["Retry-After"]) > 3000


@pytest.mark.parametrize("system", ["sienge", "cvcrm", "docusign"])
def test_rate_limits_can_be_disabled(system: str) -> None:
    with start_sandbox(customers=5, rate_limits=False) as sb:
        assert sb.config.model_dump()[f"{system}_rate_limit"]["enabled"] is False
