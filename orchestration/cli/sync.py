"""`ponte sync`: run a flow now for one tenant, with the same code path as Dagster."""

from __future__ import annotations

from datetime import date

import typer
from rich.markup import escape
from rich.table import Table

from orchestration.cli.console import (
    EXIT_FAILURES,
    RecordProgress,
    console,
    emit_json,
    err_console,
    fail,
    friendly_errors,
)
from orchestration.cli.sync_dagster import dagster_instance, materializations, run_job
from pipelines.imports.report import COUNTERS, ImportReport  # no mapping import: keeps --help fast
from pipelines.store import open_store
from ponte import redact
from schemas import load_tenant

app = typer.Typer(help="Run a flow now for one tenant (manual re-sync).", no_args_is_help=True)

ENTITIES = ("enterprise", "unit", "customer", "sale")


def _parse_ids(ids: list[str], entity: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for value in ids:
        kind, sep, record_id = value.partition(":")
        if not sep:
            kind, record_id = entity, value
        if kind not in ENTITIES:
            fail(f"--id {value}: unknown entity {kind!r}; use one of {', '.join(ENTITIES)} (e.g. sale:42)")
        out.setdefault(kind, []).append(record_id)
    return out


def _import_in_dagster(instance: object, tenant: str, full: bool, since: str | None,
                       ids: dict[str, list[str]], plan: bool, *, quiet: bool) -> ImportReport:
    """The import as a Dagster run of ``customer_sale_import`` for ``tenant``; its report rebuilt from
    the run's materializations (one per CRM entity)."""
    from orchestration.imports.assets import ID_FIELDS, STEP, key_of

    if "enterprise" in ids:
        fail("--id enterprise:… is not a Dagster run config field; run it here with --local")
    mode = "ids" if ids else "since" if since else "full" if full else "incremental"
    run_config: dict[str, object] = {"mode": mode, "plan": plan}
    if since:
        run_config["since"] = since
    for field_name, name in ID_FIELDS.items():
        if ids.get(name):
            run_config[field_name] = ids[name]
    result = run_job(instance, "customer_sale_import", tenant, STEP, run_config,
                     {"ponte/mode": mode, "ponte/since": since or "",
                      "ponte/ids": str(sum(len(v) for v in ids.values())) if ids else ""}, quiet=quiet)
    report = ImportReport(tenant=tenant, plan=plan)
    metadata = materializations(result, STEP)
    for name, counts in report.entities.items():
        values = metadata.get(key_of(name).to_user_string(), {})
        for counter in COUNTERS:
            setattr(counts, counter, int(values.get(counter, 0) or 0))
        for connector in ("sienge", "cvcrm"):
            if f"api_calls.{connector}" in values:
                report.api_calls[connector] = int(values[f"api_calls.{connector}"])
    return report


def _report_moved(report: ImportReport) -> None:
    """--local with a Dagster instance: each CRM entity the import wrote, as a runless materialization
    (:mod:`orchestration.runless`)."""
    from orchestration.runless import configured, report_moved

    if report.plan or not configured():
        return
    from orchestration.translator import targets

    entity_ids = {entity.flow_entity: entity.id for entity in targets("import")}
    calls = {f"api_calls.{connector}": n for connector, n in report.api_calls.items()}
    report_moved(report.tenant, {
        entity_ids[name]: {**{counter: getattr(counts, counter) for counter in COUNTERS}, **calls}
        for name, counts in report.entities.items()
        if (counts.created or counts.updated or counts.cancelled) and name in entity_ids
    })


def print_import_report(report: ImportReport) -> None:
    title = f"import {report.tenant}" + (" (plan: nothing written)" if report.plan else "")
    table = Table(*("entity", *COUNTERS), title=title)
    for name, counts in report.entities.items():
        table.add_row(name, *(str(getattr(counts, c)) for c in COUNTERS))
    console.print(table)
    calls = ", ".join(f"{k} {v}" for k, v in report.api_calls.items())
    console.print(f"API calls: {calls}")
    if report.plan:
        for name, counts in report.entities.items():
            for decision, ids in counts.samples.items():
                console.print(
                    f"  would {decision.rstrip('d')} {name}: {', '.join(ids)}{' …' if len(ids) == 5 else ''}"
                )
    if report.dead_letters_by_reason:
        print_dead_letters_by_reason(report)
    elif report.total("dead_lettered") and not report.plan:
        console.print(f"[yellow]{report.total('dead_lettered')} record(s) dead-lettered[/]: "
                      f"{escape(report.list_command())}", soft_wrap=True)


def import_report_json(report: ImportReport) -> dict[str, object]:
    """What `sync import --json` prints: the totals, per entity, API calls, cursors and dead letters by
    reason (masked on output)."""
    return {
        "flow": "import",
        "tenant": report.tenant,
        "plan": report.plan,
        "totals": {counter: report.total(counter) for counter in COUNTERS},
        "entities": {
            name: {**{c: getattr(counts, c) for c in COUNTERS}, **({"samples": counts.samples} if report.plan else {})}
            for name, counts in report.entities.items()
        },
        "api_calls": dict(report.api_calls),
        "cursors": dict(report.cursors),
        "dead_letters_by_reason": [{"reason": reason, "count": count} for reason, count in report.reasons()],
    }


def print_dead_letters_by_reason(report: ImportReport) -> None:
    """The run's dead letters counted by reason, most frequent first, and the commands to inspect and
    replay them (one line each, so a narrow terminal wraps them without cutting anything)."""
    shown, others, letters = report.shown_reasons()
    console.print(f"[yellow]dead letters by reason[/] ({report.total('dead_lettered')} record(s) failed):")
    for reason, count in shown:
        console.print(f"  {count:>7}  {escape(redact(reason))}", soft_wrap=True)
    if others:
        console.print(f"  {letters:>7}  … {others} other reason(s)")
    console.print(f"inspect:   {escape(report.list_command())}", soft_wrap=True)
    console.print(f"one reason: {escape(report.list_command(shown[0][0]))}", soft_wrap=True)
    console.print(f"replay after the fix: {escape(report.replay_command())}", soft_wrap=True)


@app.command("import")
@friendly_errors
def import_cmd(
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant id (tenants/<id>.yaml)."),
    full: bool = typer.Option(False, "--full", help="Read everything, ignoring the saved cursors."),
    since: str = typer.Option(None, "--since", help="Read records modified since this date (yyyy-mm-dd)."),
    ids: list[str] = typer.Option(
        None, "--id", help="Sienge id to import; repeatable; ENTITY:ID (sale:42) or ID with --entity."
    ),
    entity: str = typer.Option("customer", "--entity", help="Entity of plain --id values."),
    plan: bool = typer.Option(False, "--plan", help="Dry run: show what would be created/updated/cancelled."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's report as JSON (masked)."),
    local: bool = typer.Option(False, "--local", help="Run here, not as a Dagster run (progress bars)."),
    dagster: bool = typer.Option(False, "--dagster", help="Run as a Dagster run (needs DAGSTER_HOME)."),
) -> None:
    """Import Sienge enterprises, units, customers and sales into CV CRM.

    Default: incremental from the saved cursors (with the tenant's lookback). Unchanged records cost no
    CRM call; bad records become dead letters (`ponte deadletter list`) and never stop the batch.
    With DAGSTER_HOME set the import is a Dagster run (tagged ponte/source: cli, in the UI's run
    history); --local runs it here and, with DAGSTER_HOME, records what it wrote on the CRM entities'
    assets. Exits 1 when some records were dead-lettered.
    """
    from pipelines.connections import open_connector
    from pipelines.imports.flow import ImportRequest, run_import

    if sum(bool(x) for x in (full, since, ids)) > 1:
        fail("choose one of --full, --since or --id")
    try:
        since_date = date.fromisoformat(since) if since else None
    except ValueError:
        fail(f"--since {since!r} is not a date; write it as yyyy-mm-dd")
        return
    parsed_ids = _parse_ids(ids or [], entity)
    instance = dagster_instance(local, dagster)
    if instance is not None:
        report = _import_in_dagster(instance, tenant, full, since, parsed_ids, plan, quiet=as_json)
    else:
        config = load_tenant(tenant)
        store = open_store()
        request = ImportRequest(full=full, since=since_date, ids=parsed_ids, plan=plan)
        with (
            open_connector(config, "sienge", store=store) as sienge,
            open_connector(config, "cvcrm", store=store) as cvcrm,
            RecordProgress(err_console if as_json else console, disable=as_json) as progress,
        ):
            report = run_import(store, config, sienge, cvcrm, request,
                                lambda name, n: progress.advance(f"{name}s", n))
        _report_moved(report)
    if as_json:
        emit_json(import_report_json(report))
    else:
        print_import_report(report)
    if report.total("dead_lettered") and not plan:
        raise typer.Exit(EXIT_FAILURES)


# Each flow adds its own `ponte sync <flow>` command from a module of its own (register(app)).
for _module in (
    "orchestration.cli.sync_dispatch",
    "orchestration.cli.sync_backsync",
    "orchestration.cli.sync_assistance",
):
    try:
        __import__(_module, fromlist=["register"]).register(app)
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:
            raise
