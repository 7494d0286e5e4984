"""Workers on the rehearsal lab: queued runs carried out on real hosts over real SSH.

The ledger and the queue share a PostgreSQL database of the test's own; the hosts, keys
and known_hosts are the lab's. Workers are ``webmg-ops worker`` processes, each in a
process group of its own, as two engineers' terminals would hold them. Where a run
must still be running when the test acts, the worker's processes carry a hook
(``tests/queue/hook``) under which ``check`` reaches its host, then holds on the
controller and touches a file named for its client's first host.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.lab import Lab
from support.ledger import postgres_database
from support.postgres_server import pg_ctl, session_postgres
from support.processes import Process, listing, play_processes, processes
from support.waiting import wait_until

from webmg_ops.ansible.runner import CONTROL_DIR_FILE, PID_FILE
from webmg_ops.backups.scratchdb import scratch_server
from webmg_ops.errors import ExitCode
from webmg_ops.ledger import Entry, open_ledger
from webmg_ops.process import process_alive

pytestmark = pytest.mark.lab

TESTS = Path(__file__).resolve().parents[1]
HOOK = Path(__file__).resolve().parent / "hook"
CLIENTS = {
    "alpenhof": "alpenhof-web1",
    "atelier-nord": "atelier-db1",
    "riverton": "riverton-web1",
    "terre-solidaire": "terre-web1",
}
#: How long a run may take to reach its hold, or a drained queue to be done.
RUN_TIMEOUT_S = 300
#: How long a stopped worker or run may take to end.
STOP_TIMEOUT_S = 120


class Fleet:
    """The test's queue database, its workers, and what they recorded."""

    def __init__(self, lab: Lab, ledger_url: str, holding: Path) -> None:
        self.lab = lab
        self.ledger_url = ledger_url
        self.holding = holding
        self.workers: list[subprocess.Popen[str]] = []
        self.logs: dict[int, list[str]] = {}
        self.env = {
            **lab.env,
            # Runs record into the test's ledger, so they publish its checkpoints apart.
            "WEBMG_INVENTORIES": str(lab.inventories_apart(holding.parent)),
            "WEBMG_LEDGER_URL": ledger_url,
            "WEBMG_OPERATOR": "Ana Lima",
            "WEBMG_TEST_HOLDING_DIR": str(holding),
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``webmg-ops ARGS`` on the test's queue and the lab's hosts."""
        return self.lab.cli(*args, extra_env=self.env)

    def submit(self, client: str, *flags: str) -> int:
        """Queue a check of CLIENT; return its job."""
        done = self.cli("submit", client, "check", "--reason", "worker test", "--json", *flags)
        assert done.returncode == ExitCode.OK, done.stderr
        job: int = json.loads(done.stdout)["job"]
        return job

    def start_worker(self, *flags: str, held: bool = False) -> subprocess.Popen[str]:
        """Start a worker process (its checks held, if asked); return it."""
        env = dict(self.env)
        if held:
            env["PYTHONPATH"] = os.pathsep.join([str(HOOK), str(TESTS)])
            env["WEBMG_TEST_HELD_CHECK"] = "1"
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("webmg-ops")), "worker", *flags],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.workers.append(worker)
        lines: list[str] = []
        self.logs[worker.pid] = lines

        def read() -> None:
            assert worker.stderr is not None
            lines.extend(worker.stderr)

        threading.Thread(target=read, daemon=True).start()
        return worker

    def logged(self, worker: subprocess.Popen[str], text: str) -> bool:
        """Return whether WORKER has written TEXT to its log so far."""
        return any(text in line for line in list(self.logs[worker.pid]))

    def log(self, worker: subprocess.Popen[str]) -> str:
        return "".join(self.logs[worker.pid])

    def jobs(self) -> dict[int, dict[str, Any]]:
        """Return ``queue --json`` by job id."""
        done = self.cli("queue", "--json")
        assert done.returncode == ExitCode.OK, done.stderr
        return {job["id"]: job for job in json.loads(done.stdout)}

    def status(self, job: int) -> str:
        status: str = self.jobs()[job]["status"]
        return status

    def entries(self, kind: str) -> list[Entry]:
        with open_ledger(self.ledger_url) as ledger:
            return list(ledger.entries(kinds=(kind,)))

    def held(self, host: str) -> bool:
        return (self.holding / host).exists()

    def stop_all(self) -> None:
        """End every worker still running (SIGTERM, then SIGKILL) and what it started."""
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


@pytest.fixture
def fleet(lab: Lab, tmp_path: Path) -> Iterator[Fleet]:
    """Return a fleet on a new PostgreSQL database; every worker ends with the test."""
    holding = tmp_path / "holding"
    holding.mkdir()
    with session_postgres(), postgres_database() as url:
        fleet = Fleet(lab, url, holding)
        try:
            yield fleet
        finally:
            fleet.stop_all()
            lab.end_ssh_masters()


def test_two_workers_drain_four_clients_each_run_recorded_once(fleet: Fleet) -> None:
    jobs = {fleet.submit(client): client for client in CLIENTS}
    workers = [fleet.start_worker("--drain"), fleet.start_worker("--drain")]
    for worker in workers:
        assert worker.wait(timeout=RUN_TIMEOUT_S) == 0, fleet.log(worker)
    assert {job: fleet.status(job) for job in jobs} == dict.fromkeys(jobs, "done")
    started = fleet.entries("run-started")
    assert sorted(entry.payload["job"]["id"] for entry in started) == sorted(jobs)
    assert {entry.client for entry in started} == set(CLIENTS)
    assert {entry.actor for entry in started} == {"Ana Lima"}
    # Both workers carried out runs: the PIDs the runs name are the two workers'.
    assert {entry.payload["job"]["worker_pid"] for entry in started} == {w.pid for w in workers}
    finished = fleet.entries("run-finished")
    assert sorted(entry.payload["run_id"] for entry in finished) == sorted(
        entry.payload["run_id"] for entry in started
    )
    assert {entry.payload["outcome"] for entry in finished} == {"succeeded"}


def test_a_clients_second_job_waits_and_a_running_job_is_canceled_as_a_run(
    fleet: Fleet,
) -> None:
    host = CLIENTS["atelier-nord"]
    first = fleet.submit("atelier-nord", "--limit", host)
    # Another run of the same client: the same check in check mode.
    second = fleet.submit("atelier-nord", "--check", "--limit", host)
    fleet.start_worker("--concurrency", "2", held=True)
    assert wait_until(lambda: fleet.held(host), RUN_TIMEOUT_S), "the first run never held"
    # The worker could take two jobs at once, but not two of one client.
    assert (fleet.status(first), fleet.status(second)) == ("running", "queued")

    canceled = fleet.cli("cancel", str(first))
    assert canceled.returncode == ExitCode.OK, canceled.stderr
    assert "stop asked" in canceled.stderr
    assert wait_until(lambda: fleet.status(first) == "stopped", STOP_TIMEOUT_S)
    (closed,) = fleet.entries("run-finished")
    assert closed.payload["outcome"] == "canceled"
    (started,) = fleet.entries("run-started")
    assert started.payload["job"]["id"] == first

    # The client free, its second job starts.
    (fleet.holding / host).unlink()
    assert wait_until(lambda: fleet.held(host), RUN_TIMEOUT_S), "the second run never held"
    assert fleet.status(second) == "running"
    assert fleet.cli("cancel", str(second)).returncode == ExitCode.OK
    assert wait_until(lambda: fleet.status(second) == "stopped", STOP_TIMEOUT_S)


def _play_of(fleet: Fleet, run_id: str) -> list[Process]:
    """Return the processes of a run's play: ansible-playbook, all it started, its SSH
    masters."""
    private = Path(fleet.lab.env["WEBMG_VAR"]) / "runs" / run_id / "ansible"
    control = Path((private / CONTROL_DIR_FILE).read_text().strip())
    return play_processes(int((private / PID_FILE).read_text()), control)


def test_a_killed_worker_leaves_its_run_interrupted_and_the_next_worker_retries_the_check(
    fleet: Fleet,
) -> None:
    host = CLIENTS["riverton"]
    job = fleet.submit("riverton", "--limit", host)
    worker = fleet.start_worker(held=True)
    assert wait_until(lambda: fleet.held(host), RUN_TIMEOUT_S), "the run never held"
    (started,) = fleet.entries("run-started")
    play = _play_of(fleet, started.payload["run_id"])
    assert any(item.command == "sleep 300" for item in play), listing(processes())

    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    (fleet.holding / host).unlink()
    # The kernel ends the run with its worker; the run stays open in the ledger until a
    # worker of this controller starts.
    assert wait_until(lambda: not process_alive(int(started.payload["pid"])), STOP_TIMEOUT_S)
    assert fleet.entries("run-finished") == []

    fleet.start_worker(held=True)
    assert wait_until(lambda: bool(fleet.entries("run-finished")), STOP_TIMEOUT_S)
    (closed,) = fleet.entries("run-finished")
    assert closed.payload["run_id"] == started.payload["run_id"]
    assert closed.payload["outcome"] == "interrupted"
    # Nothing of the killed run's play is left: ansible-playbook, its workers, SSH.
    wait_until(lambda: not any(item.alive() for item in play), STOP_TIMEOUT_S)
    assert [item for item in play if item.alive()] == [], listing(play)
    # A check changes nothing on the hosts: tried once more, by the new worker.
    assert wait_until(lambda: fleet.held(host), RUN_TIMEOUT_S), "the check was not tried again"
    assert [entry.payload["job"]["id"] for entry in fleet.entries("run-started")] == [job, job]
    assert fleet.jobs()[job]["attempts"] == 1
    assert fleet.cli("cancel", str(job)).returncode == ExitCode.OK
    assert wait_until(lambda: fleet.status(job) == "stopped", STOP_TIMEOUT_S)


def test_a_worker_that_loses_postgresql_mid_run_stops_it_and_nothing_is_lost(
    lab: Lab, tmp_path: Path
) -> None:
    host = CLIENTS["terre-solidaire"]
    holding = tmp_path / "holding"
    holding.mkdir()
    with scratch_server(listen_tcp=True) as server:
        fleet = Fleet(lab, server.url, holding)
        try:
            fleet.submit("terre-solidaire", "--limit", host)
            worker = fleet.start_worker(held=True)
            assert wait_until(lambda: fleet.held(host), RUN_TIMEOUT_S), "the run never held"
            (started,) = fleet.entries("run-started")
            play = _play_of(fleet, started.payload["run_id"])

            pg_ctl(server, "stop")
            assert worker.wait(timeout=STOP_TIMEOUT_S) == ExitCode.ENVIRONMENT
            reader_done = wait_until(lambda: fleet.logged(worker, "could not be reached"), 30)
            err = fleet.log(worker)
            assert reader_done, err
            assert "could not be reached" in err and "Traceback" not in err, err
            # The run was stopped with its worker, and its play with it.
            assert not process_alive(int(started.payload["pid"]))
            wait_until(lambda: not any(item.alive() for item in play), STOP_TIMEOUT_S)
            assert [item for item in play if item.alive()] == [], listing(play)

            # PostgreSQL back: the next command closes the run; nothing is missing.
            pg_ctl(server, "start")
            assert fleet.cli("runs", "--json").returncode == ExitCode.OK
            (closed,) = fleet.entries("run-finished")
            assert closed.payload["run_id"] == started.payload["run_id"]
            assert closed.payload["outcome"] in ("interrupted", "canceled")
            assert fleet.cli("ledger", "verify").returncode == ExitCode.OK
        finally:
            fleet.stop_all()
            lab.end_ssh_masters()


def test_ctrl_c_stops_a_worker_taking_jobs_and_its_run_goes_on_until_it_ends(
    fleet: Fleet,
) -> None:
    host = CLIENTS["alpenhof"]
    first = fleet.submit("alpenhof", "--limit", host)
    worker = fleet.start_worker(held=True)
    assert wait_until(lambda: fleet.held(host), RUN_TIMEOUT_S), "the run never held"
    second = fleet.submit("atelier-nord")

    # Ctrl-C at the worker's terminal: SIGINT to its process group.
    os.killpg(worker.pid, signal.SIGINT)
    (started,) = fleet.entries("run-started")
    # The run is in a session of its own: it goes on, and the worker waits for it.
    waiting = "Waiting for job to finish"
    assert wait_until(lambda: fleet.logged(worker, waiting), STOP_TIMEOUT_S), fleet.log(worker)
    assert worker.poll() is None
    assert process_alive(int(started.payload["pid"]))
    assert fleet.status(second) == "queued"

    assert fleet.cli("cancel", str(first)).returncode == ExitCode.OK
    assert worker.wait(timeout=STOP_TIMEOUT_S) == 0
    (closed,) = fleet.entries("run-finished")
    assert closed.payload["outcome"] == "canceled"
    assert (fleet.status(first), fleet.status(second)) == ("stopped", "queued")
