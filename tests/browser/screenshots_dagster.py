"""Screenshots of the Dagster UI an operator works in, for docs/operators.md (``make screenshots``).

Not a test (pytest does not collect this file's name): ``python -m tests.browser.screenshots_dagster
[DIR]`` (default ``docs/screenshots``). In a temporary home of its own (state store, tenants file,
``DAGSTER_HOME``, so an operator's ``.ponte`` is left alone) it:

1. starts the sandbox on free ports with realistic (dirty) data and writes the demo tenant pointed at it;
2. runs the customer/sale import once in-process, as ``ponte demo`` does, so the UI has a run, a
   materialization and an import dead-letter check that warns about the records it could not import;
3. starts ``dagster-webserver`` on Ponte's Definitions on a free loopback port;
4. opens, in Debian's Chromium (see tests/browser/conftest.py), the global asset lineage, the dead-letter
   check of the import asset, and the launchpad of the import job, and saves a PNG of each.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
ASSET = "cvcrm/people"  # the import's CRM people: the asset the dead-letter check is on
CHECK = "import_dead_letters"
JOB = "customer_sale_import"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
VIEWPORT = {"width": 1600, "height": 1000}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(message: str) -> None:
    print(f"screenshots: {message}", flush=True)


@contextlib.contextmanager
def webserver(env: dict[str, str], port: int) -> Iterator[str]:
    """``dagster-webserver`` on Ponte's Definitions, in a process group of its own (stopped as a whole)."""
    command = [sys.executable, "-m", "dagster_webserver", "-m", "orchestration.definitions",
               "-h", "127.0.0.1", "-p", str(port)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            yield _wait_until_up(process, log, f"http://127.0.0.1:{port}")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _wait_until_up(process: subprocess.Popen[bytes], log: Any, url: str) -> str:
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            log.seek(0)
            raise SystemExit(f"dagster-webserver exited ({process.returncode}):\n{log.read().decode()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                return url
        if time.monotonic() > deadline:
            raise SystemExit("dagster-webserver did not answer within 180 s")
        time.sleep(0.5)


def location_name(url: str) -> str:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"
    answer = httpx.post(f"{url}/graphql", json={"query": query}, timeout=30).json()
    (entry,) = answer["data"]["workspaceOrError"]["locationEntries"]
    return str(entry["name"])


def run_import(home: Path) -> tuple[Any, str]:
    """The sandbox up (left running for the UI), the demo tenant written for it, one import run."""
    from connectors.sandbox import start_sandbox
    from tests.support.tenants import sandbox_tenant_file

    warnings.filterwarnings("ignore", module="dagster")
    sandbox = start_sandbox(customers=30, seed=7, profile="realistic")
    sandbox_tenant_file(sandbox, home / "tenants", "demo")
    os.environ["PONTE_TENANTS_DIR"] = str(home / "tenants")
    # imported after the environment is set: the partitions are the tenants found there
    from dagster import DagsterInstance

    from orchestration.definitions import defs

    # the run's dead letters are the point here, not their log lines (one per record): errors only
    logging.getLogger().setLevel(logging.ERROR)
    from orchestration.partitions import ensure_tenant_partitions

    job = defs.resolve_job_def(JOB)
    instance = DagsterInstance.get()
    ensure_tenant_partitions(instance, ["demo"])  # tenant partitions are dynamic
    result = job.execute_in_process(partition_key="demo", instance=instance, raise_on_error=False,
                                    run_config=QUIET)
    say(f"import run {result.run_id[:8]}: {'success' if result.success else 'FAILED'}")
    return sandbox, result.run_id


def settle(page: Any, text: str) -> None:
    """Wait until ``text`` shows and the UI's spinners are gone."""
    try:
        page.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=60_000)
    except Exception:
        page.screenshot(path=str(Path(tempfile.gettempdir()) / "ponte-screenshot-failed.png"))
        raise SystemExit(f"{page.url} never showed {text!r} (what it showed: "
                         f"{Path(tempfile.gettempdir()) / 'ponte-screenshot-failed.png'})") from None
    with contextlib.suppress(Exception):
        page.wait_for_load_state("networkidle", timeout=15_000)
    page.wait_for_timeout(1_500)


def dismiss_welcome(page: Any) -> None:
    """A fresh instance greets its first visitor with a "Join the Dagster community" dialog: skip it."""
    with contextlib.suppress(Exception):
        page.get_by_role("button", name="Skip").click(timeout=5_000)


def capture(url: str, target: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM_ARGS

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        raise SystemExit("Chromium is not installed: run `make setup`")
    location = location_name(url)
    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()

            def shot(name: str) -> None:
                path = target / f"{name}.png"
                page.screenshot(path=str(path))
                saved.append(path)
                say(f"saved {path}")

            # the global asset lineage, every group expanded (Alt+E; remembered across the reload, which
            # centres the graph again), zoomed out a step so every flow's asset shows
            page.goto(f"{url}/asset-groups")
            dismiss_welcome(page)
            settle(page, "customer_sale_import")
            page.mouse.click(VIEWPORT["width"] * 0.6, 300)
            page.keyboard.press("Alt+e")
            page.wait_for_timeout(500)
            page.reload()
            settle(page, ASSET.rsplit("/", 1)[-1])
            page.mouse.move(VIEWPORT["width"] * 0.67, VIEWPORT["height"] * 0.55)
            page.keyboard.down("Control")
            page.mouse.wheel(0, 150)
            page.keyboard.up("Control")
            page.wait_for_timeout(1_000)
            shot("dagster-asset-graph")

            page.goto(f"{url}/assets/{ASSET}?view=checks&checkDetail={CHECK}")
            settle(page, "Latest execution")
            shot("dagster-asset-check")

            page.goto(f"{url}/locations/{location}/jobs/{JOB}/playground")
            settle(page, "Launch")
            with contextlib.suppress(Exception):  # the tenant partition picked, as an operator would
                page.get_by_placeholder("Partition").click(timeout=5_000)
                page.get_by_placeholder("Partition").fill("demo")
                page.get_by_text("demo", exact=True).last.click(timeout=5_000)
            page.mouse.move(5, VIEWPORT["height"] - 5)  # no tooltip in the picture
            with contextlib.suppress(Exception):
                page.get_by_text("Checking config").wait_for(state="hidden", timeout=20_000)
            page.wait_for_timeout(1_000)
            shot("dagster-launchpad")
        finally:
            browser.close()
    return saved


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else REPO / "docs" / "screenshots").resolve()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ponte-screenshots-") as tmp:
        home = Path(tmp)
        (home / "dagster").mkdir()
        (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        os.environ.update({
            "PONTE_HOME": str(home / "ponte"),
            "PONTE_DATABASE_URL": f"sqlite:///{home / 'ponte.db'}",
            "DAGSTER_HOME": str(home / "dagster"),
        })
        os.environ.pop("PONTE_EXECUTOR", None)  # in-process runs: no celery workers here
        sandbox, _run = run_import(home)
        try:
            with webserver(dict(os.environ), free_port()) as url:
                saved = capture(url, target)
        finally:
            sandbox.stop()
    say(f"{len(saved)} Dagster screenshots in {target}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main(sys.argv[1:]))
