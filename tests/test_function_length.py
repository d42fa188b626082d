"""No production function over 80 lines without a reason in its docstring (issue #22).

A function is measured by its *own* lines: from its ``def`` line to its last line, less the lines of
the functions and classes defined inside it (their decorators included). So a typer ``register(app)``
holding its commands, or a factory returning a closure, is measured per nested function, each on its
own. A function longer than ``LIMIT`` own lines must say why in its docstring, on a line starting with
``Long because:`` followed by the reason (data laid out as code, a linear script, ...). Logic that runs
long is split into named steps instead.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PRODUCTION = ["ponte", "schemas", "connectors", "mappings", "pipelines", "orchestration"]
LIMIT = 80
REASON = "Long because:"

Function = ast.FunctionDef | ast.AsyncFunctionDef
Scope = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


@dataclass(frozen=True)
class Measured:
    where: str
    line: int
    name: str
    own_lines: int
    reason: str | None

    def __str__(self) -> str:
        return f"{self.where}:{self.line} {self.name} ({self.own_lines} own lines)"


def _span(node: Scope) -> int:
    """Lines a definition occupies in its parent, decorators included."""
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return (node.end_lineno or node.lineno) - first + 1


def _nested(node: ast.AST) -> Iterator[Scope]:
    """The definitions directly inside ``node`` (not those inside them)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, Function | ast.ClassDef):
            yield child
        else:
            yield from _nested(child)


def _reason(node: Function) -> str | None:
    """The text after ``Long because:`` on a docstring line that starts with it, if it says something."""
    for line in (ast.get_docstring(node) or "").splitlines():
        text = line.strip()
        if text.startswith(REASON) and text[len(REASON):].strip():
            return text[len(REASON):].strip()
    return None


def measure(source: str, where: str = "<source>") -> list[Measured]:
    """Every function and method in ``source`` with its own line count and its stated reason."""
    found: list[Measured] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in _nested(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
                continue
            total = (child.end_lineno or child.lineno) - child.lineno + 1
            own = total - sum(_span(inner) for inner in _nested(child))
            found.append(Measured(where, child.lineno, f"{prefix}{child.name}", own, _reason(child)))
            visit(child, f"{prefix}{child.name}.<locals>.")

    visit(ast.parse(source), "")
    return found


def unexplained(measured: list[Measured]) -> list[Measured]:
    return [m for m in measured if m.own_lines > LIMIT and m.reason is None]


def _production_files() -> Iterator[Path]:
    for layer in PRODUCTION:
        for path in sorted((REPO / layer).rglob("*.py")):
            if "__pycache__" not in path.parts:
                yield path


def test_no_long_function_without_a_reason() -> None:
    offenders = [
        m
        for path in _production_files()
        for m in unexplained(measure(path.read_text(encoding="utf-8"), str(path.relative_to(REPO))))
    ]
    if offenders:
        listing = "\n".join(f"  {m}" for m in offenders)
        pytest.fail(
            f"{len(offenders)} production function(s) over {LIMIT} own lines with no '{REASON} ...' line "
            f"in the docstring; split them into named steps or give the reason:\n{listing}",
            pytrace=False,
        )


# the measure itself, on made-up code: a check that could not fail would prove nothing


def _function(name: str, body_lines: int, docstring: str = "", indent: str = "") -> str:
    doc = f'{indent}    """{docstring}"""\n' if docstring else ""
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(body_lines))
    return f"{indent}def {name}():\n{doc}{body}"


def test_a_long_function_without_a_reason_is_reported() -> None:
    source = "\n" + _function("long", LIMIT)  # def line + LIMIT body lines
    [found] = measure(source, "made_up.py")
    assert (found.name, found.line, found.own_lines) == ("long", 2, LIMIT + 1)
    assert unexplained([found]) == [found]
    assert str(found) == f"made_up.py:2 long ({LIMIT + 1} own lines)"


def test_a_function_at_the_limit_passes() -> None:
    assert unexplained(measure(_function("edge", LIMIT - 1))) == []


def test_a_stated_reason_lets_a_long_function_pass_and_an_empty_one_does_not() -> None:
    explained = _function("table", LIMIT, f"A table.\n\n    {REASON} one row per code, data not logic.\n    ")
    assert unexplained(measure(explained)) == []
    assert measure(explained)[0].reason == "one row per code, data not logic."
    empty = _function("table", LIMIT, f"A table.\n\n    {REASON}\n    ")
    assert len(unexplained(measure(empty))) == 1
    mentioned = _function("table", LIMIT, f"Not a reason: {REASON} must start the line.")
    assert len(unexplained(measure(mentioned))) == 1


def test_nested_functions_and_classes_are_measured_on_their_own() -> None:
    inner = "".join(
        f"    @app.command('c{n}')\n" + _function(f"command{n}", LIMIT - 10, indent="    ") for n in range(3)
    )
    klass = "    class Local:\n" + _function("method", LIMIT + 5, indent="        ")
    source = "def register(app):\n" + inner + klass + "    return app\n"
    found = {m.name: m for m in measure(source)}
    assert found["register"].own_lines == 2  # its def line and its return
    assert found["register.<locals>.command0"].own_lines == LIMIT - 9
    assert [m.name for m in unexplained(list(found.values()))] == ["register.<locals>.Local.method"]


def test_methods_are_named_by_their_class() -> None:
    source = "class Flow:\n" + textwrap.indent(_function("run", LIMIT + 1), "    ")
    assert [m.name for m in unexplained(measure(source))] == ["Flow.run"]
