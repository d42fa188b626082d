"""Ponte's kernel: the few things every layer shares.

Only the exception tree, settings, log redaction and YAML-with-line-numbers live here; anything with
business meaning belongs in one of the layers (connectors, mappings, schemas, pipelines, orchestration).
This package imports nothing from those layers, so any of them may import it.

Public surface: the names in ``__all__`` below (``settings`` is the settings module itself). The other
layers import them from ``ponte``, never from a submodule.
"""

__version__ = "0.1.0"

from ponte import settings
from ponte.errors import (
    AuthError,
    ConfigurationError,
    ConflictError,
    DataError,
    NotFoundError,
    PonteError,
    RateLimitedError,
    TransientError,
)
from ponte.logging import configure_logging, get_logger
from ponte.redaction import (
    looks_random,
    mask_document,
    mask_email,
    mask_record,
    redact,
    redact_url,
    register_secret,
)
from ponte.yamlfile import YamlDocument, describe_validation_error, load_yaml, parse_model

__all__ = [
    "AuthError",
    "ConfigurationError",
    "ConflictError",
    "DataError",
    "NotFoundError",
    "PonteError",
    "RateLimitedError",
    "TransientError",
    "YamlDocument",
    "configure_logging",
    "describe_validation_error",
    "get_logger",
    "load_yaml",
    "looks_random",
    "mask_document",
    "mask_email",
    "mask_record",
    "parse_model",
    "redact",
    "redact_url",
    "register_secret",
    "settings",
]
