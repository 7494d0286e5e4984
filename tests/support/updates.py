"""Helpers of the update lab tests: what dpkg says on a host, update runs and their records,
files written on a host, and a dpkg lock held by another process.
"""

from __future__ import annotations

import json
import os
import selectors
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from support.lab import COMMAND_TIMEOUT_SECONDS, Lab
from webmg_ops.engine.reconcile import reconcile_runs
from webmg_ops.errors import ExitCode

#: Allowed on the demo clients: every one of their hosts is a lab host.
ALWAYS_OPEN = [{"name": "rehearsal", "always": True, "timezone": "UTC"}]

#: dpkg's frontend lock: apt takes it before it changes anything (apt >= 1.9).
DPKG_FRONTEND_LOCK = "/var/lib/dpkg/lock-frontend"

#: Waits until the update role reads the host's state (its updates_state.py runs: the run's
#: preflight, which refuses a host whose lock is held, is over), then takes dpkg's frontend
#: lock as apt does (an fcntl write lock on the whole file, which a flock(1) lock would not
#: conflict with), says so, and keeps it until its input ends. The script's name is joined
#: at run time, so that this process's own command line never matches it.
LOCK_TAKER = f"""\
import fcntl, os, sys, time
script = "updates_state" + ".py"
deadline = time.monotonic() + 600
print("waiting", flush=True)
def reading_state():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{{pid}}/cmdline", "rb") as cmdline:
                if script.encode() in cmdline.read():
                    return True
        except OSError:
            pass
    return False
while not reading_state():
    if time.monotonic() > deadline:
        sys.exit("the update never read the state of this host")
    time.sleep(0.02)
lock = open({DPKG_FRONTEND_LOCK!r}, "a")
fcntl.lockf(lock, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def always_open(data: dict[str, Any]) -> None:
    """Give a client's contract (as data) a window that is always open and no freeze."""
    data["windows"] = ALWAYS_OPEN
    data["freezes"] = []


def installed(lab: Lab, address: str) -> dict[str, str]:
    """Return every package installed on a host and its version, as dpkg reads them."""
    done = lab.ssh(address, "dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\\n'")
    assert done.returncode == 0, done.stderr
    versions = {}
    for line in done.stdout.splitlines():
        status, name, version = [*line.split(), "", "", ""][:3]
        # The second letter is the package's state: "i" for installed (held or not).
        if status[1:2] == "i":
            versions[name] = version
    return versions


def selection(lab: Lab, address: str, package: str) -> str:
    """Return dpkg's selection of a package on a host: install, hold, deinstall or purge."""
    done = lab.ssh(address, f"dpkg-query -W -f '${{db:Status-Want}}' {shlex.quote(package)}")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def write_host_file(lab: Lab, address: str, path: str, text: str, mode: str = "0644") -> None:
    """Write TEXT to PATH on a host, as root, with MODE."""
    command = (
        f"sudo install -D -m {mode} /dev/stdin {shlex.quote(path)}"
        f" && sudo cat {shlex.quote(path)} >/dev/null"
    )
    done = subprocess.run(
        lab.ssh_argv(address, command),
        input=text,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def update_args(client: str, hosts: tuple[str, ...], *flags: str) -> list[str]:
    """Return the arguments of ``webmg-ops`` for an ``update`` run on some hosts of a client,
    reported as JSON.
    """
    return [
        "run",
        client,
        "update",
        "--limit",
        ",".join(hosts),
        "--reason",
        "test",
        *flags,
        "--json",
    ]


def update(
    lab: Lab, client: str, hosts: tuple[str, ...], *flags: str
) -> tuple[int, dict[str, Any]]:
    """Run ``update`` on some hosts of a client; return its exit status and report."""
    lab.diagnosed(client)
    done = lab.cli(*update_args(client, hosts, *flags))
    # A refused run prints its error, as JSON, on stderr only.
    report: dict[str, Any] = json.loads(done.stdout or done.stderr)
    show_failed_run(done.returncode, report)
    return done.returncode, report


def show_failed_run(code: int, report: dict[str, Any]) -> None:
    """Print a failed run's whole report and its run log, which pytest shows beside a
    failing assertion (whose own message is cut short): what failed on which host."""
    if code in (ExitCode.OK, ExitCode.REFUSED):
        return
    print(f"exit {code}; the run's report:\n{json.dumps(report, indent=1, default=str)}")
    log = report.get("run_log")
    if log and Path(log).is_file():
        print(f"its run log, {log}:\n{Path(log).read_text(errors='replace')}")


def finished(lab: Lab, run_id: str) -> dict[str, Any]:
    """Return the payload of a run's run-finished entry in the lab's ledger."""
    (entry,) = [e for e in lab.entries("run-finished") if e.payload["run_id"] == run_id]
    payload: dict[str, Any] = entry.payload
    return payload


def read_line(stream: IO[str], timeout_s: float) -> str:
    """Return the next line of a process's output; fail if none comes within TIMEOUT_S."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    try:
        assert selector.select(timeout_s), f"no output within {timeout_s} s"
    finally:
        selector.close()
    return stream.readline()


class LockTaker:
    """A process on a host that takes dpkg's frontend lock once an update run reads the
    host's state, and holds it until released.
    """

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def wait_held(self, timeout_s: float) -> None:
        """Return once the lock is held; fail if it is not within TIMEOUT_S."""
        assert self.process.stdout is not None
        assert read_line(self.process.stdout, timeout_s) == "held\n", "the lock was not taken"

    def release(self) -> None:
        """End the holder (its input ends) and wait until it is gone with its lock."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        self.process.wait(timeout=60)


@contextmanager
def dpkg_lock_taken_during_the_update(lab: Lab, address: str) -> Iterator[LockTaker]:
    """Within the block, a process on a host waits for an update run to read the host's
    state, then takes dpkg's frontend lock; it is released at the end whatever happens.
    """
    process = subprocess.Popen(
        lab.ssh_argv(address, f"sudo python3 -c {shlex.quote(LOCK_TAKER)}"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    taker = LockTaker(process)
    try:
        assert process.stdout is not None
        assert read_line(process.stdout, 60) == "waiting\n", "the lock taker did not start"
        yield taker
    finally:
        if process.poll() is None:
            taker.release()


@contextmanager
def running_update(
    lab: Lab, client: str, hosts: tuple[str, ...], folder: Path, *flags: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Within the block, an ``update`` run goes on in the background; its output goes to
    files in FOLDER. If it still runs at the end of the block, it is killed and the
    controller closes its record and ends what it left running.
    """
    lab.diagnosed(client)
    with (folder / "update.out").open("wb") as out, (folder / "update.err").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "webmg_ops.cli.main", *update_args(client, hosts, *flags)],
            env=lab.env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            reconcile_runs(lab.settings)


def report_of(folder: Path) -> dict[str, Any]:
    """Return the JSON report a background ``update`` run wrote to FOLDER."""
    text = (folder / "update.out").read_text() or (folder / "update.err").read_text()
    report: dict[str, Any] = json.loads(text)
    return report
