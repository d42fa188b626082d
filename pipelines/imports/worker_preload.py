"""What the import workers' fork server loads before it forks any worker.

Workers fork from that server, so whatever it holds they start with, shared until written. Compiling
the customer mappings costs ~0.2 s of CPU; compiled here once, it is not paid again by every worker
of every run (two workers made it 0.4 s of a 5 s import of 50,000 customers). A mapping that does
not compile is left alone here: the run compiles it too and reports the error where it belongs.
"""

from __future__ import annotations

import contextlib

from mappings import load_mapping
from pipelines.imports import parallel  # noqa: F401  (the workers' code, imported once)
from pipelines.imports.translate import MAPPINGS, STAGED
from ponte import PonteError

for _entity in STAGED:
    for _name in MAPPINGS[_entity]:
        if _name is not None:
            with contextlib.suppress(PonteError):
                load_mapping(_name)
