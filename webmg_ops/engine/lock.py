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
import os
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


def locked_message(client: str, holder: LockHolder | None) -> str:
    """Given a client and the run holding its lock (None: unknown), return the refusal."""
    who = (
        f"run {holder.run_id} (pid {holder.pid}, since {holder.started})"
        if holder
        else ("another run")
    )
    return f"client {client} is locked by {who}; one run per client at a time"


def find_lock_holder(var_dir: Path, client: str) -> LockHolder | None:
    """Given the var directory and a client, return the live run holding the client's lock
    (None: free), without taking the lock or writing anything.

    The holder's record names its process: a record whose process is gone is a crashed
    run's, whose lock the kernel has released.
    """
    try:
        with lock_path(var_dir, client).open(encoding="utf-8") as handle:
            holder = _read_holder(handle)
    except FileNotFoundError:
        return None
    if holder is None:
        return None
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return holder


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
        raise Refused(locked_message(client, current)) from None
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
