"""``ponte sandbox``: run local stand-ins of every outside system and drive them.

``up`` starts Sienge, CV CRM, DocuSign, Clicksign, WhatsApp, SMTP and a webhook sink on loopback with
seeded Brazilian data, prints where they listen and which credentials they accept, and runs until
Ctrl-C. ``sign`` and ``faults`` talk to a running sandbox's control API.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import httpx
import typer
from rich.progress import BarColumn, Progress, TextColumn

from orchestration.cli.console import console, fail, friendly_errors
from ponte import ConfigurationError

app = typer.Typer(
    help=(
        "Local stand-ins of Sienge, CV CRM, DocuSign, Clicksign, WhatsApp and SMTP: same paths, auth, "
        "paging, errors, rate limits and webhooks as production, with seeded data and fault injection."
    ),
    no_args_is_help=True,
)

DEFAULT_PORT_BASE = 8700
PORT_OFFSETS = {"sienge": 0, "cvcrm": 1, "docusign": 2, "clicksign": 3, "whatsapp": 4, "smtp": 5, "sink": 6}


def _control_url(system: str, url: str | None, port_base: int) -> str:
    if url:
        return url.rstrip("/")
    host = os.environ.get("PONTE_SANDBOX_HOST", "127.0.0.1")
    return f"http://{host}:{port_base + PORT_OFFSETS[system]}"


@app.command()
@friendly_errors
def up(
    customers: int = typer.Option(40, "--customers", "-n", min=0, help="How many Sienge customers to seed."),
    seed: int = typer.Option(7, "--seed", help="Seed of the generated data: same seed, same records."),
    profile: str = typer.Option(
        "clean",
        "--profile",
        help="Seed data: clean (every record imports) or realistic (people as real ERPs hold them: "
        "dirty documents, phones, e-mails and names, duplicates; about a third of the customers must fail).",
    ),
    port_base: int = typer.Option(
        DEFAULT_PORT_BASE,
        "--port-base",
        help="First port: sienge, cvcrm, docusign, clicksign, whatsapp, smtp, sink.",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (keep loopback)."),
    faults: list[str] = typer.Option(
        [],
        "--faults",
        "-f",
        help="Fault injection, system.key=value (repeatable), e.g. sienge.errors=500:0.1+503:0.05, "
        "docusign.latency_ms=200, cvcrm.fail_next=429+500, clicksign.webhook_duplicate_rate=0.3.",
    ),
    rate_limits: bool = typer.Option(
        True,
        "--rate-limits/--no-rate-limits",
        help="Enforce the real budgets (Sienge/CV CRM 200/min, DocuSign 3000/h).",
    ),
) -> None:
    """Start every stand-in and keep them running until Ctrl-C."""
    from connectors.sandbox import PROFILES

    if profile not in PROFILES:
        raise ConfigurationError(f"unknown profile {profile!r}", hint=" or ".join(PROFILES))

    sandbox = _start_seeding(
        customers=customers,
        seed=seed,
        faults=faults or None,
        rate_limits=rate_limits,
        port_base=port_base,
        host=host,
        profile=profile,
    )
    try:
        _print_banner(sandbox, seed=seed, customers=customers, profile=profile)
        threading.Event().wait()
    except KeyboardInterrupt:
        console.print("stopping the sandbox")
    finally:
        sandbox.stop()


def _start_seeding(**options: Any) -> Any:
    """``start_sandbox`` with a progress bar per seeding stage (gone once every stand-in listens)."""
    from connectors.sandbox import start_sandbox

    with Progress(
        TextColumn("[bold]seeding[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=console,
        transient=True,
    ) as progress:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=max(total, 1))
            progress.update(tasks[stage], completed=done, total=max(total, 1))

        return start_sandbox(progress=report, **options)


def _print_banner(sandbox: Any, *, seed: int, customers: int, profile: str) -> None:
    """What runs where: the seed, the realistic profile's expected failures, each stand-in's URL and
    the credentials it accepts, the webhook sink and the control API."""
    console.print(f"[bold]Ponte sandbox[/] (seed {seed}, {customers} customers, profile {profile})")
    if profile == "realistic":
        truth = sandbox.seed_data
        reasons: dict[str, int] = {}
        for reason in truth.expected_failures.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        console.print(
            f"  {len(truth.expected_failures)} customers must fail an import: "
            + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])),
            soft_wrap=True,
        )
        console.print(
            f"  {len(truth.duplicates)} duplicated CPFs; {len(truth.corrections)} CPF corrections pending "
            "(POST <sienge origin>/_sandbox/corrections applies them)",
            soft_wrap=True,
        )
    creds = sandbox.credentials()
    for name in sorted(creds):
        console.print(f"  [bold]{name:<9}[/] {sandbox.api[name]}", soft_wrap=True)
        console.print(
            "            " + ", ".join(f"{k}={v}" for k, v in creds[name].items()), soft_wrap=True
        )
    console.print(
        f"  [bold]{'sink':<9}[/] {sandbox.urls['sink']}/hooks/<name>  (webhook receiver)", soft_wrap=True
    )
    console.print(
        "Control API: <system origin>/_sandbox/... (faults, deliveries, signers); "
        "Ctrl-C stops everything."
    )


@app.command()
@friendly_errors
def sign(
    envelope: str = typer.Argument(..., help="Envelope id at the sandbox provider."),
    as_role: str = typer.Option(
        ...,
        "--as",
        help="The signer: role name (cliente, conjuge, testemunha), e-mail, name, id or 1-based position.",
    ),
    action: str = typer.Option("sign", "--action", help="sign | view | refuse | expire"),
    provider: str | None = typer.Option(
        None, "--provider", help="docusign | clicksign (found by id if omitted)."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Refusal reason."),
    ip: str | None = typer.Option(None, "--ip", help="Evidence: the signer's IP address."),
    url: str | None = typer.Option(
        None,
        "--url",
        envvar="PONTE_SANDBOX_URL",
        help="Origin of the provider's sandbox (default http://127.0.0.1:<port-base + offset>).",
    ),
    port_base: int = typer.Option(
        DEFAULT_PORT_BASE, "--port-base", help="Port base the sandbox was started with."
    ),
) -> None:
    """Make a sandbox signer sign, view, refuse or let the envelope expire (fires the real webhooks)."""
    if action not in ("sign", "view", "refuse", "expire"):
        raise ConfigurationError(f"unknown action {action!r}", hint="sign, view, refuse or expire")
    if provider not in (None, "docusign", "clicksign"):
        raise ConfigurationError(f"unknown provider {provider!r}", hint="docusign or clicksign")
    evidence = {k: v for k, v in {"reason": reason, "ip": ip}.items() if v}
    body = {"as": as_role, "action": action, "evidence": evidence or None}
    last: httpx.Response | None = None
    for candidate in [provider] if provider else ["docusign", "clicksign"]:
        assert candidate is not None
        origin = url if url else _control_url(candidate, url if provider or not url else None, port_base)
        try:
            last = httpx.post(
                f"{origin.rstrip('/')}/_sandbox/envelopes/{envelope}/act", json=body, timeout=10
            )
        except httpx.HTTPError as exc:
            fail(f"cannot reach the sandbox at {origin}: {exc} (is `ponte sandbox up` running?)")
        if last.status_code != 404 or provider:
            break
    assert last is not None
    if last.status_code >= 400:
        fail(f"the sandbox refused: {last.status_code} {last.text}")
    result = last.json()
    console.print(f"envelope {result.get('envelopeId', envelope)}: {result.get('status')}")
    for signer in result.get("recipients") or result.get("signers") or []:
        console.print(f"  {signer.get('name')}: {signer.get('status')}")


@app.command()
@friendly_errors
def faults(
    specs: list[str] = typer.Argument(
        ..., help="system.key=value items (see `up --help`); `system.clear=1` heals."
    ),
    url: str | None = typer.Option(
        None, "--url", envvar="PONTE_SANDBOX_URL", help="Origin of one system's sandbox."
    ),
    port_base: int = typer.Option(
        DEFAULT_PORT_BASE, "--port-base", help="Port base the sandbox was started with."
    ),
) -> None:
    """Change fault injection of a running sandbox now."""
    from connectors.sandbox import parse_fault_spec

    clears = {s.split(".")[0] for s in specs if s.endswith(".clear=1")}
    parsed = parse_fault_spec([s for s in specs if not s.endswith(".clear=1")])
    for system in sorted(clears | set(parsed)):
        config = parsed[system].model_dump() if system in parsed else {}
        origin = url or _control_url(system, None, port_base)
        try:
            response = httpx.put(f"{origin}/_sandbox/faults", json=config, timeout=10)
        except httpx.HTTPError as exc:
            fail(f"cannot reach the {system} sandbox at {origin}: {exc}")
        if response.status_code >= 400:
            fail(f"{system}: {response.text}")
        console.print(f"{system}: faults set")
