"""The donor-export check: the contract's export file, read back from a real snapshot.

Each case backs up a folder holding an export with the real restic binary into a
local repository, then checks the snapshot as a backup run does. The expected rows
are counted by hand from the CSV written; the reasons are the messages an operator
reads in the run log.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from webmg_ops.backups.export_check import ExportCheck, check_export, check_exports, count_rows
from webmg_ops.backups.restic import Repository, backup, list_snapshots
from webmg_ops.config.contract import DonorExport
from webmg_ops.service.report_sectors import donor_export_verified

#: Real restic on this machine: not in the fast inner loop.
pytestmark = pytest.mark.tools

#: A header and three donors; the second's name holds a comma, the third's note a newline.
EXPORT = 'id,name,amount,note\n1,Ada,50,\n2,"Dubois, Claire",120,monthly\n3,Karim,35,"two\nlines"\n'
EXPORT_ROWS = 3


def _snapshot(repository: Repository, folder: Path) -> str:
    backup(repository, [folder])
    return list_snapshots(repository)[-1].id


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    """A folder that will be backed up, holding ``donors.csv``."""
    folder = tmp_path / "data" / "exports"
    folder.mkdir(parents=True)
    (folder / "donors.csv").write_text(EXPORT)
    return folder


def _export(folder: Path, name: str = "donors.csv", **fields: object) -> DonorExport:
    return DonorExport.model_validate({"path": str(folder / name), **fields})


def test_a_csv_export_in_the_snapshot_is_verified_with_its_rows_and_size(
    repository: Repository, exports: Path
) -> None:
    # restic keeps nanoseconds; the check keeps whole microseconds of them.
    nanoseconds = (exports / "donors.csv").stat().st_mtime_ns
    written = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanoseconds // 1000)
    snapshot = _snapshot(repository, exports.parent)
    result = check_export(
        repository, snapshot, _export(exports, max_age="1d"), backed_up_at=datetime.now(UTC)
    )
    assert result == ExportCheck(
        True, None, rows=EXPORT_ROWS, bytes=len(EXPORT.encode()), modified=written
    )


@pytest.mark.parametrize(
    ("content", "rows"),
    [
        ("id,name\n", 0),
        ("id,name\n\n1,a\n\n2,b\n", 2),
        ('id,note\r\n1,"a\r\nb"\r\n', 1),
        ("", 0),
    ],
)
def test_rows_are_the_records_after_the_header_blank_lines_aside(content: str, rows: int) -> None:
    assert count_rows(content) == rows


def test_an_export_missing_from_the_snapshot_is_not_verified(
    repository: Repository, exports: Path
) -> None:
    snapshot = _snapshot(repository, exports.parent)
    result = check_export(
        repository, snapshot, _export(exports, "gone.csv"), backed_up_at=datetime.now(UTC)
    )
    assert result == ExportCheck(False, f"{exports}/gone.csv is not in the snapshot")


def test_a_folder_or_a_link_at_the_export_path_is_not_read(
    repository: Repository, exports: Path
) -> None:
    (exports / "folder.csv").mkdir()
    (exports / "link.csv").symlink_to("/etc/passwd")
    snapshot = _snapshot(repository, exports.parent)
    now = datetime.now(UTC)
    folder = check_export(repository, snapshot, _export(exports, "folder.csv"), backed_up_at=now)
    link = check_export(repository, snapshot, _export(exports, "link.csv"), backed_up_at=now)
    assert (folder.ok, folder.reason) == (
        False,
        f"{exports}/folder.csv is a dir, not a regular file",
    )
    assert (link.ok, link.reason, link.rows) == (
        False,
        f"{exports}/link.csv is a symlink, not a regular file",
        None,
    )


def test_an_export_larger_than_the_limit_is_not_read_back(
    repository: Repository, exports: Path
) -> None:
    snapshot = _snapshot(repository, exports.parent)
    size = len(EXPORT.encode())
    result = check_export(
        repository, snapshot, _export(exports), backed_up_at=datetime.now(UTC), max_bytes=size - 1
    )
    assert (result.ok, result.rows, result.bytes) == (False, None, size)
    assert result.reason == (
        f"{exports}/donors.csv holds {size} bytes, more than the {size - 1} the check reads"
    )


def test_an_export_older_than_its_max_age_is_not_verified(
    repository: Repository, exports: Path
) -> None:
    written = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    os.utime(exports / "donors.csv", (written.timestamp(), written.timestamp()))
    snapshot = _snapshot(repository, exports.parent)
    export = _export(exports, max_age="2d")
    # Three days and 40 minutes after it was written: 72 whole hours.
    late = check_export(
        repository, snapshot, export, backed_up_at=written + timedelta(days=3, minutes=40)
    )
    assert (late.ok, late.modified) == (False, written)
    assert late.reason == (
        f"{exports}/donors.csv was last written 72 h before the backup, longer than the 2d allowed"
    )
    # Exactly at the limit it still counts; a minute past it, in minutes below two hours.
    at_limit = check_export(repository, snapshot, export, backed_up_at=written + timedelta(days=2))
    assert (at_limit.ok, at_limit.rows) == (True, EXPORT_ROWS)
    hourly = _export(exports, max_age="1h")
    past = check_export(
        repository, snapshot, hourly, backed_up_at=written + timedelta(minutes=61, seconds=30)
    )
    assert past.reason == (
        f"{exports}/donors.csv was last written 61 min before the backup, "
        "longer than the 1h allowed"
    )


def test_an_export_with_fewer_rows_than_required_is_not_verified(
    repository: Repository, exports: Path
) -> None:
    snapshot = _snapshot(repository, exports.parent)
    now = datetime.now(UTC)
    short = check_export(repository, snapshot, _export(exports, min_rows=4), backed_up_at=now)
    enough = check_export(repository, snapshot, _export(exports, min_rows=3), backed_up_at=now)
    assert (short.ok, short.rows) == (False, EXPORT_ROWS)
    assert short.reason == f"{exports}/donors.csv holds 3 data row(s), fewer than the 4 required"
    assert enough.ok


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"id,name\n1,\x00binary\n", "line contains NUL"),
        (b'id,name\n1,"unclosed\n', "unexpected end of data"),
        (b'id,name\n1,"a"b\n', "',' expected after '\"'"),
    ],
)
def test_an_export_that_is_not_csv_is_not_verified(
    repository: Repository, exports: Path, content: bytes, why: str
) -> None:
    (exports / "donors.csv").write_bytes(content)
    snapshot = _snapshot(repository, exports.parent)
    result = check_export(repository, snapshot, _export(exports), backed_up_at=datetime.now(UTC))
    assert (result.ok, result.rows, result.bytes) == (False, None, len(content))
    assert result.reason == f"{exports}/donors.csv is not a readable CSV file: {why}"


def test_a_snapshot_that_cannot_be_listed_is_a_reason_not_a_crash(
    repository: Repository, exports: Path
) -> None:
    _snapshot(repository, exports.parent)
    result = check_export(repository, "0" * 64, _export(exports), backed_up_at=datetime.now(UTC))
    assert not result.ok
    assert result.reason is not None
    assert result.reason.startswith("the snapshot could not be listed: restic ls: fatal: ")
    assert "0" * 64 in result.reason


def test_the_runs_evidence_names_each_hosts_verdict_and_the_report_reads_it(
    repository: Repository, exports: Path
) -> None:
    snapshot = _snapshot(repository, exports.parent)
    export = _export(exports)
    now = datetime.now(UTC)
    evidence = check_exports(
        export,
        ("web1", "web2", "web3"),
        {"web1": snapshot, "web2": None, "web3": snapshot},
        {"web1": repository},
        backed_up_at=now,
        unopened="wrong password",
    )
    assert evidence["ok"] is False
    assert (evidence["path"], evidence["reason"]) == (export.path, None)
    assert evidence["hosts"]["web1"]["ok"] is True
    assert evidence["hosts"]["web1"]["rows"] == EXPORT_ROWS
    assert evidence["hosts"]["web2"]["reason"] == "the host's backup took no snapshot"
    assert evidence["hosts"]["web3"]["reason"] == "the repository was not opened: wrong password"
    assert donor_export_verified({"donor_export": evidence}) is False
    alone = check_exports(export, ("web1",), {"web1": snapshot}, {"web1": repository},
                          backed_up_at=now)  # fmt: skip
    assert alone["ok"] is True
    assert donor_export_verified({"donor_export": alone}) is True


def test_nothing_to_check_is_said_with_its_reason() -> None:
    now = datetime.now(UTC)
    unnamed = check_exports(None, ("web1",), {"web1": "abc"}, {}, backed_up_at=now)
    assert unnamed == {
        "ok": False,
        "path": None,
        "reason": "the contract names no backup.donor_export",
        "hosts": {},
    }
    export = DonorExport.model_validate({"path": "/srv/donors.csv", "host_group": "web"})
    nobody = check_exports(export, (), {}, {}, backed_up_at=now)
    assert nobody["reason"] == "no host of group 'web' was backed up"
    assert nobody["ok"] is False
