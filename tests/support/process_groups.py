"""Whether a process group still has a live member: for tests and benchmarks that start servers in
their own session and must leave nothing running behind them."""

from __future__ import annotations

import os
from pathlib import Path


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process of group ``pgid`` exists.

    ``killpg(pgid, 0)`` alone is not enough: zombies of an exited group still answer it until reaped.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.exists():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False
