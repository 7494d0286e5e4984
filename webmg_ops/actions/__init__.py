"""One module per action: which playbook it runs and what its run proves.

Each action module has ``PLAYBOOK`` (a file under ``playbooks/``) and
``make_outcome(result, preflight)`` which turns the play's result into
evidence, residual risks and next steps. Optionally, it has
``make_extra_vars(client, hosts, request)`` (the play's extra vars, from
the contract and policy; BadInput for a request the policy forbids) and
``plan_batches(client, hosts)`` (the batches in which hosts are changed,
as ``plan`` shows them) and ``before_play(settings, client, hosts, request)``
(what the action measures before the play; passed to ``make_outcome`` as a
third argument). An action that works on the controller alone (a restore
drill) has ``PLAYBOOK = None`` and ``run_on_controller(run: ControllerRun)
-> ControllerDone`` instead; no preflight of the client's hosts runs for
it. Actions print nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from webmg_ops.errors import BadInput

if TYPE_CHECKING:
    from webmg_ops.config.clients import Client
    from webmg_ops.runs.records import HostResult, RunRequest
    from webmg_ops.settings import Settings


def ungoverned_vars(request: RunRequest, governed: frozenset[str]) -> dict[str, Any]:
    """Given a request and the extra vars the contract and policy set, return a copy of
    the request's own extra vars.

    Raise BadInput naming any of ``governed`` the request tries to set.
    """
    requested = dict(request.extra_vars)
    refused = sorted(governed & set(requested))
    if refused:
        raise BadInput(
            f"{', '.join(refused)} come from the contract and policy; a run cannot set them"
        )
    return requested


@dataclass(frozen=True)
class ActionOutcome:
    """What an action's run proves, as it goes into ``run-finished``."""

    evidence: Mapping[str, Any] = field(default_factory=dict)
    residual_risks: tuple[Any, ...] = ()
    next_steps: tuple[str, ...] = ()
    summary: str = ""
    #: Host results the action knows better than the play (e.g. hosts it never started).
    hosts: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ControllerRun:
    """What a controller action (``PLAYBOOK = None``) is given to do its work."""

    settings: Settings
    client: Client
    hosts: tuple[str, ...]
    request: RunRequest
    run_id: str
    folder: Path
    cancel: Callable[[], bool]


@dataclass(frozen=True)
class ControllerDone:
    """What a controller action did: each host's result and the outcome's detail."""

    hosts: tuple[HostResult, ...]
    outcome: ActionOutcome


def _modules() -> dict[str, ModuleType]:
    from webmg_ops.actions import backup, check, diagnose, drill, harden, target, update

    return {
        "backup": backup,
        "check": check,
        "diagnose": diagnose,
        "drill": drill,
        "harden": harden,
        "target": target,
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
