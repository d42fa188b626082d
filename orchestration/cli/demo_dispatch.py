"""The demo's dispatch step: the CRM prepares two contracts, Ponte sends them as envelopes (Dagster run);
then a third contract whose client Ponte invites itself by WhatsApp, with its template and a
``/sign/{token}`` link on the gateway (the back-sync step follows that link to sign)."""

from __future__ import annotations

import base64
import os
import secrets
from typing import Any

from pipelines.connections import TenantConnectors, open_connector
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.signing_links import SECRET_ENV
from pipelines.dispatch.verify import confirm_code, send_code
from pipelines.documents.render import text_to_pdf
from pipelines.store import Envelope
from ponte import settings
from schemas import TenantConfig, load_tenant

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _crm_prepares_contracts(tenant: Any, sandbox: Any, count: int, skip: int = 0) -> list[int]:
    """What a CRM user does: generate and validate the sale contract of a reservation (PDF upload)."""
    reservations = [r for r in sandbox.state.cvcrm.reservas.values() if r.get("situacao") != "Cancelada"][
        skip : skip + count
    ]
    ids = []
    with open_connector(tenant, "cvcrm") as cvcrm:
        for reserva in reservations:
            pdf, _ = text_to_pdf(
                f"Contrato de compra e venda - reserva {reserva['idreserva']}",
                "\n".join(f"Cláusula {i}: condições gerais de venda da unidade." for i in range(1, 30)),
            )
            cvcrm.call(
                "upload_contrato",
                {
                    "idreserva_cv": reserva["idreserva"],
                    "contratos": [
                        {
                            "contrato_base64": base64.b64encode(pdf).decode(),
                            "contrato_nome": f"Contrato {reserva['idreserva']}",
                            "assinado": "N",
                            "validado": "S",
                        }
                    ],
                },
            )
            ids.append(int(reserva["idreserva"]))
    return ids


def run(*, store: Any, sandbox: Any, instance: Any, console: Any) -> None:
    from orchestration.definitions import defs

    tenant = load_tenant("demo")
    manager = str(tenant.options.contract_managers[0])
    with TenantConnectors(tenant, store) as connectors:
        code = send_code(store, tenant, manager, connectors.get("smtp"))
    console.print(
        f"[green]✓[/] verification code e-mailed to the contract manager (SMTP inbox: {len(sandbox.smtp.messages)} message(s))"
    )
    confirm_code(store, tenant, manager, code)
    reservations = _crm_prepares_contracts(tenant, sandbox, 2)
    console.print(f"  the CRM validated contracts on reservations {reservations}")
    with console.status("dispatching ready contracts through Dagster…"):
        result = defs.resolve_job_def("envelope_dispatch").execute_in_process(
            partition_key="demo", instance=instance, run_config=QUIET, raise_on_error=False
        )
    if not result.success:
        console.print(f"[red]✗[/] dispatch run {result.run_id} failed; see `make ui`")
        return
    (event,) = result.asset_materializations_for_node("signing_envelopes")
    meta = {key: value.value for key, value in event.metadata.items()}
    console.print(
        f"[green]✓[/] dispatch: {meta.get('sent')} envelope(s) sent to {tenant.options.signing_provider}, "
        f"{meta.get('dead_lettered')} dead-lettered; package used {meta.get('package_used')}, "
        f"remaining {meta.get('package_remaining')}"
    )
    _templated_contract(store, tenant, sandbox, console)
    _invite_by_whatsapp(store, tenant, sandbox, console)


#: the developer's own signers (tenant-level): they sign every contract after the buyers
COMPANY_SIGNERS = [
    {"role": "company_representative", "name": "Roberta Diretora Souza", "email": "diretoria@demo.example.com",
     "document": "52998224725"},
    {"role": "company_witness", "name": "Tiago Testemunha Lima", "email": "juridico@demo.example.com",
     "document": "11144477735"},
]


def with_company_signers(tenant: TenantConfig) -> TenantConfig:
    """The demo tenant with its legal representative and witness in the chain, after the buyers."""
    data = tenant.model_dump(mode="json")
    chain = data["options"]["signer_chain"]
    chain += [{"role": "co_buyer", "order": 1, "required": False},
              {"role": "company_representative", "order": 4}, {"role": "company_witness", "order": 4}]
    data["options"]["company_signers"] = COMPANY_SIGNERS
    return TenantConfig.model_validate(data)


def _templated_contract(store: Any, tenant: TenantConfig, sandbox: Any, console: Any) -> None:
    """A married couple's contract generated from the compra_e_venda template, from imported data only."""
    people = sandbox.state.cvcrm.pessoas
    reserva = next(
        (r for r in sandbox.state.cvcrm.reservas.values()
         if r.get("situacao") != "Cancelada" and (people.get(r.get("idpessoa")) or {}).get("conjuge")
         and not sandbox.state.cvcrm.contratos.get(r["idreserva"])),
        None,
    )
    if reserva is None:
        console.print("[yellow]![/] no imported reservation of a married buyer without a contract; template step skipped")
        return
    contract_id = 990000 + int(reserva["idreserva"])
    # what a CRM user does: a contract from the template, validated; every value comes from the import
    sandbox.state.cvcrm.contratos[reserva["idreserva"]].append(
        {"idreservacontrato": contract_id, "contrato": f"Compra e venda - reserva {reserva['idreserva']}",
         "tipo": "Contrato de compra e venda", "assinado": "N", "validado": "S", "modelo": "compra_e_venda"}
    )
    report = run_dispatch(
        store, with_company_signers(tenant),
        DispatchRequest(contracts=[f"{reserva['idreserva']}:{contract_id}"], run_id="demo-template"),
    )
    outcome = next(iter(report.outcomes), None)
    if outcome is None or outcome.result != "sent":
        console.print(f"[red]✗[/] templated contract: {outcome.result if outcome else 'nothing'} "
                      f"({outcome.reason if outcome else 'no contract'})")
        return
    with store.session() as session:
        envelope = session.get(Envelope, outcome.envelope_id)
        provider_id, roles = envelope.provider_envelope_id, [s.role for s in envelope.signers]
    (content,) = sandbox.state.docusign.documents[provider_id].values()
    out = settings.home() / "demo" / f"contrato-{contract_id}.pdf"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(content)
    console.print(
        f"[green]✓[/] contract {contract_id} rendered from template compra_e_venda with imported data "
        f"(Sienge development, unit, payment conditions; the buyer's spouse from Sienge) and sent to sign by "
        f"{', '.join(roles)}; its PDF: {out}"
    )


def ponte_invites(tenant: TenantConfig) -> TenantConfig:
    """The demo tenant as one whose client Ponte invites itself by WhatsApp (the IXC way): same systems,
    ``notifications.by: ponte``, the client alone in the chain, on the WhatsApp channel."""
    data = tenant.model_dump(mode="json")
    data["options"]["notifications"]["by"] = "ponte"
    data["options"]["signer_chain"] = [{"role": "client", "order": 1, "channel": "whatsapp"}]
    return TenantConfig.model_validate(data)


def _invite_by_whatsapp(store: Any, tenant: TenantConfig, sandbox: Any, console: Any) -> None:
    # the gateway checks the links with this secret; in production it is set on every process
    # (docs/deploy.md), here the demo's one process makes the links and serves them
    os.environ.setdefault(SECRET_ENV, secrets.token_urlsafe(48))
    (reservation,) = _crm_prepares_contracts(tenant, sandbox, 1, skip=2)
    report = run_dispatch(
        store, ponte_invites(tenant), DispatchRequest(reservations=[str(reservation)], run_id="demo-whatsapp")
    )
    outcome = next(iter(report.outcomes), None)
    if outcome is None or outcome.result != "sent":
        console.print(f"[red]✗[/] WhatsApp invitation: {outcome.result if outcome else 'nothing'} "
                      f"({outcome.reason if outcome else 'no ready contract'})")
        return
    invited = [m for m in sandbox.whatsapp.messages() if "/sign/" in " ".join(m.get("parameters") or [])]
    console.print(
        f"[green]✓[/] reservation {reservation}: envelope sent to DocuSign with its client embedded; Ponte "
        f"invited the client by WhatsApp (template {invited[-1]['template'] if invited else '?'}) with a "
        "/sign/<token> link on the gateway"
    )
