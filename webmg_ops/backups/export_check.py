"""The export check of a backup: the contract's export file, read back from a snapshot.

A host decides everything about the file (its size, its type, its content):
the check lists only the folders leading to it, refuses anything but a
regular file, bounds what it reads by the size restic records before
reading, and parses the content as CSV without trusting it. Whatever goes
wrong is a reason in the result, never an exception: the backup itself
succeeded, only the export is not verified.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from webmg_ops.backups.restic import Repository, ResticError, dump_file, find_node
from webmg_ops.config.contract import EXPORT_MAX_BYTES, DonorExport
from webmg_ops.config.durations import format_duration


@dataclass(frozen=True)
class ExportCheck:
    """What the check found of one host's export: verified or not, and why not.

    ``rows`` are the CSV data rows after the header, ``bytes`` the file's
    size, ``modified`` when the host last wrote it (None where unknown).
    """

    ok: bool
    reason: str | None = None
    rows: int | None = None
    bytes: int | None = None
    modified: datetime | None = None

    def evidence(self) -> dict[str, Any]:
        """Return the result as the run's evidence shows it (JSON values)."""
        return {
            "ok": self.ok,
            "reason": self.reason,
            "rows": self.rows,
            "bytes": self.bytes,
            "modified": self.modified.isoformat() if self.modified else None,
        }


def count_rows(text: str) -> int:
    """Given CSV text, return its data rows: records after the header, blank lines aside.

    Raise csv.Error for text that is not CSV (a NUL byte, a field longer than
    the csv module's limit, a stray or unclosed quote).
    """
    if "\x00" in text:
        # Python's csv reads NUL bytes since 3.11; a text export never holds one.
        raise csv.Error("line contains NUL")
    records = sum(1 for record in csv.reader(io.StringIO(text, newline=""), strict=True) if record)
    return max(0, records - 1)


def check_export(
    repository: Repository,
    snapshot_id: str,
    export: DonorExport,
    *,
    backed_up_at: datetime,
    max_bytes: int = EXPORT_MAX_BYTES,
) -> ExportCheck:
    """Given a host's repository, the snapshot its backup took, the contract's export and
    when the backup ran, read the export back from the snapshot and return the verdict.

    Not verified (``ok`` false, with the reason) when the snapshot cannot be read, the
    path is not in it or is not a regular file, the file is larger than ``max_bytes``,
    older than ``export.max_age`` at ``backed_up_at``, not CSV, or holds fewer than
    ``export.min_rows`` data rows.
    """
    path = export.path
    try:
        node = find_node(repository, snapshot_id, path)
    except ResticError as error:
        return ExportCheck(False, f"the snapshot could not be listed: {error}")
    if node is None:
        return ExportCheck(False, f"{path} is not in the snapshot")
    found = ExportCheck(False, None, bytes=node.size, modified=node.mtime)
    if node.type != "file":
        return replace(found, reason=f"{path} is a {node.type or 'node'}, not a regular file")
    if node.size > max_bytes:
        return replace(
            found,
            reason=f"{path} holds {node.size} bytes, more than the {max_bytes} the check reads",
        )
    if export.max_age is not None and node.mtime is not None:
        age = backed_up_at - node.mtime
        if age > export.max_age:
            return replace(
                found,
                reason=(
                    f"{path} was last written {_age_text(age)} before "
                    f"the backup, longer than the {format_duration(export.max_age)} allowed"
                ),
            )
    try:
        rows = count_rows(dump_file(repository, snapshot_id, path))
    except ResticError as error:
        return replace(found, reason=f"{path} could not be read back: {error}")
    except csv.Error as error:
        return replace(found, reason=f"{path} is not a readable CSV file: {error}")
    counted = replace(found, rows=rows)
    if rows < export.min_rows:
        return replace(
            counted,
            reason=f"{path} holds {rows} data row(s), fewer than the {export.min_rows} required",
        )
    return replace(counted, ok=True)


def _age_text(age: timedelta) -> str:
    # Whole hours past two hours (an export days old reads "50 h"), minutes below.
    minutes = int(age.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes >= 120 else f"{minutes} min"


def check_exports(
    export: DonorExport | None,
    hosts: Sequence[str],
    snapshots: Mapping[str, str | None],
    repositories: Mapping[str, Repository],
    *,
    backed_up_at: datetime,
    unopened: str | None = None,
) -> dict[str, Any]:
    """Given the contract's export (None: the contract names none), the hosts that must
    hold it, each host's new snapshot, their repositories as the controller opened them
    (``unopened``: why they could not be), and when the backup ran, check each host's
    export; return the run's evidence: ``ok`` (every host verified), ``path``,
    ``reason`` (why nothing could be checked) and each host's result.
    """
    if export is None:
        return _nothing_checked(None, "the contract names no backup.donor_export")
    if not hosts:
        where = f" of group {export.host_group!r}" if export.host_group else ""
        return _nothing_checked(export.path, f"no host{where} was backed up")
    results: dict[str, dict[str, Any]] = {}
    for host in sorted(hosts):
        snapshot = snapshots.get(host)
        repository = repositories.get(host)
        if not snapshot:
            result = ExportCheck(False, "the host's backup took no snapshot")
        elif repository is None:
            why = f": {unopened}" if unopened else ""
            result = ExportCheck(False, f"the repository was not opened{why}")
        else:
            result = check_export(repository, snapshot, export, backed_up_at=backed_up_at)
        results[host] = result.evidence()
    return {
        "ok": all(result["ok"] for result in results.values()),
        "path": export.path,
        "reason": None,
        "hosts": results,
    }


def _nothing_checked(path: str | None, reason: str) -> dict[str, Any]:
    return {"ok": False, "path": path, "reason": reason, "hosts": {}}
