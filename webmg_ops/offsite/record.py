"""Recording offsite outcomes: ledger entries, and the pending file for failures.

:func:`record_publication` and :func:`record_copy` write an upload's or a
copy's outcome to the ledger (``offsite-published`` /
``offsite-unpublished``) and keep every failed item in the pending file,
from which :func:`~webmg_ops.offsite.republish.retry_pending` publishes it
later.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from webmg_ops.backups import restic
from webmg_ops.config.offsite_target import OffsiteTarget
from webmg_ops.ledger import NewEntry
from webmg_ops.offsite.checkpoints import CheckpointPublication
from webmg_ops.offsite.copy import CopyResult
from webmg_ops.offsite.pending import PendingItem, PendingKind, change_pending, utc_now
from webmg_ops.offsite.upload import PublishResult
from webmg_ops.settings import Settings

PUBLISHED = "offsite-published"
"""Ledger kind: an offsite copy or upload that was made and verified."""
UNPUBLISHED = "offsite-unpublished"
"""Ledger kind: an offsite copy or upload that failed and waits in the pending file."""


def summary(reasons: Sequence[str | None]) -> str:
    """Given failure reasons, return the distinct ones sorted and joined, or "unknown"."""
    distinct = sorted({reason for reason in reasons if reason})
    return "; ".join(distinct) or "unknown"


def upload_payloads(
    result: PublishResult, run_id: str, extra: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Return the ledger payloads of the published and unpublished files (None when none)."""
    common = {
        "run_id": run_id,
        "offsite": "reports",
        "endpoint": result.target.endpoint,
        "bucket": result.target.bucket,
        **extra,
    }
    published = (
        {
            **common,
            "files": [
                {"path": item.path, "key": item.key, "sha256": item.sha256, "size": item.size}
                for item in result.published
            ],
        }
        if result.published
        else None
    )
    unpublished = (
        {
            **common,
            "reason": summary([item.reason for item in result.unpublished]),
            "files": [
                {"path": item.path, "key": item.key, "reason": item.reason}
                for item in result.unpublished
            ],
        }
        if result.unpublished
        else None
    )
    return published, unpublished


def copy_payload(result: CopyResult, run_id: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ledger payload of a copy's result, with ``extra`` (such as the pending id)."""
    payload: dict[str, Any] = {
        "run_id": run_id,
        "offsite": "restic-copy",
        "repository": result.repository,
        "source": result.source,
        **({"host": result.host} if result.host else {}),
        **extra,
    }
    if result.ok:
        payload.update(
            snapshots=list(result.snapshots),
            copied=list(result.copied),
            initialised=result.initialised,
            checked=result.checked,
            seconds=result.seconds,
        )
    else:
        payload.update(reason=result.reason, missing=list(result.missing))
    return payload


#: Writes drafted entries to the ledger in one transaction: the engine's during a run,
#: the service module's for a command outside runs. This module never opens the ledger.
Recorder = Callable[[Sequence[NewEntry]], object]


def record_drafts(
    record: Recorder, client: str, entries: Sequence[tuple[str, dict[str, Any] | None]]
) -> None:
    """Hand the entries whose payload is not None to ``record``, all in one call."""
    drafts = [NewEntry(kind, client, payload) for kind, payload in entries if payload is not None]
    if drafts:
        record(drafts)


def _first_failure(
    kind: PendingKind,
    client: str,
    run_id: str,
    target: OffsiteTarget,
    reason: str,
    **details: Any,
) -> PendingItem:
    """Return a new pending item for an upload or copy that just failed for the first time."""
    now = utc_now()
    return PendingItem(
        id=secrets.token_hex(6),
        kind=kind,
        client=client,
        run_id=run_id,
        target=target,
        reason=reason,
        first_failed_at=now,
        last_attempt_at=now,
        **details,
    )


def record_publication(
    settings: Settings, result: PublishResult, run_id: str, *, record: Recorder
) -> str | None:
    """Given an upload's result and its run, record it; return the pending item's id, if any.

    Unpublished files are first added to the pending file (as one item),
    then the ledger gets ``offsite-published`` (keys and sha256) and
    ``offsite-unpublished`` (reasons, the pending id) in one transaction.
    Raise EnvironmentProblem if the ledger fails: the pending item is kept.
    """
    pending_id: str | None = None
    if result.unpublished:
        item = _first_failure(
            "reports",
            result.client,
            run_id,
            result.target,
            summary([file.reason for file in result.unpublished]),
            files=tuple(file.path for file in result.unpublished),
            key_prefix=result.key_prefix,
        )
        change_pending(settings, lambda items: [*items, item])
        pending_id = item.id
    published, unpublished = upload_payloads(result, run_id, {})
    if unpublished is not None:
        unpublished["pending_id"] = pending_id
    record_drafts(record, result.client, [(PUBLISHED, published), (UNPUBLISHED, unpublished)])
    return pending_id


def record_copy(
    settings: Settings,
    result: CopyResult,
    run_id: str,
    source: restic.Repository,
    *,
    record: Recorder,
) -> str | None:
    """Given a copy's result, its run and its source repository, record it.

    A failed copy is first added to the pending file (the source's location
    masked, its password file and cache folder by path, never a password),
    then written to the ledger as ``offsite-unpublished``; a copy made is
    ``offsite-published`` with the snapshots. Return the pending item's id,
    if any. Raise EnvironmentProblem if the ledger fails: the pending item
    is kept.
    """
    if result.ok:
        record_drafts(record, result.client, [(PUBLISHED, copy_payload(result, run_id, {}))])
        return None
    item = _first_failure(
        "restic-copy",
        result.client,
        run_id,
        result.target,
        result.reason or "unknown",
        source=result.source,
        source_password_file=str(source.password_file) if source.password_file else None,
        source_cache_dir=str(source.cache_dir) if source.cache_dir else None,
        source_options=source.options,
        snapshot_ids=result.snapshot_ids,
        host=result.host,
    )
    return _keep_pending(
        settings, item, copy_payload(result, run_id, {"pending_id": item.id}), record
    )


def checkpoint_payload(
    result: CheckpointPublication, run_id: str, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the ledger payload of a checkpoint's publication, with ``extra``."""
    payload: dict[str, Any] = {
        "run_id": run_id,
        "offsite": "checkpoint",
        "endpoint": result.target.endpoint,
        "bucket": result.target.bucket,
        "key": result.key,
        "checkpoint": str(result.checkpoint),
        "checkpoint_at": result.at,
        **extra,
    }
    if result.published:
        # Not locked is said plainly: whoever holds the S3 keys could then delete it.
        payload.update(
            locked=result.lock_mode is not None,
            lock_mode=result.lock_mode,
            locked_until=result.locked_until,
            lock_note=result.lock_note,
        )
    else:
        payload["reason"] = result.reason
    return payload


def record_checkpoint(
    settings: Settings, result: CheckpointPublication, run_id: str, *, record: Recorder
) -> str | None:
    """Given a checkpoint's publication and its run, record it; return the pending id, if any.

    A checkpoint left unpublished is first added to the pending file (with
    its ``SEQ:HASH`` and time, so the retry publishes that very checkpoint),
    then written as ``offsite-unpublished``; one published is
    ``offsite-published`` with its key and lock. Raise EnvironmentProblem if
    the ledger fails: the pending item is kept.
    """
    if result.published:
        record_drafts(record, result.client, [(PUBLISHED, checkpoint_payload(result, run_id, {}))])
        return None
    item = _first_failure(
        "checkpoint",
        result.client,
        run_id,
        result.target,
        result.reason or "unknown",
        checkpoint=str(result.checkpoint),
        checkpoint_at=result.at,
    )
    return _keep_pending(
        settings, item, checkpoint_payload(result, run_id, {"pending_id": item.id}), record
    )


def _keep_pending(
    settings: Settings, item: PendingItem, unpublished: dict[str, Any], record: Recorder
) -> str:
    """Given the settings, an item not published and its ``offsite-unpublished`` payload,
    keep the item in the pending file, record the entry, and return the item's id."""
    change_pending(settings, lambda items: [*items, item])
    record_drafts(record, item.client, [(UNPUBLISHED, unpublished)])
    return item.id
