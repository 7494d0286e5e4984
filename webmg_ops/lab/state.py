"""The lab's state file: every process, mount, link and namespace the lab made.

``lab up`` records an item before making it (or, for a process, as soon as
it has a PID), so that ``lab down`` and a later ``lab up`` can remove exactly
what was made, even after a killed run, and nothing else. A process is
identified by its PID together with its start time, so that a PID reused by
an unrelated process is never signalled.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from webmg_ops.errors import EnvironmentProblem
from webmg_ops.lab.paths import LabPaths

STATE_VERSION = 1
LOCK_TIMEOUT_SECONDS = 120.0


class ProcessRecord(BaseModel):
    """A process the lab started: its PID and start time (clock ticks after boot)."""

    pid: int
    start_time: int
    command: str


class HostRuntime(BaseModel):
    """What a host's supervisor records about the boot in progress."""

    supervisor: ProcessRecord
    nspawn: ProcessRecord | None = None
    leader: ProcessRecord | None = None
    netns: str | None = None
    veth: str | None = None
    boots: int = 0
    last_exit: int | None = None
    stopped: bool = False


class HostRecord(BaseModel):
    """One host the lab started: its overlay and its supervisor."""

    name: str
    address: str
    role: str
    layers: list[str]
    upper: str
    work: str
    merged: str
    mounted: bool = False
    supervisor: ProcessRecord | None = None
    cgroups: list[str] = Field(default_factory=list)
    veths: list[str] = Field(default_factory=list)
    netns: list[str] = Field(default_factory=list)


class LabState(BaseModel):
    """Everything a running lab made."""

    version: int = STATE_VERSION
    lab_dir: str
    bridge: str | None = None
    services: dict[str, ProcessRecord] = Field(default_factory=dict)
    hosts: dict[str, HostRecord] = Field(default_factory=dict)


def load_state(paths: LabPaths) -> LabState | None:
    """Given the lab's paths, return its recorded state, or None if nothing is recorded."""
    if not paths.state_file.is_file():
        return None
    return LabState.model_validate_json(paths.state_file.read_text())


def save_state(paths: LabPaths, state: LabState) -> None:
    """Given the lab's paths and state, write the state file (atomically)."""
    paths.lab_dir.mkdir(parents=True, exist_ok=True)
    partial = paths.state_file.with_name(paths.state_file.name + ".partial")
    partial.write_text(state.model_dump_json(indent=2) + "\n")
    partial.rename(paths.state_file)


def load_runtime(path: Path) -> HostRuntime | None:
    """Given a host's runtime file, return what its supervisor recorded, or None."""
    try:
        return HostRuntime.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None


def save_runtime(path: Path, runtime: HostRuntime) -> None:
    """Given a host's runtime file and record, write it (atomically)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(runtime.model_dump_json(indent=2) + "\n")
    partial.rename(path)


@contextlib.contextmanager
def lab_lock(paths: LabPaths) -> Iterator[None]:
    """Hold the lab's lock for the duration of the block.

    Raise ``EnvironmentProblem`` if another lab command holds it for too long.
    """
    paths.lab_dir.mkdir(parents=True, exist_ok=True)
    with paths.lock_file.open("w") as lock:
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EnvironmentProblem(
                        f"another lab command holds {paths.lock_file}"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields resume after its ')'.
    return text[text.rindex(")") + 2 :].split()


def process_start_time(pid: int) -> int | None:
    """Given a PID, return the process's start time in clock ticks, or None if gone."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def record_process(pid: int, command: str) -> ProcessRecord:
    """Given the PID of a process just started, return its record."""
    return ProcessRecord(pid=pid, start_time=process_start_time(pid) or 0, command=command)


def is_running(record: ProcessRecord) -> bool:
    """Given a process record, return whether that very process is still running."""
    fields = _stat_fields(record.pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == record.start_time


def signal_process(record: ProcessRecord, number: signal.Signals) -> bool:
    """Given a process record, send it a signal if it is still that process; return whether sent."""
    if not is_running(record):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, number)
        return True
    return False


def wait_gone(records: list[ProcessRecord], timeout: float) -> list[ProcessRecord]:
    """Given process records and a timeout in seconds, return those still running after it."""
    deadline = time.monotonic() + timeout
    remaining = [record for record in records if is_running(record)]
    while remaining and time.monotonic() < deadline:
        time.sleep(0.1)
        remaining = [record for record in remaining if is_running(record)]
    return remaining


def stop_processes(
    records: list[ProcessRecord],
    timeout: float = 10.0,
    also_wait: list[ProcessRecord] | None = None,
) -> None:
    """Given process records, end them: SIGTERM, then SIGKILL to those left after the timeout.

    ``also_wait`` are processes that are expected to end with them (they get
    no SIGTERM, only a SIGKILL if still running after the timeout).
    """
    for record in records:
        signal_process(record, signal.SIGTERM)
    everything = records + (also_wait or [])
    for record in wait_gone(everything, timeout):
        signal_process(record, signal.SIGKILL)
    wait_gone(everything, 5.0)
