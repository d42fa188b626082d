"""A pytest plugin that fails the run when any log line of the whole test session shows personal data
or a secret in clear.

How it works:

- At configure time a :class:`ScanHandler` is added to the root logger (and to every logger that does
  not propagate, e.g. uvicorn's, as they appear). It sees every record any library or Ponte module
  emits, formats it (message and traceback) exactly as a plain handler would, and scans the *final*
  line: what Ponte's masking filter already rewrote passes, what a third-party logger printed raw does
  not.
- Detectors: CPF (formatted, or 11 bare digits with valid check digits), CNPJ (numeric or
  alphanumeric, formatted or bare, with valid check digits), e-mail addresses, Brazilian phone numbers
  (+55 / (DD) forms), bearer/basic tokens and secret-looking URL parameters, and the known secrets:
  every credential default of the tenant files and the extra values listed in ``KNOWN_SECRETS``.
- The root logger's level is lowered to ``PONTE_LOGSCAN_LEVEL`` (default DEBUG) for the session, so
  records that a default WARNING root would drop are scanned too (a DEBUG line an operator turns on must
  not leak either).
- Findings are kept per test id, with the offending spans masked. Without xdist, ``pytest_sessionfinish``
  sets the exit status to 1 when there are findings and the terminal summary lists them. Under xdist
  each worker scans its own records and ships its findings to the controller in ``workeroutput``; the
  controller collects them in ``pytest_testnodedown`` and fails the run in its own sessionfinish.
- The same detectors also read what a person sees outside the logs: the output of every CLI run a test
  makes through typer's (or click's) ``CliRunner`` (stdout and stderr, as ``result.output`` holds them),
  and every dead letter a test writes (``pipelines.store.deadletters.put`` and ``put_many``), rendered
  exactly as ``ponte deadletter show`` prints it. Those findings name ``<cli output>`` or ``<deadletter show>``
  where a log finding names its logger.
- ``@pytest.mark.logscan_allow(reason)`` exempts a test that must log clear data on purpose (none does).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LEVEL = os.environ.get("PONTE_LOGSCAN_LEVEL", "DEBUG").upper()
MAX_FINDINGS = 200

#: secrets that are not tenant credential defaults but must never appear in a log line either
KNOWN_SECRETS = (
    "sienge-hook-token-demo",
    "cv-url-secret-demo-0123456789",
    "docusign-connect-secret",
    "clicksign-webhook-secret",
    "whatsapp-app-secret",
)


def tenant_credential_defaults(root: Path = REPO) -> set[str]:
    """Every ``{env: ..., default: ...}`` credential default in tenants/*.yaml (the sandbox secrets)."""
    found: set[str] = set()
    for path in sorted((root / "tenants").glob("*.y*ml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for connector in (data.get("connectors") or {}).values():
            for ref in ((connector or {}).get("credentials") or {}).values():
                if isinstance(ref, dict) and isinstance(ref.get("default"), str):
                    found.add(ref["default"])
    return found


def known_secrets() -> list[str]:
    values = {v for v in (*KNOWN_SECRETS, *tenant_credential_defaults()) if len(v) >= 6 and "@" not in v}
    return sorted(values, key=len, reverse=True)


# ------------------------------------------------------------------------------------------ detectors

def _valid_cpf(text: str) -> bool:
    from stdnum.br import cpf

    digits = re.sub(r"\D", "", text)
    return len(digits) == 11 and len(set(digits)) > 1 and cpf.is_valid(digits)


def _valid_cnpj(text: str) -> bool:
    from stdnum.br import cnpj

    chars = re.sub(r"[^0-9A-Za-z]", "", text).upper()
    return len(chars) == 14 and len(set(chars)) > 1 and cnpj.is_valid(chars)


@dataclass(frozen=True)
class Detector:
    kind: str
    pattern: re.Pattern[str]
    accept: Callable[[str], bool] = lambda _text: True

    def find(self, line: str) -> Iterator[tuple[int, int]]:
        for match in self.pattern.finditer(line):
            if self.accept(match.group(0)):
                yield match.span()


_SECRET_PARAMS = r"token|access_token|api_key|apikey|secret|client_secret|password|senha|signature|sig|key"

DETECTORS = (
    Detector("cpf", re.compile(r"(?<![\w*])\d{3}\.\d{3}\.\d{3}-\d{2}(?!\w)"), _valid_cpf),
    Detector("cpf", re.compile(r"(?<![\w*.])\d{11}(?![\w])"), _valid_cpf),
    Detector("cnpj", re.compile(r"(?<![\w*])[0-9A-Z]{2}\.[0-9A-Z]{3}\.[0-9A-Z]{3}/[0-9A-Z]{4}-\d{2}(?!\w)"), _valid_cnpj),
    Detector("cnpj", re.compile(r"(?<![\w*.])[0-9A-Z]{12}\d{2}(?!\w)"), _valid_cnpj),
    # a doubled @ (joao@@example.com) is still somebody's address
    Detector("e-mail", re.compile(r"(?<![\w*.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@+[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")),
    Detector("phone", re.compile(
        r"(?<![\w*])\+?55[\s.-]?\(?[1-9][0-9]\)?[\s.-]?9?\d{4}[\s.-]?\d{4}(?!\w)"  # +55 48 99876-5432, 5548999998888
        r"|\((?:[1-9][0-9])\)\s?9?\d{4}[\s.-]?\d{4}(?!\w)"  # (48) 99876-5432
        r"|(?<![\w*(])[1-9][0-9]\s9\d{4}[\s-]\d{4}(?!\w)"  # 48 99876-5432
    )),
    Detector("bearer token", re.compile(r"\b(?:Bearer|Basic)\s+(?!\*)[A-Za-z0-9._~+/=-]{6,}", re.I)),
    Detector("secret in a URL", re.compile(rf"[?&](?:{_SECRET_PARAMS})=(?!\*)[^&\s\"'#]{{6,}}", re.I)),
)


#: a provider's id (an envelope's UUID): its all-digit groups can read like a phone (5548-9999-8847)
_UUID = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9A-Za-z])", re.I)


def scan_line(line: str, secrets: list[str]) -> list[tuple[str, int, int]]:
    """The (kind, start, end) spans of clear personal data or secrets in ``line``. Digits inside a UUID
    are part of an id, not personal data (known secrets are found wherever they are)."""
    spans = []
    for secret in secrets:
        start = line.find(secret)
        while start != -1:
            spans.append(("known secret", start, start + len(secret)))
            start = line.find(secret, start + 1)
    ids = [m.span() for m in _UUID.finditer(line)]
    for detector in DETECTORS:
        spans.extend((detector.kind, a, b) for a, b in detector.find(line)
                     if not any(start <= a and b <= end for start, end in ids))
    return spans


def mask_spans(line: str, spans: list[tuple[str, int, int]]) -> str:
    """``line`` with each found span replaced by ``<kind …last two chars>`` (safe to print)."""
    out, last = [], 0
    for kind, start, end in sorted(spans, key=lambda s: (s[1], -s[2])):
        if start < last:
            continue
        out.append(line[last:start])
        out.append(f"<{kind} …{line[end - 2:end]}>" if kind in ("cpf", "cnpj", "phone") else f"<{kind}>")
        last = end
    out.append(line[last:])
    return "".join(out)


# ------------------------------------------------------------------------------------------- handler

_FORMAT = logging.Formatter("%(levelname)s %(name)s: %(message)s")


class ScanHandler(logging.Handler):
    """Scans each record as formatted output and keeps the (masked) offending lines."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.secrets = known_secrets()
        self.findings: list[dict[str, Any]] = []
        self.seen = 0
        self.current = "<session>"
        self.allowed = False
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False):  # never recurse through our own formatting
            return
        self._local.busy = True
        try:
            self.seen += 1
            if self.allowed:
                return
            try:
                line = _FORMAT.format(record)
            except Exception:  # an unformattable record: scan what there is
                line = f"{record.levelname} {record.name}: {record.msg!r} {record.args!r}"
            for text in line.splitlines() or [line]:
                spans = scan_line(text, self.secrets)
                if spans and len(self.findings) < MAX_FINDINGS:
                    self.findings.append({
                        "test": self.current,
                        "logger": record.name,
                        "kinds": sorted({s[0] for s in spans}),
                        "line": mask_spans(text, spans)[:500],
                    })
        finally:
            self._local.busy = False

    def scan_text(self, text: str, source: str) -> None:
        """Scan text a person would read outside the logs (CLI output, a rendered dead letter)."""
        self.seen += 1
        if self.allowed or not text:
            return
        for line in text.splitlines():
            spans = scan_line(line, self.secrets)
            if spans and len(self.findings) < MAX_FINDINGS:
                self.findings.append({
                    "test": self.current,
                    "logger": source,
                    "kinds": sorted({s[0] for s in spans}),
                    "line": mask_spans(line, spans)[:500],
                })

    def attach_everywhere(self) -> None:
        """Also listen on loggers that do not propagate to the root (their records never reach it)."""
        for logger in list(logging.root.manager.loggerDict.values()):
            if isinstance(logger, logging.Logger) and not logger.propagate and self not in logger.handlers:
                logger.addHandler(self)


# -------------------------------------------------------------------------------------------- hooks

_KEY = pytest.StashKey[ScanHandler]()
_COLLECTED = pytest.StashKey[list]()
_PATCHES = pytest.StashKey[list]()


def _handler(config: pytest.Config) -> ScanHandler | None:
    return config.stash.get(_KEY, None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "logscan_allow(reason): this test logs clear data on purpose")
    config.stash[_COLLECTED] = []
    if hasattr(config, "workerinput") or not _is_xdist_controller(config):
        handler = ScanHandler()
        config.stash[_KEY] = handler
        _listen(handler)
        config.stash[_PATCHES] = _watch_surfaces(handler)


def pytest_unconfigure(config: pytest.Config) -> None:
    for owner, name, original in reversed(config.stash.get(_PATCHES, [])):
        setattr(owner, name, original)


# ------------------------------------------------------------------ surfaces other than log records

CLI_SOURCE = "<cli output>"
DEAD_LETTER_SOURCE = "<deadletter show>"


def _watch_surfaces(handler: ScanHandler) -> list[tuple[Any, str, Any]]:
    """Wrap the CLI test runners and the dead-letter store so what they show is scanned too; returns
    ``(owner, attribute, original)`` for each wrapper, to undo at the end of the session."""
    patches: list[tuple[Any, str, Any]] = []
    for module_name in ("typer.testing", "click.testing"):
        try:
            module = __import__(module_name, fromlist=["CliRunner"])
        except ImportError:  # pragma: no cover - both come with the CLI's dependencies
            continue
        runner = module.CliRunner
        original = runner.__dict__.get("invoke")
        if original is not None and not getattr(original, "_logscan", False):
            runner.invoke = _scanned_invoke(original, handler)
            patches.append((runner, "invoke", original))
    try:
        from pipelines.store import deadletters
    except ImportError:  # pragma: no cover - a session outside this repository
        return patches
    if not getattr(deadletters.put, "_logscan", False):
        original_put = deadletters.put
        deadletters.put = _scanned_put(original_put, handler)
        patches.append((deadletters, "put", original_put))
    original_many = getattr(deadletters, "put_many", None)  # the import's batches of dead letters
    if original_many is not None and not getattr(original_many, "_logscan", False):
        deadletters.put_many = _scanned_put_many(original_many, handler)
        patches.append((deadletters, "put_many", original_many))
    return patches


def _scanned_invoke(original: Callable[..., Any], handler: ScanHandler) -> Callable[..., Any]:
    @functools.wraps(original)
    def invoke(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        try:
            output = result.output
        except (ValueError, AttributeError):  # a runner that did not capture it
            output = ""
        handler.scan_text(output, CLI_SOURCE)
        return result

    invoke._logscan = True  # type: ignore[attr-defined]
    return invoke


def _scanned_put(original: Callable[..., Any], handler: ScanHandler) -> Callable[..., Any]:
    @functools.wraps(original)
    def put(*args: Any, **kwargs: Any) -> Any:
        dead_letter_id = original(*args, **kwargs)
        try:
            shown = render_dead_letter(kwargs)
        except Exception:  # a row the renderer cannot show is not a leak: never fail the caller
            return dead_letter_id
        handler.scan_text(shown, DEAD_LETTER_SOURCE)
        return dead_letter_id

    put._logscan = True  # type: ignore[attr-defined]
    return put


def _scanned_put_many(original: Callable[..., Any], handler: ScanHandler) -> Callable[..., Any]:
    @functools.wraps(original)
    def put_many(session: Any, letters: Any, *args: Any, **kwargs: Any) -> Any:
        letters = list(letters)
        written = original(session, letters, *args, **kwargs)
        for letter in letters:
            try:
                shown = render_dead_letter({name: getattr(letter, name, None) for name in (
                    "tenant", "flow", "record_key", "error", "payload", "mapping_version")})
            except Exception:  # a row the renderer cannot show is not a leak: never fail the caller
                continue
            handler.scan_text(shown, DEAD_LETTER_SOURCE)
        return written

    put_many._logscan = True  # type: ignore[attr-defined]
    return put_many


def render_dead_letter(fields: dict[str, Any]) -> str:
    """What `ponte deadletter show` prints for a dead letter written with ``fields`` (``put``'s keyword
    arguments)."""
    from orchestration.cli.deadletter import render

    error = fields.get("error")
    row = SimpleNamespace(
        flow=fields.get("flow"), record_key=fields.get("record_key"), tenant=fields.get("tenant"),
        status="open", error_kind=getattr(error, "kind", None), reason=getattr(error, "message", None),
        field=getattr(error, "field", None), hint=getattr(error, "hint", None),
        mapping_version=fields.get("mapping_version"), payload=fields.get("payload"),
    )
    return "\n".join(render(row))


def _listen(handler: ScanHandler) -> None:
    """(Re)install the handler and the scan level: CLI runs call configure_logging, which sets the root
    logger to INFO, and a test may remove root handlers it did not add."""
    root = logging.getLogger()
    if handler not in root.handlers:
        root.addHandler(handler)
    level = logging.getLevelName(LEVEL)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    handler.attach_everywhere()


def _is_xdist_controller(config: pytest.Config) -> bool:
    numprocesses = getattr(config.option, "numprocesses", None)
    dist = getattr(config.option, "dist", "no")
    return bool(numprocesses) or dist not in (None, "no")


@pytest.hookimpl(trylast=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    handler = _handler(item.config)
    if handler is not None:
        handler.current = item.nodeid
        handler.allowed = item.get_closest_marker("logscan_allow") is not None
        _listen(handler)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    handler = _handler(item.config)
    if handler is not None:
        _listen(handler)


def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect what a worker found."""
    output = getattr(node, "workeroutput", None) or {}
    collected = node.config.stash.get(_COLLECTED, None)
    if collected is not None:
        collected.extend(output.get("logscan_findings", []))
        collected.append({"_worker_seen": output.get("logscan_seen", 0)})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    handler = _handler(config)
    findings = list(config.stash.get(_COLLECTED, []))
    if handler is not None:
        handler.current = "<session end>"
        findings.extend(handler.findings)
        if hasattr(config, "workeroutput"):  # an xdist worker: the controller decides
            config.workeroutput["logscan_findings"] = handler.findings  # type: ignore[attr-defined]
            config.workeroutput["logscan_seen"] = handler.seen  # type: ignore[attr-defined]
            return
    real = [f for f in findings if "_worker_seen" not in f]
    config.stash[_COLLECTED] = findings
    if real and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif real:
        session.exitstatus = max(int(session.exitstatus), int(pytest.ExitCode.TESTS_FAILED))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    findings = config.stash.get(_COLLECTED, [])
    handler = _handler(config)
    seen = (handler.seen if handler else 0) + sum(f.get("_worker_seen", 0) for f in findings)
    real = [f for f in findings if "_worker_seen" not in f]
    if not real:
        terminalreporter.write_line(f"log scan: {seen} log records, CLI outputs and dead letters scanned, "
                                    "no personal data or secret in clear")
        return
    terminalreporter.section("log scan: personal data or secrets in clear in log lines, CLI output or dead letters",
                             sep="=", red=True)
    for finding in real:
        terminalreporter.write_line(
            f"{finding['test']} [{finding['logger']}] {', '.join(finding['kinds'])}: {finding['line']}")
    terminalreporter.write_line(
        f"log scan FAILED: {len(real)} offending line(s) among {seen} records (values masked above); "
        "log through ponte.logging.get_logger, mask text with ponte.redaction.redact and records with "
        "ponte.redaction.mask_record")
