"""The layout's rules, read off the code's own imports: dependencies point down, and no module cycles.

config → tracker → cases → core. Within the tracker, the exchange of lists, replies and flags raises
domain events and never reaches for the partners' webhook code or the Celery tasks; receivers and
tasks sit above the services. Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "core", "cases", "tracker")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = project_modules()


def imports_of(module: str) -> set[str]:
    """The project modules `module` imports (a name imported from a package counts as its submodule
    when there is one, else as the package)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{module}: the project imports by absolute names"
            base = node.module or ""
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def layer(module: str) -> int:
    return {"core": 0, "cases": 1, "tracker": 2, "config": 3}[module.split(".")[0]]


def test_dependencies_point_down_from_config_to_tracker_to_cases_to_core():
    upward = sorted((module, used) for module, uses in GRAPH.items() for used in uses
                    if layer(used) > layer(module))
    assert upward == []


@pytest.mark.parametrize("module", ["tracker.services.exchange", "tracker.services.flags",
                                    "tracker.services.imports", "tracker.events"])
def test_the_exchange_raises_events_and_knows_nothing_of_webhooks_or_tasks(module):
    reached: set[str] = set()
    todo = [module]
    while todo:
        for used in GRAPH[todo.pop()] - reached:
            reached.add(used)
            todo.append(used)
    assert not reached & {"tracker.services.webhooks", "tracker.tasks", "tracker.receivers"}, sorted(reached)


def test_reads_of_a_childs_record_are_logged_by_the_cases_app_for_every_door():
    callers = {module for module, uses in GRAPH.items() if "cases.services" in uses and module.startswith(
        ("tracker.admin.exports", "tracker.api.views", "cases.admin"))}
    assert callers == {"tracker.admin.exports", "tracker.api.views", "cases.admin"}
    assert not any("tracker.services.partners" in GRAPH[module] for module in callers)


def test_no_module_imports_itself_through_others():
    # Tarjan's strongly connected components: any component of more than one module is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for used in GRAPH[module]:
            if used not in index:
                visit(used)
                low[module] = min(low[module], low[used])
            elif used in on_stack:
                low[module] = min(low[module], index[used])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == []
