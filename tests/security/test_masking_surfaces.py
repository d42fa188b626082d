"""Secrets and personal data never appear unmasked, on every surface a person reads.

- `ponte deadletter show` masks the payload by field (an ``email`` is masked whatever it holds, a
  malformed address included), at any depth; `deadletter list` masks reasons;
- the connector runtime's DEBUG request line masks file tokens and other capabilities in the path
  (:func:`ponte.redaction.redact_url`);
- `ponte tenant show` prints credentials by variable name and whether it is set, never a value;
- a mapping cannot read ``$tenant.connectors.*.credentials``, and the mapping context never holds them;
- the suite-wide log scan also reads CLI output (``CliRunner``) and dead letters as `deadletter show`
  prints them;
- masking never garbles a message (issue #21: "environment" in a missing-variable error) and never
  calls a phone a CPF.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from connectors.runtime.client import Connector
from mappings import load_mapping
from mappings.context import MappingContext, check_no_credentials, credentials_read
from mappings.paths import parse_path
from orchestration.cli.app import app
from pipelines.store import Store, deadletters, open_store
from ponte.errors import ConfigurationError, DataError
from ponte.redaction import field_kind, mask_record, redact, redact_url
from schemas.tenant import EnvRef, load_tenant
from tests.security.logscan import known_secrets, scan_line
from tests.security.test_logscan import run_session

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _drop_cli_log_handlers() -> Iterator[None]:
    """`ponte` installs a stderr handler; under CliRunner that stream closes after each invoke."""
    before = list(logging.getLogger().handlers)
    yield
    for handler in logging.getLogger().handlers:
        if handler not in before:
            logging.getLogger().removeHandler(handler)


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A state store the CLI opens (PONTE_DATABASE_URL), on SQLite."""
    url = f"sqlite:///{tmp_path / 'ponte.db'}"
    monkeypatch.setenv("PONTE_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "250")
    store = open_store(url)
    try:
        yield store
    finally:
        store.dispose()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.output


# ----------------------------------------------------------------------------- 1. dead letters

#: personal data and secrets in the shapes real payloads have them, none of which a pattern recognises
PAYLOAD = {
    "idreserva": 801,
    "observacao": "cliente pediu segunda via",
    "email": "joao.pii.leak@@example.com",
    "E-mail": "maria.souza(at)example.com",
    "telefone": "9 9123 4567",
    "celular": 48991234567,
    "cpf": "529.982.247",
    "cnpj": "12ABC345",
    "documento": "MG-12.345.678",
    "pessoas": [
        {"papel": "cliente", "nome": "Joana Pereira Quintanilha", "email": "joana.q@@example.com",
         "documento": {"tipo": "cpf", "numero": "52998224"}},
    ],
    "phones": [{"number": "(48) 3222-1100", "main": True, "type": "Residencial"}],
    "token": "abc",
    "senha": "hunter2",
    "link": "http://127.0.0.1:18102/files/contrato-801",
    "body": json.dumps({"e-mail": "ana@@example.com"}),
}
CLEAR = [
    "joao.pii.leak", "maria.souza(at)", "9 9123 4567", "48991234567", "529.982.247", "12ABC345",
    "MG-12.345.678", "Pereira", "Quintanilha", "joana.q", "52998224", "3222-1100", "hunter2",
    "contrato-801", "ana@@",
]


def _put(store: Store, **overrides: object) -> int:
    fields: dict = dict(
        tenant="demo", flow="import", record_key="customer 4217",
        error=DataError("value is not a valid email address: 'joao.pii.leak@@example.com'", field="email",
                        hint="fix joao.pii.leak@@example.com at the source"),
        payload=PAYLOAD, mapping_version="sienge/customer_to_person v1",
    )
    fields.update(overrides)
    return deadletters.put(store, **fields)  # type: ignore[arg-type]


def test_deadletter_show_masks_the_payload_by_field_at_any_depth(cli_store: Store) -> None:
    out = invoke("deadletter", "show", str(_put(cli_store)))
    for value in CLEAR:
        assert value not in out, value
    assert '"token": "abc"' not in out
    # still useful: the domain, the last digits, the first name, the link's host and the other fields
    assert "j***@example.com" in out and "Joana P. Q." in out and "http://127.0.0.1:18102/***" in out
    assert '"idreserva": 801' in out and "cliente pediu segunda via" in out and '"papel": "cliente"' in out
    assert "fix: fix j***@example.com at the source" in out


def test_deadletter_list_masks_reasons(cli_store: Store) -> None:
    _put(cli_store, error=DataError("rejected joao.pii.leak@@example.com and 52998224725", hint="x"))
    out = invoke("deadletter", "list")
    assert "joao.pii.leak" not in out and "52998224725" not in out
    assert "1 open dead letter(s)" in out


@pytest.mark.parametrize(("key", "kind"), [
    ("email", "email"), ("E-mail", "email"), ("emailSecundario", "email"), ("telefone", "phone"),
    ("cellphoneNumber", "phone"), ("celular", "phone"), ("cpf", "document"), ("cpf_cnpj", "document"),
    ("documento", "document"), ("numberIdentityCard", "document"), ("nome", "name"), ("name", "name"),
    ("password", "secret"), ("access_token", "secret"), ("webhook_secret", "secret"), ("link", "link"),
    ("signed_url", "link"), ("idreserva", None), ("mailingAddress", None), ("document_sha256", None),
    ("status", None), ("contract_id", None),
])
def test_field_kinds(key: str, kind: str | None) -> None:
    assert field_kind(key) == kind


def test_mask_record_leaves_non_personal_data_and_booleans() -> None:
    masked = mask_record({"status": "open", "spouse": {"name": "Ana Lima", "main": True, "cpf": None}})
    assert masked == {"status": "open", "spouse": {"name": "Ana L.", "main": True, "cpf": None}}


# ----------------------------------------------------------------------------- 2. URLs and paths

TOKEN = "0f3c9a7e5b1d4c2e8a6f0b9d7c5e3a1f"


@pytest.mark.parametrize(("url", "expected"), [
    (f"/files/{TOKEN}", "/files/***"),
    (f"http://crm.test/files/{TOKEN}/contrato.pdf", "http://crm.test/files/***/***"),
    ("/api/v1/comercial/reservas/801/contratos", "/api/v1/comercial/reservas/801/contratos"),
    ("/restapi/v2.1/accounts/00000000-0000-0000-0000-0000000d0c05/envelopes",
     "/restapi/v2.1/accounts/00000000-0000-0000-0000-0000000d0c05/envelopes"),
    ("/d/WGonPi-Pu3R757Dl95WCOP_7es61CuwA/view", "/d/***/view"),
    ("https://s3.test/b/c.pdf?X-Amz-Signature=ab12&X-Amz-Credential=AK%2F1&page=2",
     "https://s3.test/b/c.pdf?X-Amz-Signature=***&X-Amz-Credential=***&page=2"),
    ("/x?sig=abc&token=t0k3n&hub.verify_token=v&key=k&limit=50", "/x?sig=***&token=***&hub.verify_token=***&key=***&limit=50"),
    ("https://user:pa55@host.test/a", "https://user:***@host.test/a"),
])
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_the_debug_request_line_masks_a_file_token(caplog: pytest.LogCaptureFixture) -> None:
    """CV CRM's contract links (``/files/<token>``) download the PDF with nothing else: not in a log."""
    values = {"base_url": "http://crm.test", "domain": "demo"}
    secrets = {"email": "integracao@demo.cvcrm.com.br", "token": "cvcrm-sandbox-token"}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"%PDF-1.7"))
    with (caplog.at_level(logging.DEBUG, logger="ponte.connectors.runtime"),
          Connector.open("cvcrm", values, secrets, transport=transport) as conn):
        assert conn.fetch_url(f"http://crm.test/files/{TOKEN}", what="contract") == b"%PDF-1.7"
    lines = [r.getMessage() for r in caplog.records if r.name == "ponte.connectors.runtime"]
    assert any("GET /files/*** -> 200" in line for line in lines), lines
    assert not any(TOKEN in line for line in lines)


def test_urls_in_free_text_lose_their_capabilities() -> None:
    text = f"GET http://crm.test/files/{TOKEN} answered 404 (not found)"
    assert redact(text) == "GET http://crm.test/files/*** answered 404 (not found)"
    assert redact(f"(see http://crm.test/files/{TOKEN}).") == "(see http://crm.test/files/***)."
    assert redact(f"cvcrm GET /files/{TOKEN} answered non-JSON") == "cvcrm GET /files/*** answered non-JSON"
    for ordinary in ("POST /api/v1/comercial/reservas HTTP/1.1 201", "state store .ponte/ponte.db (run 42/7)",
                     "GET /verify/A9DAF4CA88BDC7BB6879 200", "mappings/sienge/customer_to_person.yaml:10", "3/4"):
        assert redact(ordinary) == ordinary
    assert redact("postgresql+psycopg://ponte:pa55w0rd@db:5432/ponte") == "postgresql+psycopg://ponte:***@db:5432/ponte"


# ----------------------------------------------------------------------------- 3. tenant show

def test_tenant_show_prints_credential_names_never_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONTE_DEMO_SIENGE_PASSWORD", "value-from-the-environment-42")
    monkeypatch.delenv("PONTE_DEMO_CVCRM_TOKEN", raising=False)
    out = invoke("tenant", "show", "demo")
    data = yaml.safe_load((REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8"))
    defaults = [ref["default"] for connector in data["connectors"].values()
                for ref in (connector.get("credentials") or {}).values() if "default" in ref]
    assert defaults
    for value in (*defaults, "value-from-the-environment-42"):
        assert value not in out, value
    shown = json.loads(out)["connectors"]
    assert shown["sienge"]["credentials"]["password"] == {
        "env": "PONTE_DEMO_SIENGE_PASSWORD", "set": True, "sandbox_default": True}
    assert shown["cvcrm"]["credentials"]["token"]["set"] is False
    assert shown["sienge"]["values"]["base_url"] == "http://127.0.0.1:18101"


# ----------------------------------------------------------------------------- 4. mappings

LEAKY_MAPPING = """\
version: 1
description: tries to read a credential
source: sienge/enterprise
target: canonical/enterprise
record_id: id
fields:
  source_id: {from: id, transforms: [str]}
  name: $tenant.connectors.sienge.credentials.password.default
"""


@pytest.mark.parametrize("text", [
    "$tenant.connectors.sienge.credentials.password",
    "$tenant.connectors.cvcrm.credentials",
    "@$tenant.connectors[spec=sienge].credentials.token.default",
    "$tenant.connectors[*].credentials",
])
def test_credential_paths_are_refused(text: str) -> None:
    problem = credentials_read(parse_path(text))
    assert problem is not None and "reads a tenant credential" in problem


@pytest.mark.parametrize("text", [
    "$tenant.id", "$tenant.options.signing_provider", "$tenant.connectors.sienge.values.base_url", "credentials",
])
def test_other_paths_are_allowed(text: str) -> None:
    assert credentials_read(parse_path(text)) is None


def test_a_template_reading_credentials_is_refused_with_file_line_and_field() -> None:
    spec = {"fields": {"key": {"template": "{$tenant.id}:{$tenant.connectors.cvcrm.credentials.token.default}"}}}
    with pytest.raises(ConfigurationError, match=r"m\.yaml:12: field key\.template: .*reads a tenant credential"):
        check_no_credentials(spec, "m.yaml", {"key": 12})


def test_the_mapping_context_never_holds_credentials() -> None:
    tenant = load_tenant("demo")
    ctx = MappingContext(tenant=tenant)
    dumped = json.dumps(ctx.tenant_data())
    assert "credentials" not in dumped
    assert all(not connector.credentials for connector in ctx.tenant.connectors.values())  # type: ignore[union-attr]
    assert all(secret not in dumped for secret in known_secrets())
    assert ctx.with_params(x=1).tenant_data() == ctx.tenant_data()
    assert tenant.connectors["sienge"].credentials  # the caller's tenant is left as it was


def test_mapping_test_refuses_a_mapping_that_reads_credentials(tmp_path: Path) -> None:
    mapping = tmp_path / "leaky.yaml"
    mapping.write_text(LEAKY_MAPPING, encoding="utf-8")
    sample = tmp_path / "enterprise.json"
    sample.write_text(json.dumps({"id": 7, "name": "Residencial Aurora"}), encoding="utf-8")
    result = runner.invoke(app, ["mapping", "test", str(mapping), "-s", str(sample), "-t", "demo"])
    assert result.exit_code == 2, result.output
    assert "leaky.yaml:8: field name.from:" in result.output and "reads a tenant credential" in result.output
    assert "sandbox-secret" not in result.output
    check = runner.invoke(app, ["mapping", "check", str(mapping)])
    assert check.exit_code == 2 and "reads a tenant credential" in check.output


def test_the_compiler_refuses_a_mapping_that_reads_credentials(tmp_path: Path) -> None:
    mapping = tmp_path / "leaky.yaml"
    mapping.write_text(LEAKY_MAPPING, encoding="utf-8")
    with pytest.raises(ConfigurationError, match="reads a tenant credential"):
        load_mapping(str(mapping))


# ----------------------------------------------------------------------------- 5. the scan's reach

LEAKING_SURFACES = '''
import json

import typer
from typer.testing import CliRunner

from pipelines.store import deadletters, open_store
from ponte.errors import DataError

cli = typer.Typer()


@cli.command()
def show() -> None:
    print("customer 529.982.247-25")


def test_cli_output_with_a_clear_cpf():
    assert "529.982.247-25" in CliRunner().invoke(cli, []).output


def test_a_dead_letter_shown_in_clear(tmp_path, monkeypatch):
    import orchestration.cli.deadletter as shown

    monkeypatch.setattr(shown, "render", lambda row: [json.dumps(row.payload)])  # a show that forgot to mask
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    deadletters.put(store, tenant="t", flow="import", record_key="customer 1", error=DataError("bad"),
                    payload={"email": "maria.souza@example.com"})
    store.dispose()
'''

CLEAN_SURFACES = '''
import typer
from typer.testing import CliRunner

from pipelines.store import deadletters, open_store
from ponte.errors import DataError
from ponte.redaction import redact

cli = typer.Typer()


@cli.command()
def show() -> None:
    print(redact("customer 529.982.247-25"))


def test_masked_cli_output():
    assert "***.***.***-25" in CliRunner().invoke(cli, []).output


def test_a_dead_letter_with_odd_personal_data(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    deadletters.put(store, tenant="t", flow="import", record_key="customer 1",
                    error=DataError("bad e-mail maria.souza@@example.com"),
                    payload={"email": "maria.souza@@example.com", "nota": "cpf 52998224725",
                             "pessoa": {"celular": "+55 48 99876-5432"}})
    store.dispose()
'''


def test_the_scan_reads_cli_output_and_dead_letters(tmp_path: Path) -> None:
    result = run_session(tmp_path, LEAKING_SURFACES)
    out = result.stdout + result.stderr
    assert "2 passed" in out, out
    assert result.returncode == 1, out
    assert "test_cli_output_with_a_clear_cpf [<cli output>] cpf" in out
    assert "test_a_dead_letter_shown_in_clear [<deadletter show>] e-mail" in out
    assert "529.982.247-25" not in out and "maria.souza@example.com" not in out


def test_masked_cli_output_and_dead_letters_pass_the_scan(tmp_path: Path) -> None:
    result = run_session(tmp_path, CLEAN_SURFACES)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "no personal data or secret in clear" in out


def test_the_scan_sees_a_malformed_email() -> None:
    assert {kind for kind, _, _ in scan_line("to joao.pii.leak@@example.com", [])} == {"e-mail"}
    assert scan_line(redact("to joao.pii.leak@@example.com"), []) == []


# ----------------------------------------------------------------------------- issue #21: no garbling

def test_a_missing_variable_error_is_not_garbled() -> None:
    with pytest.raises(ConfigurationError) as info:
        EnvRef(env="PONTE_TEST_SURFACES_UNSET").resolve(tenant="demo", name="password")
    message = str(info.value)
    assert "field credentials.password: environment variable PONTE_TEST_SURFACES_UNSET is not set" in message
    assert redact(message) == message


@pytest.mark.parametrize("text", [
    "token expired, logging in again", "the token endpoint answered 500", "secret rotated",
    "field webhook_secret: required by the spec",
])
def test_messages_about_secrets_are_left_readable(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", ["whatsapp 48998765432", "celular: 11987654321", "phone=21987654321"])
def test_a_phone_is_not_masked_as_a_cpf(text: str) -> None:
    masked = redact(text)
    assert "***.***.***" not in masked and masked.endswith(text[-2:]) and "+*" in masked
    assert text[-11:] not in masked


def test_a_cpf_is_still_a_cpf() -> None:
    assert redact("cpf 52998224725") == "cpf ***.***.***-25"
    assert redact("documento 52998224725 (whatsapp)") == "documento ***.***.***-25 (whatsapp)"
    assert redact("password: hunter22 token=abcdef") == "password: *** token=***"


def test_mapping_test_masks_the_output_record() -> None:
    sample = REPO / "tests/mappings/samples/sienge/customer_to_person/pessoa_fisica_casada.json"
    result = runner.invoke(app, ["mapping", "test", "sienge/customer_to_person", "-s", str(sample)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["document"] == "***.***.***-25" and out["email"] == "m***@example.com.br"
    assert out["mobile"].endswith("67") and "99123" not in result.stdout
    assert out["name"] == "MARIA Aparecida da Silva"  # names are what a mapping's output is checked by
