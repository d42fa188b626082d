"""One tenant never stops another: a broken tenant file is reported, every other tenant keeps running.

Found as an operator would: one tenant file with a typo made `dagster definitions validate` fail for the
whole code location (every tenant's schedules and sensors stopped) and `ponte tenant list` fail too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestration.cli.app import app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tenants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo tenant, plus three broken files: bad YAML, a bad field, not UTF-8."""
    folder = tmp_path / "tenants"
    folder.mkdir()
    shutil.copy(REPO / "tenants" / "demo.yaml", folder / "demo.yaml")
    (folder / "acme.yaml").write_text("id: acme\nname: [unclosed\n", encoding="utf-8")
    typo = (REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8").replace("id: demo", "id: typo", 1)
    (folder / "typo.yaml").write_text(typo.replace("signing_provider:", "signing_provder:", 1), encoding="utf-8")
    (folder / "latin.yaml").write_bytes("id: latin\nname: Construtora São João\n".encode("latin-1"))
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(folder))
    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "home"))
    return folder


def test_the_code_location_loads_and_the_good_tenant_keeps_its_schedules(tenants: Path) -> None:
    script = (
        "import json; from dagster import build_sensor_context, DagsterInstance\n"
        "from orchestration.definitions import defs\n"
        "repo = defs.get_repository_def()\n"
        "names = sorted(s.name for s in repo.schedule_defs)\n"
        "sensor = repo.get_sensor_def('tenant_files')\n"
        "with DagsterInstance.ephemeral() as instance:\n"
        "    result = sensor.evaluate_tick(build_sensor_context(instance=instance))\n"
        "print(json.dumps({'schedules': names, 'skip': result.skip_message}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert "import_demo" in out["schedules"] and "dispatch_demo" in out["schedules"]
    assert not any("acme" in n or "typo" in n or "latin" in n for n in out["schedules"])
    skip = out["skip"]
    assert "3 broken tenant file(s)" in skip and "(1 load)" in skip
    assert "acme.yaml:3: not valid YAML" in skip
    assert "typo.yaml" in skip and "signing_provder" in skip
    assert "latin.yaml" in skip and "not UTF-8" in skip


def test_tenant_list_shows_the_broken_files_with_their_error(tenants: Path) -> None:
    result = CliRunner().invoke(app, ["tenant", "list"], terminal_width=200)
    assert result.exit_code == 1, result.output
    assert "demo" in result.output and "broken" in result.output
    assert "acme.yaml" in result.output and "not valid YAML" in result.output
    as_json = CliRunner().invoke(app, ["tenant", "list", "--json"])
    rows = {row["tenant"]: row for row in json.loads(as_json.output)}
    assert rows["demo"]["status"] == "ok" and rows["demo"]["signing_provider"]
    assert {rows[t]["status"] for t in ("acme", "typo", "latin")} == {"broken"}
    assert "signing_provder" in rows["typo"]["error"]


def test_validate_still_fails_on_a_broken_file(tenants: Path) -> None:
    result = CliRunner().invoke(app, ["validate"], terminal_width=400)
    assert result.exit_code != 0
    assert "3 problem(s) found" in result.output  # the three broken files
