"""`make bench`: run every benchmark in this folder, one after another, and print where results go."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "mapping_compiled_vs_handwritten.py",
    "import_vs_dlt.py",
    "import_memory.py",
    "deadletter_cost.py",
    "gateway_throughput.py",
    "gateway_body_flood.py",
    "webhook_to_crm_latency.py",
]


def main() -> None:
    for name in ORDER:
        path = HERE / name
        if not path.exists():
            print(f"-- {name}: not built yet", flush=True)
            continue
        print(f"== {name}", flush=True)
        sys.argv = [str(path)]
        try:
            runpy.run_path(str(path), run_name="__main__")
        except SystemExit as exc:  # a script's own exit must not end the whole bench run
            if exc.code not in (None, 0):
                print(f"-- {name} exited with {exc.code}", flush=True)
    print("figures: bench/RESULTS.md (copy the printed tables there when they change)")


if __name__ == "__main__":
    main()
