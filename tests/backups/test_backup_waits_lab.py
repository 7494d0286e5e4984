"""A backup run and its check wait for a host's timer backup instead of clashing with it.

With ``backup.timer`` in the contract, each host backs itself up between
runs (``webmg-backup.service``, started by ``webmg-backup.timer``, runs
``webmg_timer_backup.py``). Two promises keep it from clashing with a run:

- a backup run waits for a timer backup already running on a host before it
  writes that host's dumps and snapshot;
- the controller's retention and check, which need the repository alone,
  wait while a timer backup holds the repository's lock.

Each test holds a timer backup of terre-db1 at a point it controls and
releases it once it has seen the run wait: at its database dump (a table
lock held in PostgreSQL), or once its restic has locked the repository (the
target's server for that restic stopped with SIGSTOP).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.held_backups import (
    ADDRESSES,
    CLIENT,
    STOP_SERVER_AT_NEW_LOCK,
    TARGET_FOLDER,
    WATCH_FOR_COMMAND,
    BackgroundRun,
    OnHost,
    children,
    controller_repository,
    restic_locks,
    unit_command,
)
from support.lab import Lab, edited_contract
from support.waiting import wait_until

from webmg_ops.errors import ExitCode

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("prepared_target")]

HOST = "terre-db1"
DB = ADDRESSES[HOST]
TARGET = ADDRESSES["backup1"]
FOLDER = TARGET_FOLDER.format(client=CLIENT, host=HOST)
#: Far away: the timer never fires by itself while the tests run; they start its backups.
SCHEDULE = "*-01-01 03:00:00"
SERVICE = "webmg-backup.service"
#: How the run asks whether the service runs a timer backup.
ASKED = ("systemctl", "is-active", SERVICE)
#: The role's files on the host: the timer's runs not yet recorded, and the run's hold.
RUNS_LOG = "/var/lib/webmg-backup/timer-runs.jsonl"
HOLD_FILE = "/var/lib/webmg-backup/run-in-progress"
#: What the timer installs on the host; removed when the tests are done.
TIMER_FILES = (
    "/etc/systemd/system/webmg-backup.timer",
    "/etc/systemd/system/webmg-backup.service",
    "/etc/webmg-backup",
    "/usr/local/lib/webmg-backup",
    RUNS_LOG,
    RUNS_LOG + ".recorded",
)
#: Within this, a run waiting for the timer's service asks again whether it still runs.
ASKING_AGAIN_S = 90.0
#: Long enough for any step of these tests; a wait that takes longer fails the test.
DEADLINE_S = 420.0


def with_timer(data: dict[str, Any]) -> None:
    """Give the contract a backup timer."""
    data["backup"]["timer"] = SCHEDULE


@pytest.fixture(scope="module")
def timer_on_host(lab: Lab, prepared_target: None) -> Iterator[None]:
    """terre-db1 with its backup timer installed by a backup run; removed afterwards."""
    try:
        with edited_contract(lab.inventories, CLIENT, with_timer):
            done = lab.cli(
                "run", CLIENT, "backup", "--limit", HOST, "--reason", "a timer", timeout=600
            )
        assert done.returncode == ExitCode.OK, done.stdout[-3000:] + done.stderr[-3000:]
        assert lab.ssh(DB, f"systemctl cat {SERVICE}").returncode == 0
        yield
    finally:
        # As the role removes a timer the contract no longer sets, and its runs' records.
        remove = (
            "systemctl disable --now webmg-backup.timer; systemctl stop webmg-backup.service; "
            f"rm -rf {' '.join(TIMER_FILES)}; systemctl daemon-reload"
        )
        lab.ssh(DB, f"sudo sh -c '{remove}'")


def service_state(lab: Lab) -> str:
    """Return systemd's state of the timer's service on the host."""
    return lab.ssh(DB, f"systemctl is-active {SERVICE}").stdout.strip()


def psql(lab: Lab, query: str) -> str:
    """Return what QUERY answers in the host's demo database (unaligned, tuples only)."""
    done = lab.ssh(DB, f"sudo -u postgres psql -X -At -d demo -c {shlex.quote(query)}")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_backup_run_waits_for_a_timer_backup_already_running(
    lab: Lab, timer_on_host: None, tmp_path: Path
) -> None:
    """A timer backup held at its database dump: the run asks systemd again and again
    whether it still runs, writes neither its hold nor its dumps meanwhile; released,
    the timer backup ends, the run takes its own and records the timer's as done."""
    # A transaction holding the dumped table: pg_dump waits for it, and with it the timer.
    table_lock = OnHost(
        lab,
        DB,
        ["-u", "postgres", "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "demo"],
        with_input=True,
    )
    watcher = run = None
    try:
        table_lock.send(
            "BEGIN;\nLOCK TABLE public.bookings IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n"
        )
        assert table_lock.line(60) == "locked"
        # The host's clock, as the timer's record of its run reads it.
        since = lab.ssh(DB, "date -u +%Y-%m-%dT%H:%M:%SZ").stdout.strip()
        started = lab.ssh(DB, f"sudo systemctl start --no-block {SERVICE}")
        assert started.returncode == 0, started.stderr
        waiting_dump = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'"
        )
        assert wait_until(lambda: psql(lab, waiting_dump) == "1", 120)
        assert service_state(lab) == "activating"

        # Two looks at the service by the run: it asked, did not go on, and asked again.
        watcher = OnHost(
            lab,
            DB,
            ["python3", "-c", WATCH_FOR_COMMAND, str(DEADLINE_S), "2", *ASKED],
            with_input=True,
        )
        assert watcher.line(60) == "ready"
        with edited_contract(lab.inventories, CLIENT, with_timer):
            run = BackgroundRun(lab, tmp_path, "while a timer backup runs", "--limit", HOST)
            assert watcher.line(DEADLINE_S) == "seen"
            # The role asks every backup_lock_delay_s (15 s): a run that went on never asks again.
            assert watcher.line(ASKING_AGAIN_S) == "seen"
            # It is waiting: not finished, no hold of its own, no dump of its own.
            assert run.running() and run.finished_entry() is None
            assert lab.ssh(DB, f"sudo test -e {HOLD_FILE}").returncode == 1
            assert (
                psql(
                    lab, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'"
                )
                == "1"
            )
            assert service_state(lab) == "activating"
            # Released: the timer's dump, snapshot and record, then the run's own backup.
            table_lock.send("COMMIT;\n")
            assert table_lock.wait(60) == 0
            code, report = run.report(DEADLINE_S)
        assert code == ExitCode.OK, json.dumps(report["hosts"])
    finally:
        for started_on_host in (table_lock, watcher):
            if started_on_host is not None:
                started_on_host.end()
        if run is not None:
            run.stop()
        if not wait_until(lambda: service_state(lab) != "activating", 120):
            lab.ssh(DB, f"sudo systemctl stop {SERVICE}")
    payload = run.finished_entry()
    assert payload is not None and payload["outcome"] == "succeeded", payload
    host = payload["evidence"]["hosts"][HOST]
    # The run recorded the timer backup it waited for: it ran whole, it was not skipped.
    (timer_run,) = [item for item in host["timer"]["runs"] if item["at"] >= since]
    assert timer_run["ok"] is True and timer_run["skipped"] is False, timer_run
    assert timer_run["snapshot_id"] and timer_run["error"] is None, timer_run
    assert host["snapshot_id"] and not host["snapshot_id"].startswith(timer_run["snapshot_id"])
    # Its kept output shows what it did meanwhile: it found the service still running.
    output = (
        lab.settings.var_dir / "runs" / report["run_id"] / "ansible" / "ansible-output.masked.txt"
    ).read_text()
    retries = [
        line
        for line in output.splitlines()
        if line.startswith(f"retrying: [{HOST}]") and '"activating"' in line
    ]
    assert len(retries) >= 1, output[-3000:]


def test_the_check_waits_while_a_timer_backup_holds_the_lock(
    lab: Lab, timer_on_host: None, tmp_path: Path
) -> None:
    """A timer backup that has locked the host's repository, held there: the run backs up
    beside it, then its retention is refused the lock and waits; released, the timer
    backup ends and removes its lock, and retention and check run, with its snapshot."""
    repository = controller_repository(lab, tmp_path / "restic-cache", HOST)
    stopper = OnHost(
        lab, TARGET, ["python3", "-c", STOP_SERVER_AT_NEW_LOCK, FOLDER, "300"], with_input=True
    )
    timer = run = None
    stopped: list[int] = []
    try:
        assert stopper.line(60) == "ready"
        # What the service runs, run as it: a timer backup beside the run (the service
        # itself would make the run wait first, the other promise).
        timer = OnHost(lab, DB, unit_command(lab, DB, SERVICE))
        held = json.loads(stopper.line(300))
        stopped = held.get("stopped", [])
        assert held["locks"] and stopped, held
        # Held once its lock is written and before its snapshot is.
        assert held["snapshots"] == held["snapshots_before"], held
        (lock_id,) = held["locks"]
        locks = restic_locks(repository)
        assert locks[lock_id]["hostname"] == HOST, locks

        with edited_contract(lab.inventories, CLIENT, with_timer):
            run = BackgroundRun(
                lab, tmp_path, "while a timer backup holds the lock", "--limit", HOST
            )
            tried: set[int] = set()

            def forget_refused() -> bool:
                # restic forget, started by the run, has ended and the run goes on.
                running = children(run.process.pid, "restic", "forget")
                tried.update(running)
                return bool(tried - running) or not run.running()

            assert wait_until(forget_refused, DEADLINE_S)
            # It is waiting: not finished, the timer backup's lock still there.
            assert run.running() and run.finished_entry() is None, run.output.read_text()
            assert lock_id in restic_locks(repository)
            # Released: the timer backup ends and removes its lock.
            released = lab.ssh(TARGET, f"sudo kill -CONT {' '.join(map(str, stopped))}")
            assert released.returncode == 0, released.stderr
            stopped = []
            assert timer.wait(DEADLINE_S) == 0, timer.errors()
            code, report = run.report(DEADLINE_S)
        assert code == ExitCode.OK, json.dumps(report["hosts"])
    finally:
        if stopped:
            lab.ssh(TARGET, f"sudo kill -CONT {' '.join(map(str, stopped))}")
        for started_on_host in (stopper, timer):
            if started_on_host is not None:
                started_on_host.end()
        if run is not None:
            run.stop()
    payload = run.finished_entry()
    assert payload is not None and payload["outcome"] == "succeeded", payload
    maintenance = payload["evidence"]["repository_maintenance"]
    assert maintenance["check"]["ok"] is True and maintenance["check"]["errors"] == [], maintenance
    # The retention ran once the timer's snapshot was there: it kept or removed it.
    record = json.loads(lab.ssh(DB, f"sudo tail -n 1 {RUNS_LOG}").stdout)
    assert record["ok"] is True, record
    seen = maintenance["forget"]["kept_ids"] + maintenance["forget"]["removed_ids"]
    assert any(snapshot.startswith(record["snapshot_id"]) for snapshot in seen), (record, seen)
    assert lock_id not in restic_locks(repository)
