"""The demo tenant pointed at a running sandbox (ephemeral ports), with option overrides for a test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from schemas.tenant import TenantConfig

REPO = Path(__file__).resolve().parents[2]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


#: for a sandbox started with rate_limits=False: let the connectors go as fast as they can
UNTHROTTLED = {"per_second": 10_000}


def sandbox_tenant_file(
    sandbox: Any, directory: Path, tenant_id: str = "demo", *, unthrottled: bool = False, **overrides: Any
) -> TenantConfig:
    """:func:`sandbox_tenant` written to ``directory/<id>.yaml`` too (point PONTE_TENANTS_DIR at it), for
    code that loads tenants by name (the CLI, dead-letter replay)."""
    data = _sandbox_data(sandbox, tenant_id, unthrottled=unthrottled, **overrides)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{tenant_id}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return TenantConfig.model_validate(data)


def sandbox_tenant(
    sandbox: Any, tenant_id: str = "demo", *, unthrottled: bool = False, **overrides: Any
) -> TenantConfig:
    """tenants/demo.yaml with every connector's base URL (and SMTP host/port) set to ``sandbox``.

    ``unthrottled`` lifts the connectors' own pacing (use with a sandbox started with
    ``rate_limits=False``); ``overrides`` are merged into the YAML data, e.g. ``options={"signing_provider": "clicksign"}``.
    """
    return TenantConfig.model_validate(_sandbox_data(sandbox, tenant_id, unthrottled=unthrottled, **overrides))


def _sandbox_data(sandbox: Any, tenant_id: str, *, unthrottled: bool, **overrides: Any) -> dict[str, Any]:
    data = yaml.safe_load((REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8"))
    data["id"] = tenant_id
    for key, connector in data["connectors"].items():
        if key == "smtp":
            connector["values"]["host"] = sandbox.smtp.host
            connector["values"]["port"] = str(sandbox.smtp.port)
        elif key in sandbox.urls:
            connector["values"]["base_url"] = sandbox.urls[key]
            if unthrottled:
                connector["rate_limit"] = dict(UNTHROTTLED)
    return _merge(data, overrides)
