"""Restore drills against real restic repositories: proof by checksum, RPO and RTO, and
every kind of damage named as the drill's cause of failure."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.restic import damage_largest_pack

from webmg_ops.ansible.connection import Connection
from webmg_ops.backups.manifest import MismatchKind, UnsafePath, build_manifest, restored_path
from webmg_ops.backups.restic import Repository, backup, list_snapshots
from webmg_ops.backups.restore import DrillResult, run_drill
from webmg_ops.backups.restore_check import check_restored_copy
from webmg_ops.config.contract import RestoreCheck

#: Real restic, PostgreSQL or Ansible on this machine: not in the fast inner loop.
pytestmark = pytest.mark.tools

DAY = timedelta(days=1)


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
