"""The run engine: contract + policy -> plan -> governance -> preflight -> Ansible -> ledger.

Every run is opened in the ledger (``run-started``) before anything touches
a host and closed (``run-finished``) however it ends; a refused run is one
``run-refused`` entry. A run whose process died is found by the next
command and closed as ``interrupted`` (:func:`reconcile_runs`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from webmg_ops.actions.base import Action, ActionOutcome, RunContext
from webmg_ops.actions.registry import action_named
from webmg_ops.ansible.connection import read_inventory_variables
from webmg_ops.ansible.inventory import find_inventory_file
from webmg_ops.ansible.runner import Job, Progress, ansible_cfg_for, run_playbook
from webmg_ops.ansible.strategy import usable_strategy
from webmg_ops.ansible.vault import Vault, client_secrets
from webmg_ops.config.clients import Client, load_client
from webmg_ops.engine.cancel import CancelFlag
from webmg_ops.engine.deploy import deployed_entry, with_change
from webmg_ops.engine.governance import Clearance, PolicyRefusal, clear_request, rules_for
from webmg_ops.engine.lock import LockHolder, acquire_client_lock
from webmg_ops.engine.offsite_step import OffsiteStep, checkpoint_after_run, offsite_after_run
from webmg_ops.engine.plan import playbook_of, select_hosts, with_action_vars, with_incident
from webmg_ops.engine.reconcile import reconcile_runs, run_dir, write_progress
from webmg_ops.engine.record import (
    Played,
    finished_payload,
    preflight_status,
    record_refusal,
    started_payload,
)
from webmg_ops.errors import EnvironmentProblem, Refused, WebmgError
from webmg_ops.ledger import Entry, Ledger, NewEntry, open_ledger, require_operator
from webmg_ops.offsite.record import UNPUBLISHED
from webmg_ops.remote.preflight import HostPreflight, run_preflight
from webmg_ops.reports.runlog import render_run_log
from webmg_ops.runs.records import (
    LOCK_TAKEOVER,
    RUN_FINISHED,
    RUN_STARTED,
    HostResult,
    HostStatus,
    Outcome,
    Refusal,
    RunRequest,
    new_run_id,
)
from webmg_ops.secrets import SecretSet, collect_secrets
from webmg_ops.settings import Settings


@dataclass(frozen=True)
class RunReport:
    """How a run ended, with the ledger entries that prove it."""

    run_id: str
    client: Client
    outcome: Outcome
    started: Entry
    finished: Entry
    hosts: tuple[HostResult, ...]
    preflight: Mapping[str, HostPreflight]
    outcome_detail: ActionOutcome
    run_log: Path | None
    #: The offsite copy the client's policy asked for after the run (None: none asked).
    offsite: OffsiteStep | None = None
    #: The ledger checkpoint published offsite after the run (None: no offsite target).
    checkpoint: OffsiteStep | None = None
    #: The ``change-deployed`` entry of a deploy that succeeded (None: any other run).
    deployed: Entry | None = None


def _secrets_for(
    client: Client,
    request: RunRequest,
    vault: Vault,
    variables: Mapping[str, Mapping[str, Any]],
) -> SecretSet:
    """Every value this run must never write: the client's (vault values, secret-named
    inventory variables, secret-looking environment variables, the vault password) and
    its secret-named extra vars.
    """
    return client_secrets(client.folder, vault, variables).union(
        collect_secrets(dict(request.extra_vars))
    )


def execute_run(
    settings: Settings,
    request: RunRequest,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_preflight: Callable[[Mapping[str, HostPreflight]], None] | None = None,
    cancel: CancelFlag | None = None,
) -> RunReport:
    """Given the settings and a request, run the action and return its report.

    The run log is written under ``var/runs/<run-id>/``. Raise BadInput,
    before anything is written, for invalid input or no operator to record
    (:func:`~webmg_ops.ledger.require_operator`); PolicyRefusal (exit 3,
    recorded as ``run-refused``) for a window, freeze, approval or lock
    refusal; EnvironmentProblem when a tool is missing. A run that starts
    always ends with a ``run-finished`` entry, even when an exception ends it.
    """
    # A run's record says who ran it: without an operator, nothing is written.
    require_operator()
    client = load_client(settings.inventories, request.client)
    rules_for(request.action)
    action = action_named(request.action)
    playbook = playbook_of(action)
    if playbook is not None and not playbook.is_file():
        raise EnvironmentProblem(f"playbook {playbook} is missing")
    if playbook is not None:
        usable_strategy(ansible_cfg_for(client.folder))
    hosts = select_hosts(client, request.limit)
    request = with_incident(settings, client, request)
    with open_ledger(settings.ledger_url, create=False, missing_ok=True) as reader:
        # A deploy reads what its change deploys before anything is written.
        request = with_change(reader, client, request)
    # The vault password file is read here, once, and the vault decrypted once.
    vault = Vault(request.vault_password_file)
    request = with_action_vars(action, client, hosts, request, vault)
    inventory = read_inventory_variables(client.folder, vault)
    secrets = _secrets_for(client, request, vault, inventory.variables)
    cancel = cancel or CancelFlag()
    reconcile_runs(settings)

    with open_ledger(settings.ledger_url) as ledger:
        now = datetime.now(UTC)
        try:
            clearance = clear_request(client, request, now, ledger)
        except PolicyRefusal as refusal:
            record_refusal(settings, ledger, client, request, refusal, secrets, now)
            raise
        run_id = new_run_id(client.name, request.action, now)
        holder = LockHolder(run_id=run_id, pid=os.getpid(), started=now.isoformat())
        try:
            lock = acquire_client_lock(settings.var_dir, client.name, holder)
        except Refused as locked:
            lock_refusal = PolicyRefusal(Refusal.LOCK, locked.message)
            record_refusal(settings, ledger, client, request, lock_refusal, secrets, now)
            raise lock_refusal from None
        try:
            if lock.stale is not None:
                ledger.append(
                    LOCK_TAKEOVER,
                    client.name,
                    {
                        "previous_run_id": lock.stale.run_id,
                        "previous_pid": lock.stale.pid,
                        "previous_started": lock.stale.started,
                        "run_id": run_id,
                    },
                )
            context = RunContext(
                settings=settings,
                client=client,
                request=request,
                vault=vault,
                history=ledger,
                hosts=hosts,
                run_id=run_id,
                folder=run_dir(settings, run_id),
                cancel=cancel,
            )
            run = _Run(context, ledger, action, playbook, secrets, inventory.connections)
            return _run_locked(run, clearance, on_progress, on_preflight)
        finally:
            lock.release()


@dataclass(frozen=True)
class _Run:
    """What the engine holds for a run under way: the action's context and the engine's own
    means (the ledger it appends to, the action, its playbook, the secrets, connections)."""

    context: RunContext
    ledger: Ledger
    action: Action
    playbook: Path | None
    secrets: SecretSet
    connections: Mapping[str, Any]


def _run_locked(
    run: _Run,
    clearance: Clearance,
    on_progress: Callable[[Progress], None] | None,
    on_preflight: Callable[[Mapping[str, HostPreflight]], None] | None,
) -> RunReport:
    """Open the run in the ledger, do its work, close it, then the steps after a run."""
    context = run.context
    context.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = run.ledger.append(
        RUN_STARTED,
        context.client.name,
        started_payload(context, run.playbook, clearance, run.secrets),
    )
    clock = time.monotonic()
    played = _play(run, on_progress, on_preflight)
    payload = finished_payload(context, started, time.monotonic() - clock, played, run.secrets)
    drafts = [NewEntry(RUN_FINISHED, context.client.name, payload)]
    try:
        deployed = deployed_entry(run.ledger, context.client, context.request, payload)
    except WebmgError:
        # Never at the cost of the run-finished: the run's evidence still names the versions.
        deployed = None
    if deployed is not None:
        # In the run-finished's transaction: a change is deployed exactly when its run says so.
        drafts.append(deployed)
    finished, *rest = run.ledger.append_many(drafts)
    log = render_run_log(
        started, finished, context.client.contract, context.settings.var_dir, secrets=run.secrets
    ).markdown
    if played.stopped_by is not None:
        raise played.stopped_by
    outcome = Outcome(finished.payload["outcome"])
    offsite = (
        _offsite(run, played.hosts)
        if outcome is Outcome.SUCCEEDED and not context.request.check
        else None
    )
    # Failed runs too: a rewrite of any recorded run must show against what was published.
    checkpoint = None if context.request.check else _checkpoint(run)
    return RunReport(
        run_id=context.run_id,
        client=context.client,
        outcome=outcome,
        started=started,
        finished=finished,
        hosts=played.hosts,
        preflight=played.preflight,
        outcome_detail=played.outcome_detail,
        run_log=log,
        offsite=offsite,
        checkpoint=checkpoint,
        deployed=rest[0] if rest else None,
    )


def _play(
    run: _Run,
    on_progress: Callable[[Progress], None] | None,
    on_preflight: Callable[[Mapping[str, HostPreflight]], None] | None,
) -> Played:
    """Do the run's work (the controller's, or preflight and the play); return what it left.

    Whatever ends the work is caught and kept in ``stopped_by``: the run is
    closed in the ledger before the error goes on.
    """
    context, action = run.context, run.action
    played = Played()
    excluded: dict[str, HostPreflight] = {}
    try:
        if action.run_on_controller is not None:
            # A controller action (a restore drill) needs none of the client's hosts up:
            # it works from the backups, which is what proves them.
            done = action.run_on_controller(context)
            played.hosts, played.outcome_detail = done.hosts, done.outcome
            played.controller_ok = True
        elif run.playbook is not None:
            played.preflight = run_preflight(run.connections, context.hosts)
            if on_preflight is not None:
                on_preflight(played.preflight)
            excluded = {h: check for h, check in played.preflight.items() if not check.ready}
            ready = tuple(h for h in context.hosts if played.preflight[h].ready)
            partial = not excluded or bool(context.client.policy.get("runs.partial_hosts"))
            if ready and partial and not context.cancel():
                _play_on(run, ready, played, on_progress)
        _settle_hosts(context, played, excluded)
    except BaseException as error:
        played.stopped_by = error
        played.error_note = f"{type(error).__name__}: {error}"
        if not played.hosts:
            played.hosts = tuple(
                HostResult(host=host, status=HostStatus.UNKNOWN) for host in context.hosts
            )
        if isinstance(error, KeyboardInterrupt) and isinstance(context.cancel, CancelFlag):
            context.cancel.set()
    return played


def _play_on(
    run: _Run,
    ready: tuple[str, ...],
    played: Played,
    on_progress: Callable[[Progress], None] | None,
) -> None:
    """Run the action's playbook on the hosts ready for it, with its before-play measure."""
    context, action = run.context, run.action
    assert run.playbook is not None
    request, client, settings = context.request, context.client, context.settings
    job = Job(
        run_id=context.run_id,
        playbook=run.playbook,
        inventory=find_inventory_file(client.folder),
        private_dir=context.folder / "ansible",
        limit=",".join(ready),
        check=request.check,
        vault_password_file=request.vault_password_file,
        extra_vars=request.extra_vars,
        fact_cache=settings.var_dir / "facts" / client.name,
        ansible_cfg=ansible_cfg_for(client.folder),
        verbosity=request.verbosity,
    )
    # What an action measures before the play (e.g. compliance), handed to its outcome.
    before = action.before_play(context, ready) if action.before_play is not None else None
    played.result = run_playbook(
        job, ready, run.secrets, on_progress=on_progress, should_cancel=context.cancel
    )
    played.outcome_detail = action.make_outcome(played.result, played.preflight, before)


def _settle_hosts(
    context: RunContext, played: Played, excluded: Mapping[str, HostPreflight]
) -> None:
    """Give every host of the run its result (played, excluded, or left out) and keep them
    in the run's progress file, for a run closed after its process died."""
    known = {host.host: host for host in played.result.hosts} if played.result else {}
    known.update({host.host: host for host in played.outcome_detail.hosts})
    played.hosts = played.hosts or tuple(
        known.get(host)
        or HostResult(
            host=host,
            status=preflight_status(played.preflight.get(host)),
            note=(
                excluded[host].message
                if host in excluded
                else "not run: other hosts failed preflight and the policy runs all or none"
            ),
        )
        for host in context.hosts
    )
    write_progress(context.folder, played.hosts)


def _offsite(run: _Run, hosts: tuple[HostResult, ...]) -> OffsiteStep | None:
    """Do the offsite copy the policy asks for, of the hosts the run carried out (HOSTS:
    the run's results); a failure is recorded, never raised."""
    context = run.context
    try:
        return offsite_after_run(
            context.settings,
            context.client,
            context.request.action,
            context.run_id,
            context.folder,
            context.vault,
            record=run.ledger.append_many,
            hosts=tuple(result.host for result in hosts if result.status.carried_out),
        )
    except WebmgError as error:
        # Not even a pending item could be made (the repository cannot be opened):
        # the next successful backup of these hosts copies them again.
        message = run.secrets.mask_text(error.message)
        run.ledger.append(
            UNPUBLISHED,
            context.client.name,
            {"run_id": context.run_id, "offsite": "failed", "reason": message},
        )
        return OffsiteStep("unknown", False, None, message)


def _checkpoint(run: _Run) -> OffsiteStep | None:
    """Publish the ledger's head offsite after the run; a failure is recorded, never raised."""
    context = run.context
    try:
        return checkpoint_after_run(
            context.settings,
            context.client,
            context.run_id,
            context.vault,
            history=run.ledger,
            record=run.ledger.append_many,
        )
    except WebmgError as error:
        message = run.secrets.mask_text(error.message)
        run.ledger.append(
            UNPUBLISHED,
            context.client.name,
            {"run_id": context.run_id, "offsite": "checkpoint", "reason": message},
        )
        return OffsiteStep("checkpoint", False, None, message)
