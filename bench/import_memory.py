"""Issue #6: peak memory of the customer import does not grow with the number of records.

Each size runs in a fresh Python process that imports the customers of a sandbox (running in yet
another process, so its seeded data is not counted) along the stage path of ``import_vs_dlt.py``:
read page by page, map, validate, hash, upsert the id map into a fresh SQLite store, no CRM writes.
The child reports its peak resident set (``ru_maxrss``) and its RSS just before the run (imports
done, mappings not yet compiled). Goal: peak at 200k customers at most 1.3× the peak at 20k.

    .venv/bin/python bench/import_memory.py [--sizes 20000 200000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _p in (str(REPO), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

GOAL = 1.3


def _rss_now_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(sandbox_json: str) -> None:
    """In the measured process: one stage-path import, then print the memory figures as JSON."""
    from import_vs_dlt import fresh_store, ponte_stage

    from pipelines.imports import flow  # noqa: F401  (import cost counted in the baseline, not the run)

    info = json.loads(sandbox_json)
    sandbox = SimpleNamespace(urls=info["urls"], api=info["api"],
                              smtp=SimpleNamespace(host=info["smtp"][0], port=info["smtp"][1]))
    with tempfile.TemporaryDirectory(prefix="ponte-mem-") as tmp:
        before = _rss_now_kib()
        with fresh_store("sqlite", Path(tmp)) as store:
            result = ponte_stage(sandbox, store)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print("MEMORY " + json.dumps({**result, "rss_before_kib": before, "peak_kib": peak}), flush=True)


def measure(size: int) -> dict:
    from import_vs_dlt import sandbox_process

    with sandbox_process(size) as sandbox:
        info = json.dumps({"urls": sandbox.urls, "api": sandbox.api, "smtp": [sandbox.smtp.host, sandbox.smtp.port]})
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", info],
                             cwd=REPO, capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        if line.startswith("MEMORY "):
            return json.loads(line[len("MEMORY "):])
    raise RuntimeError(f"no figures from the child:\n{out.stdout}\n{out.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0

    load = os.getloadavg()[0]
    peaks: dict[int, list[dict]] = {size: [] for size in args.sizes}
    for rep in range(args.repeat):
        for size in args.sizes:
            result = measure(size)
            peaks[size].append(result)
            print(f"  run {rep + 1} {size:>9,} customers: peak {result['peak_kib'] / 1024:,.1f} MiB "
                  f"(before the run {result['rss_before_kib'] / 1024:,.1f} MiB; {result['records']:,} records "
                  f"in {result['seconds']:.0f} s)", flush=True)
    print()
    print(f"Peak RSS of the importing process, median of {args.repeat} (load average {load:.2f} at start)")
    print("| customers | peak RSS | RSS before the run | growth during the run |")
    print("|---|---|---|---|")
    medians = {}
    for size in args.sizes:
        peak = statistics.median(r["peak_kib"] for r in peaks[size]) / 1024
        before = statistics.median(r["rss_before_kib"] for r in peaks[size]) / 1024
        medians[size] = peak
        print(f"| {size:,} | {peak:,.1f} MiB | {before:,.1f} MiB | {peak - before:,.1f} MiB |")
    if len(args.sizes) >= 2:
        small, large = min(args.sizes), max(args.sizes)
        ratio = medians[large] / medians[small]
        verdict = "met" if ratio <= GOAL else "NOT met"
        print(f"\nratio {large:,} / {small:,}: {ratio:.2f}× (goal ≤ {GOAL}×: {verdict})")
    return 0


if __name__ == "__main__":
    if code := main():  # exit 0 quietly: `python -m bench` runs the next benchmark after this one
        raise SystemExit(code)
