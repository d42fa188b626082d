"""Issue #6: peak memory of the customer import does not grow with the number of records.

Each size runs in a fresh Python process that imports the customers of a sandbox (running in yet
another process, so its seeded data is not counted) along the stage path of ``import_vs_dlt.py``:
read page by page, map, validate, hash, upsert the id map into a fresh SQLite store, no CRM writes.
The child reports its peak resident set (``ru_maxrss``), its RSS just before the run (imports
done, mappings not yet compiled) and the peak of its whole process tree (the import workers and their
fork server, sampled). Goal: peak at 200k customers at most 1.3× the peak at 20k, workers included.

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
import threading
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


def _tree_rss_kib(root: int) -> int:
    """RSS of ``root`` and every process below it (the import workers and their fork server)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        pid, parent = int(entry), int(fields.get("PPid", "0").strip())
        children.setdefault(parent, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


class _TreePeak:
    """Samples the process tree's RSS every 20 ms: the workers' memory counts as the run's."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss_kib(os.getpid()))
            self._stop.wait(0.02)

    def __enter__(self) -> _TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def child(sandbox_json: str) -> None:
    """In the measured process: one stage-path import, then print the memory figures as JSON."""
    from import_vs_dlt import fresh_store, ponte_stage

    from pipelines.imports import flow  # noqa: F401  (import cost counted in the baseline, not the run)

    info = json.loads(sandbox_json)
    sandbox = SimpleNamespace(urls=info["urls"], api=info["api"],
                              smtp=SimpleNamespace(host=info["smtp"][0], port=info["smtp"][1]))
    with tempfile.TemporaryDirectory(prefix="ponte-mem-") as tmp:
        before = _rss_now_kib()
        with fresh_store("sqlite", Path(tmp)) as store, _TreePeak() as tree:
            result = ponte_stage(sandbox, store)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print("MEMORY " + json.dumps({**result, "rss_before_kib": before, "peak_kib": peak,
                                  "tree_peak_kib": tree.peak}), flush=True)


def measure(size: int, profile: str = "realistic") -> dict:
    from import_vs_dlt import sandbox_process

    with sandbox_process(size, profile=profile) as sandbox:
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
    parser.add_argument("--profile", choices=["realistic", "clean"], default="realistic",
                        help="sandbox data (default realistic: dirty data, about a third dead-lettered)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0

    load = os.getloadavg()[0]
    peaks: dict[int, list[dict]] = {size: [] for size in args.sizes}
    for rep in range(args.repeat):
        for size in args.sizes:
            result = measure(size, args.profile)
            peaks[size].append(result)
            print(f"  run {rep + 1} {size:>9,} customers: peak {result['peak_kib'] / 1024:,.1f} MiB, "
                  f"with the workers {result['tree_peak_kib'] / 1024:,.1f} MiB "
                  f"(before the run {result['rss_before_kib'] / 1024:,.1f} MiB; {result['records']:,} records "
                  f"in {result['seconds']:.0f} s)", flush=True)
    print()
    print(f"Peak RSS, {args.profile} profile, median of {args.repeat} (load average {load:.2f} at start); "
          "the goal is judged on the")
    print("importing process and its workers together (sampled every 20 ms)")
    print("| customers | peak RSS, run + workers | peak RSS, run process | RSS before the run | growth of the run process |")
    print("|---|---|---|---|---|")
    medians = {}
    for size in args.sizes:
        tree = statistics.median(r["tree_peak_kib"] for r in peaks[size]) / 1024
        peak = statistics.median(r["peak_kib"] for r in peaks[size]) / 1024
        before = statistics.median(r["rss_before_kib"] for r in peaks[size]) / 1024
        medians[size] = tree
        print(f"| {size:,} | {tree:,.1f} MiB | {peak:,.1f} MiB | {before:,.1f} MiB | {peak - before:,.1f} MiB |")
    if len(args.sizes) >= 2:
        small, large = min(args.sizes), max(args.sizes)
        ratio = medians[large] / medians[small]
        verdict = "met" if ratio <= GOAL else "NOT met"
        print(f"\nratio {large:,} / {small:,}: {ratio:.2f}× (goal ≤ {GOAL}×: {verdict})")
    return 0


if __name__ == "__main__":
    if code := main():  # exit 0 quietly: `python -m bench` runs the next benchmark after this one
        raise SystemExit(code)
