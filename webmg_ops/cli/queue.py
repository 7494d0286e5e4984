"""Queue commands: ``submit``, ``queue``, ``cancel``, ``worker`` and ``schedule``.

Each command imports what it uses when it runs: the queue (Procrastinate) is not
loaded by ``schedule --dry-run``, and nothing of it by the other commands' help.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

import click
from rich.table import Table

from webmg_ops.config.instants import parse_instant
from webmg_ops.runs.records import QUEUED_ACTIONS
from webmg_ops.settings import Settings

from .common import (
    console,
    emit_json,
    end_with_problems,
    json_option,
    pass_settings,
    record_options,
)
from .lazy import collector_paused


@click.command("submit")
@click.argument("client", metavar="CLIENT")
@click.argument("action", type=click.Choice(QUEUED_ACTIONS), metavar="ACTION")
@click.option(
    "--at",
    metavar="TIME",
    help="Not before this time (ISO 8601 with its offset); now by default. The run's "
    "window and freezes are checked when it starts.",
)
@click.option("--check", is_flag=True, help="Dry run: Ansible --check --diff, recorded.")
@click.option("--limit", metavar="PATTERN", help="Only these hosts (Ansible pattern).")
@record_options
@click.option(
    "--emergency", is_flag=True, help="Allowed outside windows and in freezes; needs --reason."
)
@click.option("--change", metavar="CHG-n", help="deploy: the change whose version it installs.")
@click.option(
    "--publish",
    is_flag=True,
    help="report: also publish it to the client's offsite target and mail its links.",
)
@json_option
@pass_settings
def submit_command(
    settings: Settings,
    client: str,
    action: str,
    at: str | None,
    check: bool,
    limit: str | None,
    reason: str | None,
    ticket: str | None,
    incident: str | None,
    emergency: bool,
    change: str | None,
    publish: bool,
    as_json: bool,
) -> None:
    """Queue a run of ACTION for CLIENT, for a worker to carry out; recorded as run-requested.

    ACTION ``report`` queues the client's report of its last complete period.
    """
    from webmg_ops.queue.app import open_queue
    from webmg_ops.queue.jobs import new_request, submit
    from webmg_ops.queue.worker import register_tasks

    when = None if at is None else parse_instant("--at", at)
    request = new_request(
        settings,
        client,
        action,
        reason=reason or "",
        ticket=ticket,
        incident=incident,
        limit=limit,
        check=check,
        emergency=emergency,
        change=change,
        publish=publish,
    )
    with open_queue(settings, register_tasks) as app:
        job_id = submit(settings, app, request, when)
    if as_json:
        emit_json({"job": job_id, **request.arguments(), "at": at})
        return
    start = f"not before {when.isoformat()}" if when else "as soon as a worker is free"
    console.print(f"job {job_id}: {action} for {request.client} queued, {start}")


@click.command("queue")
@json_option
@pass_settings
def queue_command(settings: Settings, as_json: bool) -> None:
    """List the queue's runs: queued, running, failed and done, newest first."""
    from webmg_ops.queue.app import open_queue
    from webmg_ops.queue.jobs import list_jobs
    from webmg_ops.queue.worker import register_tasks

    with open_queue(settings, register_tasks) as app:
        jobs = list_jobs(app)
    if as_json:
        emit_json([job.document() for job in jobs])
        return
    table = Table("job", "status", "client", "action", "not before", "retries", "by", title="queue")
    for job in jobs:
        table.add_row(
            str(job.id),
            job.status,
            job.client,
            job.action + (" (check)" if job.check else "") + (" (publish)" if job.publish else ""),
            "now" if job.scheduled_at is None else job.scheduled_at.isoformat(timespec="minutes"),
            str(job.attempts),
            job.actor,
        )
    console.print(table)


@click.command("cancel")
@click.argument("job_id", metavar="JOB", type=click.IntRange(min=1))
@json_option
@pass_settings
def cancel_command(settings: Settings, job_id: int, as_json: bool) -> None:
    """Cancel a queued job, or ask a running one to stop (its run is recorded canceled)."""
    from webmg_ops.queue.app import open_queue
    from webmg_ops.queue.jobs import cancel
    from webmg_ops.queue.worker import register_tasks

    with open_queue(settings, register_tasks) as app:
        done = cancel(settings, app, job_id)
    if as_json:
        emit_json({"job": job_id, "done": done})
        return
    console.print(f"job {job_id}: {done}")


@click.command("worker")
@click.option(
    "--queues",
    metavar="NAME[,NAME]",
    help="Take jobs from these queues only (comma-separated); every queue by default.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Runs carried out at once (one per client at most, whatever this says).",
)
@click.option(
    "--drain",
    is_flag=True,
    help="Stop once no queued run can start (none left, or none due yet).",
)
@click.option(
    "--schedule",
    "periodic",
    is_flag=True,
    help="Also queue, every minute, the runs the contracts make due and the SLA tick "
    "(any number of workers may; each minute is queued once).",
)
@click.option(
    "--monitor",
    "monitoring",
    is_flag=True,
    help="Also probe every client's health checks once a minute and record the samples "
    "(monitor --once), where no long-running monitor is kept.",
)
@pass_settings
def worker_command(
    settings: Settings,
    queues: str | None,
    concurrency: int,
    drain: bool,
    periodic: bool,
    monitoring: bool,
) -> None:
    """Take queued runs and carry them out until SIGINT or SIGTERM (running runs finish)."""
    from webmg_ops.queue.worker import work

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("webmg_ops.worker").setLevel(logging.INFO)
    # Procrastinate's worker says when it starts and ends each job, and what it waits for.
    logging.getLogger("procrastinate.worker").setLevel(logging.INFO)
    # The pool says so at every attempt to reconnect; the worker says once what it does.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    if not debug_wanted():
        for handler in logging.getLogger().handlers:
            handler.addFilter(_without_traceback)
    names = [name.strip() for name in queues.split(",") if name.strip()] if queues else None
    work(settings, names, concurrency, drain=drain, periodic=periodic, monitoring=monitoring)


def debug_wanted() -> bool:
    """Return whether tracebacks were asked for (``--debug``, or ``WEBMG_DEBUG=1``)."""
    context = click.get_current_context(silent=True)
    root = context.find_root() if context else None
    asked = bool(root and root.params.get("debug"))
    return asked or os.environ.get("WEBMG_DEBUG") == "1"


def _without_traceback(record: logging.LogRecord) -> bool:
    """Keep a log record, its traceback dropped: a library's log says what failed, and
    tracebacks are for ``--debug``."""
    record.exc_info = None
    record.exc_text = None
    return True


@click.command("schedule")
@click.option(
    "--at",
    metavar="TIME",
    help="What is due at this time (ISO 8601 with its offset); now by default.",
)
@click.option("--dry-run", is_flag=True, help="Show the runs due; queue nothing.")
@json_option
@pass_settings
def schedule_command(settings: Settings, at: str | None, dry_run: bool, as_json: bool) -> int:
    """Queue the runs every contract makes due (updates and hardening in the next window)."""
    from webmg_ops.queue.schedule import Scheduled, load_contracts, what_is_due

    when = datetime.now(UTC) if at is None else parse_instant("--at", at)
    with collector_paused(freeze=True):
        # The clients and their history all live on: collecting while they load frees
        # nothing, and walked them again and again (a third of the command's CPU).
        clients, problems = load_contracts(settings)
        runs = what_is_due(settings, clients, when)
    if dry_run:
        done = [Scheduled(run, None, "due") for run in runs]
    else:
        from webmg_ops.queue.app import open_queue
        from webmg_ops.queue.schedule import enqueue
        from webmg_ops.queue.worker import register_tasks

        with open_queue(settings, register_tasks) as app:
            done = enqueue(settings, app, runs)
    if as_json:
        emit_json([item.document() for item in done])
    else:
        table = Table("client", "action", "not before", "job", "", "why", title="schedule")
        for item in done:
            run = item.run
            table.add_row(
                run.client,
                run.action + (" (check)" if run.check else ""),
                "now" if run.not_before is None else run.not_before.isoformat(timespec="minutes"),
                "" if item.job is None else str(item.job),
                item.note,
                run.reason,
            )
        console.print(table)
    return end_with_problems(problems)
