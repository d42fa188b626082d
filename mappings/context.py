"""What a mapping may know besides the record: the run's context, injected by the caller.

A mapping is a pure function of records; anything stateful (the id map in the state store, the tenant's
options, the clock, values the pipeline computed such as a document's hash) comes in through a
:class:`MappingContext`, so mappings never import pipelines or connectors and tests pass plain values.

Credentials are not part of it: a mapping's output is printed (`ponte mapping test`), sent to outside
systems and dead-lettered, so a ``$tenant`` path may not reach ``connectors.<key>.credentials``
(:func:`credentials_read` says why, at load time) and the context holds the tenant without them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mappings.paths import Key, ParsedPath, PathError, parse_path
from mappings.transforms import SAO_PAULO
from ponte import ConfigurationError
from schemas import TenantConfig

#: (entity, source_system, source_id, target_system) -> target id, or None when the id map has none
Lookup = Callable[[str, str, str, str], "str | None"]

#: the fix to print with :func:`credentials_read`'s problem
CREDENTIALS_HINT = (
    "credentials are for connectors only: remove the path (a connector adds its own authentication), "
    "or read a non-secret value from the tenant's connector `values`"
)


def credentials_read(path: ParsedPath) -> str | None:
    """Why ``path`` may not be read by a mapping (it reaches a tenant credential), or None when it may.

    The compiler calls it for every ``$tenant`` path (fields, conditions, templates, arguments)::

        elif path.root == "tenant":
            if (problem := credentials_read(path)) is not None:
                raise self.fail(loc, problem, CREDENTIALS_HINT)
    """
    if path.root != "tenant":
        return None
    names = [segment.name for segment in path.segments if isinstance(segment, Key)]
    if "connectors" in names and "credentials" in names[names.index("connectors") + 1:]:
        return (f"{path.text!r} reads a tenant credential: mappings may not read credentials "
                "(their output is printed, sent to other systems and kept in dead letters)")
    return None


_TENANT_PATH = re.compile(r"\$tenant(?:\.[A-Za-z_][A-Za-z0-9_\-]*|\[[^\]\s]*\])+")


def check_no_credentials(spec: Any, where: str, lines: Mapping[str, int] | None = None) -> None:
    """Raise a :class:`ConfigurationError` naming ``where`` (with the line from ``lines``, target field ->
    line, when known) and the field when any ``$tenant`` path in a mapping spec (its data: fields,
    filters, templates, transform arguments) reads a credential."""

    def walk(node: Any, trail: tuple[str, ...]) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, (*trail, str(key)))
        elif isinstance(node, list | tuple):
            for index, value in enumerate(node):
                walk(value, (*trail, str(index)))
        elif isinstance(node, str) and "$tenant" in node:
            for match in _TENANT_PATH.finditer(node):
                try:
                    path = parse_path(match.group(0))
                except PathError:
                    continue  # the compiler reports a path that does not parse
                problem = credentials_read(path)
                if problem is not None:
                    in_fields = trail[:1] == ("fields",)
                    label = ".".join(p for p in trail[1:] if p != "fields") if in_fields else ".".join(trail)
                    line = (lines or {}).get(trail[1]) if in_fields and len(trail) > 1 else None
                    place = f"{where}:{line}" if line else where
                    raise ConfigurationError(f"{place}: {'field ' + label + ': ' if label else ''}{problem}",
                                             hint=CREDENTIALS_HINT)

    walk(spec, ())


def tenant_without_credentials(tenant: TenantConfig) -> TenantConfig:
    """``tenant`` with every connector's credentials left out (names, variables and defaults)."""
    if not any(connector.credentials for connector in tenant.connectors.values()):
        return tenant
    connectors = {key: connector.model_copy(update={"credentials": {}})
                  for key, connector in tenant.connectors.items()}
    return tenant.model_copy(update={"connectors": connectors})


def _now() -> datetime:
    return datetime.now(SAO_PAULO)


@dataclass
class MappingContext:
    """Per-run context. Build one per batch (not per record): tenant options are flattened once.

    The tenant is kept without its connectors' credentials: nothing a mapping reads can print them.
    """

    lookup: Lookup | None = None
    tenant: TenantConfig | None = None
    now: datetime = field(default_factory=_now)
    params: Mapping[str, Any] = field(default_factory=dict)
    _tenant_data: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tenant is not None:
            self.tenant = tenant_without_credentials(self.tenant)

    def tenant_data(self) -> dict[str, Any] | None:
        """The tenant as plain JSON-like data (what ``$tenant.`` paths read), computed once."""
        if self._tenant_data is None and self.tenant is not None:
            self._tenant_data = self.tenant.model_dump(mode="json", exclude={"connectors": {"__all__": {"credentials"}}})
        return self._tenant_data

    def with_params(self, **params: Any) -> MappingContext:
        """The same context with per-record params (e.g. a document's hash), sharing the cached tenant."""
        copy = MappingContext(lookup=self.lookup, tenant=self.tenant, now=self.now, params=params)
        copy._tenant_data = self._tenant_data
        return copy


def static_lookup(table: Mapping[tuple[str, str, str, str], str]) -> Lookup:
    """A lookup from a fixed table ``{(entity, source, source_id, target): target_id}`` (tests, CLI)."""

    def lookup(entity: str, source: str, source_id: str, target: str) -> str | None:
        return table.get((entity, source, str(source_id), target))

    return lookup


__all__ = [
    "CREDENTIALS_HINT",
    "Lookup",
    "MappingContext",
    "check_no_credentials",
    "credentials_read",
    "static_lookup",
    "tenant_without_credentials",
]
