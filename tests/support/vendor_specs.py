"""Bodies checked against the vendors' own specs in ../shared/specs: what Ponte sends, what the
stand-ins answer and what they post back as webhooks.

One entry point per direction, each returning :class:`Violation` s (empty when the body conforms):

- :func:`check_request` (Ponte → vendor) and :func:`check_response` (stand-in → Ponte) resolve the
  operation by method and path in the vendor's spec:
  - DocuSign: the eSignature swagger (2.0); the hub's ``/restapi/v2.1/...`` paths are the swagger's
    ``/v2/...`` ones (the definitions are shared). The body parameter's schema for a request, the
    schema of the answered status for a response (``errorDetails`` for every 4xx/5xx).
  - Sienge: the per-module swagger (2.0) YAMLs, by base path and path.
  - WhatsApp: the Business Messaging OpenAPI 3.1 file (``Message`` for a send, components refs).
  - Clicksign: the Postman collection, which has example bodies and no schemas: every attribute Ponte
    sends must be one the collection's example for that endpoint uses, and every attribute the
    examples always fill must be present (:data:`CLICKSIGN_OPTIONAL` lists the few the collection's
    examples fill that Clicksign does not require, each with the reason). The collection has no
    example responses: a response is checked for the JSON:API framing the collection's own test
    scripts rely on (``data.id``), the resource ``type`` and the attribute names the collection
    writes for that resource (readable back under the same name).
- :func:`check_email`: an e-mail as the SMTP stand-in received it, against RFC 5322 §3.6: exactly one
  ``Date`` (required, a zoned date-time) and ``From``, and a ``Message-ID`` of the ``<left@domain>`` form.
- :func:`check_webhook`: DocuSign Connect messages against the Connect sample message
  (connect.schema-v2.json: every key must exist there with the same JSON type), WhatsApp status
  webhooks against the file's ``WebhookPayload`` schema.

A schema check is jsonschema (Draft 4 for swagger 2.0, 2020-12 for OpenAPI 3.1) for types, enums and
required fields, plus a walk that reports every field the schema does not declare: the vendors' files
never say ``additionalProperties: false``, so plain validation would let any misspelt or invented field
through. What a spec does not define at all (an endpoint missing from it, a vendor without a published
webhook schema) is not a violation: :func:`check_request` and friends return ``None`` then, and the
callers count and list those as unchecked.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO.parent / "shared" / "specs"

DOCUSIGN = "docusign/esignature.rest.swagger-v2.json"
DOCUSIGN_CONNECT = "docusign/connect.schema-v2.json"
WHATSAPP = "whatsapp/business-messaging-api_v23.0.yaml"
CLICKSIGN = "clicksign/Clicksign_Postman_Collection.json"
SIENGE_DIR = "sienge"


@dataclass(frozen=True)
class Violation:
    direction: str  # request (Ponte → vendor) | response (stand-in → Ponte) | webhook (stand-in → Ponte)
    system: str
    endpoint: str  # METHOD + the spec's own path template, or the webhook's event
    field: str  # dotted path in the body, [] for "any element"
    problem: str  # "unknown field", "missing required field", "invalid: ..."
    spec: str  # the spec file, relative to ../shared/specs

    def __str__(self) -> str:
        return f"{self.direction} {self.system} {self.endpoint}: {self.field or '(body)'}: {self.problem} [{self.spec}]"


# ----------------------------------------------------------------------------------------- loading

#: Errata of the DocuSign file, applied visibly rather than bending Ponte to the gap: the file is the
#: v2 swagger and the hub speaks v2.1, whose Connect configuration adds the JSON SIM fields (DocuSign's
#: v2.1 reference, "Create Connect configuration": deliveryMode SIM, eventData.version restv2.1, events;
#: PROVIDERS.md §3.1 Connect), and whose recipients carry ``additionalNotifications`` (SMS and WhatsApp
#: delivery, "eSignature 2.1 only", PROVIDERS.md §3.7; the shape is DocuSign's published v2.1 model
#: ``RecipientAdditionalNotification{phoneNumber: RecipientPhoneNumber{countryCode, number},
#: secondaryDeliveryMethod, secondaryDeliveryStatus}``). Nothing else is added.
_ADDITIONAL_NOTIFICATIONS: dict[str, Any] = {
    "type": "array",
    "description": "v2.1: SMS or WhatsApp delivery beside the e-mail (one secondary method per recipient)",
    "items": {"type": "object", "properties": {
        "secondaryDeliveryMethod": {"type": "string", "description": "SMS or WhatsApp"},
        "secondaryDeliveryStatus": {"type": "string"},
        "phoneNumber": {"type": "object", "properties": {
            "countryCode": {"type": "string"}, "number": {"type": "string"}}},
    }},
}
DOCUSIGN_V21_ADDITIONS: dict[str, dict[str, Any]] = {
    "signer": {"additionalNotifications": _ADDITIONAL_NOTIFICATIONS},
    "connectCustomConfiguration": {
        "deliveryMode": {"type": "string", "description": "v2.1: SIM or aggregate"},
        "events": {"type": "array", "items": {"type": "string"}, "description": "v2.1: the JSON SIM events"},
        "eventData": {"type": "object", "description": "v2.1: the JSON SIM message's format and content",
                      "properties": {"format": {"type": "string"}, "version": {"type": "string"},
                                     "includeData": {"type": "array", "items": {"type": "string"}}}},
    },
}


@cache
def load(relative: str) -> Any:
    """A spec file from ../shared/specs (YAML or JSON), parsed once per process (with its errata)."""
    file = SPECS / relative
    if not file.exists():
        raise FileNotFoundError(f"vendor spec {file} is missing: the spec checks need ../shared/specs beside the repo")
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".json":
        doc = json.loads(text)
    else:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if relative == DOCUSIGN:
        for name, properties in DOCUSIGN_V21_ADDITIONS.items():
            doc["definitions"][name]["properties"].update(properties)
    return doc


def _segments_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{\{?[^}]+\}?\})", template)
    pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(f"^{pattern}/?$")


def _literal_weight(template: str) -> int:
    return sum(1 for part in template.strip("/").split("/") if part and not part.startswith("{"))


@dataclass(frozen=True)
class Operation:
    spec: str
    method: str
    template: str  # the spec's path (without base path)
    kind: str  # swagger2 | openapi3
    op: Any

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.template}"

    def request_schema(self) -> dict[str, Any] | None:
        if self.kind == "swagger2":
            for param in self.op.get("parameters") or []:
                if param.get("in") == "body":
                    return param.get("schema")
            return None
        content = ((self.op.get("requestBody") or {}).get("content") or {})
        media = content.get("application/json") or next(iter(content.values()), None)
        return (media or {}).get("schema")

    def response_schema(self, status: int) -> dict[str, Any] | None:
        responses = self.op.get("responses") or {}
        answer = responses.get(str(status))
        if answer is None and status >= 400:  # the vendor's one error shape, whatever the status
            answer = next((responses[c] for c in sorted(responses) if c.startswith(("4", "5"))), None)
        if answer is None:
            answer = responses.get("default")
        if answer is None:
            return None
        if self.kind == "swagger2":
            return answer.get("schema")
        content = answer.get("content") or {}
        media = content.get("application/json") or next(iter(content.values()), None)
        return (media or {}).get("schema")


@dataclass(frozen=True)
class _Api:
    spec: str
    kind: str
    base: re.Pattern[str]
    operations: tuple[tuple[re.Pattern[str], int, Operation], ...]


def _api(relative: str, base_template: str | None = None) -> _Api:
    doc = load(relative)
    kind = "swagger2" if doc.get("swagger") else "openapi3"
    base = base_template if base_template is not None else (doc.get("basePath") or "")
    ops = []
    for template, item in (doc.get("paths") or {}).items():
        for method, op in item.items():
            if method.lower() not in ("get", "post", "put", "patch", "delete"):
                continue
            operation = Operation(relative, method.upper(), template, kind, op)
            ops.append((_segments_regex(template), _literal_weight(template), operation))
    base_regex = re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p)
                                          for p in re.split(r"(\{[^}]+\})", base)))
    return _Api(relative, kind, base_regex, tuple(ops))


@cache
def _apis(system: str) -> tuple[_Api, ...]:
    if system == "docusign":
        return (_api(DOCUSIGN),)
    if system == "whatsapp":
        return (_api(WHATSAPP, ""),)
    if system == "sienge":
        return tuple(_api(f"{SIENGE_DIR}/{p.name}") for p in sorted((SPECS / SIENGE_DIR).glob("*.yaml")))
    return ()


def _wire_path(system: str, path: str) -> str:
    if system == "docusign":  # the hub speaks v2.1; the swagger's paths say v2 (same definitions)
        return re.sub(r"^/restapi/v2\.1/", "/restapi/v2/", path)
    return path


def find_operation(system: str, method: str, path: str) -> Operation | None:
    """The spec's operation for ``method path`` as the stand-in saw it, or None when no spec defines it."""
    wire = _wire_path(system, path)
    best: tuple[int, Operation] | None = None
    for api in _apis(system):
        base = api.base.match(wire)
        if base is None:
            continue
        rest = wire[base.end():] or "/"
        for regex, weight, operation in api.operations:
            if operation.method == method.upper() and regex.match(rest) and (best is None or weight > best[0]):
                best = (weight, operation)
    return None if best is None else best[1]


# ----------------------------------------------------------------------------- schema validation

def _root_schema(spec: str, schema: dict[str, Any]) -> dict[str, Any]:
    doc = load(spec)
    if "definitions" in doc:
        return {**schema, "definitions": doc["definitions"]}
    return {**schema, "components": {"schemas": (doc.get("components") or {}).get("schemas") or {}}}


def _validator(spec: str, schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    return _cached_validator(spec, json.dumps(schema, sort_keys=True))


@cache
def _cached_validator(spec: str, schema_text: str) -> jsonschema.protocols.Validator:
    root = _root_schema(spec, json.loads(schema_text))
    kind = "swagger2" if load(spec).get("swagger") else "openapi3"
    cls = jsonschema.Draft4Validator if kind == "swagger2" else jsonschema.Draft202012Validator
    return cls(root)


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += "[]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _deref(schema: Any, spec: str, seen: frozenset[str] = frozenset()) -> tuple[Any, frozenset[str]]:
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if ref in seen:
            return {}, seen
        seen = seen | {ref}
        target: Any = load(spec)
        for key in ref.lstrip("#/").split("/"):
            target = target[key]
        schema = target
    return schema, seen


def _shape(schema: Any, spec: str, value: dict[str, Any], seen: frozenset[str]) -> tuple[
        dict[str, list[tuple[Any, frozenset[str]]]], Any, bool]:
    """Properties (name → schemas), additionalProperties and whether anything was declared at all,
    merged over allOf and the oneOf/anyOf branch that fits ``value``."""
    schema, seen = _deref(schema, spec, seen)
    props: dict[str, list[tuple[Any, frozenset[str]]]] = {}
    additional: Any = None
    declared = False
    if not isinstance(schema, dict):
        return props, additional, declared
    for name, sub in (schema.get("properties") or {}).items():
        # a property starts afresh: ``seen`` only stops allOf/discriminator loops within one object
        props.setdefault(name, []).append((sub, frozenset()))
        declared = True
    if "additionalProperties" in schema:
        additional, declared = schema["additionalProperties"], True
    branches: list[Any] = list(schema.get("allOf") or [])
    discriminator = schema.get("discriminator") or {}
    chosen = discriminator.get("mapping", {}).get(str(value.get(discriminator.get("propertyName", ""), "")))
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if chosen and not any(isinstance(b, dict) and b.get("$ref") == chosen for b in branches):
        if chosen not in seen:
            branches.append({"$ref": chosen})
    elif alternatives:
        branches.append(_best_branch(alternatives, spec, value, seen))
    for branch in branches:
        sub_props, sub_additional, sub_declared = _shape(branch, spec, value, seen)
        for name, subs in sub_props.items():
            props.setdefault(name, []).extend(subs)
        if sub_additional is not None and additional is None:
            additional = sub_additional
        declared = declared or sub_declared
    return props, additional, declared


def _best_branch(alternatives: list[Any], spec: str, value: dict[str, Any], seen: frozenset[str]) -> Any:
    def fit(branch: Any) -> tuple[int, int]:
        props, _, _ = _shape(branch, spec, value, seen)
        return (sum(1 for key in value if key in props), -len(props))

    return max(alternatives, key=fit)


def unknown_fields(value: Any, schema: Any, spec: str, where: str = "",
                   seen: frozenset[str] = frozenset()) -> Iterator[str]:
    """The dotted paths of every field of ``value`` that ``schema`` does not declare."""
    resolved, seen_here = _deref(schema, spec, seen)
    if isinstance(value, dict):
        props, additional, declared = _shape(schema, spec, value, seen)
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if key in props:
                for sub, sub_seen in props[key]:
                    yield from unknown_fields(item, sub, spec, path, sub_seen)
            elif isinstance(additional, dict):
                yield from unknown_fields(item, additional, spec, path)
            elif additional is False or (declared and additional is None):
                yield path
    elif isinstance(value, list) and isinstance(resolved, dict):
        items = _items(resolved, spec, seen_here)
        if items is not None:
            for element in value:
                yield from unknown_fields(element, items, spec, f"{where}[]")


def _items(schema: dict[str, Any], spec: str, seen: frozenset[str]) -> Any:
    if "items" in schema:
        return schema["items"]
    for branch in schema.get("allOf") or []:
        resolved, _ = _deref(branch, spec, seen)
        if isinstance(resolved, dict) and "items" in resolved:
            return resolved["items"]
    return None


def _branch_errors(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The errors of the oneOf/anyOf branch the value meant: the discriminator's, else the closest."""
    by_branch: dict[int, list[jsonschema.ValidationError]] = {}
    for sub in error.context or []:
        by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    schema = error.schema if isinstance(error.schema, dict) else {}
    discriminator = schema.get("discriminator") or {}
    if isinstance(error.instance, dict) and discriminator:
        wanted = discriminator.get("mapping", {}).get(str(error.instance.get(discriminator.get("propertyName"))))
        for index, branch in enumerate(error.validator_value):
            if isinstance(branch, dict) and branch.get("$ref") == wanted:
                return by_branch.get(index, [])
    if not by_branch:
        return []
    return min(by_branch.values(), key=lambda errors: (len(errors), min(len(e.absolute_path) * -1 for e in errors)))


def schema_violations(value: Any, schema: dict[str, Any], spec: str, *, direction: str, system: str,
                      endpoint: str) -> list[Violation]:
    """jsonschema's errors (types, enums, required) plus every undeclared field, as violations."""
    found: dict[tuple[str, str], None] = {}
    validator = _validator(spec, schema)
    for error in validator.iter_errors(value):
        for field, problem in _explain(error):
            found[(field, problem)] = None
    for path in unknown_fields(value, schema, spec):
        found[(re.sub(r"\[\d+\]", "[]", path), "unknown field")] = None
    return [Violation(direction, system, endpoint, field, problem, spec) for field, problem in found]


def _explain(error: jsonschema.ValidationError) -> Iterator[tuple[str, str]]:
    if error.validator in ("oneOf", "anyOf") and error.context:
        for sub in _branch_errors(error):
            yield from _explain(sub)
        return
    where = _where(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        for name in error.validator_value:
            if name not in error.instance:
                yield (f"{where}.{name}" if where else name), "missing required field"
        return
    message = error.message if len(error.message) < 160 else error.message[:157] + "..."
    yield where, f"invalid ({error.validator}): {message}"


# ------------------------------------------------------------------------------------- Clicksign

#: attributes every example of the collection fills that Clicksign does not need from Ponte: the
#: collection is a set of examples, not a schema, so what it always shows is required unless listed here
CLICKSIGN_OPTIONAL: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/api/v3/envelopes/{{envelope_id}}/signers"): {
        "birthday": "the hub's signer has no birth date; with has_documentation true Clicksign asks the "
                    "signer for the CPF and the birth date at signing time",
    },
    ("POST", "/api/v3/envelopes/{{envelope_id}}/notifications"): {
        "message": "an optional text added to Clicksign's own notification e-mail",
    },
}
#: attributes Ponte sends that no example of the collection shows, each kept for a stated reason (the
#: check stays strict for everything else). Confirm with Clicksign before adding to this list.
CLICKSIGN_BEYOND_COLLECTION: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/api/v3/envelopes"): {
        "data.attributes.metadata": "the envelope's ponte_key is how dispatch finds, after a crash, an envelope "
                                    "it created but did not record (pipelines/dispatch/providers.py); the "
                                    "collection shows metadata on documents only, which do not exist yet then",
    },
}
#: attribute values that are maps of the integrator's own keys (the examples show made-up keys)
CLICKSIGN_FREE_FORM = frozenset({"metadata", "template.data", "template.metadata"})
#: attributes a resource takes at creation and never shows back
CLICKSIGN_WRITE_ONLY = {"documents": frozenset({"content_base64", "template"}),
                        "requirements": frozenset({"role", "auth"})}


@dataclass(frozen=True)
class ClicksignEndpoint:
    method: str
    template: str
    examples: tuple[dict[str, Any], ...]

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.template}"


@cache
def clicksign_endpoints() -> tuple[tuple[re.Pattern[str], int, ClicksignEndpoint], ...]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "item" in item:
                walk(item["item"])
                continue
            request = item["request"]
            url = request["url"]["raw"] if isinstance(request["url"], dict) else request["url"]
            template = "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]
            examples = grouped.setdefault((request["method"].upper(), template), [])
            raw = (request.get("body") or {}).get("raw") or ""
            if raw.strip():  # every example body of the collection is JSON (its variables are quoted)
                examples.append(json.loads(raw))

    walk(load(CLICKSIGN)["item"])
    return tuple((_segments_regex(t), _literal_weight(t), ClicksignEndpoint(m, t, tuple(e)))
                 for (m, t), e in grouped.items())


def find_clicksign(method: str, path: str) -> ClicksignEndpoint | None:
    best: tuple[int, ClicksignEndpoint] | None = None
    for regex, weight, endpoint in clicksign_endpoints():
        if endpoint.method == method.upper() and regex.match(path) and (best is None or weight > best[0]):
            best = (weight, endpoint)
    return None if best is None else best[1]


def _resource_type(path: str) -> str | None:
    """The JSON:API type of what ``path`` names: its last segment that is not an id."""
    segments = [s for s in path.strip("/").split("/") if s]
    for segment in reversed(segments):
        if re.fullmatch(r"[a-z_]+", segment) and segment not in ("api", "v3"):
            return segment
    return None


def _compare_to_examples(value: Any, examples: list[Any], where: str, out: list[tuple[str, str]],
                         beyond: dict[str, str]) -> None:
    dicts = [e for e in examples if isinstance(e, dict)]
    if not dicts or not isinstance(value, dict) or where.removeprefix("data.attributes.") in CLICKSIGN_FREE_FORM:
        return
    known = {k for e in dicts for k in e}
    for key, item in value.items():
        path = f"{where}.{key}" if where else key
        if key not in known:
            if path not in beyond:
                out.append((path, "unknown field"))
            continue
        _compare_to_examples(item, [e[key] for e in dicts if key in e], path, out, beyond)


def clicksign_request(method: str, path: str, body: Any) -> list[Violation] | None:
    endpoint = find_clicksign(method, path)
    if endpoint is None:
        return None
    if not endpoint.examples:
        if body in (None, b"", {}):
            return []
        return [Violation("request", "clicksign", endpoint.endpoint, "", "the collection sends no body here", CLICKSIGN)]
    out: list[tuple[str, str]] = []

    def report() -> list[Violation]:
        return [Violation("request", "clicksign", endpoint.endpoint, f, p, CLICKSIGN) for f, p in dict.fromkeys(out)]

    if not isinstance(body, dict):
        out.append(("", "invalid: the body is not a JSON object"))
        return report()
    examples = list(endpoint.examples)
    datas = [e.get("data") for e in examples if isinstance(e.get("data"), dict)]
    for key in sorted(set.intersection(*(set(e) for e in examples))):
        if key not in body:
            out.append((key, "missing required field"))
    data = body.get("data")
    if isinstance(data, dict) and datas:
        for key in sorted(set.intersection(*(set(d) for d in datas))):
            if key not in data:
                out.append((f"data.{key}", "missing required field"))
        types = {d.get("type") for d in datas}
        if data.get("type") not in types:
            out.append(("data.type", f"invalid: {data.get('type')!r}, the collection uses {sorted(types)}"))
        attributes = data.get("attributes")
        examples_attributes = [d["attributes"] for d in datas if isinstance(d.get("attributes"), dict)]
        if isinstance(attributes, dict) and examples_attributes:
            optional = CLICKSIGN_OPTIONAL.get((endpoint.method, endpoint.template), {})
            always = set.intersection(*({k for k, v in a.items() if v is not None} for a in examples_attributes))
            for key in sorted(always - set(optional)):
                if attributes.get(key) is None:
                    out.append((f"data.attributes.{key}", "missing required field"))
    _compare_to_examples(body, examples, "", out, CLICKSIGN_BEYOND_COLLECTION.get((endpoint.method, endpoint.template), {}))
    return report()


def _written_attributes(kind: str) -> set[str]:
    names: set[str] = set()
    for _, _, endpoint in clicksign_endpoints():
        if endpoint.method not in ("POST", "PATCH"):
            continue
        for example in endpoint.examples:
            data = example.get("data") if isinstance(example, dict) else None
            if isinstance(data, dict) and data.get("type") == kind and isinstance(data.get("attributes"), dict):
                names.update(data["attributes"])
    return names - CLICKSIGN_WRITE_ONLY.get(kind, frozenset()) - {"status"}


@cache
def _collection_types() -> frozenset[str]:
    """Every resource type the collection names, in a body's data.type or as a URL segment."""
    kinds: set[str] = set()
    for _, _, endpoint in clicksign_endpoints():
        kinds.update(s for s in endpoint.template.strip("/").split("/") if re.fullmatch(r"[a-z_]+", s))
        for example in endpoint.examples:
            data = example.get("data") if isinstance(example, dict) else None
            if isinstance(data, dict) and isinstance(data.get("type"), str):
                kinds.add(data["type"])
    return frozenset(kinds - {"api", "v3"})


def clicksign_response(method: str, path: str, status: int, body: Any) -> list[Violation] | None:
    endpoint = find_clicksign(method, path)
    kind = _resource_type(path)
    if kind not in _collection_types() or status >= 300 or body in (None, b""):
        return None
    # a read the collection does not list (the envelope list, a document): same JSON:API resources
    label = endpoint.endpoint if endpoint is not None else (
        f"{method} " + "/".join(s if re.fullmatch(r"[a-z_]*|v3", s) else "{id}" for s in path.split("/"))
        + " (not in the collection)")
    out: list[tuple[str, str]] = []
    data = body.get("data") if isinstance(body, dict) else None
    resources = data if isinstance(data, list) else [data]
    if data is None:
        out.append(("data", "missing required field"))
    for resource in resources:
        where = "data[]" if isinstance(data, list) else "data"
        if not isinstance(resource, dict):
            out.append((where, "invalid: a resource object"))
            continue
        if not isinstance(resource.get("id"), str) or not resource.get("id"):
            out.append((f"{where}.id", "missing required field"))
        if resource.get("type") != kind:
            out.append((f"{where}.type", f"invalid: {resource.get('type')!r}, the path names {kind!r}"))
        attributes = resource.get("attributes")
        if not isinstance(attributes, dict):
            out.append((f"{where}.attributes", "missing required field"))
            continue
        for name in sorted(_written_attributes(kind)):
            if name not in attributes:
                out.append((f"{where}.attributes.{name}", "missing field the collection writes"))
    return [Violation("response", "clicksign", label, f, p, CLICKSIGN) for f, p in dict.fromkeys(out)]


# ------------------------------------------------------------------------------------ DocuSign Connect

def conforms_to_sample(value: Any, sample: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """DocuSign's Connect file is a sample message: every key we get must exist there with its JSON type."""
    if isinstance(sample, dict):
        if not isinstance(value, dict):
            yield where, "invalid: an object in the sample"
            return
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if key not in sample:
                yield path, "unknown field"
            else:
                yield from conforms_to_sample(item, sample[key], path)
    elif isinstance(sample, list):
        if not isinstance(value, list):
            yield where, "invalid: an array in the sample"
            return
        merged: dict[str, Any] = {}
        for element in sample:
            if isinstance(element, dict):
                merged.update(element)
        for item in value:
            yield from conforms_to_sample(item, merged if merged else (sample[0] if sample else item), f"{where}[]")
    elif isinstance(sample, bool):
        if not isinstance(value, bool):
            yield where, f"invalid: a boolean in the sample, got {type(value).__name__}"
    elif isinstance(sample, int | float):
        if not isinstance(value, int | float) or isinstance(value, bool):
            yield where, f"invalid: a number in the sample, got {type(value).__name__}"
    elif not isinstance(value, str):
        yield where, f"invalid: a string in the sample, got {type(value).__name__}"


# ------------------------------------------------------------------------------------- entry points

def _json(body: bytes | str | Any) -> Any:
    if isinstance(body, bytes | str):
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        return json.loads(text) if text.strip() else None
    return body


def check_request(system: str, method: str, path: str, body: bytes | Any) -> list[Violation] | None:
    """Violations of a request body Ponte sent; None when no spec defines this endpoint's body."""
    try:
        value = _json(body)
    except ValueError:
        return None  # not JSON (an OAuth form): no JSON schema applies
    if system == "clicksign":
        return clicksign_request(method, path, value)
    operation = find_operation(system, method, path)
    if operation is None:
        return None
    schema = operation.request_schema()
    if schema is None:
        if value in (None, {}):
            return []
        return [Violation("request", system, operation.endpoint, "", "the spec defines no body here", operation.spec)]
    if value is None:
        return [Violation("request", system, operation.endpoint, "", "missing body", operation.spec)]
    return schema_violations(value, schema, operation.spec, direction="request", system=system,
                             endpoint=operation.endpoint)


def check_response(system: str, method: str, path: str, status: int, body: bytes | Any,
                   content_type: str = "application/json") -> list[Violation] | None:
    """Violations of what a stand-in answered; None when no spec defines that answer's body."""
    if "json" not in content_type:
        return None
    try:
        value = _json(body)
    except ValueError:
        return None
    if value is None:
        return None
    if system == "clicksign":
        return clicksign_response(method, path, status, value)
    operation = find_operation(system, method, path)
    if operation is None:
        return None
    schema = operation.response_schema(status)
    if schema is None:
        return None
    return schema_violations(value, schema, operation.spec, direction="response", system=system,
                             endpoint=f"{operation.endpoint} → {status}")


def check_webhook(system: str, body: bytes | Any, event: str = "") -> list[Violation] | None:
    """Violations of a webhook body a stand-in posted; None when the vendor publishes no schema for it."""
    try:
        value = _json(body)
    except ValueError:
        return None
    label = event or "(webhook)"
    if system == "docusign":
        sample = load(DOCUSIGN_CONNECT)
        found = list(dict.fromkeys(conforms_to_sample(value, sample)))
        if isinstance(value, dict):
            found += [(key, "missing required field") for key in sample if key not in value]
        return [Violation("webhook", system, label, f, p, DOCUSIGN_CONNECT) for f, p in found]
    if system == "whatsapp":
        schema = {"$ref": "#/components/schemas/WebhookPayload"}
        return schema_violations(value, schema, WHATSAPP, direction="webhook", system=system, endpoint=label)
    return None


RFC5322 = "RFC 5322 §3.6"
_MESSAGE_ID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")


def check_email(raw: bytes) -> list[Violation]:
    """Violations of RFC 5322's header rules in one message as it crossed the wire."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    found: list[tuple[str, str]] = []
    for name in ("Date", "From"):
        count = len(message.get_all(name) or [])
        if count != 1:
            found.append((name, "missing required field" if count == 0 else f"invalid: {count} {name} headers"))
    if message.get("Date") is not None:
        try:
            moment = parsedate_to_datetime(str(message["Date"]))
            if moment.tzinfo is None:
                found.append(("Date", "invalid: no zone (-0000 means unknown)"))
        except (TypeError, ValueError):
            found.append(("Date", f"invalid: {str(message['Date'])!r} is not an RFC 5322 date-time"))
    ids = message.get_all("Message-ID") or []
    if len(ids) != 1:
        found.append(("Message-ID", "missing field" if not ids else f"invalid: {len(ids)} Message-ID headers"))
    elif not _MESSAGE_ID.match(str(ids[0]).strip()):
        found.append(("Message-ID", f"invalid: {str(ids[0]).strip()!r} is not <id-left@id-right>"))
    return [Violation("request", "smtp", "DATA", f, problem, RFC5322) for f, problem in found]
