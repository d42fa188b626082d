"""Each auth kind against a loopback server that checks credentials the way the real API does."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.runtime.errors import HttpAuthError
from ponte.errors import ConfigurationError
from tests.connectors.conftest import make_spec, open_on_loopback
from tests.connectors.loopback import Loopback, Received, Reply

ITEMS = {"streams": {"items": {"path": "/items", "records": "items"}}}


def guarded(check):  # type: ignore[no-untyped-def]
    def handler(req: Received) -> Reply:
        return Reply(200, {"items": [{"id": 1}]}) if check(req) else Reply(401, {"error": "unauthorized"})

    return handler


def spec_with(auth: dict, secrets: list[str], **extra: object):  # type: ignore[no-untyped-def]
    return make_spec({**ITEMS, "auth": auth, "secrets": {s: {"description": s} for s in secrets}, **extra})


def test_basic(server: Loopback) -> None:
    expected = "Basic " + base64.b64encode(b"ponte-sandbox:sandbox-secret").decode()
    server.route("GET", "/items", guarded(lambda r: r.headers.get("authorization") == expected))
    spec = spec_with({"type": "basic", "username": "{secrets.user}", "password": "{secrets.pw}"}, ["user", "pw"])
    with open_on_loopback(spec, server, {"user": "ponte-sandbox", "pw": "sandbox-secret"}) as conn:
        assert list(conn.read("items")) == [{"id": 1}]
    with open_on_loopback(spec, server, {"user": "ponte-sandbox", "pw": "wrong"}) as conn, pytest.raises(HttpAuthError):
        list(conn.read("items"))


def test_bearer_and_raw_token(server: Loopback) -> None:
    server.route("GET", "/items", guarded(lambda r: r.headers.get("authorization") == "clicksign-token"))
    spec = spec_with({"type": "bearer", "token": "{secrets.t}", "scheme": ""}, ["t"])
    with open_on_loopback(spec, server, {"t": "clicksign-token"}) as conn:
        assert len(list(conn.read("items"))) == 1
    server.route("GET", "/items", guarded(lambda r: r.headers.get("authorization") == "Bearer wa-token"))
    spec = spec_with({"type": "bearer", "token": "{secrets.t}"}, ["t"])
    with open_on_loopback(spec, server, {"t": "wa-token"}) as conn:
        assert len(list(conn.read("items"))) == 1


def test_custom_header_tokens(server: Loopback) -> None:
    server.route("GET", "/items", guarded(
        lambda r: r.headers.get("email") == "integracao@demo.cvcrm.com.br" and r.headers.get("token") == "cv-token"))
    spec = spec_with({"type": "headers", "headers": {"email": "{secrets.email}", "token": "{secrets.token}"}},
                     ["email", "token"])
    with open_on_loopback(spec, server, {"email": "integracao@demo.cvcrm.com.br", "token": "cv-token"}) as conn:
        assert len(list(conn.read("items"))) == 1


@pytest.mark.parametrize("location", ["header", "query"])
def test_api_key(server: Loopback, location: str) -> None:
    def check(r: Received) -> bool:
        return (r.headers if location == "header" else r.query).get("x-api-key") == "key-123456"

    server.route("GET", "/items", guarded(check))
    spec = spec_with({"type": "api_key", "name": "x-api-key", "in": location, "value": "{secrets.k}"}, ["k"])
    with open_on_loopback(spec, server, {"k": "key-123456"}) as conn:
        assert len(list(conn.read("items"))) == 1


def test_oauth2_client_credentials_token_is_cached(server: Loopback) -> None:
    issued: list[str] = []

    def token(req: Received) -> Reply:
        form = dict(p.split("=") for p in req.body.decode().split("&"))
        if form != {"grant_type": "client_credentials", "client_id": "app", "client_secret": "s3cret-value"}:
            return Reply(401, {"error": "invalid_client"})
        issued.append(f"tok-{len(issued)}")
        return Reply(200, {"access_token": issued[-1], "expires_in": 3600})

    server.route("POST", "/oauth/token", token)
    server.route("GET", "/items", guarded(lambda r: r.headers.get("authorization") == "Bearer tok-0"))
    spec = spec_with({"type": "oauth2_client_credentials", "token_url": "{values.base_url}/oauth/token",
                      "client_id": "{secrets.id}", "client_secret": "{secrets.secret}"}, ["id", "secret"])
    with open_on_loopback(spec, server, {"id": "app", "secret": "s3cret-value"}) as conn:
        list(conn.read("items"))
        list(conn.read("items"))
    assert issued == ["tok-0"] and conn.api_calls == 3


def login_spec():  # type: ignore[no-untyped-def]
    return spec_with(
        {"type": "login", "url": "{values.base_url}/api/v3/auth/token",
         "body": {"email": "{secrets.email}", "senha": "{secrets.senha}", "painel": "gestor"},
         "token_path": "token", "expires_in_path": "expires_in"},
        ["email", "senha"],
    )


def test_login_token_is_cached_until_it_expires_and_renewed_after_401(server: Loopback) -> None:
    logins: list[dict] = []
    valid: set[str] = set()

    def login(req: Received) -> Reply:
        body = req.json()
        if body != {"email": "a@demo.cvcrm.com.br", "senha": "cv-senha-123", "painel": "gestor"}:
            return Reply(401, {"message": "invalid"})
        logins.append(body)
        token = f"bearer-{len(logins)}"
        valid.add(token)
        return Reply(200, {"token": token, "expires_in": 21600})

    server.route("POST", "/api/v3/auth/token", login)
    server.route("GET", "/items", guarded(lambda r: r.headers.get("authorization", "")[7:] in valid))
    with open_on_loopback(login_spec(), server, {"email": "a@demo.cvcrm.com.br", "senha": "cv-senha-123"}) as conn:
        for _ in range(3):
            list(conn.read("items"))
        assert len(logins) == 1
        valid.clear()  # the server revokes the token (e.g. the 6 h expired early)
        assert list(conn.read("items")) == [{"id": 1}]
    assert len(logins) == 2


def test_login_refused_is_an_auth_error(server: Loopback) -> None:
    server.route("POST", "/api/v3/auth/token", Reply(401, {"message": "senha inválida"}))
    creds = {"email": "a@b.com", "senha": "wrong-senha"}
    with open_on_loopback(login_spec(), server, creds) as conn, pytest.raises(HttpAuthError) as info:
        list(conn.read("items"))
    assert "login refused" in info.value.message and server.hits("GET") == []


def test_missing_credential_is_a_configuration_error_naming_it(server: Loopback) -> None:
    spec = spec_with({"type": "bearer", "token": "{secrets.t}"}, ["t"])
    with pytest.raises(ConfigurationError) as info, open_on_loopback(spec, server, {}) as conn:
        list(conn.read("items"))
    assert "secrets.t" in str(info.value)


def _rsa_pair() -> tuple[str, object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, key.public_key()


def docusign_auth() -> dict:
    return {
        "type": "first_of",
        "options": [
            {"type": "hook", "name": "docusign_jwt", "options": {
                "oauth_base": "{values.base_url}", "integration_key": "{secrets.integration_key}",
                "user_id": "{secrets.user_id}", "private_key": "{secrets.private_key}"}},
            {"type": "bearer", "token": "{secrets.access_token}"},
        ],
    }


def test_docusign_jwt_grant_hook_signs_a_valid_assertion(server: Loopback) -> None:
    pem, public = _rsa_pair()

    def token(req: Received) -> Reply:
        form = dict(p.split("=", 1) for p in req.body.decode().split("&"))
        claims = jwt.decode(form["assertion"], public, algorithms=["RS256"], audience="127.0.0.1:" + server.url.rsplit(":", 1)[1])  # type: ignore[arg-type]
        assert claims["iss"] == "ik-1" and claims["sub"] == "user-guid" and "impersonation" in claims["scope"]
        assert claims["exp"] > time.time()
        return Reply(200, {"access_token": "ds-access", "token_type": "Bearer", "expires_in": 28800})

    server.route("POST", "/oauth/token", token)
    server.route("GET", "/items", guarded(lambda r: r.headers.get("authorization") == "Bearer ds-access"))
    spec = spec_with(docusign_auth(), ["integration_key", "user_id", "private_key", "access_token"])
    with open_on_loopback(spec, server, {"integration_key": "ik-1", "user_id": "user-guid", "private_key": pem}) as conn:
        assert len(list(conn.read("items"))) == 1


def test_first_of_falls_back_to_a_static_token(server: Loopback) -> None:
    server.route("GET", "/items", guarded(lambda r: r.headers.get("authorization") == "Bearer docusign-sandbox-token"))
    spec = spec_with(docusign_auth(), ["integration_key", "user_id", "private_key", "access_token"])
    with open_on_loopback(spec, server, {"access_token": "docusign-sandbox-token"}) as conn:
        assert len(list(conn.read("items"))) == 1
        assert server.hits("POST") == []


def test_secrets_never_appear_in_error_text(server: Loopback) -> None:
    server.route("GET", "/items", Reply(401, {"echo": "your token was tok-super-secret-99"}))
    spec = spec_with({"type": "bearer", "token": "{secrets.t}"}, ["t"])
    with open_on_loopback(spec, server, {"t": "tok-super-secret-99"}) as conn, pytest.raises(HttpAuthError) as info:
        list(conn.read("items"))
    text = str(info.value) + json.dumps(info.value.to_dict(), default=str) + repr(info.value.request)
    assert "tok-super-secret-99" not in text
