"""The restic wrapper against the real restic binary and real local repositories."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.argv_record import recording_execs
from support.restic import RESTIC_PASSWORD, damage_largest_pack
from support.waiting import wait_until

from webmg_ops.backups.restic import (
    Repository,
    ResticError,
    ResticFailure,
    backup,
    check_repository,
    classify_failure,
    forget,
    list_files,
    list_snapshots,
    restore,
)

#: Real restic on this machine: not in the fast inner loop.
pytestmark = pytest.mark.tools


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "source"
    (folder / "nested").mkdir(parents=True)
    for index in range(12):
        (folder / f"file-{index}.bin").write_bytes(os.urandom(40_000 + index))
    (folder / "nested" / "notes.txt").write_text("bookings: 250\n")
    return folder


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_backup_list_restore_round_trip(
    repository: Repository, source: Path, tmp_path: Path
) -> None:
    summary = backup(repository, [source], tags=["webmg", "alpenhof"])
    assert summary.files_new == 13
    assert summary.total_bytes > 480_000
    (snapshot,) = list_snapshots(repository)
    assert snapshot.id.startswith(summary.snapshot_id)
    assert snapshot.tags == ("webmg", "alpenhof")
    files = {node.path for node in list_files(repository, snapshot.id) if node.type == "file"}
    assert f"{source}/nested/notes.txt" in files
    target = tmp_path / "restored"
    assert restore(repository, snapshot.id, target) >= 0
    assert _digests(target / source.relative_to("/")) == _digests(source)
    with pytest.raises(ValueError, match="not empty"):
        restore(repository, snapshot.id, target)


def test_a_restore_asked_to_stop_is_ended(
    repository: Repository, source: Path, tmp_path: Path
) -> None:
    backup(repository, [source])
    (snapshot,) = list_snapshots(repository)
    stop = threading.Event()
    stop.set()
    with pytest.raises(ResticError, match="restic restore: fatal: stopped"):
        restore(repository, snapshot.id, tmp_path / "restored", stop=stop)


def test_check_passes_on_an_intact_repository(repository: Repository, source: Path) -> None:
    backup(repository, [source])
    result = check_repository(repository, read_data_subset="100%")
    assert result.ok
    assert result.errors == ()


@pytest.mark.parametrize(
    ("damage", "subset", "sign"),
    [
        # A flipped byte is only seen when the data is read.
        ("flip-byte", "100%", "does not match"),
        # A missing or short pack shows in the structure check. (The largest pack holds file
        # data: losing a tree pack makes restic 0.14 retry reading it for minutes.)
        ("delete", None, "does not exist"),
        ("truncate", None, "unexpected file size"),
    ],
)
def test_check_names_a_damaged_pack(
    repository: Repository, source: Path, damage: str, subset: str | None, sign: str
) -> None:
    backup(repository, [source])
    pack = damage_largest_pack(repository.location, damage)
    result = check_repository(repository, read_data_subset=subset)
    assert not result.ok
    assert sign in result.errors[0]
    assert pack.name in result.errors[0] or damage == "flip-byte"


def test_wrong_password_and_missing_repository_are_named(
    repository: Repository, tmp_path: Path
) -> None:
    wrong = Repository(repository.location, password="not-the-password", cache_dir=tmp_path / "c")
    with pytest.raises(ResticError) as caught:
        list_snapshots(wrong)
    assert caught.value.failure is ResticFailure.WRONG_PASSWORD
    missing = Repository(
        str(tmp_path / "nowhere"), password=RESTIC_PASSWORD, cache_dir=tmp_path / "c"
    )
    with pytest.raises(ResticError) as caught:
        list_snapshots(missing)
    assert caught.value.failure is ResticFailure.REPOSITORY_MISSING


def test_a_locked_repository_is_named(repository: Repository) -> None:
    # A backup reading stdin holds its lock until stdin closes.
    holder = subprocess.Popen(
        ["restic", "backup", "--stdin"],
        env={**os.environ, **repository.env()},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        locks = Path(repository.location) / "locks"
        assert wait_until(lambda: any(locks.iterdir()), 20), "restic took no lock"
        with pytest.raises(ResticError) as caught:
            forget(repository, daily=1)
        assert caught.value.failure is ResticFailure.LOCKED
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def _expected_kept(times: list[datetime], daily: int, weekly: int) -> set[datetime]:
    kept: set[datetime] = set()
    for count, bucket in ((daily, lambda t: t.date()), (weekly, lambda t: t.isocalendar()[:2])):
        seen: list[object] = []
        for moment in sorted(times, reverse=True):
            key = bucket(moment)
            if key not in seen:
                seen.append(key)
                if len(seen) <= count:
                    kept.add(moment)
    return kept


def test_retention_keeps_exactly_what_the_policy_says(repository: Repository, source: Path) -> None:
    start = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
    times = [start + timedelta(days=day) for day in range(16)]
    for moment in times:
        (source / "nested" / "notes.txt").write_text(f"backup of {moment}\n")
        backup(repository, [source], at=moment)
    result = forget(repository, daily=5, weekly=3)
    kept_times = {snapshot.time.astimezone(UTC) for snapshot in list_snapshots(repository)}
    assert kept_times == _expected_kept(times, daily=5, weekly=3)
    assert len(result.kept) == len(kept_times)
    assert len(result.removed) == len(times) - len(kept_times)


@pytest.mark.parametrize(
    ("status", "stderr", "failure"),
    [
        (3, "", ResticFailure.PARTIAL),
        (10, "", ResticFailure.REPOSITORY_MISSING),
        (11, "", ResticFailure.LOCKED),
        (12, "", ResticFailure.WRONG_PASSWORD),
        (1, "Fatal: wrong password or no key found", ResticFailure.WRONG_PASSWORD),
        (1, "Fatal: unable to create lock in backend", ResticFailure.LOCKED),
        (1, "Fatal: something else", ResticFailure.FATAL),
        (2, "", ResticFailure.UNKNOWN),
        (137, "", ResticFailure.UNKNOWN),
    ],
)
def test_exit_status_table(status: int, stderr: str, failure: ResticFailure) -> None:
    assert classify_failure(status, stderr) is failure


def test_the_password_never_reaches_a_command_line(
    repository: Repository, source: Path, tmp_path: Path
) -> None:
    with recording_execs(tmp_path) as calls:
        for _ in range(3):
            backup(repository, [source])
        check_repository(repository)
    restic_calls = [argv for argv in calls if Path(argv[0]).name == "restic"]
    assert len(restic_calls) >= 4, calls
    assert [argv for argv in calls if RESTIC_PASSWORD in " ".join(argv)] == []
