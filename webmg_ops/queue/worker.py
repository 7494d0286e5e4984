"""A worker: takes run requests from the queue and carries each out with ``webmg-ops run``.

The run is a child process of the worker, so its ledger entries, run log, governance,
lock and crash safety are those of a run started by hand; the kernel kills it if the
worker dies (it is then closed as ``interrupted`` by the next worker on this
controller). Canceling a running job sends it SIGTERM, which the engine records as
``canceled``. A worker whose checkout is at another revision than the submitter's
refuses the job: a fleet never runs two versions of a role for one window.

When a worker dies, its job is left running in the queue. Every worker sweeps at its
start and then every :data:`SWEEP_EVERY_S`: it closes the runs of dead processes on
this controller (the engine's reconciliation), then settles each job whose worker is
gone: a check or a drill is tried once more; an update, a hardening or a backup is
not retried (a person decides), its job marked failed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from procrastinate import App, JobContext, exceptions
from procrastinate.jobs import Job, Status

from webmg_ops import process
from webmg_ops.ansible.revision import project_revision
from webmg_ops.engine.reconcile import process_start_time, reconcile_runs
from webmg_ops.errors import EnvironmentProblem, ExitCode, Failed
from webmg_ops.ledger import open_ledger
from webmg_ops.queue.app import (
    MONITOR_TASK,
    PERIODIC_QUEUE,
    RUN_QUEUE,
    RUN_TASK,
    SCHEDULE_TASK,
    TICK_TASK,
    TaskRegistration,
    open_queue,
    queue_app,
    queue_conninfo,
)
from webmg_ops.queue.jobs import QueuedRun
from webmg_ops.queue.schedule import enqueue, load_contracts, what_is_due
from webmg_ops.runs.records import REPORT, RUN_STARTED
from webmg_ops.service.records import RUN_REQUEST_REFUSED, record_queue_event
from webmg_ops.settings import Settings

LOG = logging.getLogger("webmg_ops.worker")

#: Actions a worker tries once more when the worker running them died: they change
#: nothing on the hosts (a check, a drill into scratch space). Others wait for a person.
RETRIED_ACTIONS = frozenset({"check", "drill", "diagnose", "report"})
#: How often the stop request of a running job is looked at.
ABORT_POLL_S = 1.0
#: Seconds between SIGTERM and SIGKILL when a running job is stopped: the engine closes
#: the run (its play told to stop, the run log written) within them.
STOP_GRACE_S = 120.0
#: How often a worker sweeps for runs and jobs left by dead workers.
SWEEP_EVERY_S = 60.0
#: A worker that has not beaten its heartbeat for this long is dead to the others.
STALLED_AFTER_S = 30.0
#: How often a worker looks at the queue's database, and how many failures in a row
#: mean it is lost.
WATCH_EVERY_S = 5.0
LOST_AFTER = 2
#: The periodic tasks' cron: the schedule and the SLA clocks are looked at every minute.
EVERY_MINUTE = "* * * * *"
#: How long one SLA tick may take (it sends notifications).
TICK_TIMEOUT_S = 300.0
#: How often a draining worker looks whether a queued job could still start here.
DRAIN_POLL_S = 1.0
#: The jobs this process is carrying out: a draining worker waits for a job that one of
#: them holds back (the same client's lock), and stops for one another worker holds back.
_CARRYING: set[int] = set()
_CARRYING_LOCK = threading.Lock()
#: How long one round of probes may take: within its minute, so rounds never pile up
#: (each probe has its own shorter timeout).
MONITOR_TIMEOUT_S = 55.0


class JobRefused(Failed):
    """A job this worker must not run (another revision, a request it cannot read)."""


class RunNotSucceeded(Failed):
    """The job's run ended without succeeding; the ledger and the run log say why."""


@dataclass(frozen=True)
class WorkerIdentity:
    """The worker process as its runs record it: this controller and its PID."""

    controller: str
    pid: int
    pid_start: int

    @classmethod
    def current(cls) -> WorkerIdentity:
        """Return this process's identity."""
        pid = os.getpid()
        return cls(socket.gethostname(), pid, process_start_time(pid))


def register_tasks(
    app: App,
    settings: Settings,
    *,
    periodic: bool = False,
    monitoring: bool = False,
    stop_all: threading.Event | None = None,
) -> None:
    """Given the queue's application and the settings, register its tasks: the run, the
    schedule, the SLA tick and a round of availability probes; with ``periodic``, this
    process also queues the schedule and the tick every minute, and with ``monitoring``
    the probes (whichever workers ask, each minute is queued once). Once ``stop_all`` is
    set, every run under way is stopped (the queue's database is lost).
    """
    everything = stop_all if stop_all is not None else threading.Event()

    def run_job(context: JobContext, /, **arguments: Any) -> dict[str, Any]:
        return carry_out(settings, context, arguments, everything)

    def schedule_job(context: JobContext, /, timestamp: int) -> list[dict[str, object]]:
        return queue_due_runs(settings, context.app, datetime.fromtimestamp(timestamp, UTC))

    def tick_job(timestamp: int) -> None:
        tick(settings, datetime.fromtimestamp(timestamp, UTC))

    app.task(name=RUN_TASK, queue=RUN_QUEUE, pass_context=True)(run_job)
    schedule = app.task(name=SCHEDULE_TASK, queue=PERIODIC_QUEUE, pass_context=True)(schedule_job)

    def monitor_job(timestamp: int) -> None:
        monitor_once(settings, datetime.fromtimestamp(timestamp, UTC))

    ticking = app.task(name=TICK_TASK, queue=PERIODIC_QUEUE)(tick_job)
    probing = app.task(name=MONITOR_TASK, queue=PERIODIC_QUEUE)(monitor_job)
    if periodic:
        app.periodic(cron=EVERY_MINUTE)(schedule)
        app.periodic(cron=EVERY_MINUTE)(ticking)
    if monitoring:
        app.periodic(cron=EVERY_MINUTE)(probing)


def queue_due_runs(settings: Settings, app: App, at: datetime) -> list[dict[str, object]]:
    """Given the settings, the open queue and an instant, queue the runs the contracts
    make due then; return what became of each (a broken contract is logged, not fatal)."""
    clients, problems = load_contracts(settings)
    for problem in problems:
        LOG.warning("schedule: a client is left out: %s", problem)
    done = enqueue(settings, app, what_is_due(settings, clients, at))
    for item in done:
        LOG.info(
            "schedule: %s%s for %s: %s%s",
            item.run.action,
            " (check)" if item.run.check else "",
            item.run.client,
            item.note,
            f" (job {item.job})" if item.job else "",
        )
    return [item.document() for item in done]


def tick(settings: Settings, at: datetime) -> None:
    """Given the settings and an instant, evaluate every open incident's clocks then
    (``webmg-ops tick``); raise Failed if it does not end well."""
    argv = [str(Path(sys.executable).with_name("webmg-ops")), "tick", f"--at={at.isoformat()}"]
    done = process.run(argv, timeout=TICK_TIMEOUT_S, env=_command_environment(settings))
    if not done.ok:
        raise Failed(
            f"tick at {at.isoformat()} ended with status {done.returncode}: "
            f"{done.masked_stderr.strip()[-500:]}"
        )


def monitor_once(settings: Settings, at: datetime) -> None:
    """Given the settings and the minute it is queued for, probe the health checks due
    and record the samples (``webmg-ops monitor --once --due``: each client's checks at
    its own interval): the fleet's monitoring where no long-running ``monitor`` is kept.
    Raise Failed if the round does not end well (a contract that cannot be read, the
    ledger): the services' answers, up or down, are data, not failures.
    """
    argv = [str(Path(sys.executable).with_name("webmg-ops")), "monitor", "--once", "--due"]
    done = process.run(argv, timeout=MONITOR_TIMEOUT_S, env=_command_environment(settings))
    if not done.ok:
        raise Failed(
            f"availability probes of {at.isoformat()} ended with status {done.returncode}: "
            f"{done.masked_stderr.strip()[-500:]}"
        )


def carry_out(
    settings: Settings,
    context: JobContext,
    arguments: dict[str, Any],
    stop_all: threading.Event,
) -> dict[str, Any]:
    """Given the settings, a job's context, its arguments and the event that stops every
    run of this worker, carry out its run; return the run's id, outcome and log.

    Raise JobRefused for a request this worker will not run (recorded as
    ``run-request-refused``), RunNotSucceeded for a run that did not succeed,
    JobAborted for one stopped on request.
    """
    job_id = int(context.job.id or 0)
    try:
        request = QueuedRun.from_arguments(arguments)
    except Exception as error:
        LOG.warning("job %s cannot be read: %s", job_id, error)
        raise JobRefused(f"job {job_id} cannot be read: {error}") from None
    here = project_revision()
    if request.revision != here:
        reason = (
            f"job {job_id} was submitted at revision {request.revision} and this worker runs "
            f"{here}: start a worker at the submitter's revision, or submit again"
        )
        record_queue_event(
            settings, request.client, RUN_REQUEST_REFUSED, {"job": job_id, "reason": reason}
        )
        LOG.warning("%s", reason)
        raise JobRefused(reason)
    LOG.info(
        "job %s: %s for %s, asked by %s", job_id, request.action, request.client, request.actor
    )
    with _CARRYING_LOCK:
        _CARRYING.add(job_id)
    try:
        return _carry_out_run(settings, context, request, job_id, stop_all)
    finally:
        with _CARRYING_LOCK:
            _CARRYING.discard(job_id)


def _carry_out_run(
    settings: Settings,
    context: JobContext,
    request: QueuedRun,
    job_id: int,
    stop_all: threading.Event,
) -> dict[str, Any]:
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch_abort,
        args=(context, stop, stop_all, queue_conninfo(settings)),
        daemon=True,
    )
    watcher.start()
    try:
        done = process.run(
            request.run_argv(job_id),
            timeout=None,
            env=_run_environment(settings, request),
            stop=stop,
            grace=STOP_GRACE_S,
            die_with_parent=True,
            # Ctrl-C at the worker's terminal stops the worker, which lets its runs end:
            # the runs are kept out of the terminal's process group.
            own_session=True,
        )
    finally:
        stop.set()
    report = _report(done.stdout)
    if done.stopped:
        raise exceptions.JobAborted(f"job {job_id} stopped on request: {report.get('outcome')}")
    if done.returncode != ExitCode.OK:
        said = report.get("summary") or done.masked_stderr.strip()[-500:] or "no output"
        reason = (
            f"job {job_id}: {request.action} for {request.client} ended with status "
            f"{done.returncode}: {said}"
        )
        LOG.warning("%s", reason)
        raise RunNotSucceeded(reason)
    kept = ("html", "pdf") if request.action == REPORT else ("run_id", "outcome", "run_log")
    LOG.info(
        "job %s: %s for %s done: %s", job_id, request.action, request.client, report.get(kept[0])
    )
    return {key: report.get(key) for key in kept}


def _watch_abort(
    context: JobContext, stop: threading.Event, stop_all: threading.Event, conninfo: str
) -> None:
    """Set ``stop`` when the job is asked to stop (``cancel``), or every run is (the
    queue's database is lost).

    The request is read from the job's row as well as from Procrastinate: a worker that
    is stopping (Ctrl-C) no longer looks for stop requests, yet waits for its runs.
    """
    job_id = context.job.id
    connection: psycopg.Connection[Any] | None = None
    try:
        while not stop.wait(ABORT_POLL_S):
            if stop_all.is_set() or context.should_abort():
                stop.set()
                continue
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
                row = connection.execute(
                    "SELECT abort_requested FROM procrastinate_jobs WHERE id = %s", (job_id,)
                ).fetchone()
            except psycopg.Error:
                continue  # a database out of reach is the watchdog's to judge
            if row is not None and row[0]:
                stop.set()
    finally:
        if connection is not None:
            connection.close()


def _run_environment(settings: Settings, request: QueuedRun) -> dict[str, str]:
    """Return the run's environment: the worker's (see :func:`_command_environment`),
    with the submitter as operator."""
    return {**_command_environment(settings), "WEBMG_OPERATOR": request.actor}


def _command_environment(settings: Settings) -> dict[str, str]:
    """Return a command's environment: this worker's, with its inventories and ledger
    (never on the command line: a URL may hold a password)."""
    env = dict(os.environ)
    env["WEBMG_INVENTORIES"] = str(settings.inventories)
    env["WEBMG_LEDGER_URL"] = settings.ledger_url
    return env


def _report(stdout: str) -> dict[str, Any]:
    """Given a run's output (``run --json``), return its report, empty if it printed none."""
    try:
        document = json.loads(stdout)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


async def sweep(
    settings: Settings, app: App, *, stalled_after: float = STALLED_AFTER_S
) -> list[str]:
    """Given the settings and the queue, open in this event loop, close the runs of dead
    processes on this controller and settle the jobs their workers left; return one line
    per job settled.

    A job is left when its run names a worker of this controller that is gone, or when
    its worker has not beaten its heartbeat for ``stalled_after`` seconds.
    """
    await asyncio.to_thread(reconcile_runs, settings)
    running = list(await app.job_manager.list_jobs_async(task=RUN_TASK, status=Status.DOING.value))
    if not running:
        return []
    dead = await asyncio.to_thread(_jobs_of_dead_workers, settings, running)
    left = {int(job.id or 0): job for job in running if job.id in dead}
    stalled = await app.job_manager.get_stalled_jobs(
        task_name=RUN_TASK, seconds_since_heartbeat=stalled_after
    )
    for job in stalled:
        left.setdefault(int(job.id or 0), job)
    return [await _settle(app, job) for job in left.values()]


def _jobs_of_dead_workers(settings: Settings, running: Sequence[Job]) -> set[int]:
    """Given the running jobs, return those whose run names a worker of this controller
    that is no longer alive."""
    wanted = {job.id for job in running}
    here = socket.gethostname()
    dead: set[int] = set()
    with open_ledger(settings.ledger_url) as ledger:
        for entry in ledger.entries(kinds=(RUN_STARTED,)):
            job = entry.payload.get("job")
            if not isinstance(job, dict) or job.get("id") not in wanted:
                continue
            if entry.payload.get("controller") != here:
                continue
            if not process.process_alive(int(job.get("worker_pid", 0))):
                dead.add(int(job["id"]))
    return dead


async def _settle(app: App, job: Job) -> str:
    """Given a job whose worker died, try it again or mark it failed; return what was done."""
    action = str(job.task_kwargs.get("action"))
    client = str(job.task_kwargs.get("client"))
    job_id = int(job.id or 0)
    if action in RETRIED_ACTIONS and job.attempts == 0:
        await app.job_manager.retry_job_by_id_async(job_id, retry_at=datetime.now(UTC))
        return f"job {job_id}: {action} for {client}: its worker died; tried once more"
    await app.job_manager.finish_job_by_id_async(job_id, Status.FAILED, delete_job=False)
    return f"job {job_id}: {action} for {client}: its worker died; not retried (a person decides)"


def work(
    settings: Settings,
    queues: Iterable[str] | None,
    concurrency: int,
    *,
    drain: bool = False,
    periodic: bool = False,
    monitoring: bool = False,
) -> None:
    """Given the settings, the queues to take jobs from (None: all), how many runs at
    once and whether to stop once nothing is left to start (``drain``), sweep, then take
    and carry out jobs until then, or until SIGINT or SIGTERM; each running run is
    finished first. With ``periodic``, it also queues the schedule and the SLA tick
    every minute; with ``monitoring``, a round of availability probes every minute.

    Raise BadInput if the queue is not on PostgreSQL, EnvironmentProblem if it cannot
    be reached.
    """
    # The schema is made (or found) before the event loop starts: it is a plain query.
    with open_queue(settings, register_tasks):
        pass
    lost = threading.Event()
    register = functools.partial(
        register_tasks, periodic=periodic, monitoring=monitoring, stop_all=lost
    )
    try:
        chosen = list(queues) if queues else None
        asyncio.run(_work(settings, register, chosen, concurrency, drain, lost))
    except (psycopg.Error, exceptions.ConnectorException):
        # Procrastinate's own side tasks may notice first; the runs under way were
        # stopped by the watchdog meanwhile (the worker waits for them before it ends).
        lost.set()
    except asyncio.CancelledError:
        if not lost.is_set():
            raise
    if lost.is_set():
        raise EnvironmentProblem(
            "the job queue's PostgreSQL could not be reached: this worker stopped taking "
            "jobs and stopped the runs it was carrying out; each is closed as interrupted "
            "by the next command once PostgreSQL is back"
        )


async def _work(
    settings: Settings,
    register: TaskRegistration,
    queues: list[str] | None,
    concurrency: int,
    drain: bool,
    lost: threading.Event,
) -> None:
    identity = WorkerIdentity.current()
    app = queue_app(settings, register)
    async with app.open_async():
        for line in await sweep(settings, app):
            LOG.warning("%s", line)
        LOG.warning(
            "worker on %s, pid %s, at revision %s: %s, %s run(s) at once%s",
            identity.controller,
            identity.pid,
            project_revision(),
            ", ".join(queues) if queues else "every queue",
            concurrency,
            ", until the queue is empty" if drain else "",
        )
        # Without queues named, a worker takes every queue (an empty list would be none).
        options: dict[str, Any] = {"queues": queues} if queues else {}
        # A draining worker waits too: Procrastinate's own "stop when nothing is found"
        # would stop while a job waits for the lock of a run this worker is finishing.
        working = asyncio.create_task(
            app.run_worker_async(
                **options,
                concurrency=concurrency,
                wait=True,
                install_signal_handlers=True,
                stalled_worker_timeout=STALLED_AFTER_S,
            )
        )
        sweeper = asyncio.create_task(_sweep_every(settings, app))
        watchdog = asyncio.create_task(_watch_database(app, working, lost))
        drainer = asyncio.create_task(_stop_when_drained(app, working, queues)) if drain else None
        try:
            await working
        except asyncio.CancelledError:
            # The drainer stops the worker by cancelling it: its runs finished first.
            if drainer is None or not drainer.done() or lost.is_set():
                raise
        finally:
            sweeper.cancel()
            watchdog.cancel()
            if drainer is not None:
                drainer.cancel()


async def _stop_when_drained(
    app: App, working: asyncio.Task[None], queues: list[str] | None
) -> None:
    """Stop the worker (gracefully: its runs finish) once no queued job it could start is
    left, seen twice in a row (a job just taken is not yet known as this worker's)."""
    seen = 0
    while not working.done():
        await asyncio.sleep(DRAIN_POLL_S)
        seen = seen + 1 if await _drained(app, queues) else 0
        if seen >= 2:
            working.cancel()
            return


async def _drained(app: App, queues: list[str] | None) -> bool:
    """Return whether no queued job of QUEUES could start on this worker, now or once its
    own runs end: each job due now (if any) is held back by a run of another worker."""
    now = datetime.now(UTC)
    waiting = await app.job_manager.list_jobs_async(status=Status.TODO.value)
    running = await app.job_manager.list_jobs_async(status=Status.DOING.value)
    with _CARRYING_LOCK:
        ours = set(_CARRYING)
    held_elsewhere = {job.lock for job in running if job.id not in ours and job.lock}
    return all(
        job.lock is not None and job.lock in held_elsewhere
        for job in waiting
        if (queues is None or job.queue in queues)
        and (job.scheduled_at is None or job.scheduled_at <= now)
    )


async def _watch_database(app: App, working: asyncio.Task[None], lost: threading.Event) -> None:
    """Look at the queue's database every :data:`WATCH_EVERY_S`; once it failed
    :data:`LOST_AFTER` times in a row, set ``lost`` (every run under way stops) and stop
    the worker (it takes no more jobs)."""
    failures = 0
    while True:
        await asyncio.sleep(WATCH_EVERY_S)
        try:
            await asyncio.wait_for(app.job_manager.check_connection_async(), WATCH_EVERY_S)
            failures = 0
        except Exception as error:  # any failure to answer is a database out of reach
            failures += 1
            cause = error.__cause__ or error
            said = str(cause).strip() or type(cause).__name__
            if isinstance(error, TimeoutError):
                said = f"no answer within {WATCH_EVERY_S:g} s"
            LOG.warning(
                "the queue's PostgreSQL did not answer (%s of %s): %s", failures, LOST_AFTER, said
            )
            if failures >= LOST_AFTER:
                lost.set()
                working.cancel()
                return


async def _sweep_every(settings: Settings, app: App) -> None:
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        for line in await sweep(settings, app):
            LOG.warning("%s", line)
