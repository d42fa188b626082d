"""The names of Ponte's assets: one asset per entity and direction, named by a translator.

Every asset Ponte shows in Dagster is an :class:`Entity` of :data:`ENTITIES`: a source that Ponte
reads (Sienge enterprises, CV CRM contracts...) or a target it writes (CV CRM people, envelopes at the
signing provider...). A target lists the entities it is made from, so the asset graph draws the data
flow: Sienge sources → CRM people/units/reservations → CRM contracts → envelopes → signed documents on
the CRM, and assistance CRM → Sienge → CRM.

How an entity becomes an asset (its key, group, kinds, description, owners, tags) is decided by a
:class:`PonteTranslator`, in the style of dagster-dlt's ``DagsterDltTranslator``: subclass it and
override a method to rename. A deployment selects its own with ``PONTE_ASSET_TRANSLATOR`` set to
``package.module:ClassName`` (read when the definitions load)::

    class AcmeTranslator(PonteTranslator):
        def get_asset_key(self, entity):
            return AssetKey(["acme", *super().get_asset_key(entity).path])

Renaming an asset starts a new history in Dagster (materializations are stored by key); run config
is unaffected (it names the step, e.g. ``crm_customers_and_sales``, which stays).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from dagster import AssetKey, AssetSpec

from ponte import ConfigurationError

#: the groups, one per flow (the names the UI's asset groups show)
GROUPS = {
    "import": "customer_sale_import",
    "dispatch": "envelope_dispatch",
    "backsync": "signature_backsync",
    "assistance": "technical_assistance",
}



@cache
def signing_kinds() -> tuple[str, ...]:
    """The signing providers (the ``esign`` assets' kinds): back-sync's hand-written providers and every
    connector spec that declares ``signing``, so a provider added in YAML shows up without code."""
    from connectors.spec import available_specs, load_spec
    from pipelines.backsync.flow import PROVIDERS

    found = set(PROVIDERS)
    for name in available_specs():
        try:
            if getattr(load_spec(name), "signing", None) is not None:
                found.add(name)
        except Exception:  # a broken spec is reported by `ponte validate`, not here
            continue
    return tuple(sorted(found)) or ("esign",)


@dataclass(frozen=True)
class Entity:
    """One entity in one direction: what a flow reads (``source``) or writes (``target``)."""

    id: str
    flow: str
    system: str  # sienge | cvcrm | esign (the tenant's signing provider)
    name: str
    role: Literal["source", "target"]
    description: str
    #: ids of the entities this one is made from (its upstream assets)
    made_from: tuple[str, ...] = field(default=())
    #: the flow's own name for the entity (the import's ``ImportRequest.entities``), if any
    flow_entity: str | None = None


ENTITIES: tuple[Entity, ...] = (
    # ------------------------------------------------------------------ import: Sienge → CV CRM
    Entity("sienge_enterprises", "import", "sienge", "enterprises", "source",
           "Enterprises (empreendimentos) in Sienge, read by the import."),
    Entity("sienge_units", "import", "sienge", "units", "source", "Units of the enterprises in Sienge."),
    Entity("sienge_customers", "import", "sienge", "customers", "source",
           "Customers in Sienge (with their spouses), read by the import."),
    Entity("sienge_sales_contracts", "import", "sienge", "sales_contracts", "source",
           "Sales contracts in Sienge, read by the import."),
    Entity("crm_enterprises", "import", "cvcrm", "enterprises", "target",
           "Sienge enterprises as CV CRM enterprises (empreendimentos), per tenant.",
           ("sienge_enterprises",), "enterprise"),
    Entity("crm_units", "import", "cvcrm", "units", "target",
           "Sienge units as CV CRM units, under their enterprise, per tenant.",
           ("sienge_units", "crm_enterprises"), "unit"),
    Entity("crm_people", "import", "cvcrm", "people", "target",
           "Sienge customers (and spouses) as CV CRM people (clientes), per tenant.",
           ("sienge_customers",), "customer"),
    Entity("crm_reservations", "import", "cvcrm", "reservations", "target",
           "Sienge sales contracts as CV CRM reservations of their buyers and units, per tenant.",
           ("sienge_sales_contracts", "crm_people", "crm_units"), "sale"),
    # ------------------------------------------------------------------ dispatch: CRM → signing provider
    Entity("crm_contracts", "dispatch", "cvcrm", "contracts", "source",
           "Contracts of the CV CRM reservations, validated in the CRM and ready to sign.",
           ("crm_reservations",)),
    Entity("envelopes", "dispatch", "esign", "envelopes", "target",
           "CV CRM contracts sent as envelopes to the tenant's signing provider, exactly once each.",
           ("crm_contracts",)),
    # ------------------------------------------------------------------ back-sync: provider → CRM
    Entity("crm_signed_documents", "backsync", "cvcrm", "signed_documents", "target",
           "Envelope statuses and signed PDFs written back to the CV CRM contracts (webhooks, polling "
           "or one contract); materialized by the signature_backsync job.",
           ("envelopes",)),
    # ------------------------------------------------------------------ assistance: CRM ↔ Sienge
    Entity("crm_assistance_requests", "assistance", "cvcrm", "assistance_requests", "source",
           "Technical-assistance requests (assistências) opened in CV CRM."),
    Entity("sienge_technical_assistances", "assistance", "sienge", "technical_assistances", "target",
           "CV CRM assistance requests created and kept in Sienge as technical assistances, per tenant.",
           ("crm_assistance_requests",)),
    Entity("crm_assistance_statuses", "assistance", "cvcrm", "assistance_statuses", "target",
           "Sienge's technical-assistance statuses written back to the CV CRM assistências, per tenant.",
           ("sienge_technical_assistances",)),
)

BY_ID = {entity.id: entity for entity in ENTITIES}


class PonteTranslator:
    """How an :class:`Entity` becomes a Dagster asset. Override a method to rename or regroup."""

    def get_asset_key(self, entity: Entity) -> AssetKey:
        return AssetKey([entity.system, entity.name])

    def get_group_name(self, entity: Entity) -> str:
        return GROUPS[entity.flow]

    def get_kinds(self, entity: Entity) -> set[str]:
        return set(signing_kinds()) if entity.system == "esign" else {entity.system}

    def get_description(self, entity: Entity) -> str:
        return entity.description

    def get_owners(self, entity: Entity) -> list[str]:
        return ["team:integrations"]

    def get_tags(self, entity: Entity) -> dict[str, str]:
        return {"ponte/flow": entity.flow, "ponte/role": entity.role}

    def get_asset_spec(self, entity: Entity, **extra: object) -> AssetSpec:
        """The entity's full spec (``extra``: e.g. ``partitions_def``, ``skippable``)."""
        return AssetSpec(
            key=self.get_asset_key(entity),
            deps=[self.get_asset_key(BY_ID[upstream]) for upstream in entity.made_from],
            description=self.get_description(entity),
            group_name=self.get_group_name(entity),
            kinds=self.get_kinds(entity),
            owners=self.get_owners(entity),
            tags=self.get_tags(entity),
            **extra,  # type: ignore[arg-type]
        )


@cache
def translator() -> PonteTranslator:
    """The deployment's translator: ``PONTE_ASSET_TRANSLATOR`` (``module:Class``), else the default."""
    path = os.environ.get("PONTE_ASSET_TRANSLATOR", "").strip()
    if not path:
        return PonteTranslator()
    module_name, _, class_name = path.partition(":")
    hint = "set PONTE_ASSET_TRANSLATOR to package.module:ClassName, a PonteTranslator subclass"
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigurationError(f"PONTE_ASSET_TRANSLATOR={path!r} does not load: {exc}", hint=hint) from None
    if not (isinstance(found, type) and issubclass(found, PonteTranslator)):
        raise ConfigurationError(f"PONTE_ASSET_TRANSLATOR={path!r} is not a PonteTranslator", hint=hint)
    return found()


def key(entity_id: str) -> AssetKey:
    """The asset key of entity ``entity_id`` under the deployment's translator."""
    return translator().get_asset_key(BY_ID[entity_id])


def spec(entity_id: str, **extra: object) -> AssetSpec:
    return translator().get_asset_spec(BY_ID[entity_id], **extra)


def sources(flow: str, **extra: object) -> list[AssetSpec]:
    """The specs of the entities ``flow`` reads (external assets: Ponte does not materialize them)."""
    return [spec(e.id, **extra) for e in ENTITIES if e.flow == flow and e.role == "source"]


def targets(flow: str) -> Iterable[Entity]:
    return [e for e in ENTITIES if e.flow == flow and e.role == "target"]
