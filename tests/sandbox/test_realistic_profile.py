"""The ``realistic`` sandbox profile: dirty values in Sienge's shapes, a ground truth that matches the
records, CPF corrections between two runs, and one import held against that ground truth."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from stdnum.br import cnpj as std_cnpj
from stdnum.br import cpf as std_cpf

from connectors.sandbox import Sandbox, start_sandbox
from connectors.sandbox.documents import cpf_check_digits as reference_cpf_check_digits
from connectors.sandbox.realistic import (
    CORRECTION_REASONS,
    EDGE_CASES,
    FAILURE_REASONS,
    cnpj_check_digits,
    cpf_check_digits,
)
from connectors.sandbox.seed import SeedData, generate
from pipelines.connections import open_connector
from pipelines.imports.flow import run_import
from pipelines.store import Store, deadletters
from pipelines.store.models import IdMap
from tests.support.tenants import sandbox_tenant

from .conftest import REPO_ROOT, SIENGE_AUTH, swagger_schema
from .test_fidelity import SALES_CONTRACT_ERRATA

SIZE = 3000


@pytest.fixture(scope="module")
def data() -> SeedData:
    return generate(customers=SIZE, seed=3, profile="realistic")


@pytest.fixture(scope="module")
def realistic() -> Iterator[Sandbox]:
    with start_sandbox(customers=300, seed=7, rate_limits=False, profile="realistic") as sb:
        yield sb


_DIGEST = """
import hashlib, json
from connectors.sandbox.seed import generate
data = generate(customers={size}, seed={seed}, profile="realistic")
fields = ("customers", "enterprises", "units", "contracts", "crm_assistencias", "expected_failures",
          "expected_sale_failures", "edge_cases", "duplicates", "corrections")
blob = json.dumps([getattr(data, f) for f in fields], sort_keys=True, ensure_ascii=False)
print(hashlib.sha256(blob.encode()).hexdigest())
"""


def _digest(size: int, seed: int, hash_seed: str) -> str:
    """The data set's SHA-256, generated in a fresh process with this string-hash seed."""
    out = subprocess.run([sys.executable, "-c", _DIGEST.format(size=size, seed=seed)], cwd=REPO_ROOT,
                         capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


# ---- an oracle of the rules, written apart from the generator --------------------------------------

def _compact(value: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", value).upper()


def _document_ok(value: str, kind: str) -> bool:
    chars = _compact(value)
    if len(set(chars)) == 1:  # one digit repeated: valid check digits, never issued by the Receita
        return False
    return std_cpf.is_valid(chars) if kind == "cpf" else std_cnpj.is_valid(chars)


_NOTE = re.compile(r"\s+(?:\([^()]*\)|ramal\s*\d+|r\.\s*\d+)\s*$", re.IGNORECASE)
_DDD = {"11", "31", "41", "48", "51", "62"}


def _phone_usable(text: str) -> bool:
    """A Brazilian number a person can dial: DDD + 8-digit landline (2-5) or 9-digit mobile (9); a country
    code, a trunk 0, punctuation and a trailing extension or note do not matter."""
    digits = re.sub(r"\D", "", _NOTE.sub("", text))
    if len(digits) in (12, 13) and digits.startswith("55"):
        digits = digits[2:]
    elif len(digits) in (11, 12) and digits.startswith("0"):
        digits = digits[1:]
    if len(digits) not in (10, 11) or digits[:2] not in _DDD:
        return False
    return digits[2] == "9" if len(digits) == 11 else digits[2] in "2345"


def _violations(customer: dict[str, Any]) -> list[str]:
    """Every rule a customer breaks, by the oracle (the generator gives each failing customer one)."""
    found = []
    if customer.get("cpf") is not None:
        cpf = _compact(customer["cpf"])
        if len(cpf) != 11:
            found.append("cpf_missing_digit")
        elif len(set(cpf)) == 1:
            found.append("cpf_repeated_digits")
        elif not _document_ok(cpf, "cpf"):
            found.append("cpf_check_digits")
    elif not _document_ok(customer["cnpj"], "cnpj"):
        found.append("cnpj_check_digits")
    spouse = customer.get("spouse") or {}
    if spouse.get("cpf") and not _document_ok(spouse["cpf"], "cpf"):
        found.append("spouse_cpf_check_digits")
    email = (customer.get("email") or "").strip()
    if not email:
        found.append("email_missing")
    else:
        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError:
            found.append("email_malformed")
    if spouse.get("email"):
        validate_email(spouse["email"].strip(), check_deliverability=False)  # never the defect
    if not any(_phone_usable(p["number"]) for p in customer["phones"]):
        found.append("phone_missing")
    return found


# ---- the data --------------------------------------------------------------------------------------

def test_same_seed_same_data_in_any_process(data: SeedData) -> None:
    again = generate(customers=SIZE, seed=3, profile="realistic")
    for name in ("customers", "contracts", "units", "expected_failures", "edge_cases", "duplicates", "corrections"):
        assert getattr(again, name) == getattr(data, name), name
    assert generate(customers=SIZE, seed=4, profile="realistic").customers != data.customers
    # processes with other string-hash seeds: nothing may depend on the order of a set of strings
    assert _digest(2000, 3, "1") == _digest(2000, 3, "12345")


def test_the_clean_profile_is_unchanged_and_stays_the_default() -> None:
    clean = generate(customers=40, seed=7)
    assert clean.profile == "clean" and not clean.expected_failures and not clean.corrections
    assert generate(customers=40, seed=7, profile="clean").customers == clean.customers
    with pytest.raises(ValueError, match="unknown seed profile"):
        generate(customers=5, seed=7, profile="dirty")


def test_the_profile_is_chosen_by_name_everywhere() -> None:
    from typer.testing import CliRunner

    from orchestration.cli.sandbox import app
    from ponte.errors import ConfigurationError

    runner = CliRunner()
    assert "--profile" in runner.invoke(app, ["up", "--help"]).output
    refused = runner.invoke(app, ["up", "--profile", "dirty", "--customers", "1"])
    assert refused.exit_code != 0 and "unknown profile" in refused.output
    with pytest.raises(ConfigurationError, match="unknown sandbox profile"):
        start_sandbox(customers=1, profile="dirty")


def test_check_digit_arithmetic_matches_the_references() -> None:
    import random

    rng = random.Random(5)
    for _ in range(2000):
        base = f"{rng.randrange(10**9):09d}"
        assert cpf_check_digits(base) == reference_cpf_check_digits(base)
        root = "".join(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(12))
        assert cnpj_check_digits(root) == std_cnpj.calc_check_digits(root)
    # the Receita's published example of an alphanumeric CNPJ
    assert cnpj_check_digits("12ABC34501DE") == "35"


def test_at_least_a_fifth_must_fail_with_every_reason_present(data: SeedData) -> None:
    reasons = Counter(data.expected_failures.values())
    assert len(data.expected_failures) >= 0.2 * SIZE, reasons
    assert set(reasons) == set(FAILURE_REASONS), reasons
    assert set(data.edge_cases.values()) == set(EDGE_CASES)
    assert not set(data.edge_cases) & set(data.expected_failures)
    assert data.expected_sale_failures == data.sales_failing(data.expected_failures)


def test_the_ground_truth_is_what_the_records_say(data: SeedData) -> None:
    """Each customer expected to fail breaks exactly its one rule; every other customer breaks none."""
    wrong = {}
    for customer in data.customers:
        found = _violations(customer)
        want = [data.expected_failures[customer["id"]]] if customer["id"] in data.expected_failures else []
        if found != want:
            wrong[customer["id"]] = (want, found, data.edge_cases.get(customer["id"]))
    assert not wrong, wrong
    for cid, edge in data.edge_cases.items():
        customer = data.customers[cid - 1]
        if edge == "name_over_100_chars":
            assert len(customer["name"].strip()) > 100
        elif edge == "alphanumeric_cnpj":
            assert not _compact(customer["cnpj"]).isdigit()
        elif edge == "spouse_without_cpf":
            assert customer["spouse"] and "cpf" not in customer["spouse"]
        elif edge == "phone_with_note_only":
            assert len(customer["phones"]) == 1 and _NOTE.search(customer["phones"][0]["number"])


def test_the_dirt_a_real_erp_holds(data: SeedData) -> None:
    customers = data.customers
    numbers = [p["number"] for c in customers for p in c["phones"]]
    for pattern in (r"\(\d\d\) 9\d{4}-\d{4}", r"\d\d9\d{8}", r"\+55 \d\d 9\d{4} \d{4}", r"0\d\d 9\d{4} \d{4}",
                    r"\(\d\d\) [2-5]\d{3}-\d{4}", r"\d\d [2-5]\d{3}-\d{4} ramal \d+", r"9\d{4}-\d{4} \(recado\)",
                    r"não tem", r"000"):
        assert any(re.fullmatch(pattern, n) for n in numbers), pattern
    cpfs = [c["cpf"] for c in customers if "cpf" in c]
    assert any(re.fullmatch(r"\d{11}", v) for v in cpfs) and any(re.fullmatch(r"\d{3}\.\d{3}\.\d{3}-\d{2}", v)
                                                                  for v in cpfs)
    assert "111.111.111-11" in cpfs or "11111111111" in cpfs or any(len(set(_compact(v))) == 1 for v in cpfs)
    emails = [c.get("email") for c in customers]
    missing = sum(1 for e in emails if not (e or "").strip())
    assert 0.15 * SIZE <= missing <= 0.25 * SIZE  # about a fifth
    assert any(e and e != e.strip() for e in emails) and any(e and e.strip() != e.strip().lower() for e in emails)
    assert any(e and "@@" in e for e in emails) and any(e and e.endswith("@") for e in emails)
    names = [c["name"] for c in customers]
    assert any(n.isupper() for n in names) and any(n.islower() for n in names)
    assert any(n != n.strip() or "  " in n for n in names) and any(len(n) > 100 for n in names)
    assert any(re.search("[áâãéêíóôõúç]", n, re.IGNORECASE) for n in names)


def test_duplicates_spouses_and_sales_with_several_buyers(data: SeedData) -> None:
    assert data.duplicates
    for later, earlier in data.duplicates.items():
        assert later > earlier
        a, b = data.customers[later - 1], data.customers[earlier - 1]
        assert _compact(a["cpf"]) == _compact(b["cpf"]) and a["birthDate"] == b["birthDate"]
    married = [c for c in data.customers if c.get("spouse")]
    assert len(married) > 0.2 * SIZE and all(c["spouse"]["name"] and c["spouse"]["sex"] in "FM" for c in married)
    buyers = Counter(len(c["salesContractCustomers"]) for c in data.contracts)
    assert buyers[2] and buyers[3], buyers
    for contract in data.contracts:
        parties = contract["salesContractCustomers"]
        assert sum(1 for p in parties if p["main"]) == 1
        assert abs(sum(p["participationPercentage"] for p in parties) - 100) < 0.001
        assert len({p["id"] for p in parties}) == len(parties)


def test_every_record_fits_the_sienge_schemas(data: SeedData, realistic: Sandbox) -> None:
    """The dirt is in the values: every record validates against Sienge's published schemas."""
    checks = {
        "customers": ("sienge/customers-v1.yaml", "CustomerGet", None),
        "contracts": ("sienge/sales-contracts-v1.yaml", "SalesContractGet", SALES_CONTRACT_ERRATA),
        "units": ("sienge/unit-v1.yaml", "Unit", None),
        "enterprises": ("sienge/enterprise-v1.yaml", "DetailedEnterprise", None),
    }
    for attribute, (spec, definition, errata) in checks.items():
        validator = jsonschema.Draft7Validator(swagger_schema(spec, definition, errata))
        for record in getattr(data, attribute):
            error = jsonschema.exceptions.best_match(validator.iter_errors(record))
            assert error is None, f"{attribute} {record['id']}: {error.message} at {list(error.absolute_path)}"
    # and as served, pages included
    with httpx.Client(base_url=realistic.api["sienge"], auth=SIENGE_AUTH, timeout=10) as sienge:
        page = sienge.get("/customers", params={"limit": 200}).json()
        jsonschema.validate(page, swagger_schema("sienge/customers-v1.yaml", "GetResponseDocument"),
                            cls=jsonschema.Draft7Validator)
        sales = sienge.get("/sales-contracts", params={"limit": 200}).json()
        jsonschema.validate(sales, swagger_schema("sienge/sales-contracts-v1.yaml", "SalesContractsGet",
                                                  SALES_CONTRACT_ERRATA), cls=jsonschema.Draft7Validator)


def test_corrections_change_cpfs_and_modified_at_once() -> None:
    with start_sandbox(customers=300, seed=7, rate_limits=False, profile="realistic") as sb:
        truth = sb.seed_data
        fixes = [cid for cid in truth.corrections if cid in truth.expected_failures]
        rekeys = [cid for cid in truth.corrections if cid not in truth.expected_failures]
        assert fixes and rekeys
        assert all(truth.expected_failures[cid] == "cpf_check_digits" for cid in fixes)
        before = {cid: dict(sb.state.sienge.customers[cid]) for cid in truth.corrections}
        with httpx.Client(base_url=sb.urls["sienge"], timeout=10) as control:
            applied = control.post("/_sandbox/corrections").json()["corrected"]
            assert {c["id"] for c in applied} == set(truth.corrections)
            assert control.post("/_sandbox/corrections").json() == {"corrected": []}
        assert sb.apply_corrections() == {}
        with httpx.Client(base_url=sb.api["sienge"], auth=SIENGE_AUTH, timeout=10) as sienge:
            for cid, old in before.items():
                now = sienge.get(f"/customers/{cid}").json()
                assert now["cpf"] == truth.corrections[cid]["cpf"] != old["cpf"]
                assert _document_ok(now["cpf"], "cpf")
                assert now["modifiedAt"] > old["modifiedAt"]
                found = sienge.get("/customers", params={"cpf": _compact(now["cpf"])}).json()["results"]
                assert [c["id"] for c in found] == [cid]
            changed = sienge.get("/customers", params={"modifiedAfter": now["modifiedAt"][:10]}).json()
            assert set(truth.corrections) <= {c["id"] for c in changed["results"]}
        assert truth.expected_failures_after_corrections() == {
            **{cid: why for cid, why in truth.expected_failures.items() if cid not in fixes},
            **{cid: "cpf_changed_after_import" for cid in rekeys},
        }


# ---- one import over the realistic profile -----------------------------------------------------

#: Where the import and the ground truth disagree today: ("refused", edge case) are valid customers the
#: import dead-letters; ("accepted", reason) are customers it imports though they must fail. These are
#: findings about the import, kept here so that the test says when one changes: fix the import (then
#: delete the entry), never the ground truth.
KNOWN_IMPORT_GAPS: dict[tuple[str, str], str] = {}


def _open_letters(store: Store, tenant: str, entity: str) -> dict[int, Any]:
    return {
        int(letter.record_key.split(":", 1)[1]): letter
        for letter in deadletters.list_open(store, tenant, "import")
        if letter.record_key.startswith(f"{entity}:")
    }


def _gaps(failed: dict[int, Any], expected: dict[int, str], truth: SeedData) -> dict[tuple[str, str], list[int]]:
    out: dict[tuple[str, str], list[int]] = {}
    for cid in sorted(set(failed) - set(expected)):
        out.setdefault(("refused", truth.edge_cases.get(cid, "no edge case")), []).append(cid)
    for cid in sorted(set(expected) - set(failed)):
        out.setdefault(("accepted", expected[cid]), []).append(cid)
    return out


def _check_against_truth(failed: dict[int, Any], expected: dict[int, str], truth: SeedData) -> None:
    gaps = _gaps(failed, expected, truth)
    detail = {
        key: [(cid, failed[cid].field, failed[cid].reason[:120]) if cid in failed else (cid, expected[cid])
              for cid in ids]
        for key, ids in gaps.items()
    }
    assert set(gaps) == set(KNOWN_IMPORT_GAPS), f"import vs ground truth changed: {detail}"
    for (direction, category), ids in gaps.items():  # a known gap is the whole category, not some of it
        members = [cid for cid, e in truth.edge_cases.items() if e == category] if direction == "refused" \
            else [cid for cid, why in expected.items() if why == category]
        assert sorted(members) == ids, (direction, category, ids, members)
    reasons = {**FAILURE_REASONS, **CORRECTION_REASONS}
    wrong_field = {cid: (why, failed[cid].field) for cid, why in expected.items()
                   if cid in failed and failed[cid].field != reasons[why][0]}
    assert not wrong_field, f"dead letters naming another field than the defect's: {wrong_field}"


def test_an_import_refuses_exactly_the_ground_truth(store: Store) -> None:
    with start_sandbox(customers=300, seed=7, rate_limits=False, profile="realistic") as sb:
        truth = sb.seed_data
        tenant = sandbox_tenant(sb, unthrottled=True)
        sienge = open_connector(tenant, "sienge", store=store)
        cvcrm = open_connector(tenant, "cvcrm", store=store)
        try:
            report = run_import(store, tenant, sienge, cvcrm)
            failed = _open_letters(store, tenant.id, "customer")
            with store.session() as session:
                people = dict(session.execute(
                    select(IdMap.source_id, IdMap.target_id).where(IdMap.tenant == tenant.id, IdMap.entity == "person")
                ).all())
            crm_documents = {p["documento"] for p in sb.state.cvcrm.pessoas.values()}
            # every customer is in the CRM or has an open dead letter, never both, never neither
            for cid, customer in sb.state.sienge.customers.items():
                imported = people.get(str(cid)) is not None
                assert imported != (cid in failed), (cid, imported, cid in failed)
                if imported:
                    assert _compact(customer.get("cpf") or customer["cnpj"]) in crm_documents
            assert report.entities["customer"].dead_lettered == len(failed)
            _check_against_truth(failed, truth.expected_failures, truth)
            # a sale fails exactly when one of its buyers did
            assert set(_open_letters(store, tenant.id, "sale")) == set(truth.sales_failing(failed))

            # the corrections reach a second, incremental run: the fixed typos import; a CPF replaced
            # after the customer reached the CRM waits for a person (never a second CRM person)
            persons_before = len(sb.state.cvcrm.pessoas)
            applied = sb.apply_corrections()
            report = run_import(store, tenant, sienge, cvcrm)
            failed = _open_letters(store, tenant.id, "customer")
            _check_against_truth(failed, truth.expected_failures_after_corrections(), truth)
            crm_documents = {p["documento"] for p in sb.state.cvcrm.pessoas.values()}
            fixed = [cid for cid in applied if cid in truth.expected_failures]
            assert fixed and all(_compact(applied[cid]["cpf"]) in crm_documents for cid in fixed)
            assert len(sb.state.cvcrm.pessoas) == persons_before + len(fixed)
            assert report.entities["customer"].created == len(fixed)
        finally:
            sienge.close()
            cvcrm.close()
