"""Webhook-gateway processes for the topology test: ``uvicorn`` on the production factory, each in its
own process group, listening on a socket this process opened (no port race)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.deploy.topology import REPO, TopologyError

READY_TIMEOUT = 30.0


@dataclass
class GatewayProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def _wait_healthy(gateway: GatewayProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise TopologyError(f"gateway exited with {gateway.process.returncode}:\n{gateway.log()[-4000:]}")
        with suppress(httpx.HTTPError):
            if httpx.get(f"{gateway.url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TopologyError(
        f"gateway at {gateway.url} not healthy within {READY_TIMEOUT:.0f} s:\n{gateway.log()}"
    )


@contextmanager
def gateway_processes(count: int, env: Mapping[str, str], workdir: Path) -> Iterator[list[GatewayProcess]]:
    """``count`` gateway instances built by ``app_from_environment`` from ``env`` (store URL, tenants)."""
    with ExitStack() as stack:
        gateways: list[GatewayProcess] = []
        for index in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            port = sock.getsockname()[1]
            log_path = workdir / f"gateway-{index}.log"
            command = [
                sys.executable, "-m", "uvicorn", "orchestration.gateway.factory:app_from_environment",
                "--factory", "--fd", str(sock.fileno()),
                "--log-level", "warning", "--no-access-log", "--lifespan", "off",
            ]  # fmt: skip
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    command,
                    cwd=REPO,
                    env={**os.environ, **env},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(sock.fileno(),),
                    start_new_session=True,
                )
            gateway = GatewayProcess(f"http://127.0.0.1:{port}", process, log_path)
            gateways.append(gateway)
            stack.callback(gateway.stop)
        for gateway in gateways:
            _wait_healthy(gateway)
        yield gateways
