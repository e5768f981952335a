"""The layers, as a contract: the `hookline` CLI on top; gateway, triggers and worker beside one
another, none importing another; the shared runtime (`hookline`'s other modules) under them;
`schemas` at the bottom. Drawn in docs/architecture.md.

Every import counts, also those inside functions (the CLI imports its components lazily)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hookline", "gateway", "triggers", "worker", "schemas")
COMPONENTS = ("gateway", "triggers", "worker")


def layer(module: str) -> str:
    """The layer of a module of ours: cli, gateway, triggers, worker, runtime or schemas."""
    top = module.split(".")[0]
    # `python -m gateway` and its siblings are entry points: the CLI's, named after components.
    if module == "hookline.cli" or module.startswith("hookline.cli.") or module.endswith(".__main__"):
        return "cli"
    return "runtime" if top == "hookline" else top


#: What each layer may import, besides itself.
ALLOWED = {
    "cli": {"gateway", "triggers", "worker", "runtime", "schemas"},
    "gateway": {"runtime", "schemas"},
    "triggers": {"runtime", "schemas"},
    "worker": {"runtime", "schemas"},
    "runtime": {"schemas"},
    "schemas": set(),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of one of our packages in `path`."""
    return imports_in(path.read_text("utf-8"), module_name(path), is_package=path.name == "__init__.py")


def imports_in(
    code: str, module: str, *, is_package: bool = False, roots: tuple[str, ...] = PACKAGES
) -> list[tuple[int, str]]:
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return [(line, m) for line, m in found if m.split(".")[0] in roots]


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_down_the_layers_only(path: Path) -> None:
    own = layer(module_name(path))
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {target} ({layer(target)})"
        for line, target in imports(path)
        if layer(target) != own and layer(target) not in ALLOWED[own]
    ]
    assert wrong == [], f"{own} may import only {sorted(ALLOWED[own]) or 'nothing of ours'}"


def test_the_contract_sees_imports_inside_functions_and_relative_ones() -> None:
    # The check itself can fail: a lazy import of a sibling component, a relative import.
    assert imports_in("def f():\n    from triggers.app import serve\n", "gateway.x") == [(2, "triggers.app")]
    assert imports_in("from ..errors import E\n", "gateway.api.y") == [(1, "gateway.errors")]
    assert imports_in("from . import models\n", "gateway.api", is_package=True) == [(1, "gateway.api")]
    assert layer("worker.app") == "worker" and "worker" not in ALLOWED["gateway"]


def test_no_unit_test_imports_from_the_integration_tests() -> None:
    # `pytest -m "not integration"` is the tier without Kafka and Temporal: nothing of that tier
    # may lean on the other.
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in sorted((ROOT / "tests" / "unit").rglob("*.py"))
        for line, target in imports_in(path.read_text("utf-8"), "tests.unit.x", roots=("tests",))
        if target.startswith(("tests.integration", "tests.drill"))
    ]
    assert wrong == []
