"""Start every stand-in on loopback, together, in-process: for tests, ``ponte sandbox up`` and demos.

All HTTP apps and the SMTP server share one event loop in one background thread, so a handler never
races another handler; Python control calls from the caller's thread take each system's lock. Ports
are ephemeral by default (tests run in parallel) or ``port_base + n`` for the CLI (documented, stable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from types import SimpleNamespace, TracebackType
from typing import Any

import uvicorn

from connectors.sandbox.base import DroppedConnection, SandboxSystem
from connectors.sandbox.clicksign import ClicksignSandbox
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.cvcrm import CvcrmSandbox
from connectors.sandbox.docusign import DocusignSandbox
from connectors.sandbox.faults import FaultConfig, parse_fault_spec
from connectors.sandbox.seed import PROFILES, Progress, SeedData, generate
from connectors.sandbox.sienge import SiengeSandbox
from connectors.sandbox.signing import Evidence
from connectors.sandbox.sink import Sink
from connectors.sandbox.smtp import SmtpSandbox
from connectors.sandbox.webhooks import Dispatcher
from connectors.sandbox.whatsapp import WhatsappSandbox
from connectors.sandbox.zapsign import ZapsignSandbox
from ponte import ConfigurationError, get_logger

log = get_logger(__name__)

#: Offsets from ``port_base`` (the CLI's stable ports).
PORT_OFFSETS = {"sienge": 0, "cvcrm": 1, "docusign": 2, "clicksign": 3, "whatsapp": 4, "smtp": 5, "sink": 6,
                "zapsign": 7}
DEFAULT_PORT_BASE = 8700
WHATSAPP_API_VERSION = "v23.0"


class _HideDroppedConnections(logging.Filter):
    """Injected connection drops are on purpose; keep them out of the server's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


logging.getLogger("uvicorn.error").addFilter(_HideDroppedConnections())


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP spelt out: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections of a
    # socket made so, as its own create_server does. Without it, a small response (headers, then the
    # body) waited for the client's delayed ACK: 44 ms for every request on a kept-alive connection.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc}",
                                 hint="choose another --port-base or stop what uses the port") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


class Sandbox:
    """A running sandbox: URLs, credentials, state and control methods of every stand-in."""

    def __init__(self, config: SandboxConfig, seed: SeedData, host: str = "127.0.0.1") -> None:
        self.config = config
        self.host = host
        self.seed_data = seed
        #: the seed profile (clean | realistic); the realistic one carries its ground truth in ``seed_data``
        self.profile = seed.profile
        self.dispatcher = Dispatcher()
        self.sienge = SiengeSandbox(config, self.dispatcher, seed)
        self.cvcrm = CvcrmSandbox(config, self.dispatcher, seed)
        self.docusign = DocusignSandbox(config, self.dispatcher)
        self.clicksign = ClicksignSandbox(config, self.dispatcher)
        self.whatsapp = WhatsappSandbox(config, self.dispatcher)
        self.zapsign = ZapsignSandbox(config, self.dispatcher)
        self.smtp = SmtpSandbox(config)
        self.sink = Sink(self.smtp)
        self.systems: dict[str, SandboxSystem] = {
            s.name: s for s in (self.sienge, self.cvcrm, self.docusign, self.clicksign, self.whatsapp, self.zapsign)
        }
        self.state = SimpleNamespace(**{name: system.state for name, system in self.systems.items()},
                                     smtp=self.smtp)
        self.urls: dict[str, str] = {}
        self.api: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[uvicorn.Server] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self, port_base: int | None = None) -> Sandbox:
        sockets: dict[str, socket.socket] = {}
        try:
            for name, offset in PORT_OFFSETS.items():
                sockets[name] = _bind(self.host, 0 if port_base is None else port_base + offset)
        except ConfigurationError:
            for sock in sockets.values():
                sock.close()
            raise
        ports = {name: sock.getsockname()[1] for name, sock in sockets.items()}
        for name, port in ports.items():
            self.urls[name] = f"http://{self.host}:{port}" if name != "smtp" else f"smtp://{self.host}:{port}"
        for name, system in self.systems.items():
            system.origin = self.urls[name]
        self.sink.origin = self.urls["sink"]
        self.smtp.host, self.smtp.port = self.host, ports["smtp"]
        cfg = self.config
        self.api = {
            "sienge": f"{self.urls['sienge']}/{cfg.sienge_subdomain}/public/api/v1",
            "cvcrm": f"{self.urls['cvcrm']}/api",
            "docusign": f"{self.urls['docusign']}/restapi/v2.1/accounts/{cfg.docusign_account_id}",
            "clicksign": f"{self.urls['clicksign']}/api/v3",
            "zapsign": f"{self.urls['zapsign']}/api/v1",
            "whatsapp": f"{self.urls['whatsapp']}/{WHATSAPP_API_VERSION}/{cfg.whatsapp_phone_number_id}",
            "sink": self.urls["sink"],
            "smtp": self.urls["smtp"],
        }
        self._thread = threading.Thread(target=self._run, args=(sockets,), name="ponte-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(15) or self._error is not None:
            self.stop()
            raise ConfigurationError(f"the sandbox did not start: {self._error!r}")
        return self

    def _run(self, sockets: dict[str, socket.socket]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self.dispatcher.bind(loop)
        try:
            loop.run_until_complete(self._serve(sockets))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            loop.run_until_complete(self.dispatcher.aclose())
            loop.close()

    async def _serve(self, sockets: dict[str, socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        smtp_server = await loop.create_server(self.smtp.factory, sock=sockets.pop("smtp"))
        apps: dict[str, Any] = {**self.systems, "sink": self.sink}
        tasks = []
        for name, sock in sockets.items():
            config = uvicorn.Config(apps[name], lifespan="off", log_level="warning", access_log=False,
                                    timeout_graceful_shutdown=1, timeout_keep_alive=5)
            server = uvicorn.Server(config)
            self._servers.append(server)
            tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        while not all(s.started for s in self._servers):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.01)
        self._ready.set()
        try:
            await asyncio.gather(*tasks)
        finally:
            smtp_server.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            def _exit() -> None:
                for server in self._servers:
                    server.should_exit = True
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_exit)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ---- control ----------------------------------------------------------------------------
    def set_faults(self, system: str, faults: FaultConfig | dict[str, Any] | None = None) -> None:
        """Change a system's fault injection now (None or {} heals it)."""
        if system not in self.systems:
            raise ConfigurationError(f"unknown system {system!r}", hint=", ".join(self.systems))
        config = faults if isinstance(faults, FaultConfig) else FaultConfig.model_validate(faults or {})
        self.systems[system].set_faults(config)

    def apply_corrections(self) -> dict[int, dict[str, Any]]:
        """Apply the seed's pending customer corrections in Sienge (realistic profile: CPFs fixed or
        replaced, each with a new modifiedAt and CUSTOMER_UPDATED); see ``SiengeSandbox.apply_corrections``."""
        return self.sienge.apply_corrections()

    def reset_rate_limits(self) -> None:
        for system in self.systems.values():
            if system.limiter is not None:
                system.limiter.reset()

    def sign(self, envelope_id: str, as_role: str, action: str = "sign", provider: str | None = None,
             evidence: Evidence | None = None) -> dict[str, Any]:
        """Make a signer act on an envelope (sign | view | refuse | expire) at DocuSign, Clicksign or ZapSign.

        The provider is found from the envelope id when not given.
        """
        if provider == "zapsign" or (provider is None and envelope_id in self.zapsign.state.docs):
            return self.zapsign.act(envelope_id, as_role, action)
        target = provider or ("docusign" if envelope_id in self.docusign.state.envelopes else "clicksign")
        system = self.docusign if target == "docusign" else self.clicksign
        return system.act(envelope_id, as_role, action, evidence)

    def credentials(self) -> dict[str, dict[str, str]]:
        """The credentials each stand-in accepts (to print, or to write a sandbox tenant file)."""
        c = self.config
        sienge_user = next(iter(c.sienge_users))
        cv_email = next(iter(c.cvcrm_users))
        return {
            "sienge": {"subdomain": c.sienge_subdomain, "user": sienge_user,
                       "password": c.sienge_users[sienge_user].password,
                       "limited_user": "ponte-limited (no sales-contracts grant)"},
            "cvcrm": {"email": cv_email, "token": c.cvcrm_users[cv_email].token,
                      "senha": c.cvcrm_users[cv_email].senha},
            "docusign": {"account_id": c.docusign_account_id, "token": c.docusign_static_token,
                         "connect_hmac_key": c.docusign_connect_key},
            "clicksign": {"token": c.clicksign_token, "webhook_secret": c.clicksign_webhook_secret},
            "zapsign": {"api_token": c.zapsign_token, "webhook_secret": c.zapsign_webhook_secret},
            "whatsapp": {"token": c.whatsapp_token, "phone_number_id": c.whatsapp_phone_number_id,
                         "app_secret": c.whatsapp_app_secret, "api_version": WHATSAPP_API_VERSION},
            "smtp": {"host": self.smtp.host, "port": str(self.smtp.port), "user": c.smtp_user,
                     "password": c.smtp_password},
        }


def start_sandbox(
    *,
    customers: int | None = None,
    seed: int | None = None,
    faults: dict[str, FaultConfig | dict[str, Any]] | list[str] | str | None = None,
    rate_limits: bool = True,
    port_base: int | None = None,
    host: str = "127.0.0.1",
    config: SandboxConfig | None = None,
    progress: Progress | None = None,
    profile: str = "clean",
    **overrides: Any,
) -> Sandbox:
    """Seed and start every stand-in; returns a running :class:`Sandbox` (also a context manager).

    ``faults`` is a mapping per system or the CLI's compact strings (see ``parse_fault_spec``);
    ``overrides`` are :class:`SandboxConfig` fields (e.g. ``sienge_rate_limit=RateLimit(...)``).
    ``profile`` is the seed data: ``clean`` (every record imports) or ``realistic`` (people as real ERPs
    hold them; ``sandbox.seed_data.expected_failures`` says which customers must fail and why).
    """
    if profile not in PROFILES:
        raise ConfigurationError(f"unknown sandbox profile {profile!r}", hint=" or ".join(PROFILES))
    cfg = (config or SandboxConfig()).model_copy(update=overrides, deep=True)
    if customers is not None:
        cfg.customers = customers
    if seed is not None:
        cfg.seed = seed
    if faults:
        parsed = parse_fault_spec(faults) if isinstance(faults, (str, list)) else {
            k: v if isinstance(v, FaultConfig) else FaultConfig.model_validate(v) for k, v in faults.items()
        }
        cfg.faults = {**cfg.faults, **parsed}
    if not rate_limits:
        cfg = cfg.without_rate_limits()
    data = generate(customers=cfg.customers, seed=cfg.seed, enterprises=cfg.enterprises,
                    assistances=cfg.assistances, progress=progress or (lambda *_: None), profile=profile)
    sandbox = Sandbox(cfg, data, host=host)
    return sandbox.start(port_base=port_base)


StartFn = Callable[..., Sandbox]
