"""Contract templates (Jinja2 sandboxed, WeasyPrint): what the PDF says, read back with poppler's pdftotext.

The shipped templates are rendered with sample-like contexts; errors (a missing value, a sandbox
escape, an outside URL, a template using what its declaration does not) are checked on templates
written to a temporary directory.
"""

from __future__ import annotations

import io
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import markupsafe
import pypdfium2 as pdfium
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from pipelines.documents import render
from pipelines.documents.placement import A4, place
from pipelines.documents.render import (
    SIGNATURE_BAND,
    render_html,
    render_template,
    template_info,
    validate_all,
)
from ponte.errors import ConfigurationError, DataError

from .support import need, pdf_text, sample, words, write_template

SPOUSE_CLAUSE = "Da anuência do cônjuge"


def _three_buyers() -> dict[str, Any]:
    """A married titular whose spouse does not buy, a single co-buyer, and a company."""
    context = sample()
    context["compradores"] = [
        {
            "nome": "Ana Beatriz Gonçalves",
            "documento": "529.982.247-25",
            "pessoa": "fisica",
            "papel": "titular",
            "estado_civil": "casada",
            "casado": True,
            "conjuge": {"nome": "Paulo Sérgio Gonçalves", "documento": "371.655.920-24"},
            "email": "ana@example.com",
        },
        {
            "nome": "Carlos Eduardo Lima",
            "documento": "118.406.287-07",
            "pessoa": "fisica",
            "papel": "associado",
            "estado_civil": "solteiro",
            "casado": False,
            "conjuge": None,
            "email": None,
        },
        {
            "nome": "Horizonte Participações Ltda.",
            "documento": "27.586.431/0001-38",
            "pessoa": "juridica",
            "papel": "associado",
            "estado_civil": "",
            "casado": False,
            "conjuge": None,
            "email": "financeiro@example.com",
        },
    ]
    context["comprador"] = context["compradores"][0]
    return context


def _single_buyer() -> dict[str, Any]:
    context = sample()
    context["compradores"] = [
        {
            "nome": "Rafael Antunes Pereira",
            "documento": "824.573.016-53",
            "pessoa": "fisica",
            "papel": "titular",
            "estado_civil": "solteiro",
            "casado": False,
            "conjuge": None,
            "email": "rafael@example.com",
        }
    ]
    context["comprador"] = context["compradores"][0]
    return context


@pytest.fixture(scope="module")
def sample_pdf() -> bytes:
    return render_template("compra_e_venda", sample(), record="contract 801").content


# -- what the contract says -------------------------------------------------------------------------


def test_every_buyer_of_a_three_buyer_sale_is_a_party_and_signs(tmp_path: Path) -> None:
    document = render_template("compra_e_venda", _three_buyers(), record="contract 9")
    text = words(pdf_text(document.content, tmp_path))
    for name in ("Ana Beatriz Gonçalves", "Carlos Eduardo Lima", "Horizonte Participações Ltda."):
        assert f"{name}," in text  # qualified among the parties
        assert re.search(rf"Comprador\(a\) {re.escape(name)}", text), name  # and in the signers' table
    assert "COMPRADOR(A) 3:" in text
    # the company is qualified by its CNPJ, the people by their CPF
    assert (
        "Horizonte Participações Ltda., pessoa jurídica de direito privado, inscrita no CNPJ sob o nº "
        "27.586.431/0001-38" in text
    )
    assert "Carlos Eduardo Lima, solteiro, inscrito(a) no CPF sob o nº 118.406.287-07" in text
    # the titular's spouse is named with her, consents, and signs without being a buyer
    assert "casado(a) com Paulo Sérgio Gonçalves, CPF 371.655.920-24" in text
    assert SPOUSE_CLAUSE in text
    assert "Paulo Sérgio Gonçalves, CPF 371.655.920-24, cônjuge de Ana Beatriz Gonçalves" in text
    assert "Cônjuge anuente Paulo Sérgio Gonçalves" in text


def test_a_single_buyer_has_no_spouse_clause(tmp_path: Path) -> None:
    text = words(pdf_text(render_template("compra_e_venda", _single_buyer()).content, tmp_path))
    assert "Rafael Antunes Pereira, solteiro, inscrito(a) no CPF sob o nº 824.573.016-53" in text
    assert SPOUSE_CLAUSE not in text and "casado(a) com" not in text and "anuente" not in text
    assert "Cláusula 6ª – Do foro" in text  # the clauses are numbered without it
    assert "prometem" not in text and "que o(a) COMPRADOR(A) pagará à VENDEDORA" in text


def test_a_married_couple_buying_together_consent_without_signing_twice(tmp_path: Path, sample_pdf: bytes) -> None:
    text = words(pdf_text(sample_pdf, tmp_path))
    assert SPOUSE_CLAUSE in text and "Cláusula 7ª – Do foro" in text
    assert "comparecem a este instrumento" in text
    assert "anuente" not in text  # both spouses already sign as buyers
    assert text.count("Comprador(a) Maria Conceição Souza") == 1


def test_each_installment_row_shows_its_values_on_one_line(tmp_path: Path, sample_pdf: bytes) -> None:
    lines = pdf_text(sample_pdf, tmp_path, layout=True).splitlines()
    for row in render.SAMPLE_CONTEXT["pagamento"]["parcelas"]:
        found = [line for line in lines if row["valor_parcela"] in line]
        assert found, row
        cells = words(found[0])
        assert f"{row['quantidade']} {row['valor_parcela']} {row['valor_total']}" in cells
        assert cells.startswith(row["descricao"].split()[0])
    assert any(re.search(r"Total\s+R\$ 450\.000,00", line) for line in lines)
    assert "Descrição" in "\n".join(lines) and "Valor de cada parcela" in "\n".join(lines)


def test_portuguese_glyphs_are_extracted_as_written(tmp_path: Path, sample_pdf: bytes) -> None:
    text = words(pdf_text(sample_pdf, tmp_path))
    for phrase in ("Cláusula 1ª – Das partes", "inscrita no CNPJ sob o nº", "Maria Conceição Souza",
                   "João Antônio Souza", "Do preço e da forma de pagamento", "área privativa de 72,35 m²",
                   "Residencial Jardim dos Ipês"):
        assert phrase in text, phrase
    for glyph in "çãéôºª":
        assert glyph in text, glyph
    assert "\ufffd" not in text and "?" not in text.replace("(a)?", "")


def test_pages_are_numbered_in_the_top_margin(tmp_path: Path, sample_pdf: bytes) -> None:
    pages = len(PdfReader(io.BytesIO(sample_pdf)).pages)
    assert pages >= 2
    for page in range(1, pages + 1):
        assert f"Página {page} de {pages}" in pdf_text(sample_pdf, tmp_path, page=page)
    for word in _word_boxes(sample_pdf, tmp_path):
        if word["text"] == "Página":
            assert word["yMax"] < 64  # the top margin: never where signature boxes go


def _word_boxes(content: bytes, tmp_path: Path) -> list[dict[str, Any]]:
    source = tmp_path / "boxes.pdf"
    source.write_bytes(content)
    html = subprocess.run(
        [need("pdftotext"), "-bbox", "-enc", "UTF-8", str(source), "-"], check=True, capture_output=True, text=True
    ).stdout
    boxes = []
    for page, chunk in enumerate(html.split("<page ")[1:], start=1):
        for m in re.finditer(
            r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', chunk
        ):
            x0, y0, x1, y1 = map(float, m.groups()[:4])
            boxes.append({"page": page, "xMin": x0, "yMin": y0, "xMax": x1, "yMax": y1, "text": m.group(5)})
    return boxes


def test_no_text_in_the_signature_band_where_the_boxes_go(tmp_path: Path) -> None:
    context = _three_buyers()
    row = {"descricao": "Parcela mensal", "quantidade": "1", "valor_parcela": "R$ 2.500,00",
           "valor_total": "R$ 2.500,00"}
    context["pagamento"]["parcelas"] = [dict(row, descricao=f"Parcela mensal {i}") for i in range(1, 80)]
    document = render_template("compra_e_venda", context)
    assert document.pages >= 3
    boxes = _word_boxes(document.content, tmp_path)
    assert {b["page"] for b in boxes} == set(range(1, document.pages + 1))
    band_top = A4[1] - SIGNATURE_BAND
    assert max(b["yMax"] for b in boxes) <= band_top
    signatures = place(["comprador", "conjuge", "socio", "testemunha", "vendedora", "outro"], document.pages, "all")
    for sig in signatures:
        assert sig.y >= band_top  # up to two rows of blocks fit in the band
        for b in boxes:
            if b["page"] == sig.page:
                assert b["yMax"] <= sig.y or b["xMax"] <= sig.x or b["xMin"] >= sig.x + sig.width


def test_the_logo_is_drawn_at_the_top_of_the_first_page(sample_pdf: bytes) -> None:
    logo_blue = (27, 94, 122)  # logo.svg's fill, used nowhere else in the layout

    def blue_pixels(page: int) -> list[tuple[int, int]]:
        image = pdfium.PdfDocument(sample_pdf)[page].render(scale=1).to_pil().convert("RGB")
        px = image.load()
        return [
            (x, y)
            for x in range(image.width)
            for y in range(image.height)
            if all(abs(a - b) <= 12 for a, b in zip(px[x, y], logo_blue, strict=True))
        ]

    first = blue_pixels(0)
    assert len(first) > 500
    assert max(y for _, y in first) < 130 and max(x for x, _ in first) < A4[0] / 2  # top-left header
    assert blue_pixels(1) == []


def test_the_terms_render_with_every_buyer(tmp_path: Path) -> None:
    document = render_template("termo_de_ciencia", _three_buyers(), title="Termo de ciência - Apto 1203")
    text = words(pdf_text(document.content, tmp_path))
    assert document.name == "Termo de ciência - Apto 1203.pdf"
    assert "Os abaixo assinados" in text and "declaram" in text
    assert "Horizonte Participações Ltda., CNPJ nº 27.586.431/0001-38" in text
    assert "Ana Beatriz Gonçalves, CPF nº 529.982.247-25" in text
    assert document.pages == len(PdfReader(io.BytesIO(document.content)).pages)


def test_the_same_context_gives_the_same_bytes() -> None:
    """The PDF's SHA-256 is part of the envelope's idempotency key."""
    a = render_template("compra_e_venda", sample(), title="Contrato 801")
    b = render_template("compra_e_venda", sample(), title="Contrato 801")
    assert a.sha256 == b.sha256
    assert PdfReader(io.BytesIO(a.content)).metadata.title == "Contrato 801"
    assert a.name == "Contrato 801.pdf"


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        (lambda c: c.pop("valor_total"), "valor_total"),
        (lambda c: c["unidade"].pop("area_privativa"), "unidade.area_privativa"),
        (lambda c: c["compradores"][1].pop("documento"), "compradores[1].documento"),
        (lambda c: c["pagamento"]["parcelas"][2].pop("valor_parcela"), "pagamento.parcelas[2].valor_parcela"),
        # None is not a value to print: never the word "None" in a contract
        (lambda c: c["vendedora"].update(cnpj=None), "vendedora.cnpj"),
        (lambda c: c["pagamento"].update(parcelas=None), "pagamento.parcelas"),
    ],
)
def test_a_missing_value_is_a_data_error_naming_it_and_the_record(drop: Any, named: str) -> None:
    context = sample()
    drop(context)
    with pytest.raises(DataError) as info:
        render_template("compra_e_venda", context, record="contract 801")
    error = info.value
    assert error.field == named and error.record == "contract 801"
    assert f"needs {named}" in str(error) and "compra_e_venda.html.j2 line" in str(error)
    assert error.hint == "fill it in the CRM / Sienge, or change the template"


def test_a_missing_value_names_where_it_comes_from() -> None:
    context = sample()
    del context["unidade"]["data_entrega"]
    with pytest.raises(DataError, match=r"unidade\.data_entrega \(from sienge\.unit\)"):
        render_html("compra_e_venda", context)


def test_an_unknown_template_lists_the_available_ones() -> None:
    for name in ("nao_existe", "../compra_e_venda", "_base"):
        with pytest.raises(ConfigurationError, match="compra_e_venda, evidencias, termo_de_ciencia"):
            render_template(name, sample())


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ compradores.append(1) }}",
        "{{ unidade.update({'nome': 'x'}) }}",
        "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    ],
)
def test_a_sandbox_escape_is_a_configuration_error_and_runs_nothing(templates: Path, escape: str) -> None:
    write_template(templates, "mau", f"<p>{escape}</p>", sources=["cvcrm.pessoas", "sienge.unit"])
    with pytest.raises(ConfigurationError, match="sandbox forbids"):
        render_html("mau", {"compradores": [], "unidade": {"nome": "Apto 1"}})


def test_a_template_never_fetches_from_the_network(templates: Path) -> None:
    """An outside URL stops the render before any request: a contract never silently loses an image."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    try:
        for tag in (
            f'<img src="http://127.0.0.1:{port}/x.png">',
            '<img src="http://127.0.0.1:1/x.png">',
            f'<link rel="stylesheet" href="http://127.0.0.1:{port}/a.css">',
            f"<style>@import url(http://127.0.0.1:{port}/b.css);</style>",
            '<img src="file:///etc/hostname">',
            '<img src="../../outside.png">',
        ):
            write_template(templates, "externo", f"<html><body><p>Olá</p>{tag}</body></html>", sources=[])
            with pytest.raises(ConfigurationError, match=r"refers to .*nothing was fetched"):
                render_template("externo", {})
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


def test_files_in_the_templates_directory_are_served(templates: Path) -> None:
    (templates / "estilo.css").write_text("p { color: #c00; }")
    (templates / "marca.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><rect width="20" height="20"/></svg>'
    )
    write_template(
        templates,
        "local",
        '<html><head><link rel="stylesheet" href="estilo.css"></head>'
        '<body><img src="{{ logo }}"><p>{{ titulo_documento }}</p></body></html>',
        sources=[],
    )
    document = render_template("local", {}, logo="marca.svg")
    assert document.pages == 1 and document.name == "Teste local.pdf"


# -- validation (`ponte validate`) -------------------------------------------------------------------


def test_the_shipped_templates_are_valid() -> None:
    results = validate_all()
    assert [item for item, _ in results] == [
        "mappings/templates/compra_e_venda.html.j2",
        "mappings/templates/evidencias.html.j2",
        "mappings/templates/termo_de_ciencia.html.j2",
    ]
    assert all(error is None for _, error in results), results


def test_template_info_lists_the_variables_used() -> None:
    info = template_info("compra_e_venda")
    assert info.title == "Contrato particular de promessa de compra e venda"
    assert "sienge.unit" in info.sources and "cvcrm.pessoas" in info.sources
    assert {"compradores", "pagamento", "unidade", "vendedora", "valor_total"} <= info.variables
    assert "titulo_documento" not in info.variables and "logo" not in info.variables
    assert render.list_templates() == ["compra_e_venda", "evidencias", "termo_de_ciencia"]


def test_validation_finds_undeclared_variables_and_sources(templates: Path) -> None:
    write_template(templates, "bom", "<p>{{ unidade.nome }} {{ hoje }}</p>", sources=["sienge.unit", "tenant"])
    write_template(templates, "variavel", "<p>{{ unidade.nome }}</p>\n<p>{{ preco }}</p>", sources=["sienge.unit"])
    write_template(templates, "fonte", "<p>x</p>\n\n<p>{{ unidade.area_privativa }}</p>", sources=["tenant"])
    write_template(templates, "desconhecida", "<p>{{ hoje }}</p>", sources=["tenant", "crm.planilha"])
    write_template(templates, "quebrado", "<p>\n{% if hoje %}\n{{ hoje }</p>", sources=["tenant"])
    write_template(templates, "sem_declaracao", "<p>{{ hoje }}</p>")
    (templates / f"orfa{render.DECLARATION_SUFFIX}").write_text("title: x\nsources: []\n")
    results = dict(validate_all())
    root = str(templates)
    assert results[f"{root}/bom.html.j2"] is None
    assert "line 2: uses 'preco', which is not a template variable" in results[f"{root}/variavel.html.j2"]
    assert (
        "line 3: uses 'unidade', which comes from sienge.unit, not declared in fonte.yml sources"
        in results[f"{root}/fonte.html.j2"]
    )
    assert "declares source 'crm.planilha', which is not one" in results[f"{root}/desconhecida.html.j2"]
    assert re.search(r"quebrado\.html\.j2 line 3: .*", results[f"{root}/quebrado.html.j2"])
    assert "has no declaration" in results[f"{root}/sem_declaracao.html.j2"]
    assert "without its template" in results[f"{root}/orfa{render.DECLARATION_SUFFIX}"]


def test_validation_follows_includes(templates: Path) -> None:
    write_template(templates, "_partes", "<p>{{ compradores | length }}</p>")
    write_template(templates, "com_parte", '{% include "_partes.html.j2" %}<p>{{ hoje }}</p>', sources=["tenant"])
    (error,) = [e for item, e in validate_all() if item.endswith("com_parte.html.j2")]
    assert error is not None and "'compradores', which comes from cvcrm.pessoas" in error
    assert template_info("com_parte").variables == {"compradores", "hoje"}


# -- autoescape: data is printed, never run ----------------------------------------------------------


PLACEHOLDER = "ZQXNOMEZQX"


@pytest.fixture(scope="module")
def baseline_html() -> str:
    context = sample()
    context["compradores"][0]["nome"] = PLACEHOLDER
    return render_html("compra_e_venda", context)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(min_size=1, max_size=60)
    | st.sampled_from(
        ["<script>alert(1)</script>", "{{ 7*7 }}", "{% for x in y %}", "R&D <b>", "'\"&amp;", "{{ ''.__class__ }}"]
    )
)
def test_any_buyer_name_is_printed_literally_and_never_runs(baseline_html: str, name: str) -> None:
    """The page differs from the baseline only by the name, escaped, wherever the name is printed."""
    context = sample()
    context["compradores"][0]["nome"] = name
    html = render_html("compra_e_venda", context)
    assert html == baseline_html.replace(PLACEHOLDER, str(markupsafe.escape(name)))
