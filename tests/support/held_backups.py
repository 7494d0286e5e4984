"""Helpers of the backup tests that stop a backup half-way and look at it from outside.

A test holds a backup at a point it controls (a host's restic waiting for
input, a timer backup's server stopped once its lock is written, a database
dump waiting for a table lock), then starts a run and watches it: commands
run as root on lab hosts in the background (:class:`OnHost`), whose lines are
read with a deadline; restic's locks as the controller's restic lists them
(:func:`restic_locks`); the programs a run starts on the controller
(:func:`children`); and the run itself, started in the background
(:class:`BackgroundRun`).
"""

from __future__ import annotations

import json
import os
import select
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support.lab import Lab
from webmg_ops.ansible.vault import Vault
from webmg_ops.backups import restic
from webmg_ops.backups.repository import host_repositories
from webmg_ops.config.clients import load_client

#: The client of these tests: no other backup test looks at the timer or the locks of its
#: hosts, and its drills accept whatever its hosts' repositories hold.
CLIENT = "terre-solidaire"
#: The lab's addresses of the hosts these tests hold backups on, and of the backup target.
ADDRESSES = {
    "terre-web2": "198.18.0.22",
    "terre-db1": "198.18.0.23",
    "backup1": "198.18.0.5",
}
#: The command that backs up the client's hosts, as the tests start it.
RUN_BACKUP = (sys.executable, "-m", "webmg_ops.cli.main", "run", CLIENT, "backup")
#: A host's repository folder on the backup target.
TARGET_FOLDER = "/srv/restic/{client}/{host}"


class OnHost:
    """A command run as root on a lab host, in the background; its output read line by line."""

    def __init__(
        self, lab: Lab, address: str, argv: list[str], *, with_input: bool = False
    ) -> None:
        self.process = subprocess.Popen(
            lab.ssh_argv(address, shlex.join(["sudo", *argv])),
            stdin=subprocess.PIPE if with_input else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._pending = b""

    def line(self, timeout_s: float) -> str:
        """Return the command's next line of output (without its end). Raise AssertionError
        if none comes within TIMEOUT_S seconds or the output ends first."""
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([stdout], [], [], max(0.0, remaining))
            assert ready, f"no line within {timeout_s:.0f} s: {self._pending!r}"
            chunk = os.read(stdout.fileno(), 65536)
            assert chunk, f"the output ended: {self._pending!r} {self.errors()}"
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode()

    def send(self, text: str) -> None:
        """Write TEXT to the command's input."""
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(text.encode())
        stdin.flush()

    def errors(self) -> str:
        """Return what the command wrote on stderr, once it has ended ("" while it runs)."""
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")

    def wait(self, timeout_s: float) -> int:
        """Close the command's input, wait for it to end; return its exit status."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        return self.process.wait(timeout=timeout_s)

    def end(self) -> None:
        """End the local ssh if the command still runs (a script given a deadline ends
        itself; one reading its input ends at its end)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


class BackgroundRun:
    """``webmg-ops run CLIENT backup`` started in the background on the lab's files."""

    def __init__(self, lab: Lab, folder: Path, reason: str, *flags: str) -> None:
        self.lab = lab
        self.reason = reason
        self._stdout = (folder / "run.json").open("w")
        self._stderr = (folder / "run.err").open("w")
        self.output = folder / "run.json"
        self.process = subprocess.Popen(
            [*RUN_BACKUP, "--reason", reason, "--json", *flags],
            env=lab.env,
            stdout=self._stdout,
            stderr=self._stderr,
        )

    def running(self) -> bool:
        """Return whether the run's process still runs."""
        return self.process.poll() is None

    def finished_entry(self) -> dict[str, Any] | None:
        """Return the run-finished payload of this run (found by its reason), None if none."""
        started = [
            entry.payload["run_id"]
            for entry in self.lab.entries("run-started", CLIENT)
            if entry.payload.get("reason") == self.reason
        ]
        finished = [
            entry.payload
            for entry in self.lab.entries("run-finished", CLIENT)
            if entry.payload["run_id"] in started
        ]
        return finished[0] if finished else None

    def report(self, timeout_s: float) -> tuple[int, dict[str, Any]]:
        """Wait for the run to end; return its exit status and JSON report."""
        code = self.process.wait(timeout=timeout_s)
        self.close()
        text = self.output.read_text()
        assert text, (self.output.parent / "run.err").read_text()[-3000:]
        report: dict[str, Any] = json.loads(text)
        return code, report

    def stop(self) -> None:
        """Stop the run if it still runs (SIGTERM: it closes as canceled), then close its files."""
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.close()

    def close(self) -> None:
        """Close the files the run writes to."""
        for handle in (self._stdout, self._stderr):
            handle.close()


def controller_repository(lab: Lab, cache: Path, host: str) -> restic.Repository:
    """Return HOST's repository as the controller opens it (the client's key and vault)."""
    (repository,) = host_repositories(
        load_client(lab.inventories, CLIENT),
        Vault(lab.lab_dir / "vault-password"),
        hosts=(host,),
        cache_dir=cache,
    ).values()
    return repository


def restic_locks(repository: restic.Repository) -> dict[str, dict[str, Any]]:
    """Return the locks restic lists in REPOSITORY (taking none): each lock's id to its
    content (``hostname``, ``pid``, ``time``, ``exclusive``...)."""
    listed = restic.run_restic(repository, ["--no-lock", "list", "locks"], command="list locks")
    locks: dict[str, dict[str, Any]] = {}
    for lock_id in listed.stdout.split():
        try:
            shown = restic.run_restic(
                repository, ["--no-lock", "cat", "lock", lock_id], command="cat lock"
            )
        except restic.ResticError:
            continue  # removed meanwhile by the process that held it
        locks[lock_id] = json.loads(shown.stdout)
    return locks


def children(parent: int, program: str, word: str) -> set[int]:
    """Return the PIDs of the running processes of this machine that PARENT started, whose
    program's name ends with PROGRAM and whose arguments hold WORD."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        ppid = next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")), 0
        )
        if ppid == parent and argv[0].endswith(program.encode()) and word.encode() in argv:
            found.add(int(entry.name))
    return found


def unit_command(lab: Lab, address: str, unit: str) -> list[str]:
    """Return the argv of the ExecStart line of UNIT as installed on the host at ADDRESS."""
    shown = lab.ssh(address, f"cat /etc/systemd/system/{shlex.quote(unit)}")
    assert shown.returncode == 0, shown.stderr
    (line,) = [line for line in shown.stdout.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


#: The start of the scripts below: ``pause()`` waits a millisecond or two and ends the script
#: once its input ends (the test closed it, or its ssh ended), so none outlives its test.
PAUSE = """
import os, select, sys

def pause():
    if select.select([0], [], [], 0.0015)[0] and not os.read(0, 1):
        raise SystemExit
"""

#: Run as root on the backup target: FOLDER (argv[1]) is a host's repository. Prints "ready",
#: then, as soon as a new lock appears in it, stops (SIGSTOP) the restic servers serving it
#: and prints what it saw as JSON: the new locks, the servers stopped, the snapshots before
#: and at that moment. Gives up after argv[2] seconds (printing no locks).
STOP_SERVER_AT_NEW_LOCK = (
    PAUSE
    + """
import json, signal, time
folder, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])

def names(kind):
    try:
        return sorted(name for name in os.listdir(os.path.join(folder, kind)) if len(name) == 64)
    except FileNotFoundError:
        return []

locks, snapshots = set(names("locks")), names("snapshots")
print("ready", flush=True)
while time.monotonic() < deadline:
    new = set(names("locks")) - locks
    if new:
        stopped = []
        for pid in os.listdir("/proc"):
            try:
                argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
            except (OSError, ValueError):
                continue
            if argv[0].endswith(b"rclone") and folder.encode() in argv:
                os.kill(int(pid), signal.SIGSTOP)
                stopped.append(int(pid))
        print(json.dumps({"locks": sorted(new), "stopped": stopped, "snapshots_before": snapshots,
                          "snapshots": names("snapshots")}), flush=True)
        raise SystemExit
    pause()
print(json.dumps({"locks": []}), flush=True)
"""
)

#: Run as root on a host: prints "ready", then "seen" each time a process runs the command
#: given after the first two arguments (argv[3:]); ends after argv[2] sightings or argv[1]
#: seconds. A command as short as ``systemctl is-active`` lives a few milliseconds: the
#: process table is read every millisecond or two.
WATCH_FOR_COMMAND = (
    PAUSE
    + """
import time
deadline, wanted = time.monotonic() + float(sys.argv[1]), int(sys.argv[2])
command = [word.encode() for word in sys.argv[3:]]
seen = set()
print("ready", flush=True)
while time.monotonic() < deadline and len(seen) < wanted:
    for pid in os.listdir("/proc"):
        if pid in seen or not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")[:-1]
        except OSError:
            continue
        if argv and argv[0].endswith(command[0]) and argv[1:] == command[1:]:
            seen.add(pid)
            print("seen", flush=True)
    pause()
"""
)
