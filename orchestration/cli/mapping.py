"""`ponte mapping`: try a mapping on a sample, explain it, list them.

Integration engineers iterate on mappings here before anything runs against a real system: ``test``
runs the compiled mapping on a sample payload (with the id map, tenant and params a pipeline would
inject, from ``<sample>.context.json``) and prints the target record or the errors, each naming the
mapping file, line, field and record.
"""

from __future__ import annotations

import difflib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from mappings import check_no_credentials, context_path, list_mappings, load_context, load_mapping, read_json
from orchestration.cli.console import EXIT_USER_ERROR, console, err_console, friendly_errors
from ponte import ConfigurationError, PonteError, mask_record, redact

app = typer.Typer(
    help="Schema mappings: try one on a sample payload, explain its fields, list them.",
    no_args_is_help=True,
)


def _error(exc: PonteError | str) -> None:
    """Print an error masked and escaped: mapping paths such as ``phones[type=Celular]`` look like markup."""
    err_console.print(f"[bold red]error[/]: {escape(redact(str(exc)))}", markup=True, soft_wrap=True)


def _checked(mapping: str) -> Any:
    """Load and compile a mapping, refusing one that reads a tenant credential."""
    compiled = load_mapping(mapping)
    spec = compiled.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    check_no_credentials(spec, str(compiled.path), compiled.field_lines)
    return compiled


def _load(mapping: str) -> Any:
    try:
        return _checked(mapping)
    except PonteError as exc:
        _error(exc)
        raise typer.Exit(EXIT_USER_ERROR) from None


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


@app.command("test")
@friendly_errors
def test_cmd(
    mapping: str = typer.Argument(..., help="Mapping name (sienge/customer_to_person) or a .yaml path."),
    sample: Path = typer.Option(
        ..., "--sample", "-s", help="Source payload (JSON object, or a list of them)."
    ),
    context: Path = typer.Option(
        None, "--context", "-c", help="Context file (default: <sample>.context.json when it exists)."
    ),
    tenant: str = typer.Option(None, "--tenant", "-t", help="Tenant id or file, overriding the context's."),
    validate: bool = typer.Option(True, help="Validate the output against the target schema."),
) -> None:
    """Run MAPPING on a sample and print the output record (personal data masked), or the errors.

    Exit code 0 when every record mapped, 1 when a record failed (each failure printed with its
    file:line, field and record), 2 for a broken mapping or an unreadable sample.
    """
    compiled = _load(mapping)
    try:
        payload = read_json(sample, "sample")
        ctx = load_context(context or context_path(sample), tenant)
    except PonteError as exc:
        _error(exc)
        raise typer.Exit(EXIT_USER_ERROR) from None
    records = payload if isinstance(payload, list) else [payload]
    outputs: list[Any] = []
    failures = 0
    for record in records:
        try:
            out = compiled.run(record, ctx) if validate else compiled.apply(record, ctx)
        except PonteError as exc:
            failures += 1
            _error(exc)
            continue
        outputs.append(_plain(out))
    if outputs:
        shown = outputs if isinstance(payload, list) else outputs[0]
        # masked like every CLI output (samples are often real records): documents, e-mails, phones and
        # secrets by field and by pattern; names stay, they are what a mapping's output is checked by
        shown = mask_record(json.loads(json.dumps(shown, default=str)), keep={"name"})
        console.print_json(json.dumps(shown, ensure_ascii=False))
        if shown is None:
            err_console.print("(the mapping's filters skipped this record)")
    if failures:
        err_console.print(f"{failures} of {len(records)} record(s) failed")
        raise typer.Exit(1)


@app.command("explain")
@friendly_errors
def explain_cmd(
    mapping: str = typer.Argument(..., help="Mapping name or a .yaml path."),
) -> None:
    """Print a table of target field <- source, transforms, condition and owner."""
    compiled = _load(mapping)
    console.print(
        f"[bold]{escape(compiled.name)}[/] v{compiled.version}: {compiled.source} -> {compiled.target}"
        + (" (one record per item)" if compiled.is_split else "")
    )
    if compiled.spec.description:
        console.print(escape(compiled.spec.description))
    table = Table(show_header=True, header_style="bold")
    for column in ("line", "target", "← source", "transforms", "when", "owner"):
        table.add_column(column, overflow="fold")
    for row in compiled.explain():
        table.add_row(
            *(
                escape(cell)
                for cell in (
                    str(row.line or ""),
                    row.target,
                    row.source,
                    row.transforms,
                    row.condition,
                    row.owner,
                )
            )
        )
    console.print(table)
    if compiled.spec.ownership and compiled.spec.ownership.fields:
        others = ", ".join(f"{k} ({v})" for k, v in compiled.spec.ownership.fields.items())
        console.print(f"owned by other systems (kept on merge): {others}")


@app.command("list")
@friendly_errors
def list_cmd() -> None:
    """List every mapping with its source, target, version and whether it compiles."""
    table = Table(show_header=True, header_style="bold")
    for column in ("mapping", "source", "target", "version", "status"):
        table.add_column(column)
    for name in list_mappings():
        try:
            compiled = _checked(name)
        except PonteError as exc:
            table.add_row(name, "", "", "", f"[red]✗ {escape(redact(str(exc)))}[/]")
            continue
        table.add_row(name, compiled.source, compiled.target, str(compiled.version), "[green]✓[/]")
    console.print(table)


@app.command("check")
@friendly_errors
def check_cmd(mapping: str = typer.Argument(..., help="Mapping name or a .yaml path.")) -> None:
    """Load and compile one mapping; print what is wrong with it (file:line, field, fix)."""
    compiled = _load(mapping)
    console.print(
        f"[green]✓[/] {compiled.path}: {compiled.source} -> {compiled.target}, "
        f"{len(compiled.fields)} field(s)"
    )


# ----------------------------------------------------------------------------------- mapping new


def _schema_key(key: str, registry: dict[str, Any], role: str) -> str:
    if key not in registry:
        close = difflib.get_close_matches(key, list(registry), n=1, cutoff=0.5)
        fix = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigurationError(f"unknown {role} schema {key!r}", hint=f"{fix}schemas: {', '.join(sorted(registry))}")
    return key


def skeleton(source: str, target: str, path: Path) -> str:
    """A new mapping file at ``path``: the target schema's required fields, each a TODO that compiles
    (``default: null``) and fails at run time as a missing field until it is given a source."""
    from mappings import describe, model_fields, schema_registry
    from orchestration.schema_export import MAPPING_SCHEMA, schema_line

    registry = schema_registry()
    source_fields = list(model_fields(registry[source]))
    model = registry[target]
    required = [(info.alias or name, info) for name, info in model.model_fields.items() if info.is_required()]
    optional = [info.alias or name for name, info in model.model_fields.items() if not info.is_required()]
    lines = [
        schema_line(MAPPING_SCHEMA, path),
        f"# {source} -> {target}, written by `ponte mapping new`: give each TODO field a source (from: <source",
        "# path>, value, template, each, cases; docs/mappings.md), then `ponte mapping check` and",
        "# `ponte mapping test -s <sample.json>`.",
        "version: 1",
        "description: TODO what this mapping produces, and for which flow",
        f"source: {source}",
        f"target: {target}",
        "fields:",
        f"  # the required fields of {target}",
    ]
    for name, info in required:
        alike = difflib.get_close_matches(name, source_fields, n=3, cutoff=0.6)
        hint = f"; source fields alike: {', '.join(alike)}" if alike else ""
        lines.append(f"  {name}: {{default: null}}  # TODO: {describe(info.annotation)}, required{hint}")
    if optional:
        lines.append(f"  # optional fields of {target}: {', '.join(optional)}")
    lines += [
        "# ownership:  # which system owns each target field when an import writes over a record",
        f"#   default: {'ponte' if source.startswith('canonical/') else source.split('/')[0]}",
    ]
    return "\n".join(lines) + "\n"


@app.command("new")
@friendly_errors
def new_cmd(
    source: str = typer.Argument(..., help="Source schema: sienge/unit, canonical/person, ..."),
    target: str = typer.Argument(..., help="Target schema: canonical/unit, cvcrm/cliente, ..."),
    name: str = typer.Option(None, "--name", help="File name without .yaml (default: <source>_to_<target>)."),
    out: Path = typer.Option(
        None, "--out", help="Directory to write it in (default: mappings/<system>/, the outside system's)."
    ),
) -> None:
    """Write a mapping skeleton from SOURCE to TARGET listing the target schema's required fields as
    TODOs. It loads as `ponte mapping check` loads it; an existing file is never overwritten."""
    from mappings import MAPPINGS_DIR, schema_registry

    registry = schema_registry()
    try:
        _schema_key(source, registry, "source")
        _schema_key(target, registry, "target")
    except PonteError as exc:
        _error(exc)
        raise typer.Exit(EXIT_USER_ERROR) from None
    name = name or f"{source.split('/')[1]}_to_{target.split('/')[1]}"
    if not re.fullmatch(r"[a-z0-9][a-z0-9_]*", name):
        _error(f"{name!r} is not a mapping name: lowercase letters, digits and _")
        raise typer.Exit(EXIT_USER_ERROR)
    system = source.split("/")[0] if not source.startswith("canonical/") else target.split("/")[0]
    path = (out or MAPPINGS_DIR / system) / f"{name}.yaml"
    if path.exists():
        _error(f"{path} already exists; nothing written (edit it, or pass another --name)")
        raise typer.Exit(EXIT_USER_ERROR)
    text = skeleton(source, target, path)
    with tempfile.TemporaryDirectory() as scratch:  # checked as `ponte mapping check` loads it
        trial = Path(scratch) / path.name
        trial.write_text(text, encoding="utf-8")
        _load(str(trial))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as handle:  # never overwrites, even a file made meanwhile
        handle.write(text)
    shown = f"{system}/{name}" if out is None else str(path)
    console.print(f"wrote {path}: give each TODO field a source, then `ponte mapping check {shown}`",
                  markup=False, highlight=False)


__all__ = ["app"]
