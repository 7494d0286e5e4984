"""The drills' scratch PostgreSQL server: dumps restore into it and rows are counted."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.capability import missing
from support.hostile_dumps import KINDS, dump_database, make_hostile_dump, payload_marker

from webmg_ops.backups.scratchdb import ScratchServer, find_binary, scratch_server
from webmg_ops.errors import Failed

#: Real restic, PostgreSQL or Ansible on this machine: not in the fast inner loop.
pytestmark = pytest.mark.tools


@pytest.fixture(scope="module")
def server() -> ScratchServer:
    with scratch_server() as running:
        yield running  # type: ignore[misc]


def make_dump(server: ScratchServer, folder: Path, rows: int, database: str = "source") -> Path:
    """Create a database with a table of ROWS rows in SERVER and dump it (custom format)."""
    server._psql("postgres", f"CREATE DATABASE {database}")
    server._psql(database, "CREATE SCHEMA shop")
    server._psql(
        database,
        f"CREATE TABLE shop.orders AS SELECT g AS id FROM generate_series(1, {rows}) AS g",
    )
    return dump_database(server, database, folder / "source.dump")


def test_a_dump_restores_into_a_new_database_with_its_rows(
    server: ScratchServer, tmp_path: Path
) -> None:
    dump = make_dump(server, tmp_path, rows=137)
    server.restore_dump(dump, "drill_one")
    assert server.count_rows("drill_one", "shop", "orders") == 137

    damaged = tmp_path / "damaged.dump"
    data = dump.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    with pytest.raises(Failed, match="does not restore"):
        server.restore_dump(damaged, "drill_two")


def test_names_that_are_not_plain_identifiers_never_reach_sql(server: ScratchServer) -> None:
    with pytest.raises(Failed, match="invalid table name"):
        server.count_rows("postgres", "public", 'x"; DROP TABLE y; --')
    with pytest.raises(Failed, match="invalid scratch database name"):
        server.restore_dump(Path("/nonexistent"), "bad name")


def query(server: ScratchServer, database: str, sql: str) -> subprocess.CompletedProcess[str]:
    """Run SQL as the server's superuser with psql, from the test's own account."""
    return subprocess.run(
        [
            *(find_binary("psql"), "-X", "-At", "-h", str(server.folder), "-p", str(server.port)),
            *("-U", "postgres", "-d", database, "-c", sql),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    """Where a dump's payload would create a file (see :func:`payload_marker`)."""
    with payload_marker() as marker:
        yield marker


def test_the_restore_role_is_no_superuser_and_cannot_run_programs(
    server: ScratchServer, tmp_path: Path
) -> None:
    dump = make_dump(server, tmp_path, rows=3, database="roles_source")
    server.restore_dump(dump, "drill_roles")
    # The role is read back from the catalog: whoever owns the restored database and table.
    owners = query(
        server,
        "drill_roles",
        "SELECT DISTINCT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE c.oid = 'shop.orders'::regclass UNION SELECT pg_get_userbyid(datdba) "
        "FROM pg_database WHERE datname = 'drill_roles'",
    )
    assert owners.returncode == 0, owners.stderr
    (owner,) = owners.stdout.split()
    assert owner != "postgres"
    flags = query(
        server,
        "postgres",
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
        f"FROM pg_roles WHERE rolname = '{owner}'",
    )
    assert flags.stdout.strip() == "f|f|f|f|f", flags
    memberships = query(
        server,
        "postgres",
        "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
        f"WHERE r.rolname = '{owner}'",
    )
    assert memberships.stdout.strip() == "0", memberships
    privileged = query(
        server,
        "postgres",
        f"SELECT pg_has_role('{owner}', 'pg_execute_server_program', 'MEMBER'), "
        f"pg_has_role('{owner}', 'pg_read_server_files', 'MEMBER'), "
        f"pg_has_role('{owner}', 'pg_write_server_files', 'MEMBER')",
    )
    assert privileged.stdout.strip() == "f|f|f", privileged


@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_dump_runs_no_program_on_the_controller(
    server: ScratchServer, tmp_path: Path, marker: Path, kind: str
) -> None:
    dump = make_hostile_dump(server, f"hostile_{kind}", marker, kind, tmp_path / "hostile.dump")
    try:
        server.restore_dump(dump, f"drill_hostile_{kind}")
        server.count_rows(f"drill_hostile_{kind}", "shop", "orders")
    except Failed as error:
        cause = error.message
    else:
        cause = ""
    assert not marker.exists()
    assert "permission denied" in cause or "must be superuser" in cause, cause
    assert "pg_execute_server_program" in cause, cause


def test_the_server_runs_as_an_account_that_cannot_read_the_controllers_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        missing("an account of its own needs root")
    canary = "vault-canary-9c41d7e2a8"
    monkeypatch.setenv("WEBMG_TEST_SECRET", canary)
    # A file as the controller keeps its SSH keys and vault password: root's, 0600,
    # in a folder anyone may traverse (only the file's own mode protects it).
    folder = Path(tempfile.mkdtemp(prefix="webmg-test-secret-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        secret = folder / "id_ed25519"
        secret.write_text(canary)
        secret.chmod(0o600)
        with scratch_server() as running:
            pid = int((running.folder / "data" / "postmaster.pid").read_text().split()[0])
            status = Path(f"/proc/{pid}/status").read_text()
            uid = int(
                next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]
            )
            groups = next(line for line in status.splitlines() if line.startswith("Groups:"))
            account = pwd.getpwuid(uid)
            assert uid not in (0, os.geteuid(), pwd.getpwnam("postgres").pw_uid)
            assert account.pw_shell in ("/usr/sbin/nologin", "/bin/false")
            assert not Path(account.pw_dir).exists()
            assert groups.split()[1:] in ([], [str(account.pw_gid)])
            environment = Path(f"/proc/{pid}/environ").read_bytes()
            assert canary.encode() not in environment
            assert b"WEBMG_" not in environment
            # Even the cluster's superuser reads files only as the server's account.
            read = query(running, "postgres", f"SELECT pg_read_file('{secret}')")
            assert read.returncode != 0
            assert "Permission denied" in read.stderr, read.stderr
            assert canary not in read.stdout + read.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)
