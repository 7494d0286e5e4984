"""Run requests in the queue: submitting one, listing them, canceling one.

A job's arguments are a :class:`QueuedRun`: what ``webmg-ops run`` would be given,
who asked, and the checkout's revision at the time. Each job carries two locks:
its client (no two runs of one client at once, whichever workers hold them) and
its client and action while it waits (the same run is never queued twice).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from procrastinate import App, exceptions
from procrastinate.jobs import Job, Status

from webmg_ops.ansible.revision import project_revision
from webmg_ops.config.clients import load_client
from webmg_ops.errors import BadInput, Refused
from webmg_ops.ledger import require_operator
from webmg_ops.queue.app import RUN_QUEUE, RUN_TASK
from webmg_ops.runs.records import QUEUED_ACTIONS, REPORT
from webmg_ops.service.records import (
    RUN_REQUEST_CANCELED,
    RUN_REQUESTED,
    record_queue_event,
)
from webmg_ops.settings import Settings

#: What a job's status means to the person reading the queue.
STATUS_WORDS: dict[str, str] = {
    Status.TODO.value: "queued",
    Status.DOING.value: "running",
    Status.SUCCEEDED.value: "done",
    Status.FAILED.value: "failed",
    Status.CANCELLED.value: "canceled",
    Status.ABORTING.value: "stopping",
    Status.ABORTED.value: "stopped",
}


@dataclass(frozen=True)
class QueuedRun:
    """One run request as the queue keeps it: a job's arguments."""

    client: str
    action: str
    actor: str
    revision: str
    reason: str = ""
    ticket: str | None = None
    incident: str | None = None
    limit: str | None = None
    check: bool = False
    emergency: bool = False
    change: str | None = None
    #: A report only: also published to the client's offsite target and mailed.
    publish: bool = False

    def arguments(self) -> dict[str, Any]:
        """Return the job's arguments (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> QueuedRun:
        """Given a job's arguments, return the request.

        Raise BadInput if one is missing, unknown or of the wrong type: the queue's
        database is shared, so a worker checks what it is asked to run.
        """
        fields = cls.__dataclass_fields__
        unknown = sorted(set(arguments) - set(fields))
        if unknown:
            raise BadInput(f"a queued run names unknown fields: {', '.join(unknown)}")
        for name in ("client", "action", "actor", "revision"):
            if not isinstance(arguments.get(name), str) or not arguments[name]:
                raise BadInput(f"a queued run needs {name} (text)")
        for name in ("check", "emergency", "publish"):
            if not isinstance(arguments.get(name, False), bool):
                raise BadInput(f"a queued run's {name} must be true or false")
        for name in ("reason",):
            if not isinstance(arguments.get(name, ""), str):
                raise BadInput(f"a queued run's {name} must be text")
        for name in ("ticket", "incident", "limit", "change"):
            if not isinstance(arguments.get(name), str | None):
                raise BadInput(f"a queued run's {name} must be text")
        if arguments["action"] not in QUEUED_ACTIONS:
            raise BadInput(f"a queued run names an unknown action: {arguments['action']!r}")
        if arguments.get("publish") and arguments["action"] != REPORT:
            raise BadInput("a queued run asks to publish, which only a report is")
        return cls(**arguments)

    def key(self) -> tuple[str, str, bool]:
        """Return what makes two requests the same run: client, action and check mode."""
        return (self.client, self.action, self.check)

    def waiting_key(self) -> str:
        """Return the queueing lock: one job of this key may wait in the queue at a time."""
        return "/".join((self.client, self.action, *(["check"] if self.check else [])))

    def run_argv(self, job_id: int) -> list[str]:
        """Given the job's id, return the command that carries it out: ``webmg-ops run``,
        or ``webmg-ops report`` for the client's report (its last complete period;
        ``--publish`` if asked).

        Every value is its own argv word, after its option: none is read by a shell, and
        none can pass for an option (``--reason=--check`` is one word).
        """
        program = str(Path(sys.executable).with_name("webmg-ops"))
        if self.action == REPORT:
            return [
                program,
                "report",
                "--json",
                *(["--publish"] if self.publish else []),
                "--",
                self.client,
            ]
        argv = [program, "run", "--json"]
        argv += [f"--job={job_id}", f"--reason={self.reason}"]
        for option, value in (
            ("--ticket", self.ticket),
            ("--incident", self.incident),
            ("--limit", self.limit),
            ("--change", self.change),
        ):
            if value is not None:
                argv.append(f"{option}={value}")
        if self.check:
            argv.append("--check")
        if self.emergency:
            argv.append("--emergency")
        # After "--", the client and action are never read as options.
        return [*argv, "--", self.client, self.action]


@dataclass(frozen=True)
class QueueJob:
    """One job of the queue, as ``queue`` lists it."""

    id: int
    status: str
    client: str
    action: str
    scheduled_at: datetime | None
    attempts: int
    actor: str
    check: bool
    publish: bool = False

    def key(self) -> tuple[str, str, bool]:
        """Return what makes two jobs the same run: client, action and check mode."""
        return (self.client, self.action, self.check)

    def document(self) -> dict[str, Any]:
        """Return the job as ``queue --json`` prints it."""
        return {
            "id": self.id,
            "status": self.status,
            "client": self.client,
            "action": self.action,
            "scheduled_at": None if self.scheduled_at is None else self.scheduled_at.isoformat(),
            "attempts": self.attempts,
            "by": self.actor,
            "check": self.check,
            "publish": self.publish,
        }


def new_request(
    settings: Settings,
    client: str,
    action: str,
    *,
    reason: str = "",
    ticket: str | None = None,
    incident: str | None = None,
    limit: str | None = None,
    check: bool = False,
    emergency: bool = False,
    change: str | None = None,
    publish: bool = False,
) -> QueuedRun:
    """Given what ``submit`` was told, return the run request, its operator and revision
    filled in.

    Raise BadInput for an unknown client or action, an emergency without a reason,
    ``publish`` for another action than a report, or no operator to record.
    """
    if action not in QUEUED_ACTIONS:
        known = ", ".join(QUEUED_ACTIONS)
        raise BadInput(f"unknown action {action!r}; expected one of {known}")
    if publish and action != REPORT:
        raise BadInput(f"--publish is for a report, not for {action}")
    if emergency and not reason.strip():
        raise BadInput("--emergency needs --reason: say why the window or freeze is overridden")
    found = load_client(settings.inventories, client)
    return QueuedRun(
        client=found.name,
        action=action,
        actor=require_operator(),
        revision=project_revision(),
        reason=reason,
        ticket=ticket,
        incident=incident,
        limit=limit,
        check=check,
        emergency=emergency,
        change=change,
        publish=publish,
    )


def submit(settings: Settings, app: App, request: QueuedRun, at: datetime | None) -> int:
    """Given the settings, the open queue, a run request and when it may start (None:
    now), queue it, record ``run-requested`` and return the job's id.

    Raise Refused if the same client and action already waits in the queue (nothing
    written). Should the ledger refuse the record, the job is canceled before the error
    goes on: no job runs unrecorded.
    """
    task = app.tasks[RUN_TASK]
    try:
        job_id = task.configure(
            lock=request.client,
            queueing_lock=request.waiting_key(),
            schedule_at=at,
            queue=RUN_QUEUE,
        ).defer(**request.arguments())
    except exceptions.AlreadyEnqueued:
        waiting = list_jobs(app, status=Status.TODO)
        same = [job.id for job in waiting if job.key() == request.key()]
        named = f" (job {same[0]})" if same else ""
        mode = " (check)" if request.check else ""
        raise Refused(
            f"{request.action}{mode} for {request.client} is already queued{named}: cancel "
            "it first to queue it again with other options"
        ) from None
    payload = {"job": job_id, **request.arguments(), "at": None if at is None else at.isoformat()}
    try:
        record_queue_event(settings, request.client, RUN_REQUESTED, payload)
    except BaseException:
        app.job_manager.cancel_job_by_id(job_id, delete_job=True)
        raise
    return job_id


def list_jobs(app: App, *, status: Status | None = None) -> list[QueueJob]:
    """Given the open queue (and a status to keep), return its run jobs, newest first."""
    rows: Sequence[Job] = app.job_manager.list_jobs(
        task=RUN_TASK, status=None if status is None else status.value
    )
    jobs = [_queue_job(job) for job in rows if job.id is not None]
    return sorted(jobs, key=lambda job: job.id, reverse=True)


def _queue_job(job: Job) -> QueueJob:
    arguments = job.task_kwargs
    status = str(job.status)
    word = STATUS_WORDS.get(status, status)
    if status == Status.DOING.value and job.abort_requested:
        word = "stopping"
    return QueueJob(
        id=int(job.id or 0),
        status=word,
        client=str(arguments.get("client", "?")),
        action=str(arguments.get("action", "?")),
        scheduled_at=job.scheduled_at,
        attempts=job.attempts,
        actor=str(arguments.get("actor", "?")),
        check=bool(arguments.get("check", False)),
        publish=bool(arguments.get("publish", False)),
    )


def cancel(settings: Settings, app: App, job_id: int) -> str:
    """Given the settings, the open queue and a job's id, cancel it; return what was done:
    ``canceled`` (it waited: recorded ``run-request-canceled``) or ``stop asked`` (it runs:
    its worker stops the run, which the engine records as ``canceled``).

    Raise BadInput for no such job, Refused for one already over.
    """
    found = app.job_manager.list_jobs(id=job_id, task=RUN_TASK)
    if not found:
        raise BadInput(f"no job {job_id} in the queue (see `webmg-ops queue`)")
    job = found[0]
    if job.status == Status.TODO.value and app.job_manager.cancel_job_by_id(job_id):
        record_queue_event(
            settings,
            str(job.task_kwargs["client"]),
            RUN_REQUEST_CANCELED,
            {"job": job_id, "action": job.task_kwargs.get("action")},
        )
        return "canceled"
    # Running (or taken by a worker since it was read): ask its worker to stop it.
    if app.job_manager.cancel_job_by_id(job_id, abort=True):
        return "stop asked"
    status = app.job_manager.get_job_status(job_id).value
    raise Refused(f"job {job_id} is already {STATUS_WORDS.get(status, status)}")
