"""The session-wide log scan (tests/security/logscan.py): its detectors, and proof that it fails a run.

The proof runs tiny pytest sessions in subprocesses (with and without xdist) whose only test logs a
clear CPF through a plain ``logging.getLogger`` (not Ponte's masking logger): the session must fail
even though every test passed, and its report must not repeat the CPF in clear.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.br import cnpj as _cnpj
from stdnum.br import cpf as _cpf

from ponte.redaction import redact
from tests.security.logscan import known_secrets, mask_spans, scan_line

REPO = Path(__file__).resolve().parents[2]
SECRETS = known_secrets()


def kinds(line: str) -> set[str]:
    return {kind for kind, _, _ in scan_line(line, SECRETS)}


@pytest.mark.parametrize(("line", "kind"), [
    ("customer 529.982.247-25 imported", "cpf"),
    ("customer=52998224725;", "cpf"),
    ("company 11.222.333/0001-81", "cnpj"),
    ("company 11222333000181", "cnpj"),
    ("company 12.ABC.345/01DE-35", "cnpj"),
    ("company 12ABC34501DE35", "cnpj"),
    ("sent to maria.souza@example.com.br", "e-mail"),
    ("whatsapp +55 (48) 99876-5432", "phone"),
    ("whatsapp (48) 99876-5432", "phone"),
    ("whatsapp 5548998765432", "phone"),
    ("whatsapp +5548998765432", "phone"),
    ("headers {'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.x'}", "bearer token"),
    ("GET http://127.0.0.1:1/api?token=abcdef123456&page=2", "secret in a URL"),
    ("POST /webhooks/demo/cvcrm/events/cv-url-secret-demo-0123456789", "known secret"),
    ("hmac key docusign-connect-secret", "known secret"),
])
def test_clear_values_are_found(line: str, kind: str) -> None:
    assert kind in kinds(line)


@pytest.mark.parametrize("line", [
    "imported 1234 records in 5.2 s for tenant demo (run 42)",
    "customer ***.***.***-25 imported; company **.***.***/****-81",
    "sent to m***@example.com.br, whatsapp +***********32",
    "headers {'Authorization': 'Bearer ***'} token=***",
    "event 7d9c-1 at 1777640400 (epoch ms 1777640400000), envelope 00000000-0000-0000-0000-0000000d0c05",
    "invalid cpf 52998224724 is not a CPF, nor 11111111111",
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
])
def test_masked_and_ordinary_lines_pass(line: str) -> None:
    assert kinds(line) == set()


def _cpf_digits(base: str) -> str:
    digits = [int(c) for c in base]
    for _ in range(2):
        total = sum(d * w for d, w in zip(digits, range(len(digits) + 1, 1, -1), strict=True))
        digits.append((total * 10) % 11 % 10)
    return "".join(map(str, digits))


@settings(max_examples=200, deadline=None)
@given(base=st.from_regex(r"[0-9]{9}", fullmatch=True), formatted=st.booleans())
def test_whatever_redact_masks_the_scan_accepts(base: str, formatted: bool) -> None:
    """Ponte's masking and the scan agree: a CPF or CNPJ redacted by ponte.redaction is not a finding."""
    cpf = _cpf_digits(base)
    assume_valid = len(set(cpf)) > 1  # one repeated digit is never issued: the scan skips it
    # stdnum takes 111.111.111-11 (its arithmetic holds), not 000.000.000-00
    assert _cpf.is_valid(cpf) or not assume_valid
    cnpj = base[:8] + "0001"
    cnpj += _cnpj.calc_check_digits(cnpj)
    text = (f"cpf {_cpf.format(cpf) if formatted else cpf} cnpj {_cnpj.format(cnpj) if formatted else cnpj} "
            f"phone +55 (48) 9{base[:4]}-{base[4:8]} mail a{base}@example.com")
    if assume_valid:
        assert {"cpf", "cnpj", "phone", "e-mail"} <= kinds(text)
    assert kinds(redact(text)) == set()


def test_digits_inside_an_envelope_uuid_are_an_id_not_a_phone() -> None:
    # a random UUID's middle groups can be all digits and read like +55 48 9999-8847
    envelope = "dd1b7a13-5548-9999-8847-957468a70a19"
    line = f"clicksign GET /api/v3/envelopes/{envelope}/signers -> 200 in 1 ms"
    assert scan_line(line, []) == []
    assert redact(line) == line  # the masking leaves ids alone too
    beside = f"envelope {envelope} for +55 48 99876-5432"
    assert [kind for kind, _a, _b in scan_line(beside, [])] == ["phone"]


def test_printed_findings_are_masked() -> None:
    line = "x: customer 529.982.247-25 mail maria@example.com"
    masked = mask_spans(line, scan_line(line, SECRETS))
    assert "529.982.247-25" not in masked and "maria@example.com" not in masked
    assert "<cpf …25>" in masked and "<e-mail>" in masked


def test_the_demo_tenant_secrets_are_known() -> None:
    for value in ("sienge-hook-token-demo", "cv-url-secret-demo-0123456789", "docusign-connect-secret",
                  "clicksign-webhook-secret", "whatsapp-app-secret", "sandbox-secret"):
        assert value in SECRETS


# ----------------------------------------------------------------------- the scan fails a session

LEAKING = '''
import logging

def test_logs_a_clear_cpf():
    logging.getLogger("x").warning("importing customer %s", "529.982.247-25")

def test_innocent():
    logging.getLogger("y").warning("imported 3 records")
'''

CLEAN = '''
import logging
from ponte.logging import get_logger

def test_masked():
    get_logger("x").warning("importing customer %s", "529.982.247-25")

def test_plain():
    logging.getLogger("y").info("imported 3 records")
'''


def run_session(tmp_path: Path, test_source: str, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.security.logscan"]\n', encoding="utf-8")
    (tmp_path / "test_probe.py").write_text(textwrap.dedent(test_source), encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_a_session_whose_tests_pass_but_log_a_clear_cpf_fails(tmp_path: Path) -> None:
    result = run_session(tmp_path, LEAKING)
    out = result.stdout + result.stderr
    assert "2 passed" in out, out
    assert result.returncode == 1, out
    assert "log scan FAILED" in out and "test_logs_a_clear_cpf" in out and "<cpf …25>" in out
    assert "529.982.247-25" not in out  # the report itself masks what it found


def test_under_xdist_a_leak_on_any_worker_fails_the_run(tmp_path: Path) -> None:
    result = run_session(tmp_path, LEAKING, "-n", "2")
    out = result.stdout + result.stderr
    assert "2 passed" in out, out
    assert result.returncode == 1, out
    assert "log scan FAILED" in out and "test_logs_a_clear_cpf" in out
    assert "529.982.247-25" not in out


def test_a_clean_session_passes(tmp_path: Path) -> None:
    result = run_session(tmp_path, CLEAN)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "no personal data or secret in clear" in out
