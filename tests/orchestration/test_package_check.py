"""The `envelope_package` asset check on the dispatch asset: WARN from the first threshold, ERROR when the
package cannot send (used up or past it, expired, not yet valid, missing), with the figures and the fix."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml
from dagster import AssetCheckSeverity, build_op_context

from orchestration.checks import package_result
from orchestration.definitions import defs
from orchestration.resources import StoreResource, TenantsResource
from pipelines.store.db import Store
from pipelines.store.models import PackageLedgerEntry, utcnow
from schemas.tenant import TenantConfig
from tests.support.tenants import REPO

DAY = date(2026, 6, 15)


def _tenant(tenant_id: str = "pkgcheck", **package: Any) -> TenantConfig:
    data = yaml.safe_load((REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8"))
    data["id"] = tenant_id
    if package.get("none"):
        data["options"].pop("envelope_package", None)
    else:
        data["options"]["envelope_package"] = {"id": "p100", "size": 100, "valid_from": "2026-01-01",
                                               "valid_until": "2026-12-31", **package}
    return TenantConfig.model_validate(data)


def _use(store: Store, tenant: TenantConfig, count: int, package_id: str = "p100") -> None:
    with store.session() as session:
        session.add_all(PackageLedgerEntry(tenant=tenant.id, package_id=package_id, envelope_key=f"k{i}",
                                           delta=1, at=utcnow()) for i in range(count))


def _meta(result) -> dict[str, Any]:
    return {key: getattr(value, "value", value) for key, value in result.metadata.items()}


def test_the_check_is_registered_on_the_dispatch_asset() -> None:
    repo = defs.get_repository_def()
    (key,) = [k for k in repo.asset_checks_defs_by_key if k.name == "envelope_package"]
    assert key.asset_key.path == ["esign", "envelopes"]


def test_empty_package_passes(store: Store) -> None:
    tenant = _tenant()
    result = package_result(store, tenant, DAY)
    assert result.passed
    meta = _meta(result)
    assert (meta["used"], meta["remaining"], meta["percent"], meta["valid_until"]) == (0, "100", 0.0, "2026-12-31")
    assert meta["days_left"] == 200 and meta["warn_at_percent"] == 80


def test_85_percent_warns_with_the_figures_and_what_to_do(store: Store) -> None:
    tenant = _tenant()
    _use(store, tenant, 85)
    result = package_result(store, tenant, DAY)
    assert not result.passed and result.severity == AssetCheckSeverity.WARN
    meta = _meta(result)
    assert (meta["used"], meta["remaining"], meta["percent"]) == (85, "15", 85.0)
    assert "buy a new package; update options.envelope_package in tenants/pkgcheck.yaml" in meta["what_to_do"]
    assert "85 of 100" in (result.description or "")


def test_a_tenants_own_first_threshold_is_the_warning(store: Store) -> None:
    tenant = _tenant(warn_at_percent=[95, 50])
    _use(store, tenant, 60)
    result = package_result(store, tenant, DAY)
    assert not result.passed and result.severity == AssetCheckSeverity.WARN and _meta(result)["warn_at_percent"] == 50


@pytest.mark.parametrize("used", [100, 101])
def test_used_up_or_past_the_size_is_an_error(store: Store, used: int) -> None:
    tenant = _tenant()
    _use(store, tenant, used)
    result = package_result(store, tenant, DAY)
    assert not result.passed and result.severity == AssetCheckSeverity.ERROR
    meta = _meta(result)
    assert (meta["used"], meta["remaining"], meta["percent"]) == (used, "0", float(used))
    assert "used up" in (result.description or "") and "tenants/pkgcheck.yaml" in meta["what_to_do"]


def test_outside_its_validity_is_an_error(store: Store) -> None:
    expired = package_result(store, _tenant(valid_until="2026-05-31"), DAY)
    assert not expired.passed and expired.severity == AssetCheckSeverity.ERROR
    assert "expired on 2026-05-31" in (expired.description or "") and _meta(expired)["days_left"] == 0
    early = package_result(store, _tenant(valid_from="2026-07-01"), DAY)
    assert not early.passed and early.severity == AssetCheckSeverity.ERROR
    assert "valid only from 2026-07-01" in (early.description or "")
    unlimited = package_result(store, _tenant(size="unlimited"), DAY)
    assert unlimited.passed and _meta(unlimited)["percent"] == "unlimited"
    missing = package_result(store, _tenant(none=True), DAY)
    assert not missing.passed and missing.severity == AssetCheckSeverity.ERROR
    assert "no envelope package" in (missing.description or "")


class _Tenants(TenantsResource):
    tenant_json: str

    def load(self, tenant_id: str) -> TenantConfig:
        return TenantConfig.model_validate_json(self.tenant_json)


def test_the_check_evaluated_by_dagster(db_url: str) -> None:
    """The registered check itself, run for a tenant partition against the store (today's date)."""
    from orchestration.dispatch.defs import DEFS
    from pipelines.store import open_store

    (check,) = [c for c in DEFS.asset_checks or [] if "envelope_package" in {k.name for k in c.check_keys}]
    store = open_store(db_url)
    tenant = _tenant(valid_from="2020-01-01", valid_until="2099-12-31")
    _use(store, tenant, 85)
    for tenant_config, severity in ((tenant, AssetCheckSeverity.WARN),
                                    (_tenant(valid_until="2025-12-31", valid_from="2025-01-01"),
                                     AssetCheckSeverity.ERROR)):
        context = build_op_context(partition_key="demo", resources={
            "store": StoreResource(database_url=db_url),
            "tenants": _Tenants(tenant_json=tenant_config.model_dump_json())})
        result = check(context)
        assert not result.passed and result.severity == severity, result.description
    store.dispose()
