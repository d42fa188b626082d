"""Contract templates people write: HTML + Jinja2 (sandboxed), laid out as PDF by WeasyPrint.

A template is ``mappings/templates/<name>.html.j2`` (it usually extends the shared layout
``_base.html.j2`` and its stylesheet ``_contract.css``) with a declaration ``<name>.yml``::

    title: Contrato particular de promessa de compra e venda   # the PDF's title
    description: ...                                             # optional
    sources: [sienge.enterprise, sienge.unit, cvcrm.reserva, cvcrm.pessoas, cvcrm.contrato, tenant]

What a template may use is the variable table :data:`pipelines.dispatch.variables.VARIABLES`;
:func:`validate_all` (``ponte validate``) holds every template to it and to its declared sources.

Safety, because templates are written by people and filled with data from outside systems:

* Jinja2 runs in :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`: no ``__class__`` walks, no
  mutation; a violation is a :class:`ConfigurationError` and nothing runs.
* ``autoescape`` is on: a buyer named ``<b>{{ x }}</b>`` is printed as those characters, never markup
  or template code (values are substituted once, never parsed again).
* ``StrictUndefined``: a missing value is a :class:`DataError` naming it (``unidade.area_privativa``)
  and the record, never a blank in a contract someone signs. A value that is None (``representante``,
  a buyer's ``conjuge``) is false in ``{% if %}`` and takes ``| default("...")``, but printing it is the
  same error: a contract never says "None". Test optional values with ``{% if x %}``, not ``is none``.
* WeasyPrint fetches through :func:`_fetcher`: files under the templates directory only. Any other
  URL (``http://``, ``file:///etc/...``, ``data:``) stops the render with a ConfigurationError naming it
  before any request is made: a contract does not silently lose an image, nor depend on the network.

Layout: A4, page numbers ("Página X de Y") in the top-right margin box, and a bottom margin of
:data:`SIGNATURE_BAND` points on every page kept free of text: :mod:`pipelines.documents.placement` puts
the signature boxes there (blocks 48 pt high from 36 pt above the bottom edge: two rows fit).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import mimetypes
import re
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateNotFound, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing
from pydantic import BaseModel, ConfigDict, Field

from pipelines.documents.placement import SIGNATURE_BAND as PLACEMENT_BAND
from ponte import ConfigurationError, DataError, settings

#: bottom band of each page kept free for signature blocks (points); the page's bottom margin
SIGNATURE_BAND = int(PLACEMENT_BAND)
#: the developer's logo, a path relative to the templates directory (a tenant may pass its own)
DEFAULT_LOGO = "logo.svg"
#: names the renderer itself gives every template (besides the variable table)
RENDER_VARIABLES = {
    "titulo_documento": "the document's title (the declaration's, or the one dispatch passes)",
    "logo": "the logo's path, relative to the templates directory",
}
TEMPLATE_SUFFIX = ".html.j2"
#: ``.yml``, not ``.yaml``: every ``*.yaml`` under mappings/ is read as a schema mapping
DECLARATION_SUFFIX = ".yml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_DECLARATION_KEYS = {"title", "sources", "description"}
_MISSING_HINT = "fill it in the CRM / Sienge, or change the template"


def templates_dir() -> Path:
    """Where templates live; tests monkeypatch this to a temporary directory."""
    return settings.project_root() / "mappings" / "templates"


# --------------------------------------------------------------------------------------------------
# declarations and the template list


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    title: str
    sources: tuple[str, ...]
    #: top-level names the template (and what it extends or includes) uses, renderer names excluded
    variables: frozenset[str]
    description: str = ""


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(settings.project_root()))
    except ValueError:
        return str(path)


def list_templates() -> list[str]:
    """Names of the templates (``<name>.html.j2``; files starting with ``_`` are shared parts)."""
    directory = templates_dir()
    return sorted(
        p.name.removesuffix(TEMPLATE_SUFFIX)
        for p in directory.glob(f"*{TEMPLATE_SUFFIX}")
        if not p.name.startswith("_")
    )


def _template_path(name: str) -> Path:
    path = templates_dir() / f"{name}{TEMPLATE_SUFFIX}"
    if not _NAME.match(name) or not path.is_file():
        available = ", ".join(list_templates()) or "none"
        raise ConfigurationError(
            f"no contract template {name!r}",
            field="template",
            hint=f"templates available: {available} (files {TEMPLATE_SUFFIX} in mappings/templates)",
        )
    return path


def _declaration(name: str) -> dict[str, Any]:
    path = templates_dir() / f"{name}{DECLARATION_SUFFIX}"
    where = _display(path)
    if not path.is_file():
        raise ConfigurationError(
            f"template {name!r} has no declaration {where}",
            hint="write it with title: and sources: (see docs/dispatch.md, Templates)",
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f" line {line + 1}" if line is not None else ""
        raise ConfigurationError(f"{where}{at}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where}: a declaration is a mapping with title: and sources:")
    unknown = sorted(set(data) - _DECLARATION_KEYS)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key(s) {', '.join(unknown)}", hint="a declaration has title, sources, description"
        )
    if not isinstance(data.get("title"), str) or not data["title"].strip():
        raise ConfigurationError(f"{where}: title: is required (the PDF's title)", field="title")
    sources = data.get("sources")
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise ConfigurationError(
            f"{where}: sources: must be a list of source names", field="sources", hint=_sources_hint()
        )
    if data.get("description") is not None and not isinstance(data["description"], str):
        raise ConfigurationError(f"{where}: description: must be text", field="description")
    return data


def _sources_hint() -> str:
    from pipelines.dispatch.variables import SOURCES

    return "sources: " + ", ".join(SOURCES)


class TemplateDeclaration(BaseModel):
    """The declaration of a contract template (mappings/templates/<name>.yml): its title, a description,
    and the sources its variables come from."""

    # exported for editors (schemas/json/template-declaration.schema.json); _declaration holds the files
    # to the same rules when templates load
    model_config = ConfigDict(extra="forbid", title="Ponte contract template declaration")

    title: str = Field(min_length=1, description="The PDF's title")
    description: str | None = Field(None, description="What the contract is, for the people who pick it")
    sources: list[str] = Field(
        description="Where the template's variables come from (pipelines/dispatch/variables.py, SOURCES)"
    )


def declaration_json_schema() -> dict[str, Any]:
    """The JSON Schema of a declaration, with the source names an editor may complete."""
    from pipelines.dispatch.variables import SOURCES

    schema = TemplateDeclaration.model_json_schema(mode="validation")
    schema["properties"]["sources"]["items"] = {"enum": list(SOURCES)}
    return schema


def _used_names(name: str) -> dict[str, int]:
    """Top-level names the template and what it extends/includes use -> first line using each."""
    env = _environment(templates_dir())
    seen: set[str] = set()
    used: dict[str, int] = {}
    pending = [f"{name}{TEMPLATE_SUFFIX}"]
    while pending:
        file = pending.pop()
        if file in seen:
            continue
        seen.add(file)
        try:
            source = env.loader.get_source(env, file)[0]  # type: ignore[union-attr]
        except TemplateNotFound:
            raise ConfigurationError(f"template {name!r} refers to {file}, which does not exist") from None
        tree = _parse(env, source, file)
        undeclared = meta.find_undeclared_variables(tree)
        for node in tree.find_all(nodes.Name):
            if node.name in undeclared and node.ctx == "load":
                used.setdefault(node.name, node.lineno)
        for ref in meta.find_referenced_templates(tree):
            if ref is None:
                raise ConfigurationError(f"{file}: extends or includes a computed name; use a literal file name")
            pending.append(ref)
    return used


def _parse(env: ImmutableSandboxedEnvironment, source: str, file: str) -> nodes.Template:
    try:
        return env.parse(source, name=file, filename=file)
    except TemplateSyntaxError as exc:
        raise ConfigurationError(
            f"mappings/templates/{file} line {exc.lineno}: {exc.message}",
            hint="fix the template's Jinja syntax",
        ) from None


def template_info(name: str) -> TemplateInfo:
    """The declaration and the variables of template ``name``."""
    _template_path(name)
    declaration = _declaration(name)
    used = _used_names(name)
    return TemplateInfo(
        name=name,
        title=declaration["title"].strip(),
        sources=tuple(declaration["sources"]),
        variables=frozenset(set(used) - RENDER_VARIABLES.keys()),
        description=(declaration.get("description") or "").strip(),
    )


def _problems(name: str) -> list[str]:
    from pipelines.dispatch.variables import SOURCES, VARIABLES

    declaration = _declaration(name)
    sources = declaration["sources"]
    file = f"mappings/templates/{name}{TEMPLATE_SUFFIX}"
    problems = [
        f"{name}{DECLARATION_SUFFIX} declares source {source!r}, which is not one ({', '.join(SOURCES)})"
        for source in sources
        if source not in SOURCES
    ]
    for variable, line in sorted(_used_names(name).items(), key=lambda item: (item[1], item[0])):
        if variable in RENDER_VARIABLES:
            continue
        known = VARIABLES.get(variable)
        if known is None:
            problems.append(
                f"{file} line {line}: uses {variable!r}, which is not a template variable "
                f"(the table in pipelines/dispatch/variables.py: {', '.join(VARIABLES)})"
            )
        elif known.source not in sources:
            problems.append(
                f"{file} line {line}: uses {variable!r}, which comes from {known.source}, "
                f"not declared in {name}{DECLARATION_SUFFIX} sources"
            )
    return problems


def validate_all() -> list[tuple[str, str | None]]:
    """For ``ponte validate``: (template file, error or None) for every template and declaration."""
    directory = templates_dir()
    results: list[tuple[str, str | None]] = []
    names = list_templates()
    for name in names:
        item = _display(directory / f"{name}{TEMPLATE_SUFFIX}")
        try:
            problems = _problems(name)
        except ConfigurationError as exc:
            problems = [str(exc)]
        results.append((item, "; ".join(problems) or None))
    for orphan in sorted(directory.glob(f"*{DECLARATION_SUFFIX}")):
        if orphan.stem not in names:
            results.append(
                (_display(orphan), f"a declaration without its template {orphan.stem}{TEMPLATE_SUFFIX}")
            )
    return results


# --------------------------------------------------------------------------------------------------
# rendering HTML: sandbox, autoescape, missing values named with their path


class _MissingValue(UndefinedError):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path} is missing")
        self.path = path


class _Strict(StrictUndefined):
    """StrictUndefined whose error names the value's path (``compradores[1].conjuge``)."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateError] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, _MissingValue if exc is UndefinedError else exc)

    @property
    def _undefined_message(self) -> str:
        if self._undefined_exception is not _MissingValue:
            return super()._undefined_message
        obj, name = self._undefined_obj, self._undefined_name
        if obj is missing:
            return str(name)
        base = getattr(obj, "_ponte_path", None)
        if base is None:
            base = "(an empty value)" if obj is None else f"(a {type(obj).__name__})"
        return f"{base}.{name}" if isinstance(name, str) else f"{base}[{name!r}]"


class _Null(_Strict):
    """A value the context holds as None: false in ``{% if %}``, replaced by ``| default(...)``, and a
    :class:`DataError` naming it when printed, iterated or compared, never the word "None" in a contract."""

    __slots__ = ()

    def __init__(self, path: str) -> None:
        super().__init__(name=path)

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "None"


class _Tracked(dict):  # type: ignore[type-arg]
    """A dict of the context that knows where it is, so a missing key is named by its full path."""

    __slots__ = ("_ponte_path",)


class _TrackedList(list):  # type: ignore[type-arg]
    __slots__ = ("_ponte_path",)


def _track(value: Any, path: str) -> Any:
    if value is None:
        return _Null(path)
    if isinstance(value, Mapping):
        tracked = _Tracked({key: _track(item, f"{path}.{key}") for key, item in value.items()})
        tracked._ponte_path = path
        return tracked
    if isinstance(value, list | tuple):
        items = _TrackedList(_track(item, f"{path}[{index}]") for index, item in enumerate(value))
        items._ponte_path = path
        return items
    return value


def _no_none(value: Any) -> Any:
    """Every printed value passes here: a bare None (``variaveis.get('x')``) is missing, not "None"."""
    if value is None:
        raise _MissingValue("(a value that is None)")
    return value


@functools.lru_cache(maxsize=8)
def _environment(directory: Path) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        finalize=_no_none,
        loader=FileSystemLoader(str(directory), encoding="utf-8"),
        undefined=_Strict,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _template_line(tb: TracebackType | None) -> str:
    """``file line N`` of the innermost template frame of a traceback (Jinja rewrites them)."""
    found = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = f"{Path(filename).name} line {tb.tb_lineno}"
        tb = tb.tb_next
    return found


def render_html(
    name: str,
    context: Mapping[str, Any],
    *,
    record: str | None = None,
    title: str | None = None,
    logo: str | None = None,
) -> str:
    """The template ``name`` filled with ``context``: the HTML WeasyPrint lays out."""
    _template_path(name)
    declaration = _declaration(name)
    env = _environment(templates_dir())
    try:
        template = env.get_template(f"{name}{TEMPLATE_SUFFIX}")
    except TemplateSyntaxError as exc:
        raise ConfigurationError(
            f"mappings/templates/{exc.name or name} line {exc.lineno}: {exc.message}",
            hint="fix the template's Jinja syntax (ponte validate checks every template)",
        ) from None
    except TemplateNotFound as exc:
        raise ConfigurationError(f"template {name!r} refers to {exc.name}, which does not exist") from None
    values = {key: _track(value, key) for key, value in context.items()}
    values["titulo_documento"] = title or declaration["title"].strip()
    values["logo"] = logo or DEFAULT_LOGO
    try:
        return template.render(values)
    except _MissingValue as exc:
        top = re.split(r"[.\[]", exc.path, maxsplit=1)[0]
        source = _source_of(top)
        at = _template_line(exc.__traceback__)
        raise DataError(
            f"contract template {name!r} needs {exc.path}"
            + (f" (from {source})" if source else "")
            + ", which the contract does not provide"
            + (f" ({at})" if at else ""),
            record=record,
            field=None if exc.path.startswith("(") else exc.path,
            hint=_MISSING_HINT,
        ) from None
    except SecurityError as exc:
        at = _template_line(exc.__traceback__)
        raise ConfigurationError(
            f"template {name!r} tried something the sandbox forbids{f' ({at})' if at else ''}: {exc}",
            hint="templates print values, loop and test; they cannot reach Python objects",
        ) from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        at = _template_line(exc.__traceback__)
        raise ConfigurationError(
            f"template {name!r} failed{f' ({at})' if at else ''}: {type(exc).__name__}: {exc}",
            record=record,
            hint="fix the template (ponte template render NAME --sample previews it)",
        ) from None


def _source_of(variable: str) -> str | None:
    from pipelines.dispatch.variables import VARIABLES

    known = VARIABLES.get(variable)
    return known.source if known else None


# --------------------------------------------------------------------------------------------------
# HTML to PDF: WeasyPrint, fetching nothing but files under the templates directory


@dataclass(frozen=True)
class RenderedDocument:
    name: str
    content: bytes
    pages: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def _fetcher(root: Path) -> Any:
    from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

    class Refused(FatalURLFetchingError):
        def __init__(self, url: str) -> None:
            super().__init__(url)
            self.url = url

    class TemplatesOnly(URLFetcher):  # type: ignore[misc]
        """Serves files under ``root``; refuses every other URL before anything is requested."""

        refused = Refused

        def __init__(self) -> None:
            super().__init__(allowed_protocols=("file",), allow_redirects=False, fail_on_errors=True)
            self.root = root.resolve()

        def fetch(self, url: str, headers: Any = None) -> Any:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
                raise Refused(url)
            path = Path(urllib.request.url2pathname(parts.path)).resolve()
            if not path.is_relative_to(self.root) or not path.is_file():
                raise Refused(url)
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if path.suffix == ".svg":
                mime = "image/svg+xml"
            return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime})

    return TemplatesOnly()


def html_to_pdf(html: str, *, template: str = "template") -> tuple[bytes, int]:
    """Lay ``html`` out as PDF (A4, the signature band kept free); (bytes, page count)."""
    # its step-by-step progress is INFO; the CLI shows INFO logs (its warnings, e.g. bad CSS, stay)
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
    import weasyprint

    directory = templates_dir().resolve()
    fetcher = _fetcher(directory)
    # a user stylesheet marked !important wins over any template's own @page margin: the band placement.py
    # puts the signature boxes in stays free of text whatever a template's CSS says
    band = weasyprint.CSS(
        string=f"@page {{ size: A4; margin-bottom: {SIGNATURE_BAND}pt !important; }}", url_fetcher=fetcher
    )
    try:
        document = weasyprint.HTML(
            string=html, base_url=f"{directory.as_uri()}/", url_fetcher=fetcher
        ).render(stylesheets=[band])
        content = document.write_pdf()
    except fetcher.refused as exc:
        raise ConfigurationError(
            f"template {template!r} refers to {exc.url[:120]}, which is not a file in mappings/templates; "
            "nothing was fetched",
            hint="a contract never loads anything from the network: put the file (image, stylesheet) "
            "in mappings/templates and refer to it by its relative path",
        ) from None
    return bytes(content), len(document.pages)


def render_template(
    name: str,
    context: Mapping[str, Any],
    *,
    record: str | None = None,
    title: str | None = None,
    logo: str | None = None,
) -> RenderedDocument:
    """Fill template ``name`` with ``context`` and lay it out as a PDF.

    ``title`` overrides the declaration's title (the PDF's title and file name); ``logo`` a path
    relative to the templates directory, the developer's own logo (default :data:`DEFAULT_LOGO`).
    """
    html = render_html(name, context, record=record, title=title, logo=logo)
    content, pages = html_to_pdf(html, template=name)
    document_title = title or str(_declaration(name)["title"]).strip()
    return RenderedDocument(name=f"{document_title}.pdf", content=content, pages=pages)


# --------------------------------------------------------------------------------------------------
# a sample to preview templates with (`ponte template render NAME --sample`) and to test them


SAMPLE_CONTEXT: dict[str, Any] = {
    "vendedora": {"nome": "Ipê Empreendimentos Imobiliários SPE Ltda.", "cnpj": "11.444.777/0001-61"},
    "empreendimento": {
        "nome": "Residencial Jardim dos Ipês",
        "cnpj": "11.444.777/0001-61",
        "endereco": "Rua das Acácias, 1.250, Bairro São João",
        "cidade": "Belo Horizonte",
        "estado": "MG",
    },
    "unidade": {
        "nome": "Apartamento 1203, Bloco B",
        "tipo": "Apartamento 3 quartos",
        "area_privativa": "72,35",
        "data_entrega": "30/06/2028",
    },
    "contrato": {"id": "801", "titulo": "Contrato de compra e venda - Apto 1203 B", "numero": "2026/0801",
                 "data": "23/11/2026"},
    "valor_total": "R$ 450.000,00",
    "pagamento": {
        "valor_total": "R$ 450.000,00",
        "parcelas": [
            {"descricao": "Sinal (ato)", "quantidade": "1", "valor_parcela": "R$ 45.000,00",
             "valor_total": "R$ 45.000,00"},
            {"descricao": "Parcelas mensais", "quantidade": "36", "valor_parcela": "R$ 2.500,00",
             "valor_total": "R$ 90.000,00"},
            {"descricao": "Financiamento bancário (entrega das chaves)", "quantidade": "1",
             "valor_parcela": "R$ 315.000,00", "valor_total": "R$ 315.000,00"},
        ],
        "parcela_mensal": "R$ 2.500,00",
        "prazo_meses": "36",
    },
    "compradores": [
        {
            "nome": "Maria Conceição Souza",
            "documento": "529.982.247-25",
            "pessoa": "fisica",
            "papel": "titular",
            "estado_civil": "casada",
            "casado": True,
            "conjuge": {"nome": "João Antônio Souza", "documento": "371.655.920-24"},
            "email": "maria.souza@example.com",
        },
        {
            "nome": "João Antônio Souza",
            "documento": "371.655.920-24",
            "pessoa": "fisica",
            "papel": "associado",
            "estado_civil": "casado",
            "casado": True,
            "conjuge": {"nome": "Maria Conceição Souza", "documento": "529.982.247-25"},
            "email": "joao.souza@example.com",
        },
    ],
    "representante": {"nome": "Ricardo Gonçalves Lima", "documento": "118.406.287-07"},
    "testemunha_empresa": {"nome": "Fernanda Araújo Melo", "documento": "824.573.016-53"},
    "variaveis": {},
    "hoje": "23/11/2026",
}
SAMPLE_CONTEXT["comprador"] = SAMPLE_CONTEXT["compradores"][0]


# --------------------------------------------------------------------------------------------------
# plain text to PDF: not the contract renderer. The demo and the tests use it to make the PDFs a CRM
# would upload (fpdf2, a core font), so it stays here for them.


def _latin1(text: str) -> str:
    """Core PDF fonts are Latin-1: Portuguese fits; anything else becomes '?' rather than failing."""
    return text.encode("latin-1", "replace").decode("latin-1")


def text_to_pdf(title: str, body: str) -> tuple[bytes, int]:
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="pt")
    pdf.set_auto_page_break(auto=True, margin=SIGNATURE_BAND)
    pdf.set_margins(56, 56, 56)
    pdf.set_title(_latin1(title))
    pdf.set_creator("Ponte")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.multi_cell(0, 18, _latin1(title), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    for line in body.splitlines():
        if line.startswith("# "):
            pdf.ln(4)
            pdf.set_font("Helvetica", "B", 11)
            pdf.multi_cell(0, 14, _latin1(line[2:]), new_x="LMARGIN", new_y="NEXT")
        elif not line.strip():
            pdf.ln(6)
        else:
            pdf.set_font("Helvetica", "", 10)
            pdf.multi_cell(0, 13, _latin1(line), align="J", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output()), pdf.page_no()
