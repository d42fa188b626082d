"""Base classes for the payloads of outside systems.

Two kinds, because the two directions need opposite strictness:

- :class:`Payload` is what a system *sends* us. Real APIs send more than Ponte reads (and add fields
  over time), so unknown keys are allowed; the declared fields are the ones mappings may read, which is
  what lets the mapping compiler reject a misspelt source path at load time.
- :class:`RequestBody` is what Ponte *sends*. An unknown key there is our typo, so it is an error.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Payload(BaseModel):
    """A payload received from an outside system: declared fields are typed, extra keys are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class RequestBody(BaseModel):
    """A body Ponte sends to an outside system: every key must be declared."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
