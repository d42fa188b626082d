"""The whole Dagster code location, as a committed snapshot: asset keys and their deps, groups, kinds and
partitioning, asset checks, jobs, schedules and sensors.

A change to what operators see in the UI (a renamed asset, a lost check, a schedule gone) shows up here
as a readable diff. When the change is intended, regenerate the snapshot and commit it::

    PONTE_UPDATE_SNAPSHOTS=1 pytest tests/orchestration/test_definitions_snapshot.py

The definitions are loaded in a subprocess with a tenants folder holding only ``demo`` (per-tenant
schedules follow the tenant files), so the snapshot does not depend on the tenants a checkout has.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = Path(__file__).with_name("snapshots") / "definitions.json"
UPDATE = "PONTE_UPDATE_SNAPSHOTS"

SCRIPT = r'''
import json, warnings
warnings.simplefilter("ignore")
from orchestration.definitions import defs

repo = defs.get_repository_def()
graph = defs.resolve_asset_graph()
checks_by_asset = {}
for check_key in repo.asset_checks_defs_by_key:
    checks_by_asset.setdefault(check_key.asset_key.to_user_string(), []).append(check_key.name)
assets = {}
for key in graph.get_all_asset_keys():
    node = graph.get(key)
    assets[key.to_user_string()] = {
        "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
        "group": node.group_name,
        "kinds": sorted(node.kinds),
        "partitioned": node.partitions_def is not None,
        "executable": node.is_executable,
        "checks": sorted(checks_by_asset.get(key.to_user_string(), [])),
    }
jobs = {}
for job in defs.resolve_all_job_defs():
    if job.name.startswith("__"):
        continue
    jobs[job.name] = {
        "steps": sorted(node.name for node in job.nodes),
        "partitioned": job.partitions_def is not None,
    }
schedules = {
    s.name: {"job": s.job_name, "cron": s.cron_schedule, "timezone": s.execution_timezone,
             "default_status": s.default_status.value}
    for s in repo.schedule_defs
}
sensors = {
    s.name: {"jobs": sorted(t.job_name for t in s.targets), "default_status": s.default_status.value}
    for s in repo.sensor_defs
}
print(json.dumps({"assets": assets, "jobs": jobs, "schedules": schedules, "sensors": sensors},
                 sort_keys=True))
'''


def _current(tmp_path: Path) -> dict:
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    shutil.copy(REPO / "tenants" / "demo.yaml", tenants / "demo.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PONTE_TENANTS_DIR": str(tenants),
           "PONTE_HOME": str(tmp_path / "home")}
    env.pop("PONTE_ASSET_TRANSLATOR", None)
    env.pop("PONTE_EXECUTOR", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _text(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_the_definitions_match_the_committed_snapshot(tmp_path: Path) -> None:
    current = _text(_current(tmp_path))
    if os.environ.get(UPDATE) or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(current, encoding="utf-8")
        if not os.environ.get(UPDATE):
            raise AssertionError(f"no snapshot yet: wrote {SNAPSHOT.relative_to(REPO)}; review and commit it")
        return
    committed = SNAPSHOT.read_text(encoding="utf-8")
    if current != committed:
        diff = "".join(difflib.unified_diff(committed.splitlines(keepends=True), current.splitlines(keepends=True),
                                            fromfile="committed snapshot", tofile="definitions now"))
        raise AssertionError(
            f"the Dagster definitions changed (what operators see in the UI):\n{diff}\n"
            f"If intended: {UPDATE}=1 pytest {Path(__file__).relative_to(REPO)} and commit "
            f"{SNAPSHOT.relative_to(REPO)}"
        )
