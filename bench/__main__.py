"""`make bench`: run every benchmark in this folder, one after another, and print where results go."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "mapping_compiled_vs_handwritten.py",
    "import_vs_dlt.py",
    "gateway_throughput.py",
]


def main() -> None:
    for name in ORDER:
        path = HERE / name
        if not path.exists():
            print(f"-- {name}: not built yet", flush=True)
            continue
        print(f"== {name}", flush=True)
        sys.argv = [str(path)]
        runpy.run_path(str(path), run_name="__main__")
    print("figures: bench/RESULTS.md (copy the printed tables there when they change)")


if __name__ == "__main__":
    main()
