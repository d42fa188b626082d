"""A misspelt field in a YAML file gets "did you mean" with the field of that object it most likely meant
(issue #21, point 6): tenant files, and mappings, which load through the same function."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ponte.errors import ConfigurationError
from ponte.yamlfile import field_names_at
from schemas.tenant import TenantConfig, load_tenant

REPO = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8"))


def _rename(data: dict, dotted: str, new: str) -> None:
    """Rename the key at ``dotted`` (a.b.0.c) to ``new``, keeping its value."""
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[new] = node.pop(last)


def _broken(tmp_path: Path, dotted: str, typo: str) -> str:
    data = yaml.safe_load(yaml.safe_dump(DEMO))
    data["id"] = "acme"
    _rename(data, dotted, typo)
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        load_tenant(path)
    return str(info.value)


@pytest.mark.parametrize(("dotted", "typo", "where", "meant"), [
    ("options.signer_chain", "signer_chian", "options.signer_chian", "signer_chain"),
    ("options.notifications", "notificatons", "options.notificatons", "notifications"),
    ("options.notifications.by", "bi", "options.notifications.bi", "by"),
    ("connectors.sienge.credentials", "credentails", "connectors.sienge.credentails", "credentials"),
    ("options.signer_chain.0.order", "ordr", "options.signer_chain.0.ordr", "order"),
    ("options.envelope_package.valid_until", "valid_untill", "options.envelope_package.valid_untill",
     "valid_until"),
    ("options.evidence.docusign_idv_workflow_id", "docusign_idv_workflowid", "options.evidence.docusign_idv",
     "docusign_idv_workflow_id"),
    ("connectors.cvcrm.credentials.token.env", "evn", "connectors.cvcrm.credentials.token.evn", "env"),
])
def test_a_misspelt_tenant_field_gets_did_you_mean(
    tmp_path: Path, dotted: str, typo: str, where: str, meant: str
) -> None:
    message = _broken(tmp_path, dotted, typo)
    line = next(row for row in message.splitlines() if "unknown field" in row)
    assert str(tmp_path / "acme.yaml") in line and where in line, message
    assert f"did you mean {meant!r}?" in line, message


def test_a_field_like_none_is_still_an_unknown_field(tmp_path: Path) -> None:
    message = _broken(tmp_path, "options.import_cron", "colour")
    assert "options.colour: unknown field (check its spelling against the schema)" in message
    assert "did you mean" not in message


def test_field_names_follow_models_lists_and_dicts() -> None:
    assert "signer_chain" in field_names_at(TenantConfig, ("options",))
    assert "interaction" in field_names_at(TenantConfig, ("options", "signer_chain", 0))
    assert "credentials" in field_names_at(TenantConfig, ("connectors", "anything"))
    assert field_names_at(TenantConfig, ("connectors", "x", "credentials", "y")) == ["env", "default"]
    assert field_names_at(TenantConfig, ("name",)) == []


def test_a_misspelt_mapping_field_gets_did_you_mean(tmp_path: Path) -> None:
    from mappings import compile_file

    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\nsource: sienge/unit\ntarget: canonical/unit\nfields:\n"
        "  source_id: {from: id, transfroms: [str]}\n  enterprise_source_id: {from: enterpriseId}\n"
        "  name: name\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError) as info:
        compile_file(path)
    assert "fields.source_id.transfroms: unknown field, did you mean 'transforms'?" in str(info.value)
