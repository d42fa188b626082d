"""`ponte mapping test | explain | list | check` from an engineer's seat."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from orchestration.cli.app import app
from tests.mappings.conftest import SAMPLES

runner = CliRunner()


def test_mapping_test_prints_the_output_record() -> None:
    sample = SAMPLES / "cvcrm/sale_to_reserva/emitido_dois_compradores.json"  # context file beside it
    result = runner.invoke(app, ["mapping", "test", "cvcrm/sale_to_reserva", "--sample", str(sample)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["idpessoa"] == 9137 and out["situacao"] == "vendida"


def test_mapping_test_prints_the_error_with_file_line_field_and_record() -> None:
    sample = SAMPLES / "sienge/customer_to_person/cpf_invalido.json"
    result = runner.invoke(app, ["mapping", "test", "sienge/customer_to_person", "-s", str(sample)])
    assert result.exit_code == 1
    assert "mappings/sienge/customer_to_person.yaml:11, record 77, field document" in result.output
    assert "CPF check digits do not match" in result.output
    assert "Traceback" not in result.output


def test_mapping_test_with_a_tenant_and_a_list_of_records(tmp_path: Path) -> None:
    sample = tmp_path / "batch.json"
    record = json.loads((SAMPLES / "sienge/unit_to_canonical/apartamento.json").read_text(encoding="utf-8"))
    sample.write_text(json.dumps([record, dict(record, id=306, name="Apto 503")]), encoding="utf-8")
    result = runner.invoke(app, ["mapping", "test", "sienge/unit_to_canonical", "-s", str(sample)])
    assert result.exit_code == 0, result.output
    assert [u["source_id"] for u in json.loads(result.stdout)] == ["305", "306"]


def test_mapping_test_on_a_broken_mapping_exits_2_with_the_fix(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nsource: sienge/unit\ntarget: canonical/unit\nfields:\n"
                      "  source_id: {from: id, transforms: [str]}\n"
                      "  enterprise_source_id: {from: enterpriseId, transforms: [str]}\n  name: nmae\n",
                      encoding="utf-8")
    sample = SAMPLES / "sienge/unit_to_canonical/apartamento.json"
    result = runner.invoke(app, ["mapping", "test", str(broken), "-s", str(sample)])
    assert result.exit_code == 2
    assert "broken.yaml:7" in result.output and "did you mean 'name'" in result.output


def test_mapping_test_with_an_unreadable_sample(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    result = runner.invoke(app, ["mapping", "test", "sienge/unit_to_canonical", "-s", str(bad)])
    assert result.exit_code == 2
    assert "bad.json:1: sample is not valid JSON" in result.output


def test_mapping_explain_shows_target_source_transforms_and_owner() -> None:
    result = runner.invoke(app, ["mapping", "explain", "cvcrm/person_to_cliente"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "canonical/person -> cvcrm/cliente" in result.output
    line = next(row for row in result.output.splitlines() if " telefone " in row)
    for cell in ("mobile | phones[0]", "phone_format('national')", "sienge"):
        assert cell in line
    assert "contatos (cvcrm)" in result.output


def test_mapping_list_and_check() -> None:
    result = runner.invoke(app, ["mapping", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "sienge/customer_to_person" in result.output and "✗" not in result.output
    result = runner.invoke(app, ["mapping", "check", "docusign/connect_to_signing_event"])
    assert result.exit_code == 0 and "✓" in result.output
