"""The actions the engine can run, by name.

Each action lives in its own module, imported when the action is named: a command
that plans or runs one action does not load the others (and the libraries behind
them: the hardening checks, the scoping diagnostic, the restore tools). No action
imports the registry, so the shared types in :mod:`webmg_ops.actions.base` never sit
in a cycle.
"""

from __future__ import annotations

import importlib

from webmg_ops.actions.base import Action
from webmg_ops.errors import BadInput

#: Each action's name and the module whose ``ACTION`` it is.
ACTION_MODULES: dict[str, str] = {
    name: f"webmg_ops.actions.{name}"
    for name in ("backup", "check", "deploy", "diagnose", "drill", "harden", "target", "update")
}


def _action(name: str) -> Action:
    """Given a name of :data:`ACTION_MODULES`, import its module and return its action.

    Raise TypeError if the module's ``ACTION`` is no action of that name.
    """
    action = getattr(importlib.import_module(ACTION_MODULES[name]), "ACTION", None)
    if not isinstance(action, Action) or action.name != name:
        raise TypeError(f"{ACTION_MODULES[name]}.ACTION is not the action {name!r}")
    return action


def _actions() -> dict[str, Action]:
    return {name: _action(name) for name in ACTION_MODULES}


def action_named(name: str) -> Action:
    """Given an action name, return the action. Raise BadInput if the engine cannot run it yet."""
    if name not in ACTION_MODULES:
        raise BadInput(
            f"action {name!r} cannot be run yet (available: {', '.join(sorted(ACTION_MODULES))})"
        )
    return _action(name)
