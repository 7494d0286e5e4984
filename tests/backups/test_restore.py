"""Restore drills against real restic repositories: proof by checksum, RPO and RTO, and
every kind of damage named as the drill's cause of failure."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.restic import damage_largest_pack
from support.waiting import wait_until

from webmg_ops.ansible.connection import Connection
from webmg_ops.backups import restore as restore_module
from webmg_ops.backups.manifest import MismatchKind, UnsafePath, build_manifest, restored_path
from webmg_ops.backups.restic import (
    Repository,
    Snapshot,
    backup,
    check_repository,
    list_snapshots,
)
from webmg_ops.backups.restore import DrillResult, _failures, run_drill
from webmg_ops.backups.restore_check import check_restored_copy
from webmg_ops.config.contract import RestoreCheck

#: Real restic, PostgreSQL or Ansible on this machine: not in the fast inner loop.
pytestmark = pytest.mark.tools

DAY = timedelta(days=1)
#: Targets no drill here misses, each its own value, so that a result shows which is which.
RPO_TARGET = timedelta(hours=30)
RTO_TARGET = timedelta(hours=20)


@pytest.fixture
def live(tmp_path: Path) -> Path:
    """Live data of a host: app files and a database dump, plus the manifest beside them."""
    root = tmp_path / "live"
    (root / "app").mkdir(parents=True)
    for index in range(10):
        (root / "app" / f"record-{index}.bin").write_bytes(os.urandom(30_000))
    (root / "dumps").mkdir()
    (root / "dumps" / "demo.pgdump").write_bytes(os.urandom(120_000))
    return root


def _back_up(repository: Repository, live: Path, at: datetime | None = None) -> str:
    manifest = build_manifest([live / "app", live / "dumps"], host="web1")
    (live / "manifest.json").write_text(json.dumps(manifest))
    return backup(repository, [live], at=at).snapshot_id


def _drill(
    repository: Repository,
    live: Path,
    scratch: Path,
    *,
    rpo_target: timedelta = DAY,
    rto_target: timedelta = DAY,
    before_verify: Callable[[Path], None] | None = None,
) -> DrillResult:
    return run_drill(
        repository,
        scratch,
        rpo_target=rpo_target,
        rto_target=rto_target,
        manifest_path=str(live / "manifest.json"),
        before_verify=before_verify,
    )


def test_drill_restores_and_proves_every_file(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    snapshot = _back_up(repository, live)
    result = _drill(repository, live, tmp_path / "scratch")
    assert result.ok, result.failures
    assert result.snapshot_id.startswith(snapshot)
    assert result.files_checked == 11
    assert result.bytes_checked == 10 * 30_000 + 120_000
    assert timedelta(0) <= result.rpo < timedelta(minutes=5)
    assert result.rto >= timedelta(seconds=result.restore_s)


def test_a_file_deleted_after_the_backup_is_still_restored(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    _back_up(repository, live)
    (live / "app" / "record-3.bin").unlink()
    result = _drill(repository, live, tmp_path / "scratch")
    assert result.ok, result.failures
    assert result.files_checked == 11


def test_silent_corruption_of_a_restored_file_is_named(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    _back_up(repository, live)
    victim = str(live / "app" / "record-7.bin")

    def corrupt(root: Path) -> None:
        restored = root / victim.lstrip("/")
        data = bytearray(restored.read_bytes())
        data[0] ^= 0x01
        restored.write_bytes(bytes(data))

    result = _drill(repository, live, tmp_path / "scratch", before_verify=corrupt)
    assert not result.ok
    (mismatch,) = result.mismatches
    assert mismatch.path == victim
    assert mismatch.kind is MismatchKind.CONTENT
    assert victim in result.failures[0]


@pytest.mark.parametrize(
    ("damage", "sign"),
    [
        ("flip-byte", "ciphertext verification failed"),
        ("delete", "does not exist"),
        ("truncate", "unexpected file size"),
    ],
)
def test_a_damaged_repository_fails_the_drill_with_its_cause(
    repository: Repository, live: Path, tmp_path: Path, damage: str, sign: str
) -> None:
    _back_up(repository, live)
    damage_largest_pack(repository.location, damage)
    result = _drill(repository, live, tmp_path / "scratch")
    assert not result.ok
    assert any(sign in failure for failure in result.failures), result.failures


def test_wrong_password_fails_the_drill(repository: Repository, live: Path, tmp_path: Path) -> None:
    _back_up(repository, live)
    wrong = Repository(repository.location, password="not-it-at-all", cache_dir=tmp_path / "c")
    result = _drill(wrong, live, tmp_path / "scratch")
    assert not result.ok
    assert "wrong password" in result.failures[0]


def test_a_missed_recovery_point_fails_the_drill(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    _back_up(repository, live, at=datetime.now(UTC) - 2 * DAY)
    result = _drill(repository, live, tmp_path / "scratch", rpo_target=timedelta(hours=6))
    assert not result.ok
    assert any(
        "RPO" in failure and "exceeds the target 6:00:00" in failure for failure in result.failures
    )
    assert result.files_checked == 11  # the data itself was proven


def test_a_missed_recovery_time_fails_the_drill(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    _back_up(repository, live)
    # No restore and verification of real files takes a microsecond: the target is missed.
    target = timedelta(microseconds=1)
    result = _drill(repository, live, tmp_path / "scratch", rto_target=target)
    assert not result.ok
    assert result.rto > target
    assert [f for f in result.failures if f.startswith("RTO ")] == [
        f"RTO {result.rto} exceeds the target {target}"
    ]
    assert result.files_checked == 11  # the data itself was proven


def test_a_snapshot_already_listed_is_drilled_as_listed(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    _back_up(repository, live)
    (listed,) = list_snapshots(repository)
    # Listed by the caller (once for every host of a client): its time is the
    # recovery point, as given, with no second listing.
    given = replace(listed, time=listed.time - 2 * DAY)
    result = run_drill(
        repository,
        tmp_path / "scratch",
        rpo_target=DAY,
        rto_target=DAY,
        snapshot=given,
        manifest_path=str(live / "manifest.json"),
    )
    assert result.snapshot_id == listed.id
    assert result.snapshot_time == given.time
    assert result.files_checked == 11
    assert [f for f in result.failures if "RPO" in f] != []


def test_a_drill_never_restores_over_data(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    _back_up(repository, live)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "something").write_text("live data")
    with pytest.raises(ValueError, match="not empty"):
        _drill(repository, live, scratch)


def _restore_check(**changes: object) -> RestoreCheck:
    fields: dict[str, object] = {
        "data": "/var/lib/webmg-demo",
        "user": "webmg-demo",
        "command": "/usr/bin/python3 /srv/app.py --data-dir {data} --port {port}",
    }
    return RestoreCheck.model_validate({**fields, **changes})


@pytest.mark.parametrize(
    "command",
    ["app --data-dir {data}", "app --port {port} --data-dir {data} --user {user}", "app {data"],
    ids=["no-port", "unknown-placeholder", "unbalanced"],
)
def test_a_restore_check_command_must_say_where_the_data_and_port_go(command: str) -> None:
    with pytest.raises(ValueError, match="command"):
        _restore_check(command=command)


def test_a_restore_check_fails_with_its_reason_when_the_copy_cannot_be_served(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connection = Connection("web1", "127.0.0.1", port, "webmg", None, tmp_path / "known_hosts")
    restored = tmp_path / "restored"
    missing = check_restored_copy(connection, restored, _restore_check())
    assert missing.ok is False
    assert missing.detail == "/var/lib/webmg-demo is not in the restored snapshot"
    (restored / "var" / "lib" / "webmg-demo").mkdir(parents=True)
    unreachable = check_restored_copy(connection, restored, _restore_check())
    assert unreachable.ok is False and unreachable.status is None
    assert unreachable.detail.startswith("web1 (127.0.0.1):")


@pytest.mark.parametrize(
    "path",
    ["etc/passwd", "/etc//passwd", "/etc/./passwd", "/etc/../etc/passwd", "/etc/pass\0wd", ""],
    ids=["relative", "empty-component", "dot", "dot-dot", "nul", "empty"],
)
def test_a_path_that_is_not_plain_and_absolute_is_refused(tmp_path: Path, path: str) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    with pytest.raises(UnsafePath):
        restored_path(tmp_path, path)
    assert restored_path(tmp_path, "/etc/passwd") == tmp_path.resolve() / "etc" / "passwd"
    # A component missing from the tree ends the check: the caller finds it missing.
    assert not restored_path(tmp_path, "/srv/app/data").exists()
    assert not restored_path(tmp_path, "/etc/passwd/data").exists()
    (tmp_path / "srv").symlink_to("etc")  # relative, and inside the tree: still refused
    with pytest.raises(UnsafePath, match="/srv is a symbolic link"):
        restored_path(tmp_path, "/srv/passwd")


# What a drill that stopped early reports: the cause alone, nothing proven or measured but
# the time it took, the targets it was held to, and the snapshot when one was chosen.


def _drill_timed(
    repository: Repository, scratch: Path, **options: object
) -> tuple[DrillResult, datetime, datetime]:
    """Run a drill with the test's own targets; return it and the times around it."""
    before = datetime.now(UTC)
    result = run_drill(
        repository,
        scratch,
        rpo_target=RPO_TARGET,
        rto_target=RTO_TARGET,
        **options,  # type: ignore[arg-type]
    )
    return result, before, datetime.now(UTC)


def _assert_failed_early(
    result: DrillResult,
    before: datetime,
    after: datetime,
    cause: str,
    snapshot: Snapshot | None = None,
) -> None:
    """Assert RESULT is a drill that failed for CAUSE (a part of its only failure) before
    verifying anything, run between BEFORE and AFTER, of SNAPSHOT (None: none was chosen)."""
    assert not result.ok
    (failure,) = result.failures
    assert cause in failure, failure
    assert before <= result.started <= after
    assert result.snapshot_id == (snapshot.id if snapshot else "")
    # Without a snapshot the recovery point is unknown: no age is made up for it.
    assert result.snapshot_time == (snapshot.time if snapshot else result.started)
    assert result.rpo == (result.started - snapshot.time if snapshot else timedelta(0))
    assert timedelta(0) <= result.rto <= after - result.started
    assert (result.rpo_target, result.rto_target) == (RPO_TARGET, RTO_TARGET)
    assert (result.files_checked, result.bytes_checked, result.mismatches) == (0, 0, ())
    assert (result.restore_s, result.verify_s, result.mb_per_s) == (0.0, 0.0, 0.0)
    assert result.extra == {}


def _back_up_three(repository: Repository, live: Path) -> list[Snapshot]:
    """Back LIVE up three times, an hour apart, each time with other data; return the
    snapshots, oldest first."""
    now = datetime.now(UTC)
    for hours_ago in (3, 2, 1):
        (live / "app" / "record-0.bin").write_bytes(os.urandom(30_000))
        _back_up(repository, live, at=now - timedelta(hours=hours_ago))
    snapshots = list_snapshots(repository)
    assert [snapshot.time for snapshot in snapshots] == sorted(s.time for s in snapshots)
    return snapshots


def test_a_drill_of_an_empty_repository_fails_naming_it(
    repository: Repository, tmp_path: Path
) -> None:
    """A repository that holds no snapshot fails the drill with that cause, no snapshot named."""
    result, before, after = _drill_timed(repository, tmp_path / "scratch")
    _assert_failed_early(result, before, after, "the repository holds no snapshot")
    assert result.failures == ("the repository holds no snapshot",)


def test_a_drill_of_an_unknown_snapshot_fails_naming_it(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    """A snapshot id the repository does not hold fails the drill with that cause."""
    _back_up(repository, live)
    result, before, after = _drill_timed(
        repository,
        tmp_path / "scratch",
        snapshot_id="0123abcd",
        manifest_path=str(live / "manifest.json"),
    )
    _assert_failed_early(result, before, after, "no snapshot")
    assert result.failures == ("no snapshot '0123abcd' in the repository",)


def test_a_drill_proves_the_snapshot_its_id_prefix_names(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    """The drill of ``--snapshot PREFIX`` restores, proves and ages that snapshot, not the
    latest; without an id, the latest is drilled."""
    oldest, middle, latest = _back_up_three(repository, live)
    result, before, after = _drill_timed(
        repository,
        tmp_path / "middle",
        snapshot_id=middle.id[:8],
        manifest_path=str(live / "manifest.json"),
    )
    assert result.ok, result.failures
    assert result.snapshot_id == middle.id
    assert result.snapshot_time == middle.time
    assert result.rpo == result.started - middle.time
    assert before <= result.started <= after
    default, _, _ = _drill_timed(
        repository, tmp_path / "latest", manifest_path=str(live / "manifest.json")
    )
    assert default.ok, default.failures
    assert (default.snapshot_id, default.snapshot_time) == (latest.id, latest.time)
    assert oldest.id not in (result.snapshot_id, default.snapshot_id)


def test_a_successful_drill_reports_what_it_proved_and_measured(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    """A drill that proved every file reports the files and bytes, the targets it met, and
    its times in whole milliseconds: verification within the drill, the drill within the
    time it took, the throughput from bytes over restore plus verification."""
    _back_up(repository, live)
    (listed,) = list_snapshots(repository)
    verify_began: list[float] = []
    clock_before = time.monotonic()
    result, before, after = _drill_timed(
        repository,
        tmp_path / "scratch",
        manifest_path=str(live / "manifest.json"),
        before_verify=lambda _root: verify_began.append(time.monotonic()),
    )
    elapsed = time.monotonic() - clock_before
    assert result.ok and result.failures == () and result.mismatches == ()
    assert (result.snapshot_id, result.snapshot_time) == (listed.id, listed.time)
    assert before <= result.started <= after
    assert result.rpo == result.started - listed.time
    assert (result.rpo_target, result.rto_target) == (RPO_TARGET, RTO_TARGET)
    assert (result.files_checked, result.bytes_checked) == (11, 10 * 30_000 + 120_000)
    assert result.extra == {}
    # Durations as recorded: whole milliseconds, never rounded to whole seconds.
    assert isinstance(result.verify_s, float)
    assert result.verify_s == round(result.verify_s, 3)
    assert result.rto.microseconds % 1000 == 0
    (began,) = verify_began
    assert 0 <= result.verify_s <= time.monotonic() - began + 0.001
    assert result.restore_s > 0
    seconds = result.rto.total_seconds()
    assert result.restore_s + result.verify_s - 0.002 <= seconds <= elapsed + 0.001
    expected_rate = round(result.bytes_checked / 1e6 / (result.restore_s + result.verify_s), 2)
    assert result.mb_per_s == expected_rate


def test_more_verification_sees_the_restored_tree_and_its_failures_join_the_drill(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    """``verify_more`` (the databases' check) gets the restored tree and its manifest; its
    evidence is the drill's, its failures follow the drill's own."""
    _back_up(repository, live, at=datetime.now(UTC) - 2 * DAY)
    seen: list[tuple[Path, Mapping[str, object]]] = []

    def verify_more(
        root: Path, manifest: Mapping[str, object]
    ) -> tuple[Mapping[str, object], tuple[str, ...]]:
        seen.append((root, manifest))
        return {"databases": {"demo": {"rows": 3}}}, ("demo: 3 rows, 4 expected",)

    scratch = tmp_path / "scratch"
    result, _, _ = _drill_timed(
        repository, scratch, manifest_path=str(live / "manifest.json"), verify_more=verify_more
    )
    ((root, manifest),) = seen
    assert root == scratch
    dumped = root / str(live / "dumps" / "demo.pgdump").lstrip("/")
    assert str(live / "dumps" / "demo.pgdump") in manifest["files"]  # type: ignore[operator]
    assert dumped.read_bytes() == (live / "dumps" / "demo.pgdump").read_bytes()
    assert result.extra == {"databases": {"demo": {"rows": 3}}}
    assert result.failures == (
        f"RPO {result.rpo} exceeds the target {RPO_TARGET}",
        "demo: 3 rows, 4 expected",
    )


def test_a_snapshot_without_its_manifest_fails_the_drill(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    """A snapshot that does not hold the manifest proves nothing: the drill fails, naming it."""
    _back_up(repository, live)
    (listed,) = list_snapshots(repository)
    result, before, after = _drill_timed(
        repository, tmp_path / "scratch", manifest_path=str(live / "no-such-manifest.json")
    )
    _assert_failed_early(result, before, after, "not a readable manifest", listed)
    assert result.failures[0].startswith("manifest: ")


def test_a_wrong_password_fails_the_drill_of_a_listed_snapshot(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    """With the snapshot already listed (no listing of its own), a drill that cannot open
    the repository still fails with restic's cause, and names the snapshot."""
    _back_up(repository, live)
    (listed,) = list_snapshots(repository)
    wrong = Repository(repository.location, password="not-it-at-all", cache_dir=tmp_path / "c")
    result, before, after = _drill_timed(
        wrong, tmp_path / "scratch", snapshot=listed, manifest_path=str(live / "manifest.json")
    )
    _assert_failed_early(result, before, after, "wrong password", listed)


def _two_snapshots_the_first_damaged(
    repository: Repository, tmp_path: Path
) -> tuple[Snapshot, Snapshot]:
    """Back up two unrelated trees; delete the data of the first. Return both snapshots:
    the repository's structure is broken, the second snapshot whole."""
    first_live, second_live = tmp_path / "first", tmp_path / "second"
    for live in (first_live, second_live):
        live.mkdir()
        (live / "data.bin").write_bytes(os.urandom(200_000))
        manifest = build_manifest([live / "data.bin"], host="web1")
        (live / "manifest.json").write_text(json.dumps(manifest))
    backup(repository, [first_live])
    data = Path(repository.location) / "data"
    packs_of_first = {path for path in data.rglob("*") if path.is_file()}
    backup(repository, [second_live])
    max(packs_of_first, key=lambda path: path.stat().st_size).unlink()
    first, second = list_snapshots(repository)
    return first, second


def test_the_structure_check_fails_the_drill_of_a_whole_snapshot(
    repository: Repository, tmp_path: Path
) -> None:
    """A repository whose structure is broken fails the drill with the check's cause, even
    if the drilled snapshot restores whole; skipping the check (done once by the caller)
    proves that snapshot alone."""
    _first, second = _two_snapshots_the_first_damaged(repository, tmp_path)
    manifest = str(tmp_path / "second" / "manifest.json")
    checked, before, after = _drill_timed(
        repository, tmp_path / "checked", snapshot=second, manifest_path=manifest
    )
    _assert_failed_early(checked, before, after, "repository check failed: ", second)
    assert checked.failures[0].startswith("repository check failed: ")
    assert "does not exist" in checked.failures[0] or "not found" in checked.failures[0]
    unchecked, _, _ = _drill_timed(
        repository,
        tmp_path / "unchecked",
        snapshot=second,
        manifest_path=manifest,
        check_structure=False,
    )
    assert unchecked.ok, unchecked.failures
    assert (unchecked.snapshot_id, unchecked.files_checked) == (second.id, 1)


def test_a_restore_that_fails_alone_fails_the_drill_with_its_cause(
    repository: Repository, tmp_path: Path
) -> None:
    """Without the structure check, the restore's own error is the drill's cause."""
    first, _second = _two_snapshots_the_first_damaged(repository, tmp_path)
    result, before, after = _drill_timed(
        repository,
        tmp_path / "scratch",
        snapshot=first,
        manifest_path=str(tmp_path / "first" / "manifest.json"),
        check_structure=False,
    )
    _assert_failed_early(result, before, after, "restic restore", first)


@contextmanager
def _backup_in_progress(repository: Repository) -> Iterator[None]:
    """Keep a backup writing to the repository (from its standard input, held open), and so
    holding its lock, for as long as the context lasts."""
    locks = Path(repository.location) / "locks"
    writer = subprocess.Popen(
        ["restic", "--quiet", "backup", "--stdin", "--stdin-filename", "stream.bin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **repository.env()},
    )
    try:
        assert wait_until(lambda: any(locks.iterdir()), timeout_s=30), "no lock taken"
        yield
    finally:
        assert writer.stdin is not None
        writer.stdin.close()
        writer.wait(timeout=60)


def test_a_drill_runs_beside_a_backup_in_progress(
    repository: Repository, live: Path, tmp_path: Path
) -> None:
    """A drill only reads: a backup running into the same repository does not stop it
    (its structure check takes no lock that the backup's would refuse)."""
    _back_up(repository, live)
    with _backup_in_progress(repository):
        result, _, _ = _drill_timed(
            repository, tmp_path / "scratch", manifest_path=str(live / "manifest.json")
        )
    assert result.ok, result.failures
    assert result.files_checked == 11


def test_a_drill_exactly_at_its_targets_meets_them() -> None:
    # The verdict's rule on its own: a target is a ceiling that may be reached.
    rpo_target, rto_target = timedelta(hours=24), timedelta(minutes=30)
    assert _failures((), rpo_target, rto_target, rpo_target, rto_target) == ()
    past = timedelta(seconds=1)
    assert _failures((), rpo_target + past, rto_target + past, rpo_target, rto_target) == (
        "RPO 1 day, 0:00:01 exceeds the target 1 day, 0:00:00",
        "RTO 0:30:01 exceeds the target 0:30:00",
    )


def test_the_structure_checks_cause_is_the_drills_and_its_stop_reaches_the_restore(
    repository: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pack gone: the drill's cause is what restic's own check reports, and the check's
    stop was handed to the restore (set once the check failed: a restore retrying on a
    missing pack would otherwise go on)."""
    first, _second = _two_snapshots_the_first_damaged(repository, tmp_path)
    expected = check_repository(repository, lock=False).errors
    stops: list[Any] = []
    real_restore = restore_module.restore

    def recording_restore(*args: Any, **kwargs: Any) -> float:
        stops.append(kwargs.get("stop"))
        return real_restore(*args, **kwargs)

    monkeypatch.setattr(restore_module, "restore", recording_restore)
    result, before, after = _drill_timed(
        repository,
        tmp_path / "scratch",
        snapshot=first,
        manifest_path=str(tmp_path / "first" / "manifest.json"),
    )
    _assert_failed_early(result, before, after, "repository check failed: ", first)
    assert result.failures[0] == "repository check failed: " + "; ".join(expected)
    (stop,) = stops
    assert stop is not None and stop.is_set()
