"""Where transforms and tables live: the generic library in mappings/transforms.py, each system's enum
tables in mappings/tables.py, the signer and evidence transforms in mappings/signers.py; one registry."""

from __future__ import annotations

from mappings import ENUM_TABLES
from mappings.tables import CVCRM_TABLES, PROVIDER_TABLES, SIENGE_TABLES
from mappings.transforms import REGISTRY, build


def test_each_table_belongs_to_one_system_and_is_named_by_it() -> None:
    groups = {"sienge_": SIENGE_TABLES, "cvcrm_": CVCRM_TABLES,
              "docusign_|clicksign_|whatsapp_": PROVIDER_TABLES}
    assert sum(len(tables) for tables in groups.values()) == len(ENUM_TABLES)
    for prefixes, tables in groups.items():
        for name in tables:
            assert name.startswith(tuple(prefixes.split("|"))), name
            assert ENUM_TABLES[name] is tables[name]


def test_the_signer_and_evidence_transforms_register_from_their_module() -> None:
    for name in ("signer_order", "signer_channel", "evidence_required"):
        assert REGISTRY[name].factory.__module__ == "mappings.signers"


def test_enum_reads_the_named_tables() -> None:
    _, civil = build("enum", "sienge_civil_status")
    assert civil("Casada") == "married"
    _, kind = build("enum", {"table": "docusign_event_kind"})
    assert kind("envelope-completed") == "completion"
