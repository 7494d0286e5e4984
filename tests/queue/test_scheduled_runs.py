"""``schedule``: the runs the contracts make due, queued once, updates in the next window.

The instant is injected (``--at``). What should be queued is read from ``due --json``
at the same instant (the clients' windows, freezes and due actions as ``due`` shows
them), and restated here as the rule the schedule follows: every due action (the
report as the client's report), a drift check as a hardening in check mode, and an
update or a hardening no earlier than the client's window when none is open now.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli_result import CliResult
from support.http_services import Route, serve
from support.waiting import wait_until

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.ledger.samples import read_samples
from webmg_ops.queue.app import queue_app
from webmg_ops.queue.worker import register_tasks
from webmg_ops.settings import Settings

pytestmark = pytest.mark.tools

Cli = Callable[..., CliResult]

#: A Tuesday evening in December: some clients' windows are open, others' are ahead.
AT = "2026-12-01T21:30Z"

Key = tuple[str, str, bool]


def _expected(cli: Cli) -> dict[Key, datetime | None]:
    """Return the runs ``due`` says should be queued at AT, with their earliest start."""
    done = cli("due", "--at", AT, "--json")
    assert done.code == ExitCode.OK, done.err
    expected: dict[Key, datetime | None] = {}
    for client in json.loads(done.out):
        open_now = client["in_window"] and not client["in_freeze"]
        ahead = client["next_window"]
        for action in client["due"]:
            if action == "drift":
                expected[(client["client"], "harden", True)] = None
            elif action in ("update", "harden"):
                if open_now:
                    expected[(client["client"], action, False)] = None
                elif ahead is not None:
                    start = datetime.fromisoformat(ahead["start"]).astimezone(UTC)
                    expected[(client["client"], action, False)] = start
            else:
                expected[(client["client"], action, False)] = None
    return expected


def _scheduled(cli: Cli, *flags: str, at: str | None = AT) -> list[dict[str, Any]]:
    done = cli("schedule", *(("--at", at) if at else ()), "--json", *flags)
    assert done.code == ExitCode.OK, done.err
    return list(json.loads(done.out))


def _key(item: dict[str, Any]) -> Key:
    return (item["client"], item["action"], item["check"])


def _requested(ledger_url: str) -> int:
    with open_ledger(ledger_url) as ledger:
        return sum(1 for entry in ledger.entries() if entry.kind == "run-requested")


def _has_offsite(inventories: Path, client: str) -> bool:
    contract = yaml.safe_load((inventories / client / "client.yml").read_text())
    return bool((contract.get("backup") or {}).get("offsite"))


def test_the_due_runs_are_queued_once_with_the_window_as_their_earliest_start(
    cli: Cli, ledger_url: str, inventories: Path
) -> None:
    expected = _expected(cli)
    # The demo clients make both cases: updates held for a window, and runs due now.
    assert any(start is not None for start in expected.values())
    assert any(start is None for start in expected.values())

    dry = _scheduled(cli, "--dry-run")
    assert {_key(item) for item in dry} == set(expected)
    assert {item["note"] for item in dry} == {"due"}
    # A report is published where the contract names an offsite target to publish to.
    reports = {item["client"]: item["publish"] for item in dry if item["action"] == "report"}
    assert reports == {client: _has_offsite(inventories, client) for client in reports}
    assert set(reports.values()) == {True, False}
    assert not any(item["publish"] for item in dry if item["action"] != "report")
    assert _requested(ledger_url) == 0

    first = _scheduled(cli)
    assert {_key(item): _start(item) for item in first} == expected
    assert {item["note"] for item in first} == {"queued"}
    queued = {job["id"]: job for job in json.loads(cli("queue", "--json").out)}
    assert {item["job"] for item in first} == set(queued)
    for item in first:
        job = queued[item["job"]]
        assert (job["client"], job["action"], job["check"]) == _key(item)
        assert job["publish"] == item["publish"]
        assert _start(job, "scheduled_at") == _start(item)
    assert _requested(ledger_url) == len(expected)

    # A minute later, nothing is queued twice.
    again = _scheduled(cli)
    assert {item["note"] for item in again} == {"already queued"}
    assert _requested(ledger_url) == len(expected)


def _start(item: dict[str, Any], field: str = "not_before") -> datetime | None:
    text = item[field]
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def test_a_run_already_running_is_not_queued_again(
    cli: Cli, ledger_url: str, inventories: Path
) -> None:
    first = _scheduled(cli)
    settings = Settings(inventories, ledger_url, Path(os.environ["WEBMG_VAR"]))
    taken = asyncio.run(_take_one(settings))
    (running,) = [item for item in first if item["job"] == taken]
    # Taken by a worker, the job no longer waits: only the running check stops a copy.
    again = {_key(item): item["note"] for item in _scheduled(cli)}
    assert again.pop(_key(running)) == "already running"
    assert set(again.values()) == {"already queued"}


async def _take_one(settings: Settings) -> int:
    app = queue_app(settings, register_tasks)
    async with app.open_async():
        worker = await app.job_manager.register_worker()
        job = await app.job_manager.fetch_job(queues=None, worker_id=worker)
    assert job is not None and job.id is not None
    return job.id


def _periodic_worker(
    inventories: Path, ledger_url: str, *options: str, until: Callable[[], bool]
) -> None:
    """Run ``webmg-ops worker OPTIONS`` on the periodic queue alone until UNTIL holds (90 s
    at most), then stop it with SIGTERM: it must end with status 0."""
    env = dict(os.environ, WEBMG_INVENTORIES=str(inventories), WEBMG_LEDGER_URL=ledger_url)
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("webmg-ops")),
            "worker",
            *options,
            "--queues",
            "periodic",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        done = wait_until(until, timeout_s=90, every_s=0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=60)
    assert done, err
    assert worker.returncode == 0, err


def _periodic_jobs(settings: Settings) -> dict[str, str]:
    """Return the status of each periodic job (schedule, tick) by task name."""
    from webmg_ops.queue.app import open_queue

    with open_queue(settings, register_tasks) as app:
        return {
            str(job.task_name): str(job.status)
            for job in app.job_manager.list_jobs(queue="periodic")
        }


def test_a_scheduling_worker_queues_the_due_runs_and_ticks_every_minute(
    cli: Cli, ledger_url: str, inventories: Path
) -> None:
    settings = Settings(inventories, ledger_url, Path(os.environ["WEBMG_VAR"]))
    # Periodic jobs only: the runs it queues stay queued (no host is reached here).
    _periodic_worker(
        inventories,
        ledger_url,
        "--schedule",
        until=lambda: _periodic_jobs(settings) == {"schedule": "succeeded", "tick": "succeeded"},
    )
    queued = json.loads(cli("queue", "--json").out)
    due_now = {_key(item) for item in _scheduled(cli, "--dry-run", at=None)}
    assert {(job["client"], job["action"], job["check"]) for job in queued} == due_now
    assert {job["status"] for job in queued} == {"queued"}


def _monitor_jobs(settings: Settings) -> list[str]:
    """Return the status of each periodic round of probes queued so far."""
    from webmg_ops.queue.app import open_queue

    with open_queue(settings, register_tasks) as app:
        return [
            str(job.status)
            for job in app.job_manager.list_jobs(queue="periodic")
            if job.task_name == "monitor"
        ]


def test_a_monitoring_worker_probes_every_check_once_a_minute_and_records_the_samples(
    cli: Cli, ledger_url: str, inventories: Path
) -> None:
    """Every client's health checks point at two services on loopback, one up and one
    failing: the worker's first round records one sample of each check of the clients
    whose policy monitors availability (``policy`` shows an interval), up or down (a
    service down is data: the round succeeds); later rounds probe only what is due."""
    settings = Settings(inventories, ledger_url, Path(os.environ["WEBMG_VAR"]))
    with serve({"/health": Route()}) as up, serve({"/health": Route(status=502)}) as down:
        expected: set[tuple[str, str, bool]] = set()
        unmonitored: set[str] = set()
        for contract in sorted(inventories.glob("*/client.yml")):
            data = yaml.safe_load(contract.read_text())
            policy = cli("policy", data["name"], "--json")
            assert policy.code == ExitCode.OK, policy.err
            monitored = json.loads(policy.out)["settings"]["monitoring.interval"]["value"]
            if data.get("health_checks"):
                data["health_checks"] = [
                    {"name": "site", "url": up.url("/health")},
                    {"name": "api", "url": down.url("/health")},
                ]
                contract.write_text(yaml.safe_dump(data, sort_keys=False))
                if monitored is not None:
                    expected |= {(data["name"], "site", True), (data["name"], "api", False)}
                else:
                    unmonitored.add(data["name"])
        # The demo has both: clients monitored, and one whose level monitors nothing.
        assert len({client for client, _check, _up in expected}) > 1 and unmonitored
        _periodic_worker(
            inventories,
            ledger_url,
            "--monitor",
            until=lambda: "succeeded" in _monitor_jobs(settings),
        )
    rounds = _monitor_jobs(settings)
    assert set(rounds) == {"succeeded"}, rounds
    # Only the probes: neither the schedule nor the tick was asked for.
    assert not _requested(ledger_url)
    with open_ledger(ledger_url) as ledger:
        for client in {client for client, _check, _up in expected}:
            samples = read_samples(ledger, client)
            # The first round probed each check; a later one (the test may cross a
            # minute) only those due again, so at most once a round.
            assert {(s.check, s.up) for s in samples} == {
                (check, is_up) for owner, check, is_up in expected if owner == client
            }, client
            assert len(samples) <= 2 * len(rounds), client
        for client in unmonitored:
            assert read_samples(ledger, client) == [], client
