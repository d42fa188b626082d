"""A pytest plugin that fails the run when a request the hub sends to DocuSign, Clicksign, WhatsApp or
Sienge during the flow tests, or an answer or webhook a stand-in sends back, breaks the vendor's spec.

How it works:

- The capture is taken at the stand-ins, which see exactly what went over the wire: at configure time
  an observer is added to ``connectors.sandbox.base.EXCHANGE_OBSERVERS`` (every request a stand-in
  serves, with its answer), ``Dispatcher._record`` is wrapped (every webhook attempt a stand-in
  posts) and so is the SMTP stand-in's ``handle_DATA`` (every e-mail, checked against RFC 5322). It only queues copies; the checks run in the test's own thread, after each test, so the
  stand-ins' event loop is never slowed by them.
- It is on during the flow tests (:data:`FLOW_TESTS`: dispatch, back-sync, imports, assistance and the
  chaos suites at CI scale) and off elsewhere: the sandbox's own tests send broken bodies on purpose.
- Each body is checked by tests/support/vendor_specs.py: every request body (Ponte's side, item 5 of
  issue #18), and, sampled (:data:`SAMPLES` per endpoint and status, per process), the stand-ins'
  JSON answers and webhook bodies (item 6). Sienge's answers are checked by
  tests/sandbox/test_fidelity.py (with the errata of its YAMLs), not here.
- Violations are kept with the first test that showed each, and a count. Without xdist,
  ``pytest_sessionfinish`` sets the exit status to 1 when there are any and the terminal summary lists
  them all (endpoint, field, problem, spec file); under xdist each worker ships its findings to the
  controller in ``workeroutput``, as tests/security/logscan.py does.
- What no spec defines (Ponte's own technical-assistance endpoint at Sienge, the OAuth token form,
  Clicksign's webhooks, ...) is not a violation: the summary lists it as unchecked, with counts.
- ``@pytest.mark.spec_check_allow(reason)`` exempts a test that sends an off-spec body on purpose.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from connectors.sandbox import base as sandbox_base
from connectors.sandbox.smtp import SmtpSandbox
from connectors.sandbox.webhooks import Attempt, Dispatcher
from tests.support.vendor_specs import Violation, check_email, check_request, check_response, check_webhook

#: the tests during which the capture is on (node id prefixes)
FLOW_TESTS = ("tests/pipelines/dispatch/", "tests/pipelines/backsync/", "tests/pipelines/imports/", "tests/pipelines/assistance/", "tests/chaos/")
#: the vendors whose specs ../shared/specs holds (CV CRM has none)
SYSTEMS = frozenset({"docusign", "clicksign", "whatsapp", "sienge"})
#: answers and webhook bodies checked per (system, endpoint, status) or (system, event), per process
SAMPLES = 25
#: systems whose answers are checked here (Sienge's: tests/sandbox/test_fidelity.py)
RESPONSES_OF = frozenset({"docusign", "clicksign", "whatsapp"})
MAX_LISTED = 300


@dataclass
class Captured:
    kind: str  # exchange | webhook | email
    test: str
    system: str
    method: str = ""
    path: str = ""
    request_body: bytes = b""
    status: int = 0
    content_type: str = ""
    response_body: bytes | None = None
    event: str = ""
    body: bytes = b""


def check(item: Captured) -> tuple[list[Violation], list[str], list[str]]:
    """(violations, labels of what was checked, labels of what no spec defines) of one captured item."""
    found: list[Violation] = []
    checked: list[str] = []
    unchecked: list[str] = []
    if item.kind == "email":
        return check_email(item.body), ["smtp messages"], []
    if item.kind == "webhook":
        result = check_webhook(item.system, item.body, item.event)
        if result is None:
            unchecked.append(f"webhook {item.system} {item.event}")
        else:
            found += result
            checked.append(f"{item.system} webhook bodies")
        return found, checked, unchecked
    if item.request_body or item.method in ("POST", "PUT", "PATCH"):
        result = check_request(item.system, item.method, item.path, item.request_body)
        if result is None:
            unchecked.append(f"request {item.system} {item.method} {_coarse(item.path)}")
        else:
            found += result
            checked.append(f"{item.system} request bodies")
    if item.response_body is not None:
        answer = check_response(item.system, item.method, item.path, item.status, item.response_body,
                                item.content_type)
        if answer is None:
            unchecked.append(f"response {item.system} {item.method} {_coarse(item.path)} {item.status}")
        else:
            found += answer
            checked.append(f"{item.system} responses")
    return found, checked, unchecked


_ID_SEGMENT = re.compile(r"/(?!v\d+(?:\.\d+)?(?:/|$))(?=[^/]*\d)[^/]+")


def _coarse(path: str) -> str:
    """A path with its id-like segments (anything with a digit) folded, to count and sample by."""
    return _ID_SEGMENT.sub("/{}", path)


@dataclass
class SpecCapture:
    """Queues what the stand-ins saw while a flow test runs; checks it in the test's thread."""

    active: bool = False
    current: str = "<session>"
    queue: list[Captured] = field(default_factory=list)
    violations: dict[str, dict[str, Any]] = field(default_factory=dict)
    unchecked: Counter[str] = field(default_factory=Counter)
    checked: Counter[str] = field(default_factory=Counter)
    sampled: Counter[tuple[str, ...]] = field(default_factory=Counter)
    samples: int = SAMPLES
    #: every violation in the order found (the focused tests read it; the session report dedupes)
    found: list[Violation] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- capture (stand-in threads) --------------------------------------------------------
    def on_exchange(self, exchange: sandbox_base.Exchange) -> None:
        if not self.active or exchange.system not in SYSTEMS:
            return
        content_type = exchange.response_headers.get("content-type", "")
        response: bytes | None = None
        if exchange.system in RESPONSES_OF and "json" in content_type:
            key = ("response", exchange.system, exchange.method, _coarse(exchange.path), str(exchange.status))
            with self.lock:
                self.sampled[key] += 1
                if self.sampled[key] <= self.samples:
                    response = exchange.response_body
        if not exchange.request_body and exchange.method not in ("POST", "PUT", "PATCH") and response is None:
            return
        item = Captured("exchange", self.current, exchange.system, exchange.method, exchange.path,
                        exchange.request_body, exchange.status, content_type, response)
        with self.lock:
            self.queue.append(item)

    def on_attempt(self, attempt: Attempt) -> None:
        if not self.active or attempt.system not in SYSTEMS or not attempt.body:
            return
        key = ("webhook", attempt.system, attempt.event)
        with self.lock:
            self.sampled[key] += 1
            if self.sampled[key] > self.samples:
                return
            self.queue.append(Captured("webhook", self.current, attempt.system, event=attempt.event,
                                       body=attempt.body))

    def on_email(self, raw: bytes) -> None:
        if not self.active:
            return
        with self.lock:
            self.queue.append(Captured("email", self.current, "smtp", body=raw))

    # ---- checks (the test's thread) --------------------------------------------------------
    def drain(self) -> None:
        with self.lock:
            items, self.queue = self.queue, []
        for item in items:
            try:
                found, checked, unchecked = check(item)
            except Exception as exc:  # a validator bug is a finding too, never a silent pass
                found = [Violation(item.kind, item.system, f"{item.method} {item.path}".strip() or item.event,
                                   "", f"the spec check crashed: {type(exc).__name__}: {exc}", "-")]
                checked, unchecked = [], []
            self.checked.update(checked)
            for label in unchecked:
                self.unchecked[label] += 1
            self.found.extend(found)
            for violation in found:
                entry = self.violations.setdefault(str(violation), {"line": str(violation), "test": item.test,
                                                                     "count": 0})
                entry["count"] += 1


_KEY = pytest.StashKey[SpecCapture]()
_COLLECTED = pytest.StashKey[dict]()
_UNDO = pytest.StashKey[list]()


def _is_xdist_controller(config: pytest.Config) -> bool:
    numprocesses = getattr(config.option, "numprocesses", None)
    dist = getattr(config.option, "dist", "no")
    return bool(numprocesses) or dist not in (None, "no")


def install(capture: SpecCapture) -> Callable[[], None]:
    """Hook ``capture`` into every stand-in of this process; returns the undo."""
    sandbox_base.EXCHANGE_OBSERVERS.append(capture.on_exchange)
    original = Dispatcher._record

    def _record(self: Dispatcher, attempt: Attempt) -> None:
        original(self, attempt)
        capture.on_attempt(attempt)

    Dispatcher._record = _record  # type: ignore[method-assign]
    original_data = SmtpSandbox.handle_DATA

    async def handle_DATA(self: SmtpSandbox, server: Any, session: Any, envelope: Any) -> str:
        answer = await original_data(self, server, session, envelope)
        raw = envelope.original_content or b""
        capture.on_email(raw if isinstance(raw, bytes) else raw.encode())
        return answer

    SmtpSandbox.handle_DATA = handle_DATA  # type: ignore[method-assign]

    def undo() -> None:
        Dispatcher._record = original  # type: ignore[method-assign]
        SmtpSandbox.handle_DATA = original_data  # type: ignore[method-assign]
        if capture.on_exchange in sandbox_base.EXCHANGE_OBSERVERS:
            sandbox_base.EXCHANGE_OBSERVERS.remove(capture.on_exchange)

    return undo


@contextmanager
def capturing(test: str = "<focused>") -> Iterator[SpecCapture]:
    """A capture of one's own, on for the ``with`` block (for a test that checks one flow itself)."""
    capture = SpecCapture(active=True, current=test, samples=10**9)  # every answer, not a sample
    undo = install(capture)
    try:
        yield capture
    finally:
        undo()
        capture.drain()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spec_check_allow(reason): this test sends off-spec bodies on purpose")
    config.stash[_COLLECTED] = {"violations": {}, "checked": Counter(), "unchecked": Counter()}
    if hasattr(config, "workerinput") or not _is_xdist_controller(config):
        capture = SpecCapture()
        config.stash[_KEY] = capture
        config.stash[_UNDO] = [install(capture)]


def pytest_unconfigure(config: pytest.Config) -> None:
    for undo in config.stash.get(_UNDO, []):
        undo()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    capture = item.config.stash.get(_KEY, None)
    if capture is None:
        return
    capture.drain()
    capture.current = item.nodeid
    capture.active = (item.nodeid.startswith(FLOW_TESTS)
                      and item.get_closest_marker("spec_check_allow") is None)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    capture = item.config.stash.get(_KEY, None)
    if capture is not None:
        capture.drain()


def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: merge what a worker found."""
    output = getattr(node, "workeroutput", None) or {}
    collected = node.config.stash.get(_COLLECTED, None)
    if collected is None:
        return
    for line, entry in (output.get("spec_violations") or {}).items():
        mine = collected["violations"].setdefault(line, {**entry, "count": 0})
        mine["count"] += entry["count"]
    collected["checked"].update(output.get("spec_checked") or {})
    collected["unchecked"].update(output.get("spec_unchecked") or {})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    capture = config.stash.get(_KEY, None)
    collected = config.stash[_COLLECTED]
    if capture is not None:
        capture.active = True  # what arrived after the last test still belongs to a flow test
        capture.drain()
        capture.active = False
        if hasattr(config, "workeroutput"):  # an xdist worker: the controller decides
            config.workeroutput["spec_violations"] = capture.violations  # type: ignore[attr-defined]
            config.workeroutput["spec_checked"] = dict(capture.checked)  # type: ignore[attr-defined]
            config.workeroutput["spec_unchecked"] = dict(capture.unchecked)  # type: ignore[attr-defined]
            return
        for line, entry in capture.violations.items():
            mine = collected["violations"].setdefault(line, {**entry, "count": 0})
            mine["count"] += entry["count"]
        collected["checked"].update(capture.checked)
        collected["unchecked"].update(capture.unchecked)
    if collected["violations"]:
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        else:
            session.exitstatus = max(int(session.exitstatus), int(pytest.ExitCode.TESTS_FAILED))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    collected = config.stash.get(_COLLECTED, None)
    if collected is None:
        return
    checked, unchecked, violations = collected["checked"], collected["unchecked"], collected["violations"]
    total = sum(checked.values())
    if not total and not violations:
        return
    counts = ", ".join(f"{n} {label}" for label, n in sorted(checked.items()))
    not_checked = "; ".join(f"{label} x{n}" for label, n in sorted(unchecked.items()))
    if not violations:
        terminalreporter.write_line(f"spec check: {total} bodies checked against ../shared/specs ({counts}), "
                                    "no violation" + (f"; no spec defines: {not_checked}" if not_checked else ""))
        return
    terminalreporter.section("spec check: bodies that break the vendors' specs", sep="=", red=True)
    for entry in sorted(violations.values(), key=lambda e: e["line"])[:MAX_LISTED]:
        terminalreporter.write_line(f"{entry['line']} (x{entry['count']}, first in {entry['test']})")
    if not_checked:
        terminalreporter.write_line(f"not checked (no spec defines them): {not_checked}")
    terminalreporter.write_line(f"spec check FAILED: {len(violations)} violation(s) among {total} bodies checked "
                                f"({counts}); see tests/support/vendor_specs.py and docs/dispatch.md")
