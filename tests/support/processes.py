"""The processes of a play, as /proc shows them, for tests of what a stopped run leaves."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    """A process; its start time tells it from a later process given the same PID."""

    pid: int
    parent: int
    started: int
    command: str

    def alive(self) -> bool:
        """Return whether this very process still runs (a zombie does not)."""
        fields = _fields(self.pid)
        return bool(fields) and int(fields[19]) == self.started and fields[0] not in ("Z", "X")


def _fields(pid: int) -> list[str]:
    """Return the fields of /proc/PID/stat after the command name (which may hold spaces
    and parentheses), or [] if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat[stat.rindex(")") + 2 :].split()


def process(pid: int) -> Process | None:
    """Return the process PID, or None if there is none."""
    fields = _fields(pid)
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not fields:
        return None
    return Process(
        pid=pid,
        parent=int(fields[1]),
        started=int(fields[19]),
        command=command.replace(b"\0", b" ").decode(errors="replace").strip(),
    )


def processes() -> list[Process]:
    """Return every process but this one."""
    found = (process(int(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [item for item in found if item is not None and item.pid != os.getpid()]


def play_processes(playbook_pid: int, control_dir: Path | None = None) -> list[Process]:
    """Return a play's processes: ansible-playbook and every process it started, however
    deep (Ansible's workers sit in sessions of their own), and the SSH masters whose
    sockets are in CONTROL_DIR (they leave the tree once the worker that started them ends).
    """
    every = processes()
    tree = {playbook_pid}
    grown = True
    while grown:
        children = {item.pid for item in every if item.parent in tree} - tree
        tree |= children
        grown = bool(children)
    return [
        item
        for item in every
        if item.pid in tree or (control_dir is not None and str(control_dir) in item.command)
    ]


def listing(items: list[Process]) -> str:
    """Return PROCESSES one per line (PID, parent, command), for an assertion's message."""
    return "\n".join(f"{item.pid} (parent {item.parent}): {item.command}" for item in items)
