"""`ponte template render NAME --contract RESERVATION:CONTRACT --tenant T` against a running CRM.

The preview reads what dispatch would read (the CRM contract and people the import wrote from Sienge,
Sienge's development and unit) through ``preview_context``, and writes the PDF a signer would see. The
sale is Sienge's, imported by ``run_import``; a CRM user creates the contract from the template. A
render is a preview: nothing reaches the signing provider, nothing is recorded as an envelope.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from connectors.sandbox import Sandbox, start_sandbox
from orchestration.cli.app import app
from pipelines.connections import open_connector
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.variables import document_text, number
from pipelines.imports.flow import ImportRequest, run_import
from pipelines.store import Store, open_store
from pipelines.store.models import (
    AuditEntry,
    DeadLetter,
    Envelope,
    EnvelopeSigner,
    OutboxItem,
    PackageLedgerEntry,
)
from schemas import load_tenant
from tests.pipelines.dispatch.support import verify_manager
from tests.pipelines.dispatch.test_templated_contracts import (
    CHAIN,
    COMPANY_WITNESS,
    REPRESENTATIVE,
    _crm_creates_contract,
    _sale,
)
from tests.security.logscan import known_secrets, scan_line
from tests.support.tenants import sandbox_tenant_file

TENANT = "demo"


class World(NamedTuple):
    """The sandbox, the state store and tenant files the CLI reads, the imported sale and its contract."""

    sb: Sandbox
    store: Store
    tenants_dir: Path
    sale: dict[str, Any]
    ref: str


#: the template the CRM user picks for the contract, and the one rendered
TEMPLATE = "compra_e_venda"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A married couple's Sienge sale, imported into the CRM, and the contract a CRM user made of it."""
    database = tmp_path_factory.mktemp("render") / "state.db"
    root = database.parent
    store = open_store(f"sqlite:///{database}")
    with start_sandbox(customers=24, seed=7, rate_limits=False) as sb:
        sienge = sb.state.sienge
        married = next(c for c in sienge.customers.values() if c.get("spouse"))
        unit = next(u for u in sienge.units.values() if not u.get("contractId"))
        sale = _sale(next(iter(sienge.contracts.values())), 9101, unit, [married])
        sienge.contracts[sale["id"]] = sale
        tenant = sandbox_tenant_file(
            sb, root / "tenants", TENANT, unthrottled=True,
            options={"signer_chain": CHAIN, "company_signers": [REPRESENTATIVE, COMPANY_WITNESS]},
        )
        with open_connector(tenant, "sienge", store=store) as s, open_connector(tenant, "cvcrm", store=store) as c:
            run_import(store, tenant, s, c, ImportRequest(full=True))
        # the manager is verified: a dispatch could send, so nothing sent is the render's own doing
        verify_manager(store, tenant)
        ref = _crm_creates_contract(sb, sale, 880101)
        yield World(sb, store, root / "tenants", sale, ref)
    store.dispose()


@pytest.fixture
def cli(world: World, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(world.tenants_dir))
    monkeypatch.setenv("PONTE_DATABASE_URL", world.store.url)
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def _render(cli: CliRunner, *args: str) -> Any:
    return cli.invoke(app, ["template", "render", *args], terminal_width=200)


def _pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:  # never a skip: the set-up installs it
        pytest.fail("pdftotext is missing: run `make setup` (it installs poppler-utils)", pytrace=False)
    done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    return " ".join(done.stdout.decode("utf-8").split())


def _clear(output: str) -> list[str]:
    """Lines of CLI output that show personal data or a secret in clear (none may)."""
    secrets = known_secrets()
    return [line for line in output.splitlines() if scan_line(line, secrets)]


def _rows(store: Store) -> dict[str, int]:
    """How many rows each table a send (or a failed one) writes holds."""
    tables = (Envelope, EnvelopeSigner, PackageLedgerEntry, OutboxItem, DeadLetter, AuditEntry)
    with store.session() as session:
        return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in tables}


def _envelopes_of(store: Store, contract_id: str) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(Envelope).where(Envelope.contract_id == contract_id))


def _refused(result: Any, *expected: str) -> str:
    """A user mistake: exit code 2 and one clear message, no traceback; the message, for more checks."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.output.startswith("error: ")
    for text in expected:
        assert text in result.output, (text, result.output)
    assert _clear(result.output) == []
    return result.output


def test_render_a_contract_from_the_crm(world: World, cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "c.pdf"
    before, sent_before = _rows(world.store), dict(world.sb.state.docusign.envelopes)
    result = _render(cli, TEMPLATE, "--contract", world.ref, "--tenant", TENANT, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.read_bytes().startswith(b"%PDF")
    assert re.search(rf"wrote {re.escape(str(out))}: \d+ pages?, [\d,]+ bytes", result.output), result.output
    text = _pdf_text(out)
    sienge = world.sb.state.sienge
    unit = sienge.units[world.sale["salesContractUnits"][0]["id"]]
    assert sienge.enterprises[unit["enterpriseId"]]["commercialName"] in text
    assert unit["name"] in text and number(Decimal(str(unit["privateArea"]))) in text
    buyer = sienge.customers[world.sale["salesContractCustomers"][0]["id"]]
    spouse = buyer["spouse"]
    for person in (buyer, spouse):
        # a contract is a legal document: it prints each CPF in full, formatted (only what Ponte says is masked)
        assert person["name"] in text and document_text(person["cpf"]) in text
    assert "anuência do cônjuge" in text
    assert _clear(result.output) == []
    # a render is a preview: no envelope at the signing provider, nothing recorded in the store
    assert world.sb.state.docusign.envelopes == sent_before
    assert _rows(world.store) == before
    assert _envelopes_of(world.store, world.ref.partition(":")[2]) == 0


def test_the_preview_is_the_pdf_dispatch_sends(world: World, cli: CliRunner, tmp_path: Path) -> None:
    """Byte for byte (the PDF's hash is in the envelope's idempotency key), the contract's title included."""
    ref = _crm_creates_contract(world.sb, world.sale, 880102)
    out = tmp_path / "previa.pdf"
    result = _render(cli, TEMPLATE, "--contract", ref, "--tenant", TENANT, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert _envelopes_of(world.store, "880102") == 0
    report = run_dispatch(world.store, load_tenant(TENANT), DispatchRequest(contracts=[ref]))
    (outcome,) = report.outcomes
    assert outcome.result == "sent", (outcome.result, outcome.reason)
    with world.store.session() as session:
        provider_id = session.get(Envelope, outcome.envelope_id).provider_envelope_id
    (sent,) = world.sb.state.docusign.documents[provider_id].values()
    assert sent == out.read_bytes()


@pytest.mark.parametrize("kind", ["in its reservation", "no such reservation", "contract id alone"])
def test_an_unknown_contract_names_it_and_the_tenant(world: World, cli: CliRunner, tmp_path: Path, kind: str) -> None:
    reservation = world.ref.partition(":")[0]
    ref, expected = {
        "in its reservation": (f"{reservation}:99999", f"no contract 99999 in reservation {reservation}"),
        "no such reservation": ("999999:99999", "no contract 99999 in reservation 999999"),
        "contract id alone": ("99999", "no contract 99999"),
    }[kind]
    out = tmp_path / "c.pdf"
    result = _render(cli, TEMPLATE, "--contract", ref, "--tenant", TENANT, "--out", str(out))
    _refused(result, expected, f"tenant {TENANT}", "RESERVATION:CONTRACT")
    assert not out.exists()


def test_a_signed_contract_is_not_previewed(world: World, cli: CliRunner, tmp_path: Path) -> None:
    ref = _crm_creates_contract(world.sb, world.sale, 880103)
    reservation, _, _ = ref.partition(":")
    world.sb.state.cvcrm.contratos[int(reservation)][-1]["assinado"] = "S"
    out = tmp_path / "c.pdf"
    result = _render(cli, TEMPLATE, "--contract", ref, "--tenant", TENANT, "--out", str(out))
    _refused(result, "already signed", f"tenant {TENANT}", f"contract {ref}", "--sample")
    assert not out.exists()


@pytest.mark.parametrize("value", ["abc", "3001:", ":801", "3001:801:1", "3001/801", "801 802", ""])
def test_a_malformed_contract_says_what_a_contract_is(world: World, cli: CliRunner, tmp_path: Path, value: str) -> None:
    out = tmp_path / "c.pdf"
    result = _render(cli, TEMPLATE, "--contract", value, "--tenant", TENANT, "--out", str(out))
    _refused(result, "--contract", "3001:801") if value else _refused(result, "--contract and --tenant")
    assert not out.exists()


@pytest.mark.parametrize(("name", "meant"), [("compra_e_vend", TEMPLATE), ("termo_ciencia", "termo_de_ciencia"),
                                             ("nada_parecido", None)])
def test_an_unknown_template_lists_the_templates(
    world: World, cli: CliRunner, tmp_path: Path, name: str, meant: str | None
) -> None:
    out = tmp_path / "c.pdf"
    result = _render(cli, name, "--contract", world.ref, "--tenant", TENANT, "--out", str(out))
    message = _refused(result, f"no contract template {name!r}", "compra_e_venda, evidencias, termo_de_ciencia")
    assert (f"did you mean {meant!r}?" in message) if meant else ("did you mean" not in message)
    assert not out.exists()


def test_what_the_command_prints_is_masked(world: World, cli: CliRunner, tmp_path: Path) -> None:
    """A file named after the buyer's CPF is written there, and the message masks the CPF."""
    buyer = world.sb.state.sienge.customers[world.sale["salesContractCustomers"][0]["id"]]
    digits = re.sub(r"\D", "", buyer["cpf"])
    out = tmp_path / f"previa-{digits}.pdf"
    result = _render(cli, TEMPLATE, "--contract", world.ref, "--tenant", TENANT, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert digits not in result.output and f"-{digits[-2:]}.pdf" in result.output
    assert _clear(result.output) == []
