"""Restore drills: restore a snapshot into scratch space and prove the data came back.

A drill restores a snapshot (never over live data), checks every file of
the snapshot's own manifest by size and SHA-256, and measures the recovery
point (drill time minus snapshot time) and the recovery time (restore plus
verification) against the policy's targets. Any restic error, mismatch,
missing manifest or missed target fails the drill, with its cause named.
The restored tree came from a client's host: a manifest path or symbolic
link leading out of it is refused, never followed (see ``manifest``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from webmg_ops.backups.manifest import (
    MANIFEST_PATH,
    Mismatch,
    read_manifest,
    restored_path,
    verify_restore,
)
from webmg_ops.backups.restic import (
    CheckResult,
    Repository,
    ResticError,
    Snapshot,
    check_repository,
    list_snapshots,
    restore,
)

#: Given the restored tree and its manifest, return evidence and failures.
MoreVerification = Callable[[Path, Mapping[str, Any]], tuple[Mapping[str, Any], tuple[str, ...]]]


@dataclass(frozen=True)
class DrillResult:
    """What a restore drill restored, checked and measured."""

    snapshot_id: str
    snapshot_time: datetime
    started: datetime
    files_checked: int
    bytes_checked: int
    mismatches: tuple[Mismatch, ...]
    restore_s: float
    verify_s: float
    rpo: timedelta
    rto: timedelta
    rpo_target: timedelta
    rto_target: timedelta
    failures: tuple[str, ...] = field(default=())
    #: What ``verify_more`` checked (e.g. database row counts), by name.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Return whether the drill proved the data and met both targets."""
        return not self.failures

    @property
    def mb_per_s(self) -> float:
        """Return the verified megabytes per second of restore plus verification."""
        seconds = self.restore_s + self.verify_s
        return round(self.bytes_checked / 1e6 / seconds, 2) if seconds else 0.0


def choose_snapshot(repository: Repository, snapshot_id: str | None) -> Snapshot:
    """Given a repository and an id (None: the latest), return that snapshot.

    Raise ResticError if restic fails, LookupError if there is no such snapshot.
    """
    snapshots = list_snapshots(repository)
    if not snapshots:
        raise LookupError("the repository holds no snapshot")
    if snapshot_id is None:
        return snapshots[-1]
    for snapshot in snapshots:
        if snapshot.id.startswith(snapshot_id):
            return snapshot
    raise LookupError(f"no snapshot {snapshot_id!r} in the repository")


def _failures(
    mismatches: tuple[Mismatch, ...],
    rpo: timedelta,
    rto: timedelta,
    rpo_target: timedelta,
    rto_target: timedelta,
) -> tuple[str, ...]:
    found = [
        f"{item.path}: {item.kind.value} (expected {item.expected}, found {item.found})"
        for item in mismatches
    ]
    if rpo > rpo_target:
        found.append(f"RPO {rpo} exceeds the target {rpo_target}")
    if rto > rto_target:
        found.append(f"RTO {rto} exceeds the target {rto_target}")
    return tuple(found)


def run_drill(
    repository: Repository,
    scratch: Path,
    *,
    rpo_target: timedelta,
    rto_target: timedelta,
    snapshot_id: str | None = None,
    snapshot: Snapshot | None = None,
    manifest_path: str = MANIFEST_PATH,
    before_verify: Callable[[Path], None] | None = None,
    check_structure: bool = True,
    verify_more: MoreVerification | None = None,
) -> DrillResult:
    """Given a repository, an empty scratch folder and the targets, run a drill.

    The snapshot (``snapshot`` when the caller already listed it, else
    ``snapshot_id``, else the latest) is restored while the
    repository's structure is checked beside it (a missing or short pack is
    named, and stops the restore); then every file of the manifest
    saved in it (at ``manifest_path``) is verified. ``before_verify`` sees
    the restored tree first (tests simulate silent corruption with it).
    ``check_structure=False`` skips the structure check (the caller did it
    once for several drills). ``verify_more`` checks what files alone cannot
    prove (a database dump that must restore) inside the timed recovery:
    given the restored tree and the manifest, it returns its evidence and
    failures. Never raises for a failed drill: restic errors, a missing manifest,
    mismatches and missed targets are named in ``failures``. Raise
    ValueError if the scratch folder is not empty (a drill never restores
    over data).
    """
    started = datetime.now(UTC)
    clock = time.monotonic()
    if snapshot is None and snapshot_id is None:
        try:
            snapshot = choose_snapshot(repository, None)
        except (ResticError, LookupError) as error:
            return _failed_early(started, rpo_target, rto_target, str(error))
    # The structure check, and the listing that gives the snapshot's time
    # (unless already known), run beside the restore: a missing or short pack
    # the check finds stops the restore at once (which would otherwise retry
    # on it), and its cause, naming the pack, is the drill's.
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=2) as pool:
        listing = (
            pool.submit(choose_snapshot, repository, snapshot_id) if snapshot is None else None
        )
        structure = pool.submit(_structure, repository, stop) if check_structure else None
        restore_error: ResticError | None = None
        try:
            restore_s = restore(
                repository, snapshot.id if snapshot else str(snapshot_id), scratch, stop=stop
            )
        except ResticError as error:
            restore_error = error
        try:
            chosen = listing.result() if listing is not None else snapshot
        except (ResticError, LookupError) as error:
            return _failed_early(started, rpo_target, rto_target, str(error))
        assert chosen is not None  # known, or listed
        try:
            checked = structure.result() if structure is not None else None
        except ResticError as error:
            return _failed_early(started, rpo_target, rto_target, str(error), chosen)
    if checked is not None and not checked.ok:
        cause = f"repository check failed: {'; '.join(checked.errors)}"
        return _failed_early(started, rpo_target, rto_target, cause, chosen)
    if restore_error is not None:
        return _failed_early(started, rpo_target, rto_target, str(restore_error), chosen)
    if before_verify is not None:
        before_verify(scratch)
    verify_clock = time.monotonic()
    try:
        # The manifest is the host's word: read inside the restored tree only.
        manifest = read_manifest(restored_path(scratch, manifest_path))
    except ValueError as error:  # UnsafePath included
        return _failed_early(started, rpo_target, rto_target, f"manifest: {error}", chosen)
    verification = verify_restore(manifest, scratch)
    extra: Mapping[str, Any] = {}
    more_failures: tuple[str, ...] = ()
    if verify_more is not None:
        extra, more_failures = verify_more(scratch, manifest)
    verify_s = round(time.monotonic() - verify_clock, 3)
    rpo = started - chosen.time
    rto = timedelta(seconds=round(time.monotonic() - clock, 3))
    return DrillResult(
        snapshot_id=chosen.id,
        snapshot_time=chosen.time,
        started=started,
        files_checked=verification.files_checked,
        bytes_checked=verification.bytes_checked,
        mismatches=verification.mismatches,
        restore_s=restore_s,
        verify_s=verify_s,
        rpo=rpo,
        rto=rto,
        rpo_target=rpo_target,
        rto_target=rto_target,
        failures=(
            _failures(verification.mismatches, rpo, rto, rpo_target, rto_target) + more_failures
        ),
        extra=extra,
    )


def _structure(repository: Repository, stop: threading.Event) -> CheckResult:
    """Check the repository's structure; on a problem, ask the restore beside it to stop."""
    try:
        checked = check_repository(repository, lock=False)
    except ResticError:
        stop.set()
        raise
    if not checked.ok:
        stop.set()
    return checked


def _failed_early(
    started: datetime,
    rpo_target: timedelta,
    rto_target: timedelta,
    cause: str,
    snapshot: Snapshot | None = None,
) -> DrillResult:
    return DrillResult(
        snapshot_id=snapshot.id if snapshot else "",
        snapshot_time=snapshot.time if snapshot else started,
        started=started,
        files_checked=0,
        bytes_checked=0,
        mismatches=(),
        restore_s=0.0,
        verify_s=0.0,
        rpo=started - snapshot.time if snapshot else timedelta(0),
        rto=datetime.now(UTC) - started,
        rpo_target=rpo_target,
        rto_target=rto_target,
        failures=(cause,),
    )
