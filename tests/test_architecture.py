"""The package's layering rules hold: checked by tools, not by a reviewer's eye.

- The import contracts of ``[tool.importlinter]`` in pyproject.toml (layers, who
  may import the lab and the outside packages, no cycles between sibling
  packages) are kept, one test per contract, as ``lint-imports`` reports them.
- Only the engine and the service write to the ledger: a call of a ledger's
  ``append``, ``append_many`` or ``correct`` anywhere else is refused.
- No two modules of webmg_ops import each other, directly or round a longer
  loop; function-level and type-checking imports count.
- ``subprocess`` is imported only in ``webmg_ops/process.py`` and the lab (the
  ``subprocess`` contract says so for lint-imports; this reads the source
  itself, so that a dynamic ``importlib.import_module("subprocess")`` is found too).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "webmg_ops"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

#: Where the ledger may be written to; the ledger's own store calls its methods on ``self``.
LEDGER_WRITERS = ("webmg_ops/engine/", "webmg_ops/service/", "webmg_ops/ledger/store.py")
#: The ledger's methods that write (webmg_ops/ledger/store.py).
LEDGER_WRITES = frozenset({"append", "append_many", "correct"})
#: Methods no other class of the package has: any call of one is a ledger write.
LEDGER_ONLY_WRITES = frozenset({"append_many"})

#: Where ``subprocess`` may be imported.
SUBPROCESS_ALLOWED = ("webmg_ops/process.py", "webmg_ops/lab/")


def contract_ids() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [contract["id"] for contract in config["tool"]["importlinter"]["contracts"]]


def checks_this_checkout() -> None:
    """Fail unless ``webmg_ops`` is imported from this checkout (the graphs are built from it)."""
    spec = importlib.util.find_spec("webmg_ops")
    assert spec is not None and spec.origin == str(PACKAGE / "__init__.py"), (
        f"webmg_ops is imported from {spec and spec.origin}, not from {PACKAGE}"
    )


def sources() -> Iterator[tuple[str, ast.Module]]:
    """Yield each module of the package: its path from the repository and its tree."""
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        yield relative, ast.parse(path.read_text(), filename=relative)


@pytest.mark.parametrize("contract", contract_ids())
def test_import_contract_is_kept(contract: str) -> None:
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} is missing: run `make setup`"
    # The graph is built from this checkout, whatever the environment installed.
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--contract", contract],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"contract {contract} is broken:\n{done.stdout}{done.stderr}"


def names_ledger(node: ast.expr) -> bool:
    """Given a call's receiver, tell whether it names a ledger.

    ``ledger``, ``self.ledger``, ``run._ledger`` and ``open_ledger(...)`` do; a list does not.
    """
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
    elif isinstance(node, ast.Call):
        return names_ledger(node.func) or (
            isinstance(node.func, ast.Name) and node.func.id == "open_ledger"
        )
    else:
        return False
    return name.lstrip("_").lower() == "ledger" or name.lower().endswith("_ledger")


def ledger_writes(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Yield the line and text of each call that writes to a ledger in ``tree``."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, receiver = node.func.attr, node.func.value
        if method in LEDGER_ONLY_WRITES or (method in LEDGER_WRITES and names_ledger(receiver)):
            yield node.lineno, f"{ast.unparse(receiver)}.{method}(...)"


def test_only_the_engine_and_the_service_write_to_the_ledger() -> None:
    found = [
        f"{path}:{line}: {call}"
        for path, tree in sources()
        if not path.startswith(LEDGER_WRITERS)
        for line, call in ledger_writes(tree)
    ]
    assert not found, "ledger writes outside the engine and the service:\n" + "\n".join(found)


def test_the_ledger_write_rule_tells_a_ledger_from_a_list() -> None:
    tree = ast.parse(
        "lines.append(1)\n"
        "ledger.append(NOTE, client, {})\n"
        "self.ledger.correct(entry, {}, reason='r')\n"
        "store.append_many(drafts)\n"
        "open_ledger(url).append(NOTE, client, {})\n"
        "found.append(ledger)\n"
    )
    assert [line for line, _ in ledger_writes(tree)] == [2, 3, 4, 5]


def strongly_connected(imports: dict[str, set[str]]) -> list[list[str]]:
    """Return the groups of modules that import each other round a loop (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(imports):
        if root in index:
            continue
        work = [(root, iter(sorted(imports[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, following = work[-1]
            imported = next(following, None)
            if imported is not None:
                if imported not in index:
                    index[imported] = low[imported] = len(index)
                    stack.append(imported)
                    on_stack.add(imported)
                    work.append((imported, iter(sorted(imports[imported]))))
                elif imported in on_stack:
                    low[module] = min(low[module], index[imported])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1 or module in imports[module]:
                    groups.append(sorted(group))
    return groups


def shortest_cycle(imports: dict[str, set[str]], group: list[str]) -> list[str]:
    """Return a shortest import loop from the group's first module back to it."""
    start, members = group[0], set(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for imported in sorted(imports[module] & members):
                if imported == start:
                    chain = [module]
                    while chain[-1] != start:
                        chain.append(came_from[chain[-1]])
                    return [*reversed(chain), start]
                if imported not in came_from:
                    came_from[imported] = module
                    following.append(imported)
        frontier = following
    raise AssertionError(f"no loop in {group}")


def direct_imports(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    """Return what each module of the graph imports of the graph's modules."""
    return {
        module: graph.find_modules_directly_imported_by(module) & graph.modules
        for module in graph.modules
    }


def module_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Return one import loop for each group of modules that import each other."""
    imports = direct_imports(graph)
    return sorted(shortest_cycle(imports, group) for group in strongly_connected(imports))


def test_the_cycle_finder_finds_every_loop() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "d")]:
        graph.add_import(importer=importer, imported=imported)
    graph.add_module("e")
    assert module_cycles(graph) == [["a", "b", "c", "a"], ["d", "d"]]


def test_no_module_import_cycle() -> None:
    checks_this_checkout()
    graph = grimp.build_graph("webmg_ops", cache_dir=None)
    imports = direct_imports(graph)
    found = [
        f"{' -> '.join(shortest_cycle(imports, group))}  (the loop's group: {', '.join(group)})"
        for group in sorted(strongly_connected(imports))
    ]
    assert not found, "import cycles:\n" + "\n".join(found)


def test_subprocess_only_in_the_process_module_and_the_lab() -> None:
    found = []
    for path, tree in sources():
        if path.startswith(SUBPROCESS_ALLOWED):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Constant):
                names = [node.value] if node.value == "subprocess" else []
            else:
                continue
            if any(name == "subprocess" or name.startswith("subprocess.") for name in names):
                found.append(f"{path}:{node.lineno}")
    assert not found, "subprocess outside webmg_ops/process.py and the lab:\n" + "\n".join(found)
