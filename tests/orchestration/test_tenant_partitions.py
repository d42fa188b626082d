"""Tenant partitions follow the tenant files: the ``tenant_files`` sensor adds and deletes their keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance, build_sensor_context

from orchestration.partitions import TENANTS, ensure_tenant_partitions, partition_requests, tenant_partitions

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tenants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "tenants"
    folder.mkdir()
    shutil.copy(REPO / "tenants" / "demo.yaml", folder / "demo.yaml")
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(folder))
    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "home"))
    return folder


def _tick(instance: DagsterInstance) -> str:
    """One tick of the sensor, its partition requests applied as the daemon does; its message."""
    from orchestration.definitions import defs

    sensor = defs.get_repository_def().get_sensor_def("tenant_files")
    result = sensor.evaluate_tick(build_sensor_context(instance=instance))
    for request in result.dynamic_partitions_requests or []:
        if request.__class__.__name__.startswith("Add"):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result.skip_message or ""


def _new_tenant(folder: Path, tenant_id: str) -> None:
    text = (folder / "demo.yaml").read_text(encoding="utf-8").replace("id: demo", f"id: {tenant_id}", 1)
    (folder / f"{tenant_id}.yaml").write_text(text, encoding="utf-8")


def test_a_new_file_adds_its_key_and_a_removed_one_deletes_it(tenants: Path) -> None:
    with DagsterInstance.ephemeral() as instance:
        _tick(instance)
        assert set(instance.get_dynamic_partitions(TENANTS)) == {"demo"}
        _new_tenant(tenants, "acme")
        message = _tick(instance)
        assert set(instance.get_dynamic_partitions(TENANTS)) == {"demo", "acme"}
        assert "added tenant partition(s) acme" in message
        assert "all 2 tenant file(s) load" in message
        (tenants / "acme.yaml").unlink()
        message = _tick(instance)
        assert set(instance.get_dynamic_partitions(TENANTS)) == {"demo"}
        assert "deleted tenant partition(s) acme" in message
        assert not partition_requests(instance)[0]  # in step: the next tick asks for nothing


def test_a_broken_file_adds_nothing_and_is_reported(tenants: Path) -> None:
    (tenants / "acme.yaml").write_text("id: acme\nname: [unclosed\n", encoding="utf-8")
    with DagsterInstance.ephemeral() as instance:
        message = _tick(instance)
        assert "acme" not in instance.get_dynamic_partitions(TENANTS)
        assert "1 broken tenant file(s)" in message and "acme.yaml" in message and "(1 load)" in message


def test_a_file_that_breaks_keeps_its_key_until_removed(tenants: Path) -> None:
    _new_tenant(tenants, "acme")
    with DagsterInstance.ephemeral() as instance:
        _tick(instance)
        (tenants / "acme.yaml").write_text("id: acme\nname: [unclosed\n", encoding="utf-8")
        _tick(instance)
        assert "acme" in instance.get_dynamic_partitions(TENANTS)  # its history stays visible


def test_a_run_for_a_new_tenant_adds_its_key_first() -> None:
    with DagsterInstance.ephemeral() as instance:
        assert ensure_tenant_partitions(instance, ["newco"]) == ["newco"]
        assert ensure_tenant_partitions(instance, ["newco"]) == []
        assert tenant_partitions.has_partition_key("newco", dynamic_partitions_store=instance)

