"""`ponte template list|render`: through the registered CLI, as a person runs it."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from orchestration.cli.app import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def test_list_json_names_each_template_with_its_sources_and_variables() -> None:
    result = runner.invoke(app, ["template", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["templates"]}
    assert set(rows) == {"compra_e_venda", "evidencias", "termo_de_ciencia"}
    sale = rows["compra_e_venda"]
    assert sale["title"] == "Contrato particular de promessa de compra e venda"
    assert "sienge.unit" in sale["sources"] and "compradores" in sale["variables"]
    assert rows["termo_de_ciencia"]["variables"] == sorted(rows["termo_de_ciencia"]["variables"])


def test_list_as_a_table() -> None:
    result = runner.invoke(app, ["template", "list"])
    assert result.exit_code == 0, result.output
    assert "compra_e_venda" in result.output and "Termo de ciência" in result.output


def test_render_the_sample_writes_a_pdf_and_says_where(tmp_path: Path) -> None:
    out = tmp_path / "previa.pdf"
    html = tmp_path / "previa.html"
    result = runner.invoke(
        app, ["template", "render", "compra_e_venda", "--sample", "--out", str(out), "--html", str(html)]
    )
    assert result.exit_code == 0, result.output
    pages = len(PdfReader(io.BytesIO(out.read_bytes())).pages)
    assert str(out) in result.output
    assert re.search(rf"\b{pages} pages?\b", result.output)
    assert "<table" in html.read_text(encoding="utf-8")


def test_render_needs_a_contract_or_the_sample() -> None:
    result = runner.invoke(app, ["template", "render", "compra_e_venda"])
    assert result.exit_code == 2
    assert "--sample" in result.output


def test_render_an_unknown_template_lists_the_templates(tmp_path: Path) -> None:
    result = runner.invoke(app, ["template", "render", "nao_existe", "--sample", "-o", str(tmp_path / "x.pdf")])
    assert result.exit_code == 2
    assert "compra_e_venda" in result.output and not (tmp_path / "x.pdf").exists()
