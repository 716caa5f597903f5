"""The package's structure as its imports show it: no circles, no borrowed private names.

Read from the source with ``ast``, so that a new module is walked as soon as it exists.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "consent"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The package module an import names (``consent.ledger.tree``), or None outside the package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(path: Path, *, top_level_only: bool) -> list[tuple[str, list[str]]]:
    """(module, names) for each ``from consent… import`` / ``import consent…`` in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("consent"):
            for alias in node.names:
                # "from consent.ledger import tree" imports the module consent.ledger.tree.
                sub = f"{node.module}.{alias.name}"
                found.append((sub, []) if sub in MODULES else (node.module, [alias.name]))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names if alias.name.startswith("consent"))
    return found


def graph() -> dict[str, set[str]]:
    """Module-level imports between the package's modules (imports inside functions run late and are left out)."""
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = {resolve(module) for module, _ in imports(path, top_level_only=True)}
        edges[name] = {target for target in targets if target is not None and target != name}
    return edges


def find_circle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (circle := visit(target)):
                return circle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (circle := visit(node)):
            return circle
    return None


def test_the_walk_sees_the_package() -> None:
    edges = graph()
    assert {"consent.log.recording", "consent.ledger.tree", "consent.embed.banner"} <= set(edges)
    assert "consent.timestamps" in edges["consent.ledger.canonical"]


def test_no_import_circle() -> None:
    assert find_circle(graph()) is None


def test_the_circle_finder_finds_one() -> None:
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_another_modules_private_names(name: str) -> None:
    borrowed = [
        f"{module}.{imported}"
        for module, names in imports(MODULES[name], top_level_only=False)
        for imported in names
        if imported.startswith("_") and resolve(module) != name
    ]
    assert borrowed == []


TESTS = Path(__file__).resolve().parent


def imported_names(path: Path) -> list[str]:
    """Every module a file imports, as written (``tests.support.live``, ``test_api``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def borrows_from_tests(name: str) -> bool:
    last = name.rpartition(".")[2]
    return last == "conftest" or last.startswith("test_")


@pytest.mark.parametrize("path", sorted(TESTS.rglob("*.py")), ids=lambda path: str(path.relative_to(TESTS)))
def test_no_test_file_imports_a_test_module_or_a_conftest(path: Path) -> None:
    """What tests share lives in tests/support/; test modules and conftests import only from there."""
    assert [name for name in imported_names(path) if borrows_from_tests(name)] == []


def test_the_test_import_check_sees_a_borrowing() -> None:
    assert borrows_from_tests("tests.test_api") and borrows_from_tests("tests.browser.conftest")
    assert not borrows_from_tests("tests.support.live") and not borrows_from_tests("consent.ledger.tree")
