"""The client lock: one run per client at a time, and it survives a crash.

The lock is an ``flock`` on ``<var>/locks/<client>.lock``: the kernel
releases it when the holding process dies, however it dies, so a crash
never leaves a client locked. The file's content names the holder; when a
new run gets the lock and finds a previous holder's record whose run never
released it, that holder died, and the takeover is reported so it can be
recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from webmg_ops.errors import Refused


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a client's lock."""

    run_id: str
    pid: int
    started: str


@dataclass
class ClientLock:
    """A held client lock; ``stale`` names a dead previous holder, if any."""

    path: Path
    holder: LockHolder
    stale: LockHolder | None
    _file: IO[str]

    def release(self) -> None:
        """Clear the holder record and release the lock."""
        self._file.seek(0)
        self._file.truncate()
        self._file.flush()
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


def lock_path(var_dir: Path, client: str) -> Path:
    """Given the var directory and a client, return the client's lock file."""
    return var_dir / "locks" / f"{client}.lock"


def _read_holder(handle: IO[str]) -> LockHolder | None:
    handle.seek(0)
    text = handle.read().strip()
    if not text:
        return None
    try:
        data: dict[str, Any] = json.loads(text)
        return LockHolder(str(data["run_id"]), int(data["pid"]), str(data["started"]))
    except (ValueError, KeyError, TypeError):
        return None


def acquire_client_lock(var_dir: Path, client: str, holder: LockHolder) -> ClientLock:
    """Given the var directory, a client and the new holder, return the held lock.

    Raise Refused if another live run holds it (naming that run).
    """
    path = lock_path(var_dir, client)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        current = _read_holder(handle)
        handle.close()
        who = (
            f"run {current.run_id} (pid {current.pid}, since {current.started})"
            if current
            else "another run"
        )
        raise Refused(f"client {client} is locked by {who}; one run per client at a time") from None
    stale = _read_holder(handle)
    handle.seek(0)
    handle.truncate()
    handle.write(
        json.dumps({"run_id": holder.run_id, "pid": holder.pid, "started": holder.started})
    )
    handle.flush()
    return ClientLock(path=path, holder=holder, stale=stale, _file=handle)


@contextlib.contextmanager
def client_lock(var_dir: Path, client: str, holder: LockHolder) -> Iterator[ClientLock]:
    """Hold a client's lock for a ``with`` block (see :func:`acquire_client_lock`)."""
    lock = acquire_client_lock(var_dir, client, holder)
    try:
        yield lock
    finally:
        lock.release()
