"""Packages that declare a public surface (``__all__`` in their ``__init__.py``) are used only through it.

Across layers (ARCHITECTURE.md "Import directions"), a module imports a root that declares ``__all__`` by
the root's own name and only the names that ``__all__`` lists: ``from connectors.runtime import Connector``,
never ``from connectors.runtime.client import Connector``. Inside one layer, modules may import each
other's submodules freely. The nearest enclosing root wins, so ``schemas.canonical`` (which declares its
own ``__all__``) is a root of its own inside ``schemas``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAYERS = ["ponte", "schemas", "connectors", "mappings", "pipelines", "orchestration"]

# the roots this rule is meant for: each must keep declaring its public surface
EXPECTED_ROOTS = [
    "connectors",
    "connectors.runtime",
    "connectors.spec",
    "mappings",
    "pipelines.store",
    "ponte",
    "schemas",
    "schemas.canonical",
    "schemas.systems",
]


def _declared_all(init: Path) -> list[str] | None:
    """The names a package's ``__init__.py`` lists in ``__all__``, or None when it declares none."""
    tree = ast.parse(init.read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
            return [str(v) for v in ast.literal_eval(node.value)]
    return None


def _roots(root: Path) -> dict[str, set[str]]:
    """Every package under the layers whose ``__init__.py`` declares ``__all__`` -> the names it lists."""
    found = {}
    for layer in LAYERS:
        for init in (root / layer).rglob("__init__.py"):
            names = _declared_all(init)
            if names is not None:
                found[".".join(init.parent.relative_to(root).parts)] = set(names)
    return found


def _imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """Per absolute import statement: its line, the module it names and the names it takes from it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield node.lineno, node.module, [a.name for a in node.names if a.name != "*"]


def _violations(root: Path = REPO) -> list[str]:
    roots = _roots(root)
    found = []
    for layer in LAYERS:
        for path in sorted((root / layer).rglob("*.py")):
            rel = path.relative_to(root)
            for line, module, names in _imports(path):
                if module.split(".")[0] == layer or module.split(".")[0] not in LAYERS:
                    continue  # same layer, or not a project package
                owner = max((r for r in roots if module == r or module.startswith(f"{r}.")), key=len, default=None)
                if owner is None:
                    continue
                where = f"{rel}:{line}"
                if module != owner:
                    shown = ", ".join(names) if names else "..."
                    found.append(
                        f"{where} imports {module}, a submodule of {owner} (which declares __all__): "
                        f"write `from {owner} import {shown}` and list the names in {owner}.__all__"
                    )
                    continue
                for name in names:
                    if name not in roots[owner]:
                        found.append(
                            f"{where} imports {name} from {owner}, which {owner}.__all__ does not list: "
                            f"re-export it in {owner.replace('.', '/')}/__init__.py and add it to __all__"
                        )
    return found


def test_the_expected_roots_declare_a_public_surface() -> None:
    roots = _roots(REPO)
    assert [r for r in EXPECTED_ROOTS if r not in roots] == []


def test_layers_import_each_other_only_through_public_surfaces() -> None:
    found = _violations()
    assert found == [], "\n".join(found)


def test_the_checker_catches_a_violation(tmp_path: Path) -> None:
    files = {
        "connectors/runtime/__init__.py": '__all__ = ["Connector"]\n',
        "connectors/runtime/client.py": "",
        "connectors/runtime/auth.py": "",
        "connectors/runtime/probe.py": "from connectors.runtime.auth import dig\n",  # same layer: fine
        "schemas/__init__.py": '__all__ = ["TenantConfig"]\n',
        "schemas/canonical/__init__.py": '__all__ = ["Person"]\n',
        "pipelines/probe.py": (
            "from connectors.runtime.client import Connector\n"
            "from connectors.runtime import Connector, dig\n"
            "import connectors.runtime.auth\n"
            "from schemas.canonical import Person\n"  # the nearer root: fine
            "from schemas import TenantConfig\n"
        ),
        "orchestration/probe.py": "def f():\n    from schemas.canonical.people import Person\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = _violations(tmp_path)
    assert len(found) == 4, found
    pipelines = [line for line in found if line.startswith("pipelines/")]
    assert pipelines[0].startswith("pipelines/probe.py:1 imports connectors.runtime.client, a submodule of connectors.runtime")
    assert pipelines[1].startswith("pipelines/probe.py:2 imports dig from connectors.runtime, which connectors.runtime.__all__")
    assert pipelines[2].startswith("pipelines/probe.py:3 imports connectors.runtime.auth, a submodule of connectors.runtime")
    (nested,) = [line for line in found if line.startswith("orchestration/")]
    assert nested.startswith("orchestration/probe.py:2 imports schemas.canonical.people, a submodule of schemas.canonical")
    assert "`from schemas.canonical import Person`" in nested
