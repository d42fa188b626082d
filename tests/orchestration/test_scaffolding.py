"""First-run help (issue #21, point 6): `ponte tenant new` and `ponte mapping new` write files that load
and validate, name their JSON Schema on the first line and never overwrite; `ponte validate` warns (exit
0) about credential variables a tenant names that are unset, naming the variable and never a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from orchestration.cli.app import app
from orchestration.cli.validate import run_checks
from orchestration.schema_export import SCHEMA_LINE_PREFIX
from schemas.tenant import load_tenant

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    assert result.exit_code == code, (args, result.exit_code, result.output, result.exception)
    return result


def _schema_of(path: Path) -> Path:
    first = path.read_text(encoding="utf-8").partition("\n")[0]
    assert first.startswith(SCHEMA_LINE_PREFIX), first
    return (path.parent / first.removeprefix(SCHEMA_LINE_PREFIX)).resolve()


@pytest.fixture
def no_acme_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("PONTE_ACME")]:
        monkeypatch.delenv(name)


# ------------------------------------------------------------------------------------ tenant new

@pytest.mark.parametrize("provider", ["docusign", "clicksign", "zapsign"])
def test_tenant_new_writes_a_tenant_that_validates(tmp_path: Path, provider: str, no_acme_variables: None) -> None:
    _run("tenant", "new", "acme", "--name", "Construtora Acme Ltda", "--provider", provider, "--out", str(tmp_path))
    path = tmp_path / "acme.yaml"
    tenant = load_tenant(path)
    assert tenant.id == "acme" and tenant.name == "Construtora Acme Ltda"
    assert tenant.options.signing_provider == provider and provider in tenant.connectors
    assert {"sienge", "cvcrm"} <= set(tenant.connectors)
    refs = [ref for c in tenant.connectors.values() for ref in c.credentials.values()]
    assert refs and all(ref.env.startswith("PONTE_ACME_") and ref.default is None for ref in refs)
    assert _schema_of(path) == ROOT / "schemas" / "json" / "tenant.schema.json"
    assert "TODO" in path.read_text(encoding="utf-8")  # what the person must fill in is marked
    [check] = run_checks([path])
    assert check.error is None, check.error
    assert {w.variable for w in check.warnings} == {ref.env for ref in refs}


def test_tenant_new_defaults_to_the_tenants_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path))
    result = _run("tenant", "new", "obra-nova")
    path = tmp_path / "obra-nova.yaml"
    assert str(path) in result.output.replace("\n", "")
    config = load_tenant("obra-nova")
    assert config.name == "obra-nova" and config.options.signing_provider == "docusign"
    assert "PONTE_OBRA_NOVA_SIENGE_PASSWORD" in path.read_text(encoding="utf-8")


def test_tenant_new_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text("# mine\n", encoding="utf-8")
    result = _run("tenant", "new", "acme", "--out", str(tmp_path), code=2)
    assert "already exists" in result.output
    assert path.read_text(encoding="utf-8") == "# mine\n"


@pytest.mark.parametrize(("args", "says"), [
    (["Acme"], "not a tenant id"),
    (["acme", "--provider", "docusing"], "signing providers: clicksign, docusign"),
])
def test_tenant_new_refuses_bad_arguments(tmp_path: Path, args: list[str], says: str) -> None:
    result = _run("tenant", "new", *args, "--out", str(tmp_path), code=2)
    assert says in result.output
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------- mapping new

@pytest.mark.parametrize(("source", "target"), [
    ("sienge/unit", "canonical/unit"), ("canonical/person", "cvcrm/cliente"), ("clicksign/webhook", "canonical/signing_event"),
])
def test_mapping_new_writes_a_skeleton_that_checks(tmp_path: Path, source: str, target: str) -> None:
    from mappings import load_mapping, schema_registry

    _run("mapping", "new", source, target, "--name", "draft", "--out", str(tmp_path))
    path = tmp_path / "draft.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert (data["source"], data["target"]) == (source, target)
    model = schema_registry()[target]
    required = {info.alias or name for name, info in model.model_fields.items() if info.is_required()}
    assert set(data["fields"]) == required
    assert path.read_text(encoding="utf-8").count("TODO") >= len(required)
    assert _schema_of(path) == ROOT / "schemas" / "json" / "mapping.schema.json"
    checked = _run("mapping", "check", str(path))
    assert "✓" in checked.output
    assert load_mapping(path).target == target


def test_mapping_new_names_the_file_after_its_schemas(tmp_path: Path) -> None:
    _run("mapping", "new", "sienge/enterprise", "canonical/enterprise", "--out", str(tmp_path))
    assert (tmp_path / "enterprise_to_enterprise.yaml").is_file()


def test_mapping_new_never_overwrites_and_knows_the_schemas(tmp_path: Path) -> None:
    (tmp_path / "draft.yaml").write_text("# mine\n", encoding="utf-8")
    result = _run("mapping", "new", "sienge/unit", "canonical/unit", "--name", "draft", "--out", str(tmp_path), code=2)
    assert "already exists" in result.output and (tmp_path / "draft.yaml").read_text() == "# mine\n"
    result = _run("mapping", "new", "sienge/unt", "canonical/unit", "--out", str(tmp_path), code=2)
    assert "did you mean 'sienge/unit'?" in result.output


# ------------------------------------------------------------------- validate: unset credentials

def _tenant(tmp_path: Path, credentials: dict) -> Path:
    data = yaml.safe_load((ROOT / "tenants" / "demo.yaml").read_text(encoding="utf-8"))
    data["id"] = "acme"
    data["connectors"]["docusign"]["credentials"] = credentials
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def test_validate_warns_about_unset_credential_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_acme_variables: None
) -> None:
    monkeypatch.setenv("PONTE_ACME_DOCUSIGN_HMAC", "hmac-value-that-is-set-9f8e7d")
    path = _tenant(tmp_path, {
        "access_token": {"env": "PONTE_ACME_DOCUSIGN_TOKEN"},                    # unset: warned
        "connect_hmac_key": {"env": "PONTE_ACME_DOCUSIGN_HMAC"},                 # set: fine
        "integration_key": {"env": "PONTE_ACME_DOCUSIGN_KEY", "default": "sb"},  # sandbox default: fine
    })
    table = _run("validate", str(path))
    assert "tenant acme, connector docusign, credential access_token" in table.output
    assert "environment variable PONTE_ACME_DOCUSIGN_TOKEN is not set" in table.output
    assert "1 warning(s)" in table.output and "all 1 checks passed" in table.output
    assert "PONTE_ACME_DOCUSIGN_HMAC" not in table.output and "PONTE_ACME_DOCUSIGN_KEY" not in table.output

    report = json.loads(_run("validate", str(path), "--json").stdout)
    assert report["ok"] is True and report["failed"] == 0 and report["warnings"] == 1
    [warning] = [row for row in report["checks"] if row["result"] == "warning"]
    assert warning | {"warning": ""} == {
        "kind": "credential", "item": "tenant acme, connector docusign, credential access_token", "error": None,
        "result": "warning", "warning": "", "tenant": "acme", "connector": "docusign",
        "credential": "access_token", "variable": "PONTE_ACME_DOCUSIGN_TOKEN",
    }
    assert "environment variable PONTE_ACME_DOCUSIGN_TOKEN is not set" in warning["warning"]
    for output in (table.output, json.dumps(report)):
        assert "hmac-value-that-is-set-9f8e7d" not in output


def test_warnings_do_not_hide_failures(tmp_path: Path, no_acme_variables: None) -> None:
    good = _tenant(tmp_path, {"access_token": {"env": "PONTE_ACME_DOCUSIGN_TOKEN"}})
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: broken\nname: Broken\nconnectors: 12\n", encoding="utf-8")
    report = json.loads(_run("validate", str(good), str(broken), "--json", code=1).stdout)
    assert [c["result"] for c in report["checks"]] == ["ok", "warning", "failed"]
    assert report["failed"] == 1 and report["warnings"] == 1 and report["total"] == 2
