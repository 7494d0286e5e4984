"""The roles' tasks that run on the controller never become root there.

A client's inventory sets ``ansible_become: true`` for its hosts. A task delegated
to the controller (``delegate_to: localhost``) inherits that variable, and a
variable beats the task's ``become: false`` keyword under Mitogen's strategy: the
task would then run through sudo on the controller. Every such task therefore
also sets ``ansible_become: false`` as a variable of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
CONTROLLER = {"localhost", "127.0.0.1"}


def _tasks(items: list[Any]) -> Iterator[dict[str, Any]]:
    """Given a task list, yield every task, those inside blocks included."""
    for item in items or []:
        if not isinstance(item, dict):
            continue
        yield item
        for section in ("block", "rescue", "always"):
            yield from _tasks(item.get(section) or [])


def _delegated_tasks() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(ROLES.glob("*/tasks/*.yml")) + sorted(ROLES.glob("*/handlers/*.yml")):
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            if task.get("delegate_to") in CONTROLLER or "local_action" in task:
                found.append((f"{path.relative_to(ROLES)}: {task.get('name')}", task))
    return found


def test_the_roles_delegate_some_tasks_to_the_controller() -> None:
    # The health probe of updates and the backup target's key lookup: if none were found,
    # the test below would check nothing.
    names = [name for name, _task in _delegated_tasks()]
    assert any(name.startswith("updates/") for name in names), names
    assert any(name.startswith("backup/") for name in names), names


@pytest.mark.parametrize("task", [pytest.param(task, id=name) for name, task in _delegated_tasks()])
def test_a_task_on_the_controller_sets_become_false_as_keyword_and_variable(
    task: dict[str, Any],
) -> None:
    assert task.get("become") is False
    assert (task.get("vars") or {}).get("ansible_become") is False
