"""The command-line recorder the leak tests rely on misses no program, however short-lived."""

from __future__ import annotations

import secrets
import subprocess
import threading
from pathlib import Path

import pytest
from support.argv_record import recording_execs

#: strace, a real outside tool: not in the fast inner loop.
pytestmark = pytest.mark.tools


def test_every_exec_is_recorded_children_grandchildren_and_threads(tmp_path: Path) -> None:
    canaries = [f"canary-{secrets.token_hex(8)}" for _ in range(3)]

    def from_a_thread() -> None:
        subprocess.run(["/bin/true", canaries[2]], check=True)

    with recording_execs(tmp_path) as calls:
        # A process that lives for microseconds, one started by a shell, one from a thread.
        subprocess.run(["/bin/true", canaries[0], "with space"], check=True)
        subprocess.run(["/bin/sh", "-c", f"/bin/echo {canaries[1]} >/dev/null"], check=True)
        thread = threading.Thread(target=from_a_thread)
        thread.start()
        thread.join()
    assert ("/bin/true", canaries[0], "with space") in calls
    assert ("/bin/echo", canaries[1]) in calls
    assert ("/bin/true", canaries[2]) in calls


def test_nothing_is_recorded_after_the_block(tmp_path: Path) -> None:
    late = f"late-{secrets.token_hex(8)}"
    with recording_execs(tmp_path) as calls:
        subprocess.run(["/bin/true"], check=True)
    subprocess.run(["/bin/true", late], check=True)
    assert ("/bin/true",) in calls
    assert not [argv for argv in calls if late in argv]
