"""A stale lock left by a killed restic is removed and recorded.

restic writes a lock into the repository while it works and removes it at
its end; killed (SIGKILL), it leaves the lock behind, and the controller's
retention and check could never take the repository for themselves. The
next backup of the host finds the locks of its own dead processes, has
restic remove them and records each in the ledger.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from support.backup import SECRET_DIR, restic_as_the_role, target_account
from support.held_backups import (
    ADDRESSES,
    CLIENT,
    TARGET_FOLDER,
    OnHost,
    controller_repository,
    restic_locks,
)
from support.lab import Lab
from support.waiting import wait_until

from webmg_ops.errors import ExitCode

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("prepared_target")]

HOST = "terre-web2"
FOLDER = TARGET_FOLDER.format(client=CLIENT, host=HOST)


@pytest.fixture
def repository_of_host(lab: Lab) -> None:
    """HOST has a repository of its own on the target, and the secrets the role writes for
    it on the host: another test may have emptied the client's repositories, or reset HOST
    to bare. One backup if either is missing."""
    repository = lab.ssh(ADDRESSES["backup1"], f"sudo test -f {FOLDER}/config")
    secrets = lab.ssh(ADDRESSES[HOST], f"sudo test -s {SECRET_DIR}/restic-password")
    if repository.returncode != 0 or secrets.returncode != 0:
        done = lab.cli("run", CLIENT, "backup", "--limit", HOST, "--reason", "a repository")
        assert done.returncode == ExitCode.OK, done.stdout[-3000:] + done.stderr[-3000:]


def restic_reading_its_input() -> list[str]:
    """Return the command that runs restic on HOST as the backup role does (its own key,
    the pinned target key, its password file), backing up its standard input: restic takes
    the repository's lock, then waits for the input to end. The shell prints its PID first,
    which restic keeps."""
    restic = restic_as_the_role(
        FOLDER,
        target_account(CLIENT),
        *("backup", "--stdin", "--stdin-filename", "never-finished", "--host", HOST),
    )
    return ["sh", "-c", 'echo "$$"; exec "$@"', "sh", *restic]


def finished(lab: Lab, run_id: str) -> dict[str, Any]:
    """Return the run-finished payload of RUN_ID."""
    (entry,) = [e for e in lab.entries("run-finished", CLIENT) if e.payload["run_id"] == run_id]
    return entry.payload


def test_a_lock_left_by_a_killed_restic_is_removed_by_the_next_backup_and_recorded(
    lab: Lab, repository_of_host: None, tmp_path: Path
) -> None:
    """restic killed while it holds the lock leaves it; the next backup removes it (restic
    no longer lists it) and its run-finished entry names it, with the dead process."""
    repository = controller_repository(lab, tmp_path / "restic-cache", HOST)
    held = OnHost(lab, ADDRESSES[HOST], restic_reading_its_input(), with_input=True)
    pid = int(held.line(60))
    lock_id = None
    try:
        # restic has locked the repository, as restic itself lists it.
        mine: dict[str, dict[str, Any]] = {}

        def locked() -> bool:
            mine.update(
                {i: lock for i, lock in restic_locks(repository).items() if lock["pid"] == pid}
            )
            return bool(mine)

        assert wait_until(locked, 120), held.errors()
        ((lock_id, lock),) = mine.items()
        assert lock["hostname"] == HOST and not lock["exclusive"], lock
        killed = lab.ssh(ADDRESSES[HOST], f"sudo kill -KILL {pid}")
        assert killed.returncode == 0, killed.stderr
        assert held.wait(60) != 0
        gone = lab.ssh(ADDRESSES[HOST], f"test -e /proc/{pid}")
        assert gone.returncode != 0
        # Its lock stays behind.
        assert lock_id in restic_locks(repository)

        done = lab.cli(
            "run", CLIENT, "backup", "--limit", HOST, "--reason", "after a kill", "--json"
        )
        assert done.returncode == ExitCode.OK, done.stdout[-3000:] + done.stderr[-3000:]
        # restic no longer lists it...
        assert lock_id not in restic_locks(repository)
        # ...and the ledger records its removal: which lock, whose dead process.
        payload = finished(lab, json.loads(done.stdout)["run_id"])
        assert payload["outcome"] == "succeeded", payload
        removed = payload["evidence"]["hosts"][HOST]["stale_locks_removed"]
        assert [(item["id"], item["pid"], item["hostname"]) for item in removed] == [
            (lock_id, pid, HOST)
        ], removed
        assert "1 stale lock(s) removed" in payload["summary"], payload["summary"]
    finally:
        # Whatever happened: no restic of this test left on the host, nor its lock.
        ours = f"grep -q restic /proc/{pid}/cmdline 2>/dev/null && kill -KILL {pid}; true"
        lab.ssh(ADDRESSES[HOST], f"sudo sh -c {shlex.quote(ours)}")
        held.end()
        if lock_id is not None:
            lab.ssh(ADDRESSES["backup1"], f"sudo rm -f {FOLDER}/locks/{lock_id}")
