"""One module per action: which playbook it runs and what its run proves.

Each action module has ``PLAYBOOK`` (a file under ``playbooks/``) and
``make_outcome(result, preflight)`` which turns the play's result into
evidence, residual risks and next steps. Actions print nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from webmg_ops.errors import BadInput


@dataclass(frozen=True)
class ActionOutcome:
    """What an action's run proves, as it goes into ``run-finished``."""

    evidence: Mapping[str, Any] = field(default_factory=dict)
    residual_risks: tuple[Any, ...] = ()
    next_steps: tuple[str, ...] = ()
    summary: str = ""


def _modules() -> dict[str, ModuleType]:
    from webmg_ops.actions import check

    return {"check": check}


def action_module(action: str) -> ModuleType:
    """Given an action name, return its module. Raise BadInput if the engine cannot run it yet."""
    modules = _modules()
    if action not in modules:
        raise BadInput(
            f"action {action!r} cannot be run yet (available: {', '.join(sorted(modules))})"
        )
    return modules[action]


OutcomeMaker = Callable[..., ActionOutcome]
