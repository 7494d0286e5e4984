"""The run engine: contract + policy -> plan -> governance -> preflight -> Ansible -> ledger.

Every run is opened in the ledger (``run-started``) before anything touches
a host and closed (``run-finished``) however it ends; a refused run is one
``run-refused`` entry. A run whose process died is found by the next
command and closed as ``interrupted`` (:func:`reconcile_runs`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from webmg_ops import __version__, process
from webmg_ops.actions.base import Action, ActionOutcome, RunContext
from webmg_ops.actions.registry import action_named
from webmg_ops.ansible.connection import read_inventory_variables
from webmg_ops.ansible.inventory import find_inventory_file, hosts_matching
from webmg_ops.ansible.runner import (
    PLAYBOOKS,
    Job,
    PlaybookResult,
    Progress,
    ansible_cfg_for,
    end_run_processes,
    run_playbook,
    write_private,
)
from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import Client, load_client
from webmg_ops.config.policy import describe_value
from webmg_ops.engine.governance import Clearance, PolicyRefusal, check_governance, rules_for
from webmg_ops.engine.lock import LockHolder, acquire_client_lock, process_alive
from webmg_ops.engine.offsite_step import OffsiteStep, checkpoint_after_run, offsite_after_run
from webmg_ops.errors import BadInput, EnvironmentProblem, Refused, WebmgError
from webmg_ops.ledger import Entry, Ledger, open_ledger
from webmg_ops.offsite.record import UNPUBLISHED
from webmg_ops.remote.preflight import HostPreflight, run_preflight
from webmg_ops.reports.runlog import render_refusal_log, render_run_log
from webmg_ops.runs.records import (
    LOCK_TAKEOVER,
    RUN_FINISHED,
    RUN_REFUSED,
    RUN_STARTED,
    HostResult,
    HostStatus,
    Outcome,
    Refusal,
    ResidualRisk,
    RunFinished,
    RunRefused,
    RunRequest,
    RunStarted,
    new_run_id,
    to_payload,
)
from webmg_ops.secrets import SecretSet, collect_secrets, secrets_from_environment
from webmg_ops.settings import Settings

#: Policy values copied into ``run-started`` so the record says what governed the run.
RECORDED_POLICY = (
    "updates.mode",
    "updates.rolling",
    "updates.batch_percent",
    "updates.approval_required",
    "runs.partial_hosts",
    "targets.rpo",
    "targets.rto",
)


@dataclass(frozen=True)
class Plan:
    """What a run would do, computed without touching a host."""

    client: Client
    action: str
    playbook: Path | None
    hosts: tuple[str, ...]
    batches: tuple[tuple[str, ...], ...]
    clearance: Clearance | None
    refusal: PolicyRefusal | None
    policy: Mapping[str, str]


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


# --- helpers ------------------------------------------------------------


def _project_revision() -> str:
    try:
        done = process.run(
            ["git", "-C", str(PLAYBOOKS.parent), "rev-parse", "--short=12", "HEAD"], timeout=5
        )
    except process.StartFailed:
        return "unknown"
    revision = done.stdout.strip() if done.ok else "unknown"
    return revision or "unknown"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"webmg-ops": __version__}
    for package in ("ansible-core", "ansible-runner"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "missing"
    return found


def process_start_time(pid: int) -> int:
    """Given a PID, return its start time in clock ticks since boot (0 if gone).

    Stored with a PID so that a reused PID is not mistaken for the original process.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[19])


def playbook_of(action: Action) -> Path | None:
    """Given an action, return its playbook (None for a controller action)."""
    return PLAYBOOKS / action.playbook if action.playbook else None


def select_hosts(client: Client, limit: str | None) -> tuple[str, ...]:
    """Given a client and an Ansible ``--limit`` pattern (or None), return the hosts chosen.

    Raise BadInput if the pattern matches no host.
    """
    names = tuple(host.name for host in client.hosts)
    if limit is None:
        return names
    if not limit.strip():
        raise BadInput("--limit is empty")
    chosen = hosts_matching(client.folder, limit)
    if not chosen:
        raise BadInput(f"--limit {limit!r} matches no host of {client.name}")
    return chosen


def _with_action_vars(
    action: Action, client: Client, hosts: tuple[str, ...], request: RunRequest, vault: Vault
) -> RunRequest:
    """Return the request with the extra vars the action derives from contract and policy."""
    if action.make_extra_vars is None:
        return request
    return replace(request, extra_vars=action.make_extra_vars(client, hosts, request, vault=vault))


def _policy_summary(client: Client) -> dict[str, str]:
    return {name: describe_value(client.policy.get(name)) for name in RECORDED_POLICY}


def _secrets_for(
    client: Client,
    request: RunRequest,
    vault: Vault,
    variables: Mapping[str, Mapping[str, Any]],
) -> SecretSet:
    """Every value this run must never write: vault values, secret-named variables
    (inventory and extra vars), secret-looking environment variables, the vault password.
    """
    password = vault.password
    values = vault.values(client.folder)
    secret_set = SecretSet.of(values).union(
        secrets_from_environment(os.environ), collect_secrets(dict(request.extra_vars))
    )
    for host_vars in variables.values():
        secret_set = secret_set.union(collect_secrets(dict(host_vars)))
    if password is not None:
        secret_set = secret_set.union(SecretSet.of([password.decode(errors="replace")]))
    return secret_set


# --- planning -----------------------------------------------------------


def plan_run(settings: Settings, request: RunRequest, at: datetime | None = None) -> Plan:
    """Given a request, return what the run would do and whether policy would refuse it.

    Touches no host and writes nothing. Raise BadInput for an unknown
    client, action or an empty ``--limit`` match.
    """
    client = load_client(settings.inventories, request.client)
    rules_for(request.action)
    action = action_named(request.action)
    playbook = playbook_of(action)
    hosts = select_hosts(client, request.limit)
    # A plan refuses the input that the run would refuse.
    _with_action_vars(action, client, hosts, request, Vault(request.vault_password_file))
    batches = (
        action.plan_batches(client, hosts)
        if action.plan_batches is not None and not request.check
        else (hosts,)
    )
    clearance: Clearance | None = None
    refusal: PolicyRefusal | None = None
    with open_ledger(settings.ledger_url, create=False) as ledger:
        try:
            clearance = check_governance(
                client,
                request.action,
                check=request.check,
                emergency=request.emergency,
                reason=request.reason,
                at=at or datetime.now(UTC),
                ledger=ledger,
            )
        except PolicyRefusal as refused:
            refusal = refused
    return Plan(
        client=client,
        action=request.action,
        playbook=playbook,
        hosts=hosts,
        batches=batches,
        clearance=clearance,
        refusal=refusal,
        policy=_policy_summary(client),
    )


# --- reconciliation -----------------------------------------------------


def _open_runs(ledger: Ledger, client: str | None = None) -> list[Entry]:
    started: dict[str, Entry] = {}
    for entry in ledger.entries(client=client, kinds=(RUN_STARTED, RUN_FINISHED)):
        run_id = str(entry.payload.get("run_id"))
        if entry.kind == RUN_STARTED:
            started[run_id] = entry
        else:
            started.pop(run_id, None)
    return list(started.values())


def run_dir(settings: Settings, run_id: str) -> Path:
    """Given the settings and a run id, return the run's folder under ``var/runs``."""
    return settings.var_dir / "runs" / run_id


def reconcile_runs(settings: Settings) -> list[str]:
    """Close every run whose process died as ``interrupted``; return their run ids.

    Ends what such a run left running (its ansible-playbook process group and
    SSH masters). Runs of other controllers, and runs whose process is alive,
    are left alone.
    """
    closed: list[str] = []
    with open_ledger(settings.ledger_url, create=False) as probe:
        if probe.head() is None:
            return closed
    with open_ledger(settings.ledger_url) as ledger:
        for entry in _open_runs(ledger):
            payload = entry.payload
            if payload.get("controller") != socket.gethostname():
                continue
            pid = int(payload.get("pid", 0))
            if process_alive(pid) and process_start_time(pid) == int(payload.get("pid_start", 0)):
                continue
            folder = run_dir(settings, str(payload["run_id"]))
            end_run_processes(folder / "ansible")
            # A drill's restored copy of live data (secrets included) is never kept.
            shutil.rmtree(folder / "scratch", ignore_errors=True)
            completed = _completed_hosts(folder)
            hosts = tuple(
                HostResult(
                    host=host,
                    status=completed.get(host, HostStatus.UNKNOWN),
                    note=""
                    if host in completed
                    else "the run was interrupted before this host finished",
                )
                for host in payload.get("hosts", [])
            )
            finished = ledger.append(
                RUN_FINISHED,
                entry.client,
                to_payload(
                    RunFinished(
                        run_id=str(payload["run_id"]),
                        action=str(payload.get("action")),
                        check=bool(payload.get("check")),
                        outcome=Outcome.INTERRUPTED,
                        started_seq=entry.seq,
                        duration_s=round((datetime.now(UTC) - entry.at).total_seconds(), 3),
                        hosts=hosts,
                        summary=f"the orchestrator (pid {pid}) died during the run",
                        next_steps=("Check the hosts marked unknown, then run the action again.",),
                    )
                ),
            )
            _render_quietly(settings, entry, finished)
            closed.append(str(payload["run_id"]))
    return closed


def _render_quietly(settings: Settings, started: Entry, finished: Entry) -> Path | None:
    """Write the run log of a run closed on a client that may since have changed."""
    try:
        client = load_client(settings.inventories, str(started.client))
        return render_run_log(started, finished, client.contract, settings.var_dir).markdown
    except BadInput:
        return None


def _completed_hosts(folder: Path) -> dict[str, HostStatus]:
    progress = folder / "progress.json"
    if not progress.is_file():
        return {}
    try:
        data = json.loads(progress.read_text())
        return {host: HostStatus(status) for host, status in data.get("completed", {}).items()}
    except (ValueError, TypeError):
        return {}


# --- running ------------------------------------------------------------


class CancelFlag:
    """Set by SIGINT/SIGTERM while a run is under way; polled by the runner."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        """Ask the run to stop."""
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


@contextmanager
def cancel_on_signals(flag: CancelFlag) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM set ``flag`` instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(_signum: int, _frame: Any) -> None:
        flag.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _record_refusal(
    settings: Settings,
    ledger: Ledger,
    client: Client,
    request: RunRequest,
    refusal: PolicyRefusal,
    secrets: SecretSet,
    now: datetime,
) -> Entry:
    entry = ledger.append(
        RUN_REFUSED,
        client.name,
        secrets.mask_data(
            to_payload(
                RunRefused(
                    action=request.action,
                    refusal=refusal.refusal,
                    message=refusal.message,
                    check=request.check,
                    emergency=request.emergency,
                    reason=request.reason,
                    ticket=request.ticket,
                )
            )
        ),
    )
    refusal.run_id = new_run_id(client.name, request.action, now)
    refusal.run_log = render_refusal_log(
        entry, client.contract, settings.var_dir, refusal.run_id, secrets=secrets
    ).markdown
    return entry


def _outcome_of(
    result: PlaybookResult | None,
    hosts: tuple[HostResult, ...],
    canceled: bool,
    controller_ok: bool = False,
) -> Outcome:
    if canceled or (result is not None and result.canceled):
        return Outcome.CANCELED
    if not controller_ok and (result is None or not result.ok):
        return Outcome.FAILED
    if any(host.status not in (HostStatus.OK, HostStatus.CHANGED) for host in hosts):
        return Outcome.FAILED
    return Outcome.SUCCEEDED


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
    before anything is written, for invalid input; PolicyRefusal (exit 3,
    recorded as ``run-refused``) for a window, freeze, approval or lock
    refusal; EnvironmentProblem when a tool is missing. A run that starts
    always ends with a ``run-finished`` entry, even when an exception ends it.
    """
    client = load_client(settings.inventories, request.client)
    rules_for(request.action)
    action = action_named(request.action)
    playbook = playbook_of(action)
    if playbook is not None and not playbook.is_file():
        raise EnvironmentProblem(f"playbook {playbook} is missing")
    hosts = select_hosts(client, request.limit)
    # The vault password file is read here, once, and the vault decrypted once.
    vault = Vault(request.vault_password_file)
    request = _with_action_vars(action, client, hosts, request, vault)
    inventory = read_inventory_variables(client.folder, vault)
    secrets = _secrets_for(client, request, vault, inventory.variables)
    cancel = cancel or CancelFlag()
    reconcile_runs(settings)

    with open_ledger(settings.ledger_url) as ledger:
        now = datetime.now(UTC)
        try:
            clearance = check_governance(
                client,
                request.action,
                check=request.check,
                emergency=request.emergency,
                reason=request.reason,
                at=now,
                ledger=ledger,
            )
        except PolicyRefusal as refusal:
            _record_refusal(settings, ledger, client, request, refusal, secrets, now)
            raise
        run_id = new_run_id(client.name, request.action, now)
        holder = LockHolder(run_id=run_id, pid=os.getpid(), started=now.isoformat())
        try:
            lock = acquire_client_lock(settings.var_dir, client.name, holder)
        except Refused as locked:
            lock_refusal = PolicyRefusal(Refusal.LOCK, locked.message)
            _record_refusal(settings, ledger, client, request, lock_refusal, secrets, now)
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


@dataclass
class _Played:
    """What the work of a run left, however it ended."""

    hosts: tuple[HostResult, ...] = ()
    result: PlaybookResult | None = None
    preflight: dict[str, HostPreflight] = field(default_factory=dict)
    outcome_detail: ActionOutcome = field(default_factory=ActionOutcome)
    controller_ok: bool = False
    stopped_by: BaseException | None = None
    error_note: str = ""


def _run_locked(
    run: _Run,
    clearance: Clearance,
    on_progress: Callable[[Progress], None] | None,
    on_preflight: Callable[[Mapping[str, HostPreflight]], None] | None,
) -> RunReport:
    """Open the run in the ledger, do its work, close it, then the steps after a run."""
    context = run.context
    context.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = run.ledger.append(RUN_STARTED, context.client.name, _started_payload(run, clearance))
    clock = time.monotonic()
    played = _play(run, on_progress, on_preflight)
    finished = _finish(run, started, clock, played)
    log = render_run_log(
        started, finished, context.client.contract, context.settings.var_dir, secrets=run.secrets
    ).markdown
    if played.stopped_by is not None:
        raise played.stopped_by
    outcome = Outcome(finished.payload["outcome"])
    offsite = _offsite(run) if outcome is Outcome.SUCCEEDED and not context.request.check else None
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
    )


def _started_payload(run: _Run, clearance: Clearance) -> dict[str, Any]:
    """Return the masked ``run-started`` payload: what governed the run and what ran it."""
    context, playbook = run.context, run.playbook
    request = context.request
    payload: dict[str, Any] = run.secrets.mask_data(
        to_payload(
            RunStarted(
                run_id=context.run_id,
                action=request.action,
                check=request.check,
                emergency=request.emergency,
                reason=request.reason,
                ticket=request.ticket,
                window=clearance.window or clearance.overridden,
                hosts=context.hosts,
                limit=request.limit,
                playbook=(
                    str(playbook.relative_to(PLAYBOOKS.parent)) if playbook else "controller"
                ),
                revision=_project_revision(),
                versions=_versions(),
                pid=os.getpid(),
                pid_start=process_start_time(os.getpid()),
                controller=socket.gethostname(),
                approval_seq=clearance.approval_seq,
                policy=_policy_summary(context.client),
            )
        )
    )
    return payload


def _play(
    run: _Run,
    on_progress: Callable[[Progress], None] | None,
    on_preflight: Callable[[Mapping[str, HostPreflight]], None] | None,
) -> _Played:
    """Do the run's work (the controller's, or preflight and the play); return what it left.

    Whatever ends the work is caught and kept in ``stopped_by``: the run is
    closed in the ledger before the error goes on.
    """
    context, action = run.context, run.action
    played = _Played()
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
    played: _Played,
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
    context: RunContext, played: _Played, excluded: Mapping[str, HostPreflight]
) -> None:
    """Give every host of the run its result (played, excluded, or left out) and keep them
    in the run's progress file, for a run closed after its process died."""
    known = {host.host: host for host in played.result.hosts} if played.result else {}
    known.update({host.host: host for host in played.outcome_detail.hosts})
    played.hosts = played.hosts or tuple(
        known.get(host)
        or HostResult(
            host=host,
            status=_preflight_status(played.preflight.get(host)),
            note=(
                excluded[host].message
                if host in excluded
                else "not run: other hosts failed preflight and the policy runs all or none"
            ),
        )
        for host in context.hosts
    )
    _write_progress(context.folder, played.hosts)


def _offsite(run: _Run) -> OffsiteStep | None:
    """Do the offsite copy the policy asks for; a failure is recorded, never raised."""
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
        )
    except WebmgError as error:
        # Not even a pending item could be made (the repository cannot be opened):
        # the next successful run copies everything again.
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


def _preflight_status(check: HostPreflight | None) -> HostStatus:
    if check is None:
        return HostStatus.UNKNOWN
    if check.check.value == "unreachable":
        return HostStatus.UNREACHABLE
    return HostStatus.EXCLUDED


def _write_progress(folder: Path, hosts: tuple[HostResult, ...]) -> None:
    completed = {host.host: host.status.value for host in hosts}
    write_private(folder / "progress.json", json.dumps({"completed": completed}))


def _finish(run: _Run, started: Entry, clock: float, played: _Played) -> Entry:
    """Close the run in the ledger with its outcome, evidence and residual risks."""
    context = run.context
    outcome = _outcome_of(played.result, played.hosts, context.cancel(), played.controller_ok)
    detail = played.outcome_detail
    risks = list(detail.residual_risks)
    for host, check in played.preflight.items():
        if not check.ready:
            risks.append(
                ResidualRisk(host, f"excluded by preflight: {check.check.value}", check.message)
            )
    summary = detail.summary
    if played.error_note:
        stopped = f"stopped by {played.error_note}"
        summary = f"{summary}; {stopped}" if summary else stopped
    evidence = dict(detail.evidence)
    evidence["preflight"] = {
        host: {
            "check": check.check.value,
            "message": check.message,
            "free_mb": check.free_mb,
            "reboot_pending": check.reboot_pending,
        }
        for host, check in played.preflight.items()
    }
    payload = to_payload(
        RunFinished(
            run_id=context.run_id,
            action=context.request.action,
            check=context.request.check,
            outcome=outcome,
            started_seq=started.seq,
            duration_s=round(time.monotonic() - clock, 3),
            hosts=played.hosts,
            evidence=evidence,
            residual_risks=tuple(risks),
            next_steps=detail.next_steps,
            summary=summary,
        )
    )
    return run.ledger.append(RUN_FINISHED, context.client.name, run.secrets.mask_data(payload))
