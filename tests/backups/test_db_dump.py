"""The role's dump script, run here as on a client host (as root): hostile names write nothing.

A database name comes from the contract; the script builds a file path and
pg_dump's ``--dbname`` from it. Names that would escape the dump folder or
read as a conninfo string are refused before anything is written; a plain
name is dumped for real from a scratch PostgreSQL server.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from support.capability import missing

from webmg_ops.backups.scratchdb import ScratchServer, find_binary, scratch_server
from webmg_ops.errors import EnvironmentProblem

#: Real restic, PostgreSQL or Ansible on this machine: not in the fast inner loop.
pytestmark = pytest.mark.tools

DUMP_SCRIPT = (
    Path(__file__).resolve().parents[2] / "roles" / "backup" / "files" / "webmg_db_dump.py"
)

HOSTILE_NAMES = [
    "../../outside",
    "sub/../../outside",
    "/tmp/outside",
    "-Upostgres",
    "dbname=postgres",
    "demo host=198.18.0.66",
    "demo'",
    "",
]


@pytest.fixture(scope="module")
def dump_script() -> ModuleType:
    """Return the role's dump script, loaded as a module."""
    spec = importlib.util.spec_from_file_location("webmg_db_dump", DUMP_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sqlite_database(folder: Path) -> Path:
    file = folder / "app.db"
    with sqlite3.connect(file) as connection:
        connection.execute("CREATE TABLE bookings (id INTEGER)")
        connection.executemany("INSERT INTO bookings VALUES (?)", [(1,), (2,)])
    connection.close()
    return file


def _files_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_database_name_is_refused_and_nothing_is_written(
    dump_script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    work = tmp_path / "var" / "lib" / "webmg-backup"
    work.mkdir(parents=True)
    database = _sqlite_database(tmp_path)
    before = _files_under(tmp_path)
    # A plain database first: nothing of the list is dumped once one name is refused.
    databases = [
        {"name": "demo", "engine": "sqlite", "path": str(database)},
        {"name": name, "engine": "sqlite", "path": str(database)},
    ]

    status = dump_script.main([str(work / "dumps"), json.dumps(databases)])

    assert status == 2
    assert "not a plain identifier" in capsys.readouterr().err
    assert _files_under(tmp_path) == before


def test_a_dump_file_planted_as_a_symlink_is_refused(
    dump_script: ModuleType, tmp_path: Path
) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    elsewhere = tmp_path / "elsewhere"
    (dumps / "demo.dump").symlink_to(elsewhere)
    databases = [{"name": "demo", "engine": "sqlite", "path": str(_sqlite_database(tmp_path))}]

    assert dump_script.main([str(dumps), json.dumps(databases)]) == 2
    assert not elsewhere.exists()


def test_a_plain_sqlite_name_is_dumped_inside_the_folder(
    dump_script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dumps = tmp_path / "dumps"
    databases = [{"name": "demo", "engine": "sqlite", "path": str(_sqlite_database(tmp_path))}]

    assert dump_script.main([str(dumps), json.dumps(databases)]) == 0

    (result,) = json.loads(capsys.readouterr().out)
    assert result["dump"] == str(dumps / "demo.dump")
    assert result["row_counts"] == {"demo.bookings": 2}
    assert {path.name for path in dumps.iterdir()} == {"demo.dump"}


@pytest.fixture(scope="module")
def postgres() -> Iterator[ScratchServer]:
    """Return a scratch PostgreSQL server holding the databases ``demo`` and ``other``."""
    try:
        find_binary("initdb")
    except EnvironmentProblem:
        missing("PostgreSQL is not installed (make setup)")
    if os.geteuid() != 0:
        missing("the dump script runs pg_dump as the postgres account: needs root")
    # The scratch server's socket folder is private to its own account; the dump
    # script runs pg_dump as ``postgres``, so the server listens on loopback too.
    with scratch_server(listen_tcp=True) as server:
        for database, rows in (("demo", 3), ("other", 5)):
            _psql(server, "postgres", f"CREATE DATABASE {database}")
            _psql(server, database, "CREATE TABLE bookings (id integer)")
            _psql(server, database, f"INSERT INTO bookings SELECT generate_series(1, {rows})")
        yield server


def _psql(server: ScratchServer, database: str, command: str) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", find_binary("psql"), "-X", "-q", "-v",
         "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres",
         "-d", database, "-c", command],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def postgres_environment(postgres: ScratchServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point libpq (pg_dump, pg_restore) at the scratch server, as a host's default server."""
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(postgres.port))
    monkeypatch.setenv("PGUSER", "postgres")


def test_a_postgresql_database_is_dumped_through_a_conninfo_naming_it_alone(
    dump_script: ModuleType,
    postgres_environment: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dumps = tmp_path / "dumps"

    assert dump_script.main([str(dumps), json.dumps([{"name": "demo"}])]) == 0, (
        capsys.readouterr().err
    )

    (result,) = json.loads(capsys.readouterr().out)
    assert result["row_counts"] == {"demo.bookings": 3}
    assert dump_script.conninfo("demo") == "dbname='demo'"


def test_a_conninfo_given_as_name_never_dumps_another_database(
    dump_script: ModuleType,
    postgres_environment: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Passed as --dbname unquoted, "dbname=other" would dump the database "other".
    dumps = tmp_path / "dumps"

    status = dump_script.main([str(dumps), json.dumps([{"name": "dbname=other"}])])

    assert status == 2
    assert capsys.readouterr().out == ""
    assert not dumps.exists()


def test_a_quoted_conninfo_reads_quotes_and_spaces_as_part_of_the_name(
    dump_script: ModuleType, postgres_environment: None, tmp_path: Path
) -> None:
    # Defence in depth under the name check: pg_dump sees one database name.
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", "pg_dump", "-Fc", "--dbname",
         dump_script.conninfo("other' host=198.18.0.66")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert 'database "other\' host=198.18.0.66" does not exist' in done.stderr
