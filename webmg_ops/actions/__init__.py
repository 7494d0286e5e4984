"""One module per action: which playbook it runs and what its run proves.

Each action module has ``PLAYBOOK`` (a file under ``playbooks/``) and
``make_outcome(result, preflight)`` which turns the play's result into
evidence, residual risks and next steps. Optionally, it has
``make_extra_vars(client, hosts, request)`` (the play's extra vars, from
the contract and policy; BadInput for a request the policy forbids) and
``plan_batches(client, hosts)`` (the batches in which hosts are changed,
as ``plan`` shows them) and ``before_play(settings, client, hosts, request)``
(what the action measures before the play; passed to ``make_outcome`` as a
third argument). Actions print nothing.
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
    #: Host results the action knows better than the play (e.g. hosts it never started).
    hosts: tuple[Any, ...] = ()


def _modules() -> dict[str, ModuleType]:
    from webmg_ops.actions import backup, check, diagnose, harden, update

    return {
        "backup": backup,
        "check": check,
        "diagnose": diagnose,
        "harden": harden,
        "update": update,
    }


def action_module(action: str) -> ModuleType:
    """Given an action name, return its module. Raise BadInput if the engine cannot run it yet."""
    modules = _modules()
    if action not in modules:
        raise BadInput(
            f"action {action!r} cannot be run yet (available: {', '.join(sorted(modules))})"
        )
    return modules[action]


OutcomeMaker = Callable[..., ActionOutcome]
