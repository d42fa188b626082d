"""Regular expressions cannot stall a flow: every mapping regex runs in linear time (issue #16, point 7).

(a) the 2,009-character Sienge ``adress`` that took seconds in the enterprise mapping's city pattern;
(b) every pattern of every shipped mapping, found in the compiled mappings, on 10,000-character
adversarial inputs (and the transforms' own fixed patterns too); (c) a pattern that needs backtracking
is refused at load, naming the file, line and field and what to write instead; (d) the linear engine
agrees with Python's ``re`` on the shipped patterns (hypothesis, short inputs where ``re`` is fast).

Timings are asserted under a generous bound (1 s; the machine is shared); run with ``-s`` to see the
measured figures.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import re
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mappings import MAPPINGS_DIR, compile_file, list_mappings, load_mapping
from mappings.linear_regex import LinearPattern, RegexRefused, compile_pattern
from mappings.transforms import build
from orchestration.cli.app import app
from ponte.errors import ConfigurationError

#: generous: the linear engine answers in well under a millisecond; the old engine took seconds
BOUND_S = 1.0
#: what the issue measured and asks for, per input
TARGET_MS = 50.0

#: a free-text line with a long run of spaces around a lone dash: roughly cubic backtracking in
#: ``([^,]+?)\s*-\s*[A-Za-z]{2}\s*$`` (6-8 s with Python's re on the shared test machine)
ADVERSARIAL_ADRESS = "Rua das Flores, 100, " + " " * 993 + "-" + " " * 994


def _elapsed_ms(call: Any, *args: Any) -> float:
    start = time.perf_counter()
    call(*args)
    return (time.perf_counter() - start) * 1000


# ---- (a) the enterprise address ------------------------------------------------------------------


def test_the_2009_character_adress_maps_fast() -> None:
    assert len(ADVERSARIAL_ADRESS) == 2009
    mapping = load_mapping("sienge/enterprise_to_canonical")
    record = {"id": 12, "name": "Residencial", "adress": ADVERSARIAL_ADRESS}
    mapping.apply(record, None)  # warm: the first call may build the classes
    took = min(_elapsed_ms(mapping.apply, record, None) for _ in range(5))
    print(f"\n2,009-char adress through sienge/enterprise_to_canonical: {took:.3f} ms (target {TARGET_MS:g} ms)")
    assert took < BOUND_S * 1000
    out = mapping.apply(record, None)
    assert "city" not in out and "state" not in out  # no "- UF" at the end: missing, as before
    # and the everyday address still gives city and state
    fine = mapping.apply(dict(record, adress="Rua das Flores, 100, Florianópolis - SC"), None)
    assert (fine["city"], fine["state"]) == ("Florianópolis", "SC")


# ---- one function compiles every pattern a mapping writes ----------------------------------------


def test_no_other_code_in_mappings_compiles_a_pattern_it_did_not_write() -> None:
    """``re`` in mappings/*.py only ever runs literal patterns written in the code; anything that
    comes from a mapping file goes through ``compile_pattern``."""
    offenders = []
    for path in sorted(MAPPINGS_DIR.glob("*.py")):
        if path.name == "linear_regex.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "re"
                and node.args
                and not (isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))
            ):
                offenders.append(f"{path.name}:{node.lineno}: re.{node.func.attr}({ast.unparse(node.args[0])})")
    assert offenders == []


# ---- (b) every shipped pattern on adversarial input ----------------------------------------------


def _patterns_in(value: Any, seen: set[int]) -> Iterator[LinearPattern]:
    """LinearPatterns a compiled mapping holds: constants of its code and captures of its transforms."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, LinearPattern):
        yield value
    elif callable(value) and getattr(value, "__closure__", None):
        for cell in value.__closure__:
            try:
                yield from _patterns_in(cell.cell_contents, seen)
            except ValueError:  # an empty cell
                continue


@cache
def shipped_patterns() -> tuple[tuple[str, str], ...]:
    """(mapping, pattern) for every regex the shipped mappings run, from the compiled functions."""
    found: dict[tuple[str, str], None] = {}
    for name in list_mappings():
        mapping = load_mapping(name)
        seen: set[int] = set()
        for value in mapping.apply.__globals__.values():
            for pattern in _patterns_in(value, seen):
                found[(name, pattern.pattern)] = None
    return tuple(found)


def _written_patterns(node: Any, under: str | None = None) -> Iterator[str]:
    """Patterns a mapping's YAML writes: ``regex`` transforms and ``matches`` conditions."""
    if isinstance(node, dict):
        if isinstance(node.get("matches"), str) and "path" in node:
            yield node["matches"]
        if under == "transforms" and "regex" in node:
            args = node["regex"]
            yield args["pattern"] if isinstance(args, dict) else args
        for key, value in node.items():
            yield from _written_patterns(value, key if isinstance(key, str) else None)
    elif isinstance(node, list):
        for item in node:
            yield from _written_patterns(item, under)


def test_the_discovery_finds_every_pattern_the_files_write() -> None:
    written = {
        (name, pattern)
        for name in list_mappings()
        for pattern in _written_patterns(yaml.safe_load((MAPPINGS_DIR / f"{name}.yaml").read_text("utf-8")))
    }
    assert len(written) >= 2, written  # Sienge's enterprise address patterns at least: never vacuous
    assert set(shipped_patterns()) == written


def _adversarial(pattern: str, size: int = 10_000) -> Iterator[tuple[str, str]]:
    """(label, text) inputs that make backtracking engines suffer: long runs of the characters the
    pattern mentions and of each class's members, alone, with a tail that spoils or completes a match,
    and around a lone other character in the middle."""
    literal = {ch for ch in pattern if ch.isprintable() and ch not in "\\()[]{}?*+|^$"}
    alphabet = sorted(literal | set("aZ0- ,.!é\u00a0\t\n_/"))
    for ch in alphabet:
        yield f"{ch!r}*n", ch * size
        for tail in ("!", "\n", " - SC", "52998224725"):  # spoilt, a line break, tails that do match
            yield f"{ch!r}*n+{tail!r}", ch * (size - len(tail)) + tail
    for a, b in itertools.permutations(alphabet, 2):
        yield f"({a!r}{b!r})*n", (a + b) * (size // 2)
        half = (size - 1) // 2
        yield f"{a!r}*n/2 {b!r} {a!r}*n/2", a * half + b + a * (size - 1 - half)
    yield "digits", ("0123456789" * size)[:size]
    yield "mixed", ("Rua X, 10 - a1 \u00a0é-," * size)[:size]


@pytest.mark.parametrize(("mapping", "pattern"), shipped_patterns(), ids=lambda v: str(v))
def test_every_shipped_pattern_is_linear_on_10k_adversarial_input(mapping: str, pattern: str) -> None:
    linear = compile_pattern(pattern)
    worst_ms, worst = 0.0, ""
    count = 0
    for label, text in _adversarial(pattern):
        assert len(text) >= 9_999
        took = min(_elapsed_ms(linear.search, text) for _ in range(3))  # the least disturbed of three
        count += 1
        if took > worst_ms:
            worst_ms, worst = took, label
        assert took < BOUND_S * 1000, f"{pattern!r} took {took:.1f} ms on {label}"
    print(f"\n{mapping} {pattern!r}: {count} inputs of 10k chars, max {worst_ms:.3f} ms ({worst}; "
          f"target {TARGET_MS:g} ms)")


def test_the_transforms_fixed_patterns_are_linear_on_10k_input() -> None:
    """strip / digits / money / datetime auto use hand-written patterns on ``re``: linear as written."""
    strip, digits = build("strip")[1], build("digits")[1]
    money, when = build("money")[1], build("datetime", {"format": "auto"})[1]
    n = 10_000
    calls = [
        (strip, " " * n), (strip, " a" * (n // 2)), (digits, "1a" * (n // 2)),
        (money, "1" * n + "x"), (money, "1." * (n // 2)), (money, "1,1" * (n // 3)), (money, "1.234" * (n // 5) + ","),
        (when, "1" * n), (when, "12/12/2024" + " " * n),
    ]
    worst = 0.0
    for fn, text in calls:
        start = time.perf_counter()
        with contextlib.suppress(ValueError):  # not an amount / a date: what matters is the answer
            fn(text)
        took = (time.perf_counter() - start) * 1000
        worst = max(worst, took)
        assert took < BOUND_S * 1000, f"{fn.__name__} took {took:.1f} ms"
    print(f"\ntransforms' fixed patterns on 10k chars: max {worst:.3f} ms")


# ---- (c) backtracking-only patterns are refused at load ------------------------------------------

HEADER = "version: 1\nsource: sienge/enterprise\ntarget: canonical/enterprise\nfields:\n"
BASE = "  source_id: {from: id, transforms: [str]}\n  name: name\n"

REFUSED = [
    ("backreference", r"{regex: '(\w+) \1'}", "backreference (\\1)", "write the repeated text out"),
    ("named backreference", r"{regex: '(?P<w>\w+) (?P=w)'}", "backreference (?P=...)",
     "write the repeated text out"),
    ("lookahead", r"{regex: '(\w+)(?= - )'}", "lookahead (?=...)", "take the part you want with a group"),
    ("negative lookahead", r"{regex: '(\w+)(?!,)'}", "lookahead (?!...)", "not: {matches: ...}"),
    ("lookbehind", r"{regex: '(?<=- )([A-Z]{2})'}", "lookbehind (?<=...)", "capture what follows"),
    ("atomic group", r"{regex: '(?>\s*)-'}", "atomic group", "plain group (?:...)"),
    ("possessive repeat", r"{regex: '(\s*+)-'}", "possessive repeat (*+)", "write * alone"),
    ("word boundary", r"{regex: '\b([A-Z]{2})\b'}", "word boundary", "match the neighbouring text"),
]


@pytest.mark.parametrize(("transform", "feature", "fix"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_a_pattern_that_needs_backtracking_is_refused_at_load(
    tmp_path: Path, transform: str, feature: str, fix: str
) -> None:
    path = tmp_path / "backtracking.yaml"
    path.write_text(HEADER + BASE + f"  city: {{from: adress, transforms: [{transform}]}}\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        compile_file(path)
    message = str(caught.value)
    assert "backtracking.yaml:7:" in message, message
    assert "field city.transforms.0: transform 'regex'" in message, message
    assert feature in message, message
    assert "linear-time engine" in message, message
    assert "(fix: " in message and fix in message.split("(fix: ", 1)[1], message


def test_a_backtracking_matches_condition_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "condition.yaml"
    path.write_text(
        HEADER + BASE + "  city:\n    from: adress\n    when: {path: adress, matches: '^(?!Rua)'}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError) as caught:
        compile_file(path)
    message = str(caught.value)
    assert "condition.yaml:9:" in message and "field city.when.matches" in message, message
    assert "lookahead (?!...)" in message and "(fix: " in message, message


def test_ponte_mapping_check_reports_it_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "backtracking.yaml"
    path.write_text(HEADER + BASE + "  city: {from: adress, transforms: [{regex: '(a)\\1'}]}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["mapping", "check", str(path)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    flat = " ".join(result.output.split())
    assert "backtracking.yaml:7" in flat and "field city" in flat and "backreference" in flat, flat


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=a)", r"(?<!a)b", r"a++", r"(?(1)a|b)", r"(?>a)"])
def test_compile_pattern_refuses_with_a_hint(pattern: str) -> None:
    with pytest.raises(RegexRefused) as caught:
        compile_pattern(pattern)
    assert caught.value.hint and "backtracking engine" in caught.value.problem


# ---- (d) the linear engine agrees with Python's re ------------------------------------------------


def _outcome(match: Any, groups: int) -> tuple[Any, ...] | None:
    if match is None:
        return None
    return tuple(match.group(g) for g in range(groups + 1))


def _texts(pattern: str) -> st.SearchStrategy[str]:
    """Short texts (where Python's re is fast) made of the pattern's own characters, the classes'
    members, line breaks, and anything else."""
    pieces = sorted({ch for ch in pattern if ch.isprintable()} | set("aZ09 -,\n\t\u00a0\u2003é٣"))
    return st.text(st.one_of(st.sampled_from(pieces), st.characters()), max_size=40)


@pytest.mark.parametrize(("mapping", "pattern"), shipped_patterns(), ids=lambda v: str(v))
def test_the_linear_engine_agrees_with_python_re(mapping: str, pattern: str) -> None:
    linear, python = compile_pattern(pattern), re.compile(pattern)
    assert linear.groups == python.groups and linear.groupindex == dict(python.groupindex)

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=_texts(pattern))
    def agree(text: str) -> None:
        assert _outcome(linear.search(text), linear.groups) == _outcome(python.search(text), python.groups)

    agree()


@pytest.mark.parametrize(
    "pattern",
    [r"^\d{3}-\d{2}$", r"(\w+)\s*,\s*(\S+)", r"[^\W\d_]+", r"(?i)rua\s+(\w+)", r"(\d{1,3}(?:\.\d{3})*),(\d\d)",
     r"^(?P<uf>[A-Z]{2})", r"a{,2}b", r"x\Z", r"[\s\-]+$", r"(?m)^(\w+)$"],
)
def test_python_syntax_keeps_its_meaning(pattern: str) -> None:
    """Beyond the shipped patterns: Unicode \\d \\w \\s, {,n}, \\Z, a final $, multi-line mode."""
    linear, python = compile_pattern(pattern), re.compile(pattern)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=_texts(pattern))
    def agree(text: str) -> None:
        assert _outcome(linear.search(text), linear.groups) == _outcome(python.search(text), python.groups)

    agree()


def test_a_final_dollar_matches_before_a_final_line_break_as_in_python() -> None:
    linear = compile_pattern(r"^\d{11}$")
    assert linear.search("52998224725\n") is not None
    assert linear.search("52998224725\n\n") is None
    assert linear.search("52998224725\n").group(0) == "52998224725"


def test_named_groups_and_conditions_compile_and_run(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(
        HEADER + BASE
        + "  city: {from: adress, transforms: [{regex: {pattern: '(?P<city>[^,]+?)\\s*-\\s*[A-Z]{2}$', "
        "group: city}}, strip]}\n"
        + "  state: {from: adress, when: {path: adress, matches: '\\d+'}, transforms: [{regex: '([A-Z]{2})\\s*$'}]}\n",
        encoding="utf-8",
    )
    compiled = compile_file(path)
    out = compiled.apply({"id": 1, "name": "X", "adress": "Rua A, 10, Joinville - SC"}, None)
    assert (out["city"], out["state"]) == ("Joinville", "SC")
    out = compiled.apply({"id": 1, "name": "X", "adress": "Rua A, Joinville - SC"}, None)
    assert (out["city"], out.get("state")) == ("Joinville", None)
