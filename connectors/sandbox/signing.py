"""What DocuSign and Clicksign stand-ins share about signers: evidence and "who is ROLE?".

``ponte sandbox sign ENVELOPE --as ROLE`` names a signer the way a person would: by role name
(``cliente``, ``conjuge``, ``testemunha``), e-mail, name, the provider's recipient/signer id, or the
1-based position in the envelope. Evidence is what the seeds say a signing collects (IP, device,
geolocation, selfie and document photo) so back-sync code has realistic data to store.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

from connectors.sandbox.base import ApiError

ACTIONS = ("sign", "view", "refuse", "expire")


@dataclass
class Evidence:
    """Evidence collected when a signer acts; references point at sandbox-held images."""

    ip: str = ""
    device: str = "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 Chrome/128.0 Mobile Safari/537.36"
    latitude: float = -27.5954
    longitude: float = -48.5480
    accuracy_m: float = 12.0
    selfie_ref: str | None = None
    document_photo_ref: str | None = None
    reason: str | None = None  # refusal reason
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def default_for(cls, envelope_id: str, signer_key: str) -> Evidence:
        """Deterministic evidence per (envelope, signer): the same run shows the same IP."""
        digest = hashlib.sha256(f"{envelope_id}:{signer_key}".encode()).digest()
        ip = f"189.{digest[0]}.{digest[1]}.{max(1, digest[2])}"
        token = digest.hex()[:16]
        return cls(
            ip=ip,
            latitude=round(-27.5954 + (digest[3] - 128) / 5000, 6),
            longitude=round(-48.5480 + (digest[4] - 128) / 5000, 6),
            selfie_ref=f"sandbox://evidence/{envelope_id}/{token}/selfie.jpg",
            document_photo_ref=f"sandbox://evidence/{envelope_id}/{token}/documento.jpg",
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Evidence | None:
        if not data:
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        extra = {k: v for k, v in data.items() if k not in cls.__dataclass_fields__}
        evidence = cls(**known)
        evidence.extra.update(extra)
        return evidence


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


def resolve_signer(signers: list[dict[str, Any]], role: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """Find the signer ``role`` names, trying each key of ``keys`` then the 1-based position."""
    wanted = _fold(role)
    for key in keys:
        hits = [s for s in signers if s.get(key) is not None and _fold(str(s[key])) == wanted]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ApiError(409, f"'{role}' matches {len(hits)} signers by {key}; use the signer id")
    if role.isdigit() and 1 <= int(role) <= len(signers):
        return signers[int(role) - 1]
    raise ApiError(404, f"no signer '{role}' in this envelope; try one of: "
                        + ", ".join(str(s.get(keys[0]) or s.get("name")) for s in signers))


def check_action(action: str) -> None:
    if action not in ACTIONS:
        raise ApiError(400, f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
