"""Jobs as workers take them: one client at a time, and the jobs of dead workers tried
once more or left to a person.

The test plays the dead worker with the queue's own calls: it registers a worker,
takes two jobs (a check and an update, for two clients) and records for each the
``run-started`` entry that a worker's run writes, naming a worker process that has
ended. A sweep then closes both runs as ``interrupted`` (the engine's reconciliation),
queues the check once more and marks the update failed; a second sweep changes
nothing. A job whose worker stopped beating its heartbeat, with no run recorded,
is settled the same way. Workers here are played with the queue's own calls
(register, fetch), so that what each may take is read without a run.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from procrastinate.jobs import Status

from webmg_ops.engine.reconcile import run_dir
from webmg_ops.ledger import open_ledger
from webmg_ops.queue.app import open_queue, queue_app
from webmg_ops.queue.jobs import new_request, submit
from webmg_ops.queue.worker import register_tasks, sweep
from webmg_ops.runs.records import RUN_FINISHED, RUN_STARTED
from webmg_ops.settings import Settings

pytestmark = pytest.mark.tools


def _ended_pid() -> int:
    """Return the PID of a process that has ended (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _settings(inventories: Path, ledger_url: str) -> Settings:
    return Settings(inventories, ledger_url, Path(os.environ["WEBMG_VAR"]))


def _queue_two(settings: Settings) -> tuple[int, int]:
    with open_queue(settings, register_tasks) as app:
        check = submit(settings, app, new_request(settings, "atelier-nord", "check"), None)
        update = submit(settings, app, new_request(settings, "riverton", "update"), None)
    return check, update


def _record_run(settings: Settings, client: str, action: str, job: int, worker_pid: int) -> str:
    """Record the run-started entry of a worker's run whose process and worker are gone."""
    run_id = f"20261201T100000Z-{client}-{action}-{job:03x}{worker_pid % 4096:03x}"
    gone = _ended_pid()
    with open_ledger(settings.ledger_url) as ledger:
        ledger.append(
            RUN_STARTED,
            client,
            {
                "run_id": run_id,
                "action": action,
                "check": False,
                "hosts": [],
                "controller": socket.gethostname(),
                "pid": gone,
                "pid_start": 1,
                "job": {"id": job, "worker_pid": worker_pid},
            },
        )
    run_dir(settings, run_id).mkdir(parents=True)
    return run_id


def _statuses(app: Any) -> dict[int, tuple[str, int]]:
    return {
        int(job.id): (str(job.status), job.attempts)
        for job in app.job_manager.list_jobs(task="run")
    }


async def _take(settings: Settings, count: int) -> list[int]:
    """Register a worker and take COUNT jobs as it would; return their ids."""
    app = queue_app(settings, register_tasks)
    async with app.open_async():
        worker = await app.job_manager.register_worker()
        taken = [
            await app.job_manager.fetch_job(queues=None, worker_id=worker) for _ in range(count)
        ]
    return [int(job.id) for job in taken if job is not None]


async def _sweep(settings: Settings, stalled_after: float) -> list[str]:
    app = queue_app(settings, register_tasks)
    async with app.open_async():
        return await sweep(settings, app, stalled_after=stalled_after)


def test_the_jobs_of_a_dead_worker_are_retried_once_or_failed(
    inventories: Path, ledger_url: str
) -> None:
    settings = _settings(inventories, ledger_url)
    check, update = _queue_two(settings)
    assert sorted(asyncio.run(_take(settings, 2))) == sorted([check, update])
    dead_worker = _ended_pid()
    runs = {
        _record_run(settings, "atelier-nord", "check", check, dead_worker): "check",
        _record_run(settings, "riverton", "update", update, dead_worker): "update",
    }

    # The worker's heartbeat is fresh: only the dead PID tells that its jobs are left.
    lines = asyncio.run(_sweep(settings, stalled_after=3600))

    assert sorted(lines) == sorted(
        [
            f"job {check}: check for atelier-nord: its worker died; tried once more",
            f"job {update}: update for riverton: its worker died; not retried (a person decides)",
        ]
    )
    with open_ledger(ledger_url) as ledger:
        finished = {e.payload["run_id"]: e.payload for e in ledger.entries(kinds=(RUN_FINISHED,))}
    assert set(finished) == set(runs)
    assert {payload["outcome"] for payload in finished.values()} == {"interrupted"}
    with open_queue(settings, register_tasks) as app:
        assert _statuses(app) == {check: ("todo", 1), update: ("failed", 1)}
    # Settled once: a second sweep finds nothing left.
    assert asyncio.run(_sweep(settings, stalled_after=3600)) == []

    # Tried once more, the check dies with its worker again: now a person decides.
    assert asyncio.run(_take(settings, 1)) == [check]
    _record_run(settings, "atelier-nord", "check", check, _ended_pid())
    assert asyncio.run(_sweep(settings, stalled_after=3600)) == [
        f"job {check}: check for atelier-nord: its worker died; not retried (a person decides)"
    ]
    with open_queue(settings, register_tasks) as app:
        assert _statuses(app)[check] == ("failed", 2)


def test_a_job_whose_worker_stopped_beating_is_settled_without_a_run(
    inventories: Path, ledger_url: str
) -> None:
    settings = _settings(inventories, ledger_url)
    check, update = _queue_two(settings)
    asyncio.run(_take(settings, 2))
    # Neither job recorded a run: a heartbeat older than the limit alone tells.
    assert asyncio.run(_sweep(settings, stalled_after=3600)) == []
    lines = asyncio.run(_sweep(settings, stalled_after=0))
    assert len(lines) == 2
    with open_queue(settings, register_tasks) as app:
        assert _statuses(app) == {check: ("todo", 1), update: ("failed", 1)}


async def _take_all(settings: Settings) -> list[int]:
    """Register a worker and take every job it may start now; return their ids."""
    app = queue_app(settings, register_tasks)
    taken: list[int] = []
    async with app.open_async():
        worker = await app.job_manager.register_worker()
        while (job := await app.job_manager.fetch_job(queues=None, worker_id=worker)) is not None:
            taken.append(int(job.id or 0))
    return taken


def test_one_client_never_has_two_jobs_running_whichever_worker_asks(
    inventories: Path, ledger_url: str
) -> None:
    settings = _settings(inventories, ledger_url)
    with open_queue(settings, register_tasks) as app:
        check = submit(settings, app, new_request(settings, "atelier-nord", "check"), None)
        drill = submit(settings, app, new_request(settings, "atelier-nord", "drill"), None)
        other = submit(settings, app, new_request(settings, "riverton", "check"), None)
    # One worker takes all it may: one job of each client, never both of atelier-nord's.
    assert sorted(asyncio.run(_take_all(settings))) == sorted([check, other])
    # A second worker finds nothing it may start while the first holds the client.
    assert asyncio.run(_take_all(settings)) == []
    asyncio.run(_finish(settings, check))
    assert asyncio.run(_take_all(settings)) == [drill]


async def _finish(settings: Settings, job_id: int) -> None:
    """Mark a job done, as its worker would."""
    app = queue_app(settings, register_tasks)
    async with app.open_async():
        await app.job_manager.finish_job_by_id_async(job_id, Status.SUCCEEDED, delete_job=False)
