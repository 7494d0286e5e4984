"""The actions the engine can run, by name.

The registry imports every action; no action imports it, so the shared
types in :mod:`webmg_ops.actions.base` never sit in a cycle.
"""

from __future__ import annotations

from webmg_ops.actions import backup, check, deploy, diagnose, drill, harden, target, update
from webmg_ops.actions.base import Action
from webmg_ops.errors import BadInput


def _actions() -> dict[str, Action]:
    return {
        action.name: action
        for action in (
            backup.ACTION,
            check.ACTION,
            deploy.ACTION,
            diagnose.ACTION,
            drill.ACTION,
            harden.ACTION,
            target.ACTION,
            update.ACTION,
        )
    }


def action_named(name: str) -> Action:
    """Given an action name, return the action. Raise BadInput if the engine cannot run it yet."""
    actions = _actions()
    if name not in actions:
        raise BadInput(
            f"action {name!r} cannot be run yet (available: {', '.join(sorted(actions))})"
        )
    return actions[name]
