"""Loading specs from YAML: validation with file:line errors, and checks across sections.

Field-level problems (wrong type, unknown key, bad template reference) come from pydantic with the
document's line numbers. What one field cannot see (a child stream naming a parent that does not
exist, a registration naming a missing action) is checked here, also with file:line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from connectors.spec.models import ConnectorSpec, HttpConnectorSpec, SmtpConnectorSpec
from ponte import ConfigurationError, YamlDocument, describe_validation_error, load_yaml

SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ConnectorSpec)
_HINT = "fix the connector spec (docs/connectors.md describes every field)"

AnySpec = HttpConnectorSpec | SmtpConnectorSpec


def spec_path(name_or_path: str | Path) -> Path:
    """A bare name means ``connectors/specs/<name>.yaml``; anything else is a path."""
    text = str(name_or_path)
    if "/" in text or text.endswith((".yaml", ".yml")):
        return Path(text)
    return SPECS_DIR / f"{text}.yaml"


def available_specs() -> list[str]:
    return sorted(p.stem for p in SPECS_DIR.glob("*.yaml"))


def _declared(data: Any) -> dict[str, list[str]]:
    declared: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for section in ("values", "secrets"):
            names = data.get(section) or {}
            declared[section] = list(names) if isinstance(names, dict) else []
    return declared


def _cross_check(spec: HttpConnectorSpec) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    streams = set(spec.streams)
    for name, stream in spec.streams.items():
        seen = {name}
        parent = stream.parent
        while parent is not None:
            if parent.stream not in streams:
                problems.append(
                    (("streams", name, "parent", "stream"), f"parent stream {parent.stream!r} is not defined")
                )
                break
            if parent.stream in seen:
                problems.append((("streams", name, "parent", "stream"), "parent streams form a cycle"))
                break
            seen.add(parent.stream)
            parent = spec.streams[parent.stream].parent
    for section, items in (("streams", spec.streams), ("actions", spec.actions)):
        for name, item in items.items():
            if item.auth is not None and item.auth not in spec.auths:
                problems.append(((section, name, "auth"), f"auth {item.auth!r} is not defined under 'auths'"))
    for name, action in spec.actions.items():
        found = action.find_existing
        if found and found.stream and found.stream not in streams:
            problems.append(
                (("actions", name, "find_existing", "stream"), f"stream {found.stream!r} is not defined")
            )
        if action.response == "binary" and action.method not in ("GET", "POST"):
            problems.append((("actions", name, "response"), "binary responses are for GET or POST downloads"))
    for name, hook in spec.webhooks.items():
        if hook.registration and hook.registration.action not in spec.actions:
            problems.append(
                (
                    ("webhooks", name, "registration", "action"),
                    f"action {hook.registration.action!r} is not defined",
                )
            )
    problems += _signing_check(spec)
    for index, item in enumerate(spec.check):
        stream_name = item if isinstance(item, str) else item.stream
        if stream_name not in streams:
            problems.append((("check", index), f"stream {stream_name!r} is not defined"))
    return problems


def _signing_check(spec: HttpConnectorSpec) -> list[tuple[tuple[str | int, ...], str]]:
    """The signing section names actions and streams of this spec (its mappings are checked by
    `ponte validate` per tenant: the connectors layer does not load mappings)."""
    signing = spec.signing
    if signing is None:
        return []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for part, action in (("create", signing.create), ("send", signing.send), ("void", signing.void)):
        if action is not None and action.action not in spec.actions:
            problems.append((("signing", part, "action"), f"action {action.action!r} is not defined"))
    for part, read in (("lookup", signing.lookup), ("status", signing.status)):
        if read is not None and read.stream not in spec.streams:
            problems.append((("signing", part, "stream"), f"stream {read.stream!r} is not defined"))
    status = signing.status
    if status is not None and status.stream in spec.streams and spec.streams[status.stream].by_id is None:
        problems.append((("signing", "status", "stream"),
                             f"stream {signing.status.stream!r} has no by_id read (status reads one envelope)"))
    create = spec.actions.get(signing.create.action)
    if create is not None and signing.create.envelope_id is None and create.result.id_path is None:
        problems.append((("signing", "create", "envelope_id"),
                         "name where the envelope id is (or give the action a result.id_path)"))
    return problems


def parse_spec(doc: YamlDocument) -> AnySpec:
    """Validate a loaded YAML document as a connector spec."""
    try:
        spec = _ADAPTER.validate_python(doc.data, context={"declared": _declared(doc.data)})
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(doc, exc, "connector spec"), hint=_HINT) from exc
    if isinstance(spec, HttpConnectorSpec):
        problems = _cross_check(spec)
        if problems:
            text = "\n".join(f"{doc.where(loc)}: connector spec field {'.'.join(map(str, loc))}: {msg}"
                             for loc, msg in problems)
            raise ConfigurationError(text, hint=_HINT)
    return spec


#: parsed specs by (path, mtime, size): opening a connector should not re-validate its YAML every time
_CACHE: dict[tuple[str, int, int], AnySpec] = {}


def load_spec(name_or_path: str | Path) -> AnySpec:
    """Load and validate a spec by name (``sienge``) or path; errors name file:line:field.

    Specs are immutable pydantic models, so a parsed spec is shared until its file changes.
    """
    path = spec_path(name_or_path)
    if not path.exists():
        raise ConfigurationError(
            f"connector spec {str(name_or_path)!r} not found at {path}",
            hint=f"use one of: {', '.join(available_specs())}, or a path to a YAML file",
        )
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    spec = parse_spec(load_yaml(path))
    if path.parent == SPECS_DIR and spec.name != path.stem:
        raise ConfigurationError(f"{path}:1: spec name {spec.name!r} must match the file name {path.stem!r}")
    _CACHE[key] = spec
    return spec


def validate_specs(paths: list[Path] | None = None) -> list[ConfigurationError]:
    """Validate every spec (default: all in connectors/specs); return the errors, empty when all pass."""
    errors: list[ConfigurationError] = []
    for path in paths if paths is not None else sorted(SPECS_DIR.glob("*.yaml")):
        try:
            load_spec(path)
        except ConfigurationError as exc:
            errors.append(exc)
    return errors


def validate_all() -> list[tuple[str, str | None]]:
    """For ``ponte validate``: (spec file, error text or None) for every shipped spec."""
    results: list[tuple[str, str | None]] = []
    for path in sorted(SPECS_DIR.glob("*.yaml")):
        try:
            load_spec(path)
            results.append((str(path.relative_to(SPECS_DIR.parent.parent)), None))
        except ConfigurationError as exc:
            results.append((str(path.relative_to(SPECS_DIR.parent.parent)), str(exc)))
    return results


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of connector specs, for editors and `schemas/json/`."""
    schema = _ADAPTER.json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://ponte.dev/schemas/connector-spec.schema.json",
        "title": "Ponte connector spec",
        "description": "One outside system described in YAML: base URL, auth, streams, actions, webhooks.",
        **schema,
    }
