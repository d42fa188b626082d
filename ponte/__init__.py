"""Ponte's kernel: the few things every layer shares.

Only the exception tree, settings, log redaction and YAML-with-line-numbers live here; anything with
business meaning belongs in one of the layers (connectors, mappings, schemas, pipelines, orchestration).
This package imports nothing from those layers, so any of them may import it.
"""

__version__ = "0.1.0"
