"""Content hashes: what the CRM would receive, fingerprinted. Equal hashes mean nothing to write."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def content_hash(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=_OPTIONS, default=str)).hexdigest()


def legacy_content_hash(payload: Any) -> str:
    """The hash id-map rows written before the switch to orjson carry (the standard json module's
    spelling). A record whose stored hash is this one is unchanged: its row gets the new hash, the CRM
    gets nothing, so upgrading never re-sends a whole tenant."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
