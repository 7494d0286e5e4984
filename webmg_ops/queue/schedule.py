"""Periodic work from the contracts: the runs each client's cadences make due, queued.

What is due comes from :mod:`webmg_ops.schedule.due` (the last success of each
recurring action against the policy's cadence), as ``due`` shows it. A run that
changes hosts (an update, a hardening) waits for the client's next usable window,
freezes left out; the others (a backup, a drill, a drift check) may start now. A
run already queued or running for the same client and action is not queued again.
A report due is queued as the client's report (``report``, its last complete period),
published to the client where its contract names an offsite target (the only place a
report can be published to).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from webmg_ops.ansible.revision import project_revision
from webmg_ops.config.clients import Client, ContractInvalid, list_client_names
from webmg_ops.config.clients import load_client_contract as load_contract
from webmg_ops.config.contract_cache import ContractCache, contract_cache_file
from webmg_ops.config.durations import format_duration
from webmg_ops.engine.governance import ACTION_RULES
from webmg_ops.errors import Refused
from webmg_ops.ledger import open_ledger, require_operator
from webmg_ops.runs.records import REPORT
from webmg_ops.schedule.due import SATISFIED_BY, ClientDue, clients_due
from webmg_ops.settings import Settings
from webmg_ops.yamlsource import SourceProblem

if TYPE_CHECKING:
    from procrastinate import App


@dataclass(frozen=True)
class DueRun:
    """A run the schedule asks for: its client, action, mode, earliest start and why;
    a report, whether it is published."""

    client: str
    action: str
    check: bool
    not_before: datetime | None
    reason: str
    publish: bool = False


@dataclass(frozen=True)
class Scheduled:
    """What became of one due run: the job queued, or why none was."""

    run: DueRun
    job: int | None
    note: str

    def document(self) -> dict[str, object]:
        """Return it as ``schedule --json`` prints it."""
        return {
            "client": self.run.client,
            "action": self.run.action,
            "check": self.run.check,
            "not_before": None if self.run.not_before is None else self.run.not_before.isoformat(),
            "reason": self.run.reason,
            "publish": self.run.publish,
            "job": self.job,
            "note": self.note,
        }


def due_runs(items: Sequence[ClientDue]) -> list[DueRun]:
    """Given what is due for each client, return the runs to queue, by client.

    A run that needs a window starts no earlier than the client's window, open now or
    next (freezes left out); a client with no usable window ahead gets no such run.
    """
    found: list[DueRun] = []
    for item in items:
        for due in item.actions:
            if not due.due or due.action not in SATISFIED_BY:
                continue
            # The run that satisfies the action is the one to queue (a drift check: a
            # hardening in check mode).
            action, check = SATISFIED_BY[due.action]
            rules = ACTION_RULES.get(action)
            needs_window = rules is not None and rules.needs_window and not check
            not_before: datetime | None = None
            if needs_window and not item.state.changes_allowed:
                if item.state.next_opening is None:
                    continue
                not_before = item.state.next_opening.start
            last = "never" if due.last_success is None else _utc(due.last_success)
            cadence = format_duration(due.cadence) if due.cadence else "?"
            found.append(
                DueRun(
                    client=item.client.name,
                    action=action,
                    check=check,
                    not_before=not_before,
                    reason=f"{due.action} every {cadence}, last success {last}",
                    publish=action == REPORT and item.client.contract.backup.offsite is not None,
                )
            )
    return found


def load_contracts(settings: Settings) -> tuple[list[Client], list[SourceProblem]]:
    """Given the settings, return every client as its contract makes it, and the
    problems of those left out (one broken contract does not stop the others).

    Each contract's data comes from the contract cache when its file is unchanged.
    """
    clients: list[Client] = []
    problems: list[SourceProblem] = []
    cache = ContractCache.open(contract_cache_file(settings.var_dir))
    for name in list_client_names(settings.inventories):
        try:
            clients.append(load_contract(settings.inventories, name, cache))
        except ContractInvalid as error:
            problems.extend(error.problems)
    cache.save()
    return clients, problems


def what_is_due(settings: Settings, clients: Sequence[Client], at: datetime) -> list[DueRun]:
    """Given the settings, the clients and an aware instant, return the runs due then."""
    with open_ledger(settings.ledger_url) as ledger:
        return due_runs(clients_due(ledger, clients, at))


def enqueue(settings: Settings, app: App, runs: Sequence[DueRun]) -> list[Scheduled]:
    """Given the settings, the open queue and the due runs, queue each run that is not
    already queued or running for its client and action; return what became of each.

    Raise BadInput if no operator is named (a queued run records who asked).
    """
    # The queue is loaded only to queue: what is due is worked out without it.
    from procrastinate.jobs import Status

    from webmg_ops.queue.jobs import QueuedRun, list_jobs, submit

    actor = require_operator()
    revision = project_revision()
    running = {job.key() for job in list_jobs(app, status=Status.DOING)}
    done: list[Scheduled] = []
    for run in runs:
        request = QueuedRun(
            client=run.client,
            action=run.action,
            actor=actor,
            revision=revision,
            reason=run.reason,
            check=run.check,
            publish=run.publish,
        )
        if request.key() in running:
            done.append(Scheduled(run, None, "already running"))
            continue
        try:
            job = submit(settings, app, request, run.not_before)
        except Refused:
            done.append(Scheduled(run, None, "already queued"))
            continue
        done.append(Scheduled(run, job, "queued"))
    return done


def _utc(instant: datetime) -> str:
    return f"{instant.astimezone(UTC):%Y-%m-%d %H:%M}Z"
