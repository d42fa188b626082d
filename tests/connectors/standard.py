"""The standard connector tests: one pytest class per HTTP connector spec, run against its sandbox.

In the manner of the Singer SDK's ``get_tap_test_class``: :func:`standard_tests` builds a test class
from a spec's name plus what only a person can say about it (which sandbox stands in for it, how many
records that sandbox holds, what it does not model), and every check reads the rest from the spec
itself, so a new stream, action or webhook is covered the day it is declared. The checks run over real
loopback HTTP against one sandbox per class (started unthrottled; only the rate-limit check turns a
budget on, for itself):

- **auth**: the tenant's credentials work; wrong ones raise ``AuthError`` naming the connector, with no
  secret in the message;
- **paging**: every stream the spec pages is read across several pages, each record exactly once, as
  many as the sandbox holds;
- **errors**: an unknown id through each ``by_id`` read is ``NotFoundError``; a 5xx is retried and, when
  it persists, ends as ``TransientError`` after the spec's ``retry.max_attempts``;
- **rate limits**: a 429 with ``Retry-After`` (the sandbox's own budget where it has one) is waited for
  and retried within the retry budget;
- **spec hygiene**: every stream, ``by_id`` read, action and webhook has a route at the stand-in, or is
  listed in ``not_modelled`` with a reason (and that list holds nothing stale).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.routing import Match

from connectors.runtime.client import Connector
from connectors.runtime.ratelimit import InMemoryRateBudget
from connectors.sandbox.config import RateLimit as SandboxRateLimit
from connectors.sandbox.launcher import PORT_OFFSETS, Sandbox, start_sandbox
from connectors.spec import models as m
from connectors.spec.loader import load_spec
from connectors.spec.templates import parse
from pipelines.connections import open_connector
from ponte.errors import AuthError, NotFoundError, TransientError
from schemas.tenant import TenantConfig
from tests.support.tenants import UNTHROTTLED, sandbox_tenant

#: stand-ins the launcher starts that speak HTTP for a connector spec (smtp is its own kind, sink is ours)
SANDBOX_SYSTEMS = frozenset(PORT_OFFSETS) - {"smtp", "sink"}

#: an id no sandbox holds (numeric: some stand-ins route ids as integers)
MISSING_ID = "987654321"


@dataclass(frozen=True)
class Paging:
    """How the paging check reads one stream: how many records the sandbox holds (read from its state at
    check time), query params the listing needs, and a setup that makes the sandbox hold more than one
    page (run once per sandbox, with an unthrottled connector)."""

    expected: Callable[[Sandbox], int]
    params: Mapping[str, Any] = field(default_factory=dict)
    setup: Callable[[Sandbox, Connector], None] | None = None


@dataclass(frozen=True)
class Call:
    """An action the auth, error and rate-limit checks may send when the spec has no stream to read:
    ``record`` builds its input from the running sandbox."""

    action: str
    record: Callable[[Sandbox], dict[str, Any]]


class Sleeps(list[float]):
    """Records the waits the runtime asked for; sleeps for real only when ``real`` (a server budget
    needs its window to pass), else returns at once (backoff between injected faults)."""

    def __init__(self, real: bool = False) -> None:
        super().__init__()
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if self.real:
            time.sleep(seconds)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def _pagination(spec: m.HttpConnectorSpec, stream: m.Stream) -> Any:
    return stream.pagination or spec.pagination


def paged_streams(spec: m.HttpConnectorSpec) -> list[str]:
    """Streams the spec reads page by page (its own pagination or the spec's default)."""
    return [n for n, s in spec.streams.items() if not isinstance(_pagination(spec, s), m.NoPagination)]


def _with_page_size(spec: m.HttpConnectorSpec, size: int) -> m.HttpConnectorSpec:
    """The spec with every sized pagination asking for ``size`` records a page (capped by the API's max)."""

    def shrink(p: Any) -> Any:
        if p is None or not hasattr(p, "page_size"):
            return p
        cap = min(size, p.max_page_size) if p.max_page_size else size
        return p.model_copy(update={"page_size": cap})

    streams = {n: s.model_copy(update={"pagination": shrink(s.pagination)}) for n, s in spec.streams.items()}
    return spec.model_copy(update={"pagination": shrink(spec.pagination), "streams": streams})


def _render_path(template: str, values: Mapping[str, str]) -> str:
    """A path template with tenant values filled in and every record/param/parent reference as ``1``."""
    out = []
    for part in parse(template).parts:
        if isinstance(part, str):
            out.append(part)
        elif part.namespace == "values":
            out.append(str(values.get(part.path[0], "")))
        else:
            out.append("1")
    return "".join(out)


def route_status(system: Any, method: str, path: str) -> int:
    """What the stand-in's router does with ``method path``: 200 (a route takes it), 405 or 404."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"",
             "headers": []}
    partial = False
    for route in system.app.routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return 200
        partial = partial or match is Match.PARTIAL
    return 405 if partial else 404


def _secrets_in(text: str, secrets: Mapping[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value and len(value) >= 6 and value in text]


def standard_tests(
    spec_name: str,
    *,
    sandbox_key: str | None = None,
    sample_stream: str | None = None,
    sample_call: Call | None = None,
    sample_params: Mapping[str, Any] | None = None,
    sandbox_args: Mapping[str, Any] | None = None,
    tenant_connector: Callable[[Sandbox], dict[str, Any]] | None = None,
    paging: Mapping[str, Paging] | None = None,
    not_paged: Mapping[str, str] | None = None,
    page_size: int | None = None,
    webhook_routes: Mapping[str, tuple[str, str]] | None = None,
    not_modelled: Mapping[str, str] | None = None,
) -> type:
    """A pytest class of the standard checks for the HTTP spec ``spec_name`` against its sandbox.

    - ``sandbox_key``: the stand-in's name in the sandbox (default: the spec's name);
    - ``sample_stream`` (+ ``sample_params``): a cheap read for the auth, 5xx and 429 checks (default: the
      spec's first ``check`` entry); ``sample_call`` instead for a spec without streams;
    - ``sandbox_args``: ``start_sandbox`` arguments (seed sizes); ``tenant_connector``: the tenant's
      connector entry (``spec``, ``values``, ``credentials``) when tenants/demo.yaml has none;
    - ``paging``: per paged stream, what the sandbox holds (:class:`Paging`); ``not_paged``: paged streams
      not checked, each with the reason; ``page_size``: read the paging checks with this page size so a
      small seed spans pages (the spec's ``max_page_size`` still caps it);
    - ``webhook_routes``: for a webhook without a ``registration`` action, the stand-in's route where a
      delivery URL is set (method, path);
    - ``not_modelled``: ``streams.X``, ``by_id.X``, ``actions.X`` or ``webhooks.X`` the stand-in does not
      serve, each with the reason;
    """
    spec = load_spec(spec_name)
    if not isinstance(spec, m.HttpConnectorSpec):
        raise TypeError(f"spec {spec_name} is not an HTTP connector; the standard tests are for HTTP specs")
    key = sandbox_key or spec_name
    paging = dict(paging or {})
    not_paged = dict(not_paged or {})
    not_modelled = dict(not_modelled or {})
    webhook_routes = dict(webhook_routes or {})
    sample_params = dict(sample_params or {})
    if sample_stream is None and sample_call is None:
        first = spec.check[0] if spec.check else next(
            (n for n, s in spec.streams.items() if s.parent is None and "{params." not in s.path), None)
        if isinstance(first, m.CheckRead):
            sample_stream, sample_params = first.stream, {**first.params, **sample_params}
        else:
            sample_stream = first
    by_id_streams = [n for n, s in spec.streams.items() if s.by_id is not None and f"by_id.{n}" not in not_modelled]
    paged = paged_streams(spec)

    def probe(conn: Connector, sb: Sandbox) -> Any:
        if sample_stream is not None:
            return list(conn.read(sample_stream, params=sample_params, limit=1))
        if sample_call is not None:
            return conn.call(sample_call.action, sample_call.record(sb))
        raise AssertionError(f"spec {spec_name} has no stream to read: give standard_tests a sample_call")

    def probe_repeats() -> bool:
        """Whether the runtime may resend the probe after a 5xx (a read, or an idempotent action)."""
        if sample_stream is not None:
            return True
        assert sample_call is not None
        return spec.actions[sample_call.action].is_idempotent

    class StandardConnectorTests:
        __test__ = True
        SPEC = spec_name
        SANDBOX_KEY = key

        # ---- fixtures -------------------------------------------------------------------------
        @pytest.fixture(scope="class")
        @classmethod
        def sandbox(cls) -> Iterator[Sandbox]:
            if key not in SANDBOX_SYSTEMS:
                pytest.fail(f"spec {spec_name}: no stand-in named {key!r} in the sandbox "
                            f"({', '.join(sorted(SANDBOX_SYSTEMS))}); add a sandbox for spec {spec_name} "
                            "or list it in NO_SANDBOX with a reason")
            with start_sandbox(rate_limits=False, **dict(sandbox_args or {})) as sb:
                yield sb

        @pytest.fixture(scope="class")
        @classmethod
        def tenant(cls, sandbox: Sandbox) -> TenantConfig:
            overrides: dict[str, Any] = {}
            if tenant_connector is not None:
                entry = tenant_connector(sandbox)
                entry.setdefault("rate_limit", dict(UNTHROTTLED))
                overrides["connectors"] = {key: entry}
            tenant = sandbox_tenant(sandbox, f"std-{key}", unthrottled=True, **overrides)
            if key not in tenant.connectors:
                pytest.fail(f"spec {spec_name}: tenants/demo.yaml has no connector {key!r}; give "
                            "standard_tests a tenant_connector (spec, values, credentials) for it")
            return tenant

        @staticmethod
        def connector(tenant: TenantConfig, sleep: Callable[[float], Any] | None = None,
                      page: int | None = None) -> Connector:
            sleep = sleep if sleep is not None else Sleeps()
            conn = open_connector(tenant, key, budget=InMemoryRateBudget(), sleep=sleep)
            if page is not None:
                conn.close()
                conn = Connector(_with_page_size(conn.spec, page), values=conn.values, secrets=conn.secrets,
                                 tenant=conn.tenant, budget=InMemoryRateBudget(), sleep=sleep)
            return conn

        @pytest.fixture(scope="class")
        @classmethod
        def seeded(cls, sandbox: Sandbox, tenant: TenantConfig) -> Sandbox:
            """The sandbox after every paging setup ran (once per class and sandbox)."""
            with cls.connector(tenant) as conn:
                for plan in paging.values():
                    if plan.setup is not None:
                        plan.setup(sandbox, conn)
            return sandbox

        # ---- auth -----------------------------------------------------------------------------
        def test_auth_with_the_tenants_credentials_works(self, sandbox: Sandbox, tenant: TenantConfig) -> None:
            with self.connector(tenant) as conn:
                probe(conn, sandbox)
                assert conn.api_calls >= 1

        def test_auth_with_wrong_credentials_is_an_auth_error_without_secrets(
            self, sandbox: Sandbox, tenant: TenantConfig
        ) -> None:
            with self.connector(tenant) as good:
                right = dict(good.secrets)
                wrong = {name: f"wrong-{name}-{'x' * 12}" for name in right}
                conn = Connector(good.spec, values=good.values, secrets=wrong, tenant=good.tenant,
                                 budget=InMemoryRateBudget(), sleep=Sleeps())
            with conn, pytest.raises(AuthError) as caught:
                probe(conn, sandbox)
            exc = caught.value
            text = f"{exc} {json.dumps(exc.to_dict(), default=str)}"
            assert spec_name in str(exc), f"the auth error does not name connector {spec_name}: {exc}"
            leaked = _secrets_in(text, right) + _secrets_in(text, wrong)
            assert not leaked, f"the auth error shows secrets {leaked}: {text}"

        # ---- errors ---------------------------------------------------------------------------
        if by_id_streams:
            @pytest.mark.parametrize("stream", by_id_streams)
            def test_an_unknown_id_is_not_found(self, sandbox: Sandbox, tenant: TenantConfig, stream: str) -> None:
                with self.connector(tenant) as conn, pytest.raises(NotFoundError) as caught:
                    conn.read_one(stream, MISSING_ID)
                assert spec_name in str(caught.value)

        def test_a_5xx_is_retried_then_transient(self, sandbox: Sandbox, tenant: TenantConfig) -> None:
            policy = spec.retry
            status = next((s for s in (503, 502, 504, 500) if s in policy.retry_statuses), 503)
            try:
                # one 5xx, then the real answer: retried and read
                sandbox.set_faults(key, {"fail_next": [status]})
                with self.connector(tenant) as conn:
                    if probe_repeats():
                        probe(conn, sandbox)
                        assert conn.api_calls == 2, f"one {status} then success took {conn.api_calls} calls"
                # a 5xx that persists: max_attempts tries, then TransientError
                sandbox.set_faults(key, {"fail_next": [status] * (policy.max_attempts + 3)})
                sleeps = Sleeps()
                with self.connector(tenant, sleep=sleeps) as conn, pytest.raises(TransientError) as caught:
                    probe(conn, sandbox)
                tries = policy.max_attempts if probe_repeats() else 1
                assert conn.api_calls == tries, f"{conn.api_calls} calls for a persistent {status}, not {tries}"
                assert len(sleeps) == tries - 1, f"waits {sleeps} for {tries} tries"
                assert getattr(caught.value, "status", None) == status
                assert spec_name in str(caught.value)
            finally:
                sandbox.set_faults(key, None)

        # ---- rate limits ----------------------------------------------------------------------
        def test_a_429_with_retry_after_is_waited_and_retried(self, sandbox: Sandbox, tenant: TenantConfig) -> None:
            system = sandbox.systems[key]
            limiter = system.limiter
            sleeps = Sleeps(real=limiter is not None)
            saved = limiter.config if limiter is not None else None
            allowed = 2
            try:
                if limiter is not None:  # the stand-in's own budget, shrunk to 2 calls a second
                    limiter.config = SandboxRateLimit(limit=allowed, window_seconds=1,
                                                      block_seconds=1 if saved and saved.block_seconds else 0)
                    limiter.reset()
                else:  # no budget at this stand-in: a 429 with Retry-After injected
                    allowed = 0
                    sandbox.set_faults(key, {"fail_next": [429], "retry_after": 1})
                with self.connector(tenant, sleep=sleeps) as conn:
                    for _ in range(allowed + 1):
                        probe(conn, sandbox)
                    refused = conn.api_calls - (allowed + 1)
            finally:
                if limiter is not None and saved is not None:
                    limiter.config = saved
                    limiter.reset()
                sandbox.set_faults(key, None)
            assert refused >= 1, f"no 429 came back ({conn.api_calls} calls for {allowed + 1} reads)"
            assert refused < spec.retry.max_attempts
            assert sleeps and min(sleeps) >= 1, f"the runtime did not wait Retry-After (waits {sleeps})"
            assert sum(sleeps) <= spec.retry.max_elapsed_seconds

        # ---- paging ---------------------------------------------------------------------------
        def test_every_paged_stream_is_checked_or_excused(self) -> None:
            unknown = sorted((set(paging) | set(not_paged)) - set(spec.streams))
            assert not unknown, f"spec {spec_name} has no streams {unknown} (paging/not_paged are stale)"
            missing = [n for n in paged if n not in paging and n not in not_paged]
            assert not missing, (
                f"spec {spec_name}: streams {missing} declare paging; give standard_tests a Paging for each "
                "(how many records the sandbox holds, and a setup that makes it hold more than a page) or "
                "list them in not_paged with a reason")
            unpaged = [n for n in paging if n not in paged]
            assert not unpaged, f"spec {spec_name}: streams {unpaged} in paging= declare no pagination"

        if paging:
            @pytest.mark.parametrize("stream", sorted(paging))
            def test_paging_returns_every_record_once(self, seeded: Sandbox, tenant: TenantConfig,
                                                      stream: str) -> None:
                plan = paging[stream]
                definition = spec.streams[stream]
                with self.connector(tenant, page=page_size) as conn:
                    parent_calls = parents = 0
                    if definition.parent is not None:
                        parents = sum(1 for _ in conn.read(definition.parent.stream, params=plan.params))
                        parent_calls, conn.api_calls = conn.api_calls, 0
                    records = list(conn.read(stream, params=plan.params))
                    calls = conn.api_calls
                pk = definition.primary_key
                keys = [json.dumps(r.get(pk) if isinstance(pk, str) and pk else r, sort_keys=True, default=str)
                        for r in records]
                dupes = sorted({k for k in keys if keys.count(k) > 1})
                assert not dupes, f"{spec_name}.{stream}: records read more than once: {dupes[:5]}"
                expected = plan.expected(seeded)
                assert len(records) == expected, (
                    f"{spec_name}.{stream}: read {len(records)} records in {calls} calls, the sandbox holds "
                    f"{expected}")
                assert calls > parent_calls + max(parents, 1), (
                    f"{spec_name}.{stream}: {expected} records came in {calls} calls: the sandbox never held "
                    "more than one page (seed more records or lower page_size)")

        # ---- spec hygiene ---------------------------------------------------------------------
        def test_every_declared_endpoint_has_a_route_at_the_sandbox(self, sandbox: Sandbox,
                                                                    tenant: TenantConfig) -> None:
            system = sandbox.systems[key]
            with self.connector(tenant) as conn:
                values, base = conn.values, conn.base_url
            wanted: dict[str, tuple[str, str]] = {}
            for name, s in spec.streams.items():
                wanted[f"streams.{name}"] = ("GET", s.path)
                if s.by_id is not None:
                    wanted[f"by_id.{name}"] = ("GET", s.by_id.path)
            for name, a in spec.actions.items():
                wanted[f"actions.{name}"] = (a.method, a.path)
            problems = []
            for name, hook in spec.webhooks.items():
                item = f"webhooks.{name}"
                if hook.registration is not None:
                    wanted[item] = wanted.get(f"actions.{hook.registration.action}", ("?", "?"))
                elif name in webhook_routes:
                    method, path = webhook_routes[name]
                    if item not in not_modelled and route_status(system, method, path) != 200:
                        problems.append(f"{item}: {method} {path} (its webhook_routes entry) has no route")
                elif item not in not_modelled:
                    problems.append(f"{item}: no registration action; give standard_tests webhook_routes "
                                    f"{{{name!r}: (method, path)}} or list {item} in not_modelled with a reason")
            stale = sorted(set(not_modelled) - set(wanted) - {f"webhooks.{n}" for n in spec.webhooks})
            if stale:
                problems.append(f"not_modelled names {stale}, which spec {spec_name} does not declare")
            for item, (method, template) in sorted(wanted.items()):
                rendered = _render_path(template, values)
                url = rendered if rendered.startswith(("http://", "https://")) else f"{base}/{rendered.lstrip('/')}"
                path = urlsplit(url).path
                status = route_status(system, method, path)
                if item in not_modelled:
                    if status == 200:
                        problems.append(f"{item}: listed in not_modelled ({not_modelled[item]}) but "
                                        f"{method} {path} has a route now: take it off the list")
                elif status != 200:
                    problems.append(f"{item}: {method} {path} -> {status} from the {key} stand-in's router")
            assert not problems, f"spec {spec_name} against its sandbox:\n  " + "\n  ".join(problems)

    StandardConnectorTests.__name__ = StandardConnectorTests.__qualname__ = f"TestStandard{_camel(spec_name)}"
    return StandardConnectorTests


def http_spec_names(directory: Any) -> list[str]:
    """Every HTTP spec in ``directory`` (``*.yaml``), by name, sorted."""
    names = []
    for path in sorted(directory.glob("*.yaml")):
        loaded = load_spec(path)
        if isinstance(loaded, m.HttpConnectorSpec):
            names.append(loaded.name)
    return names


__all__ = ["Call", "Paging", "Sleeps", "http_spec_names", "paged_streams",
           "route_status", "standard_tests"]
