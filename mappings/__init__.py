"""Mappings: declarative YAML translations between outside systems' payloads and canonical records.

The public surface::

    from mappings import MappingContext, load_mapping, merge_owned

    to_person = load_mapping("sienge/customer_to_person")     # checked + compiled once, cached
    ctx = MappingContext(lookup=store_lookup, tenant=tenant)  # one per batch
    person = to_person.run(sienge_customer, ctx)              # validated canonical Person
    row = to_person.apply(sienge_customer, ctx)               # the plain dict (fastest)

Layering: this package imports ``schemas`` and ``ponte`` only. Anything stateful reaches a mapping
through :class:`MappingContext` (the id map, the tenant, the clock, run parameters).
"""

from mappings.context import Lookup, MappingContext, check_no_credentials, static_lookup
from mappings.engine import (
    MAPPINGS_DIR,
    CompiledMapping,
    ExplainRow,
    clear_cache,
    compile_file,
    list_mappings,
    load_mapping,
    merge_owned,
    schema_registry,
    validate_all,
)
from mappings.paths import describe, model_fields
from mappings.samples import context_path, load_context, read_json
from mappings.tables import ENUM_TABLES
from mappings.transforms import fold

__all__ = [
    "ENUM_TABLES",
    "MAPPINGS_DIR",
    "CompiledMapping",
    "ExplainRow",
    "Lookup",
    "MappingContext",
    "check_no_credentials",
    "clear_cache",
    "compile_file",
    "context_path",
    "describe",
    "fold",
    "list_mappings",
    "load_context",
    "load_mapping",
    "merge_owned",
    "model_fields",
    "read_json",
    "schema_registry",
    "static_lookup",
    "validate_all",
]
