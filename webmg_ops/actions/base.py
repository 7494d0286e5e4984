"""What every action shares with the engine: the typed Action, a run's context, outcomes.

The engine calls an action only through :class:`Action`, so every call is
checked by the type checker; the registry (:mod:`webmg_ops.actions.registry`)
imports the actions, and no action imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from webmg_ops.ansible.runner import PlaybookResult
from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import Client
from webmg_ops.errors import BadInput
from webmg_ops.ledger import LedgerReader
from webmg_ops.remote.preflight import HostPreflight
from webmg_ops.runs.records import HostResult, RunRequest
from webmg_ops.settings import Settings

#: Hosts in the order they are changed, batch by batch.
Batches = tuple[tuple[str, ...], ...]


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
class RunContext:
    """One run, as the engine hands it to an action: built once, never changed.

    ``request`` carries the extra vars the action derived; ``vault`` is the
    command's vault (read once, decrypted once); ``history`` reads the
    ledger (an action never appends: it returns what the engine records);
    ``folder`` is the run's private folder; ``cancel`` says whether the run
    was asked to stop.
    """

    settings: Settings
    client: Client
    request: RunRequest
    vault: Vault
    history: LedgerReader
    hosts: tuple[str, ...]
    run_id: str
    folder: Path
    cancel: Callable[[], bool]


@dataclass(frozen=True)
class ControllerDone:
    """What a controller action did: each host's result and the outcome's detail."""

    hosts: tuple[HostResult, ...]
    outcome: ActionOutcome


class ExtraVarsMaker(Protocol):
    """Return the play's extra vars from contract, policy and request (BadInput if refused)."""

    def __call__(
        self,
        client: Client,
        hosts: Sequence[str],
        request: RunRequest,
        *,
        vault: Vault | None = None,
    ) -> dict[str, Any]: ...


class OutcomeMaker(Protocol):
    """Turn the play's result, preflight and what was measured before into an outcome."""

    def __call__(
        self, result: PlaybookResult, preflight: Mapping[str, HostPreflight], before: Any, /
    ) -> ActionOutcome: ...


def _no_outcome(
    result: PlaybookResult, preflight: Mapping[str, HostPreflight], before: Any, /
) -> ActionOutcome:
    return ActionOutcome()


@dataclass(frozen=True)
class Action:
    """An action as the engine calls it: its playbook and its hooks, each typed.

    ``playbook`` is a file under ``playbooks/`` (None: the action works on
    the controller, through ``run_on_controller``). Hooks left None are not
    called: no extra vars of its own, every host in one batch, nothing
    measured before the play.
    """

    name: str
    playbook: str | None
    make_outcome: OutcomeMaker = _no_outcome
    make_extra_vars: ExtraVarsMaker | None = None
    plan_batches: Callable[[Client, Sequence[str]], Batches] | None = None
    before_play: Callable[[RunContext, tuple[str, ...]], Any] | None = None
    run_on_controller: Callable[[RunContext], ControllerDone] | None = None
