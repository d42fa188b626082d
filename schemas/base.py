"""Base classes for config and canonical models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    """Configuration written by people: unknown keys are typos, so they are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CanonicalModel(BaseModel):
    """A canonical record: strict about its own fields, validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)
