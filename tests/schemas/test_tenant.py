"""Tenant files: the demo is valid, and a broken file gets an error naming file, line, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ponte.errors import ConfigurationError
from schemas.tenant import load_tenant

REPO = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((REPO / "tenants" / "demo.yaml").read_text())


def test_demo_tenant_is_valid() -> None:
    tenant = load_tenant(REPO / "tenants" / "demo.yaml")
    assert tenant.id == "demo"
    assert [s.role.value for s in tenant.options.signer_chain] == ["client", "spouse", "witness"]
    assert tenant.options.envelope_package and tenant.options.envelope_package.size == 500


def _write(tmp_path: Path, data: dict, name: str = "acme") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def _variant(**changes) -> dict:
    data = yaml.safe_load(yaml.safe_dump(DEMO))
    data["id"] = "acme"
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


CASES = [
    (
        {"options__envelope_package__size": "lots"},
        ["options.envelope_package.size", "(got 'lots')"],
    ),
    (
        {"connectors__sienge__credentials": {"password": "hunter22"}},
        ["connectors.sienge.credentials", "written in clear", "{env: VARIABLE_NAME}"],
    ),
    ({"name": ...}, ["field name", "required field is missing"]),
    (
        {"options__envelope_deadline_days": 0},
        ["options.envelope_deadline_days", "greater than or equal to 1"],
    ),
    ({"options__signing_provider": "zapsign"}, ["'zapsign'", "not a key of connectors"]),
    ({"options__colour": "blue"}, ["options.colour", "unknown field"]),
    ({"options__responsible_emails": ["not-an-email"]}, ["options.responsible_emails.0", "email"]),
]


@pytest.mark.parametrize(("changes", "expected"), CASES)
def test_broken_tenant_file_says_where_and_what(tmp_path: Path, changes: dict, expected: list[str]) -> None:
    path = _write(tmp_path, _variant(**changes))
    with pytest.raises(ConfigurationError) as info:
        load_tenant(path)
    message = str(info.value)
    assert str(path) in message
    assert "fix:" in message
    for fragment in expected:
        assert fragment in message
    assert "hunter22" not in message


def test_error_names_the_line_of_the_bad_field(tmp_path: Path) -> None:
    path = _write(tmp_path, _variant(options__envelope_deadline_days=0))
    line = next(
        i for i, text in enumerate(path.read_text().splitlines(), 1) if "envelope_deadline_days" in text
    )
    with pytest.raises(ConfigurationError, match=rf"{path.name}:{line}: "):
        load_tenant(path)


def test_file_name_must_match_tenant_id(tmp_path: Path) -> None:
    path = _write(tmp_path, _variant(), name="other")
    with pytest.raises(ConfigurationError, match="does not match the file name"):
        load_tenant(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text("id: acme\nname: [unclosed\n")
    with pytest.raises(ConfigurationError, match=r"acme.yaml:\d+: not valid YAML"):
        load_tenant(path)


def test_missing_environment_variable_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = _variant(connectors__sienge__credentials={"password": {"env": "PONTE_TEST_UNSET_VAR"}})
    tenant = load_tenant(_write(tmp_path, data))
    monkeypatch.delenv("PONTE_TEST_UNSET_VAR", raising=False)
    with pytest.raises(ConfigurationError, match="PONTE_TEST_UNSET_VAR is not set") as info:
        tenant.connector("sienge").resolve_credentials(tenant.id)
    assert info.value.tenant == "acme"
