"""The connector spec language (models, templates, loading). See docs/connectors.md."""

from connectors.spec.loader import (
    SPECS_DIR,
    AnySpec,
    available_specs,
    json_schema,
    load_spec,
    parse_spec,
    spec_path,
    validate_all,
    validate_specs,
)
from connectors.spec.models import HttpConnectorSpec, RateLimit, Signing, SmtpConnectorSpec
from connectors.spec.templates import render

__all__ = [
    "SPECS_DIR",
    "AnySpec",
    "HttpConnectorSpec",
    "RateLimit",
    "Signing",
    "SmtpConnectorSpec",
    "available_specs",
    "json_schema",
    "load_spec",
    "parse_spec",
    "render",
    "spec_path",
    "validate_all",
    "validate_specs",
]
