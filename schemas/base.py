"""Base classes for config and canonical models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

#: where a connector may download a file from (connector specs' and tenants' ``file_hosts``): a host
#: pattern, HTTPS only (``*.docusign.net``), or an exact origin (``http://127.0.0.1:8080``)
FileHost = Annotated[
    str,
    Field(pattern=r"^(?:\*\.)?[a-z0-9.-]+$|^https?://[a-z0-9.-]+(?::[0-9]{1,5})?$", max_length=253),
]


class ConfigModel(BaseModel):
    """Configuration written by people: unknown keys are typos, so they are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CanonicalModel(BaseModel):
    """A canonical record: strict about its own fields, validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)
