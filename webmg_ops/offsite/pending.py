"""The pending file: failed offsite uploads and copies waiting to be tried again.

Items wait in ``var/offsite/pending.jsonl``, one JSON line each, and hold no
secret. The file is changed under a lock and rewritten atomically.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from webmg_ops.config.offsite_target import OffsiteTarget
from webmg_ops.errors import Failed, Refused
from webmg_ops.settings import Settings

PendingKind = Literal["restic-copy", "reports", "checkpoint"]
"""What a pending item publishes: a policy's copy or upload, or a ledger checkpoint."""

PENDING_FILE = Path("offsite") / "pending.jsonl"
"""Where failed items wait, relative to ``Settings.var_dir``."""


@dataclass(frozen=True)
class PendingItem:
    """An offsite upload or copy that failed, waiting in the pending file.

    An upload (``kind`` ``reports``) keeps its ``files`` and ``key_prefix``;
    a copy (``restic-copy``) keeps its ``source`` location (any URL password
    masked), the source's password file and cache folder (paths, not
    secrets), its restic ``-o`` options (never secrets) and ``snapshot_ids``;
    a ledger checkpoint (``checkpoint``) keeps ``SEQ:HASH`` and the time it
    was taken, so that a retry publishes that very checkpoint.
    The target is kept as it was when the item failed. No secret is kept:
    credentials are resolved again at each retry.
    """

    id: str
    kind: PendingKind
    client: str
    run_id: str
    target: OffsiteTarget
    reason: str
    first_failed_at: str
    last_attempt_at: str
    attempts: int = 1
    files: tuple[str, ...] = ()
    key_prefix: str = ""
    source: str | None = None
    source_password_file: str | None = None
    source_cache_dir: str | None = None
    source_options: tuple[str, ...] = ()
    snapshot_ids: tuple[str, ...] = ()
    checkpoint: str | None = None
    checkpoint_at: str | None = None
    #: The host whose own repository a copy came from (None: a client-wide repository).
    host: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the item as JSON-ready data (one line of the pending file)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "client": self.client,
            "run_id": self.run_id,
            "target": self.target.model_dump(mode="json"),
            "reason": self.reason,
            "first_failed_at": self.first_failed_at,
            "last_attempt_at": self.last_attempt_at,
            "attempts": self.attempts,
            "files": list(self.files),
            "key_prefix": self.key_prefix,
            "source": self.source,
            "source_password_file": self.source_password_file,
            "source_cache_dir": self.source_cache_dir,
            "source_options": list(self.source_options),
            "snapshot_ids": list(self.snapshot_ids),
            "checkpoint": self.checkpoint,
            "checkpoint_at": self.checkpoint_at,
            "host": self.host,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PendingItem:
        """Given one line of the pending file as data, return the item.

        Raise KeyError, TypeError or ValueError if the data is not an item.
        """
        kind = data["kind"]
        if kind not in get_args(PendingKind):
            raise ValueError(f"unknown pending kind {kind!r}")
        return cls(
            id=str(data["id"]),
            kind=kind,
            client=str(data["client"]),
            run_id=str(data["run_id"]),
            target=OffsiteTarget.model_validate(data["target"]),
            reason=str(data["reason"]),
            first_failed_at=str(data["first_failed_at"]),
            last_attempt_at=str(data["last_attempt_at"]),
            attempts=int(data.get("attempts", 1)),
            files=tuple(str(item) for item in data.get("files") or ()),
            key_prefix=str(data.get("key_prefix") or ""),
            source=data.get("source"),
            source_password_file=data.get("source_password_file"),
            source_cache_dir=data.get("source_cache_dir"),
            source_options=tuple(str(item) for item in data.get("source_options") or ()),
            snapshot_ids=tuple(str(item) for item in data.get("snapshot_ids") or ()),
            checkpoint=data.get("checkpoint"),
            checkpoint_at=data.get("checkpoint_at"),
            host=str(data["host"]) if data.get("host") else None,
        )


def pending_path(settings: Settings) -> Path:
    """Given the settings, return the pending file, ``<var>/offsite/pending.jsonl``."""
    return settings.var_dir / PENDING_FILE


@contextmanager
def locked(lock_file: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold ``lock_file``'s exclusive lock while the block runs, creating its folder.

    With ``wait`` False, raise Refused if another process holds the lock.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Refused(
                f"another process is publishing the pending offsite items ({lock_file})"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_pending(settings: Settings) -> list[PendingItem]:
    """Given the settings, return the items waiting in the pending file, oldest first.

    Raise Failed, naming the line, if the file holds a line that is not an
    item: the file is then left as it is, for an engineer to look at.
    """
    file = pending_path(settings)
    if not file.exists():
        return []
    items: list[PendingItem] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(PendingItem.from_json(json.loads(line)))
        except (KeyError, TypeError, ValueError):
            raise Failed(
                f"{file} line {number} is not a pending offsite item: move the file aside "
                "and look at it"
            ) from None
    return items


def change_pending(
    settings: Settings, change: Callable[[list[PendingItem]], list[PendingItem]]
) -> None:
    """Apply ``change`` to the pending items under the file's lock, and write them atomically."""
    file = pending_path(settings)
    with locked(file.with_name("pending.lock")):
        items = change(read_pending(settings))
        temporary = file.with_name(file.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            for item in items:
                handle.write(json.dumps(item.to_json(), sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # A crash leaves either the old file or the new one, never half of one.
        temporary.replace(file)


def utc_now() -> str:
    """Return the time now in UTC, to the second, as the pending items' timestamps."""
    return datetime.now(UTC).isoformat(timespec="seconds")
