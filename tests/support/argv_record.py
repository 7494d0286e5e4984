"""Record the command line of every program a piece of work starts, missing none.

Polling ``/proc`` for command lines misses a process that lives shorter than
the poll interval, so a secret on a short-lived command line could pass a
test unseen. The two recorders here miss nothing:

- :func:`recording_execs` (controller): strace, attached to this test process
  and following every child it starts, records the argv of each ``execve``
  as the kernel received it: ``ansible-playbook``, ``ssh``, ``restic``,
  ``pg_restore`` and every other program, however briefly it ran.
- :func:`recording_host_program` (lab host): a shim first on the host's
  ``PATH`` (``/usr/local/bin`` comes before ``/usr/bin`` for root, sudo and
  systemd alike) writes each command line of one program to a file of its
  own, then runs the real program. It is removed afterwards, whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from support.capability import missing
from support.lab import Lab
from support.waiting import wait_until

#: How long strace may take to attach to every thread of this process.
ATTACH_SECONDS = 30
#: One ``execve``/``execveat`` line of ``strace -xx``: its pid, then the call's arguments.
_CALL = re.compile(r"^(\d+)\s+(execve|execveat)\((.*)$")
#: A string as ``strace -xx`` prints it: every byte as ``\xNN``.
_STRING = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')

#: Where a host's shim writes its command lines (sticky and writable by all, so that a
#: program run by any account is recorded; each record is a 0600 file of its own).
HOST_RECORDS = "/var/lib/webmg-argv-records"


def _decode(hex_escaped: str) -> str:
    return bytes.fromhex(hex_escaped.replace("\\x", "")).decode("utf-8", "replace")


def parse_exec_calls(trace: str) -> list[tuple[str, ...]]:
    """Given the output of ``strace -f -xx -e trace=execve,execveat``, return the argv of
    every exec call in it (attempts along ``PATH`` included), in order.

    Raise AssertionError if a call's argv cannot be read in full (strace abbreviated it).
    """
    calls: list[tuple[str, ...]] = []
    for line in trace.splitlines():
        matched = _CALL.match(line)
        if matched is None or "resumed>" in line:
            continue
        arguments = matched.group(3)
        # The argv array is the first [...] after the path (execveat: after dirfd and path).
        start = arguments.index("[")
        end = arguments.index("]", start)
        array = arguments[start + 1 : end]
        assert "..." not in array, f"strace abbreviated a command line: {line[:200]}"
        calls.append(tuple(_decode(item) for item in _STRING.findall(array)))
    return calls


def _traced_by(tracer: int) -> bool:
    """Return True once every thread of this process is traced by TRACER."""
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # a thread that ended meanwhile
        tracer_line = next(line for line in status.splitlines() if line.startswith("TracerPid:"))
        if int(tracer_line.split()[1]) != tracer:
            return False
    return True


@contextmanager
def recording_execs(directory: Path) -> Iterator[list[tuple[str, ...]]]:
    """Record every program this process and its descendants start, while the block runs.

    Yield a list that holds, once the block has ended, the argv of every exec call made
    meanwhile (by this process, its threads, and any process they started). Its trace
    is kept in DIRECTORY. Fail the test if strace is missing or cannot attach.
    """
    strace = shutil.which("strace")
    if strace is None:
        missing("strace is not installed (make setup installs it)")
    output = directory / "exec-calls.strace"
    tracer = subprocess.Popen(
        [
            strace,
            *("-f", "-qq", "-xx", "-s", "1048576"),
            *("-e", "trace=execve,execveat", "-e", "signal=none"),
            *("-o", str(output), "-p", str(os.getpid())),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    calls: list[tuple[str, ...]] = []
    try:
        if not wait_until(
            lambda: tracer.poll() is not None or _traced_by(tracer.pid), ATTACH_SECONDS
        ):
            raise AssertionError(f"strace did not attach within {ATTACH_SECONDS} s")
        assert tracer.poll() is None, f"strace could not attach: {tracer.communicate()[1]}"
        yield calls
    finally:
        # SIGINT makes strace detach from every process it traces and write its last lines.
        tracer.send_signal(signal.SIGINT)
        tracer.communicate(timeout=60)
    calls.extend(parse_exec_calls(output.read_text()))


#: The shim: record this command line, NUL-separated, in a file of its own, then run
#: the real program (its path is filled in). A record that cannot be written stops it.
_SHIM = """#!/bin/sh
record=$(mktemp {records}/XXXXXXXXXX) || exit 125
printf '%s\\0' "$0" "$@" > "$record" || exit 125
exec {real} "$@"
"""

#: Run on the host as root: print every record as a JSON list of argv lists.
_READ_RECORDS = """
import json, os, sys
records = sys.argv[1]
calls = []
for name in sorted(os.listdir(records)):
    with open(os.path.join(records, name), "rb") as record:
        raw = record.read()
    calls.append([item.decode("utf-8", "replace") for item in raw.split(b"\\0")[:-1]])
print(json.dumps(calls))
"""


@contextmanager
def recording_host_program(
    lab: Lab, address: str, program: str
) -> Iterator[Callable[[], list[tuple[str, ...]]]]:
    """Record every command line of PROGRAM on the lab host at ADDRESS, while the block runs.

    The real program is the Debian package's ``/usr/bin/PROGRAM``; it need not be
    installed yet (a run may install it). Yield a function that returns the argv of
    every call so far. The shim and its records are removed when the block ends,
    whatever happens.
    """
    shim_path = f"/usr/local/bin/{program}"
    shim = _SHIM.format(records=HOST_RECORDS, real=shlex.quote(f"/usr/bin/{program}"))
    install = (
        f"sudo install -d -m 1733 {HOST_RECORDS}"
        f" && printf %s {shlex.quote(shim)} | sudo tee {shim_path} >/dev/null"
        f" && sudo chmod 0755 {shim_path}"
    )
    remove = f"sudo rm -rf {shim_path} {HOST_RECORDS}"

    def calls() -> list[tuple[str, ...]]:
        done = lab.ssh(address, shlex.join(["sudo", "python3", "-c", _READ_RECORDS, HOST_RECORDS]))
        assert done.returncode == 0, done.stderr
        return [tuple(call) for call in json.loads(done.stdout)]

    try:
        done = lab.ssh(address, install)
        assert done.returncode == 0, done.stderr
        yield calls
    finally:
        lab.ssh(address, remove)
