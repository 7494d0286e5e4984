"""Restore drills of snapshots a hostile client host prepared, against real restic and
PostgreSQL: nothing of the controller is read, run or reported.

Root on a client's host writes what its backups hold: the manifest, the
database dumps, symbolic links. These tests back such a tree up with restic,
drill it as the drill action does (its database and restore-check steps
included), and look for the attack's effect: a marker file a dump's payload
would create, or the size and hash of a controller file planted beside.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.hostile_dumps import KINDS, make_hostile_dump, payload_marker

from webmg_ops.actions.drill import _Databases, _Verifications
from webmg_ops.ansible.connection import Connection
from webmg_ops.backups.manifest import build_manifest
from webmg_ops.backups.restic import Repository, backup, list_snapshots, restore
from webmg_ops.backups.restore import DrillResult, run_drill
from webmg_ops.backups.restore_check import check_restored_copy
from webmg_ops.backups.scratchdb import ScratchServer, find_binary, scratch_server
from webmg_ops.config.contract import RestoreCheck

#: Real restic, PostgreSQL or Ansible on this machine: not in the fast inner loop.
pytestmark = pytest.mark.tools

DAY = timedelta(days=1)
#: A size no other number of these drills has.
SECRET_SIZE = 54_321


@pytest.fixture(scope="module")
def source_server() -> Iterator[ScratchServer]:
    """A PostgreSQL server standing for a client's database host."""
    with scratch_server() as running:
        yield running


@pytest.fixture
def live(tmp_path: Path) -> Path:
    """Live data of a host: a few application files."""
    root = tmp_path / "live"
    (root / "app").mkdir(parents=True)
    for index in range(3):
        (root / "app" / f"record-{index}.bin").write_bytes(os.urandom(1_000 + index))
    (root / "dumps").mkdir()
    return root


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file of the controller outside any restored tree, root's and 0600."""
    folder = tmp_path / "controller"
    folder.mkdir()
    file = folder / "secret"
    file.write_bytes(os.urandom(SECRET_SIZE))
    file.chmod(0o600)
    return file


@pytest.fixture
def marker() -> Iterator[Path]:
    """Where a dump's payload would create a file (see :func:`payload_marker`)."""
    with payload_marker() as marker:
        yield marker


def back_up(repository: Repository, live: Path, **changes: Any) -> dict[str, Any]:
    """Write the manifest of LIVE's files, with CHANGES, into LIVE; back LIVE up."""
    manifest = build_manifest([live / "app"], host="web1")
    for key, value in changes.items():
        if key == "files":
            manifest["files"].update(value)
        else:
            manifest[key] = value
    (live / "manifest.json").write_text(json.dumps(manifest))
    backup(repository, [live])
    return manifest


def drill(
    repository: Repository, live: Path, scratch: Path, manifest_path: str = ""
) -> DrillResult:
    """Drill the latest snapshot as the drill action does, databases included."""
    with ExitStack() as stack:
        return run_drill(
            repository,
            scratch,
            rpo_target=DAY,
            rto_target=DAY,
            manifest_path=manifest_path or str(live / "manifest.json"),
            verify_more=_Verifications(_Databases(stack, "web1"), None, None),
        )


def live_bytes(live: Path) -> int:
    """Return the bytes of LIVE's application files, as a faithful drill checks them."""
    return sum(file.stat().st_size for file in (live / "app").glob("record-*.bin"))


def assert_nothing_of(secret: Path, result: DrillResult) -> None:
    """Neither the size nor any hash prefix of SECRET is in RESULT, its evidence included."""
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    text = repr(result)
    assert str(SECRET_SIZE) not in text
    assert digest[:8] not in text


def escaping(live: Path, path: Path) -> str:
    """Return PATH written as a manifest path that climbs out of the restored tree from a
    folder the snapshot holds (the kernel resolves '..' only through existing folders)."""
    return f"{live}/app/" + "../" * 40 + str(path).lstrip("/")


@pytest.mark.parametrize(
    ("attack", "cause"),
    [
        ("dot-dot", "'..' component"),
        ("absolute", "missing"),
        ("symlinked-folder", "is a symbolic link in the restored snapshot"),
    ],
)
def test_a_manifest_path_leading_out_of_the_snapshot_reads_nothing_outside(
    repository: Repository, live: Path, secret: Path, tmp_path: Path, attack: str, cause: str
) -> None:
    # Its size is right and its hash wrong: a drill that read it would report its hash.
    wrong = {"size": SECRET_SIZE, "sha256": "0" * 64}
    paths = {
        "dot-dot": escaping(live, secret),
        "absolute": str(secret),
        "symlinked-folder": f"{live}/app/linked/{secret.name}",
    }
    (live / "app" / "linked").symlink_to(secret.parent, target_is_directory=True)
    back_up(repository, live, files={paths[attack]: wrong})
    result = drill(repository, live, tmp_path / "scratch")
    assert not result.ok
    (failure,) = [item for item in result.failures if item.startswith(paths[attack])]
    assert cause in failure, failure
    assert result.files_checked == 4
    assert result.bytes_checked == live_bytes(live)
    assert_nothing_of(secret, result)


def test_a_manifest_behind_a_symbolic_link_is_refused(
    repository: Repository, live: Path, secret: Path, tmp_path: Path
) -> None:
    # A manifest of the controller's, naming the controller's file as it is.
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    planted = build_manifest([live / "app"], host="web1")
    planted["files"] = {str(secret): {"size": SECRET_SIZE, "sha256": digest}}
    (secret.parent / "manifest.json").write_text(json.dumps(planted))
    (live / "meta").symlink_to(secret.parent, target_is_directory=True)
    back_up(repository, live)
    result = drill(
        repository, live, tmp_path / "scratch", manifest_path=f"{live}/meta/manifest.json"
    )
    assert not result.ok
    (failure,) = result.failures
    assert failure.startswith("manifest: ")
    assert f"{live}/meta is a symbolic link" in failure
    assert result.files_checked == 0


@pytest.mark.parametrize(
    "entry",
    [5, {"size": "5", "sha256": "0" * 64}, {"size": 5}, {"size": 5, "sha256": "zz"}],
    ids=["number", "size-text", "no-hash", "bad-hash"],
)
def test_a_malformed_manifest_fails_the_drill_with_its_cause(
    repository: Repository, live: Path, tmp_path: Path, entry: object
) -> None:
    back_up(repository, live, files={f"{live}/app/record-0.bin": entry})
    result = drill(repository, live, tmp_path / "scratch")
    (failure,) = result.failures
    assert failure.startswith("manifest: ")
    assert f"the entry of '{live}/app/record-0.bin' is not a size and a SHA-256" in failure


def real_dump(server: ScratchServer, database: str, rows: int, target: Path) -> Path:
    """Dump a database of SERVER whose table public.payload_rows has ROWS rows."""
    server._psql("postgres", f"CREATE DATABASE {database}")
    server._psql(
        database, f"CREATE TABLE payload_rows AS SELECT g FROM generate_series(1, {rows}) AS g"
    )
    subprocess.run(
        [
            *(find_binary("pg_dump"), "-Fc", "-h", str(server.folder), "-p", str(server.port)),
            *("-U", "postgres", "-f", str(target), database),
        ],
        check=True,
        capture_output=True,
    )
    return target


def test_a_dump_path_leading_out_of_the_snapshot_is_refused(
    repository: Repository,
    live: Path,
    secret: Path,
    tmp_path: Path,
    source_server: ScratchServer,
) -> None:
    # The controller's own dump (of its ledger, say), beside the secret.
    outside = real_dump(source_server, "controller_db", 4_242, secret.parent / "ledger.dump")
    database = {
        "name": "demo",
        "engine": "postgresql",
        "dump": escaping(live, outside),
        "row_counts": {"demo.payload_rows": 1},
    }
    back_up(repository, live, databases=[database])
    result = drill(repository, live, tmp_path / "scratch")
    assert not result.ok
    (failure,) = result.failures
    assert failure.startswith("database demo: dump refused: ")
    assert "'..' component" in failure
    assert result.extra["databases"] == {}
    assert "4242" not in repr(result)
    assert_nothing_of(secret, result)


@pytest.mark.parametrize(
    ("name", "dumped", "recorded"),
    [("shop", 37, 37), ("orders", 30, 37)],
    ids=["rows-as-backed-up", "rows-lost"],
)
def test_a_dump_restores_and_its_rows_are_counted(
    repository: Repository,
    live: Path,
    tmp_path: Path,
    source_server: ScratchServer,
    name: str,
    dumped: int,
    recorded: int,
) -> None:
    # The dump holds DUMPED rows; the backup recorded RECORDED: fewer means rows were lost.
    dump = real_dump(source_server, name, dumped, live / "dumps" / f"{name}.dump")
    database = {
        "name": name,
        "engine": "postgresql",
        "dump": str(dump),
        "row_counts": {f"{name}.payload_rows": recorded},
    }
    back_up(repository, live, databases=[database])
    result = drill(repository, live, tmp_path / "scratch")
    lost = (f"database {name}: {name}.payload_rows has {dumped} rows, {recorded} were backed up",)
    assert result.failures == (() if dumped == recorded else lost)
    assert result.ok is (dumped == recorded)
    tables = result.extra["databases"][name]["tables"]
    assert tables == {f"{name}.payload_rows": {"expected": recorded, "restored": dumped}}


@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_dump_runs_no_program_on_the_controller_and_fails_the_drill(
    repository: Repository,
    live: Path,
    tmp_path: Path,
    source_server: ScratchServer,
    marker: Path,
    kind: str,
) -> None:
    dump = make_hostile_dump(
        source_server, f"client_{kind}", marker, kind, live / "dumps" / "demo.pgdump"
    )
    database = {
        "name": "demo",
        "engine": "postgresql",
        "dump": str(dump),
        "row_counts": {"demo.shop.orders": 3},
    }
    back_up(repository, live, databases=[database])
    result = drill(repository, live, tmp_path / "scratch")
    assert not marker.exists()
    assert not result.ok
    (failure,) = result.failures
    assert failure.startswith("database demo: ")
    assert "pg_execute_server_program" in failure, failure


def _restore_check(**changes: object) -> RestoreCheck:
    """Return a restore check with CHANGES applied after validation: the point of use
    must refuse what a contract that bypassed validation could still carry."""
    fields: dict[str, object] = {
        "data": "/var/lib/webmg-demo",
        "user": "webmg-demo",
        "command": "/usr/bin/python3 /srv/app.py --data-dir {data} --port {port}",
    }
    return RestoreCheck.model_validate(fields).model_copy(update=changes)


def _nowhere(tmp_path: Path) -> Connection:
    """Return a connection to a loopback port nothing listens on: reaching it is a failure."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return Connection("web1", "127.0.0.1", port, "webmg", None, tmp_path / "known_hosts")


def test_a_restore_check_refuses_data_behind_a_symbolic_link(
    repository: Repository, tmp_path: Path, secret: Path
) -> None:
    # The controller folder holds what would be sent: the secret, as the app's data.
    (secret.parent / "webmg-demo").mkdir()
    shutil.copy(secret, secret.parent / "webmg-demo" / "app.db")
    live = tmp_path / "host"
    (live / "var").mkdir(parents=True)
    (live / "var" / "lib").symlink_to(secret.parent, target_is_directory=True)
    backup(repository, [live])
    (snapshot,) = list_snapshots(repository)
    restored = tmp_path / "restored"
    restore(repository, snapshot.id, restored)
    data = f"{live}/var/lib/webmg-demo"
    checked = check_restored_copy(_nowhere(tmp_path), restored, _restore_check(data=data))
    assert checked.ok is False and checked.status is None
    assert checked.detail == (
        f"{data} refused: {live}/var/lib is a symbolic link in the restored snapshot"
    )


def test_a_restore_check_never_runs_as_root(tmp_path: Path) -> None:
    restored = tmp_path / "restored"
    (restored / "var" / "lib" / "webmg-demo").mkdir(parents=True)
    checked = check_restored_copy(_nowhere(tmp_path), restored, _restore_check(user="root"))
    assert checked.ok is False
    assert checked.detail == "refused: the restore check never runs as root"
