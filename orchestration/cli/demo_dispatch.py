"""The demo's dispatch step: the CRM prepares two contracts, Ponte sends them as envelopes (Dagster run)."""

from __future__ import annotations

import base64
from typing import Any

from pipelines.connections import open_connector
from pipelines.dispatch.connections import ConnectorSet
from pipelines.dispatch.verify import confirm_code, send_code
from pipelines.documents.render import text_to_pdf
from schemas.tenant import load_tenant

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _crm_prepares_contracts(tenant: Any, sandbox: Any, count: int) -> list[int]:
    """What a CRM user does: generate and validate the sale contract of a reservation (PDF upload)."""
    reservations = [r for r in sandbox.state.cvcrm.reservas.values() if r.get("situacao") != "Cancelada"][
        :count
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
    with ConnectorSet(tenant, store) as connectors:
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
