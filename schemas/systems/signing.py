"""What a signing provider described in YAML alone says, as its mappings read it.

A provider whose connector spec carries a ``signing`` section (docs/dispatch.md, "Providers described in
YAML") has no payload models of its own: its status reads and webhook bodies reach its mappings wrapped
in :class:`SigningProviderPayload`, ``{provider, body, signers}``, where ``body`` is the provider's JSON
as it came and ``signers`` the list the spec's ``signing.signers`` path names in it (so a mapping can
``split`` per signer). The mapping compiler cannot check paths under ``body`` (it is any JSON); the mapping's golden
samples are what hold them to the provider's shape.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from schemas.systems.base import Payload


class SigningProviderPayload(Payload):
    provider: str = Field(description="The tenant's connector key of the provider (Envelope.provider)")
    body: Any = Field(None, description="The provider's JSON as it came (a status read or a webhook body)")
    signers: list[Any] = Field(
        default_factory=list, description="The signer list at the spec's signing.signers path in body (empty if none)"
    )
