"""The application's own health check, answered by a restored copy of its data.

Files and row counts prove the data came back; only the application can say
it still works on them. For a contract's ``backup.restore_check``, the drill
copies the restored data folder into a scratch folder on one of the
client's hosts (over SSH, host key verified), starts the contract's command
on it as the application's account on a loopback port, and probes the
health path from the host itself. Live data is never touched: the copy
lives in its own ``mktemp`` folder, and the command, bounded by
``timeout``, is stopped and the folder removed whatever happened.

The restored data came from a client's host: its folder is found inside the
restored tree only (no ``..``, no symbolic link on the way, see
``manifest.restored_path``), so nothing else of the controller is sent. The
command never runs as root: a ``user`` named root, or with uid 0 on the host,
is refused before anything is copied, and the shell that starts the command
checks its own uid again.
"""

from __future__ import annotations

import re
import shlex
import stat
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from webmg_ops.ansible.connection import Connection
from webmg_ops.backups.manifest import UnsafePath, restored_path
from webmg_ops.config.contract import RestoreCheck
from webmg_ops.remote.session import CommandTimedOut, HostSession, open_host_session
from webmg_ops.remote.ssh import HostKeyProblem, Unreachable

#: Where the copies live on the host (``mktemp`` adds a random suffix).
SCRATCH_PREFIX = "/var/tmp/webmg-drill."

#: Seconds any one setup or cleanup command on the host may take.
COMMAND_TIMEOUT_S = 120.0

#: An account name the check runs as: a plain login name (never ``#UID`` or options).
_ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]*$")

#: What the starting shell prints, instead of its PID, when it finds itself root.
_AS_ROOT = "uid-0"

#: Why an account with uid 0 is refused.
_NEVER_ROOT = "the restore check never runs as root"

#: Run on the host by its login user: probe the copy until it answers, or the
#: command exits, or the wait is over. Prints the status (or "none") and a
#: short reason or body.
_PROBE = """
import os, sys, time, urllib.error, urllib.request
port, path, wait, pid = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
end, last = time.time() + wait, "no answer"
while time.time() < end:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            print(answer.status); print(answer.read(300).decode(errors="replace")); raise SystemExit
    except urllib.error.HTTPError as error:
        print(error.code); print(error.read(300).decode(errors="replace")); raise SystemExit
    except OSError as error:
        last = str(getattr(error, "reason", error))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        print("none"); print("the command exited before answering"); raise SystemExit
    except PermissionError:
        pass
    time.sleep(0.2)
print("none"); print(f"no answer within {wait:.0f} s ({last})")
"""


@dataclass(frozen=True)
class RestoreCheckResult:
    """What the application answered on the restored copy of one host."""

    host: str
    ok: bool
    status: int | None
    seconds: float
    detail: str

    def as_evidence(self) -> dict[str, object]:
        """Return the result as ledger evidence."""
        return {
            "ok": self.ok,
            "status": self.status,
            "seconds": self.seconds,
            "detail": self.detail,
        }


class _HostCommandFailed(Exception):
    """A setup command on the host failed; its message says which and why."""


def _run(session: HostSession, what: str, command: str, timeout: float = COMMAND_TIMEOUT_S) -> str:
    """Run COMMAND on the host; return its output. Raise _HostCommandFailed naming WHAT."""
    done = session.run(command, timeout=timeout)
    if done.status != 0:
        lines = done.stderr.strip().splitlines()
        raise _HostCommandFailed(f"{what}: {lines[-1] if lines else f'exit status {done.status}'}")
    return done.stdout


def _upload(session: HostSession, source: Path, folder: str) -> None:
    """Stream SOURCE as ``FOLDER/data`` into a root tar on the host (no temporary archive)."""

    def feed(stdin: IO[bytes]) -> None:
        with tarfile.open(fileobj=stdin, mode="w|") as archive:
            archive.add(source, arcname="data")

    done = session.run_with_input(
        f"sudo -n tar -x -C {shlex.quote(folder)}", feed, timeout=COMMAND_TIMEOUT_S
    )
    if done.status != 0:
        message = done.stderr.strip() or f"exit status {done.status}"
        raise _HostCommandFailed(f"copying the restored data: {message}")


def _refused_account(user: str) -> str:
    """Given the contract's account, return why it is refused ("" if it is not)."""
    if not _ACCOUNT.match(user):
        return f"refused: {user!r} is not a plain account name"
    if user == "root":
        return f"refused: {_NEVER_ROOT}"
    return ""


def _is_folder(path: Path) -> bool:
    """Return whether PATH is a folder itself (not a link to one)."""
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def check_restored_copy(
    connection: Connection, restored_root: Path, check: RestoreCheck
) -> RestoreCheckResult:
    """Given a host's connection, the folder its snapshot was restored into and the
    contract's check, start the application on a copy of the restored data and probe it.

    Never raises for a failed check: an unreachable host, a changed host key,
    a missing data folder, a command that exits or answers the wrong status
    are all a result with ``ok`` false and the reason in ``detail``.
    """
    started = time.monotonic()

    def result(status: int | None, detail: str) -> RestoreCheckResult:
        ok = status == check.expect_status
        return RestoreCheckResult(
            connection.host, ok, status, round(time.monotonic() - started, 3), detail
        )

    refused = _refused_account(check.user)
    if refused:
        return result(None, refused)
    try:
        source = restored_path(restored_root, check.data)
    except UnsafePath as error:
        return result(None, f"{check.data} refused: {error}")
    if not _is_folder(source):
        return result(None, f"{check.data} is not in the restored snapshot")
    try:
        session = open_host_session(connection)
    except (HostKeyProblem, Unreachable) as error:
        return result(None, str(error))
    folder, pid = "", ""
    try:
        uid = _run(session, "the account", shlex.join(["id", "-u", "--", check.user])).strip()
        if uid == "0":
            return result(None, f"refused: {check.user} has uid 0 on the host; {_NEVER_ROOT}")
        # A drill killed mid-check leaves its copy behind; runs of a client are
        # serialised by its lock, so any copy found now is such a leftover.
        folder = _run(
            session,
            "scratch folder",
            f"sudo -n sh -c 'rm -rf {SCRATCH_PREFIX}*; mktemp -d {SCRATCH_PREFIX}XXXXXXXX'",
        ).strip()
        _upload(session, source, folder)
        user = shlex.quote(check.user)
        _run(session, "handing the copy over", f"sudo -n chown -R {user}: {shlex.quote(folder)}")
        command = check.command.format(data=shlex.quote(f"{folder}/data"), port=check.port)
        limit = int(check.wait.total_seconds()) + 30
        # "echo $$" then exec: the PID printed is the one "timeout" runs as. The
        # uid is checked again by the very shell that becomes the command.
        script = (
            f'if [ "$(id -u)" = 0 ]; then echo {_AS_ROOT}; exit 1; fi; '
            f"echo $$; exec timeout {limit} {command}"
        )
        # The command runs on, attached to the session, until the cleanup stops it.
        pid = session.start(
            f"sudo -n -u {user} sh -c {shlex.quote(script)}", timeout=COMMAND_TIMEOUT_S
        ).strip()
        if pid == _AS_ROOT:
            return result(None, f"refused: {check.user} runs as uid 0 on the host; {_NEVER_ROOT}")
        if not pid.isdigit():
            return result(None, f"the command did not start as {check.user}")
        wait = check.wait.total_seconds()
        answer = _run(
            session,
            "probe",
            shlex.join(["python3", "-c", _PROBE, str(check.port), check.path, str(wait), pid]),
            timeout=wait + 30,
        ).splitlines()
        status_text, body = [*answer, "", ""][:2]
        if not status_text.isdigit():
            return result(None, body or "no answer")
        status = int(status_text)
        verdict = (
            "as expected" if status == check.expect_status else (f"expected {check.expect_status}")
        )
        return result(status, f"GET {check.path} answered {status} ({verdict}): {body[:120]}")
    except (_HostCommandFailed, Unreachable, CommandTimedOut, OSError) as error:
        return result(None, str(error))
    finally:
        _clean_up(session, folder, pid)


def _clean_up(session: HostSession, folder: str, pid: str) -> None:
    """Stop the command (``timeout`` passes the signal on to it) and remove the copy."""
    try:
        if pid.isdigit():
            session.run(f"sudo -n kill -TERM {pid}", timeout=COMMAND_TIMEOUT_S)
        if folder.startswith(SCRATCH_PREFIX):
            session.run(f"sudo -n rm -rf {shlex.quote(folder)}", timeout=COMMAND_TIMEOUT_S)
    except (Unreachable, CommandTimedOut, OSError):
        pass  # the folder is in /var/tmp and the command bounded by timeout
    finally:
        session.close()
