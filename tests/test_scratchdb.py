"""The drills' scratch PostgreSQL server: dumps restore into it and rows are counted."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from webmg_ops.errors import Failed
from webmg_ops.scratchdb import ScratchServer, find_binary, scratch_server


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="module")
def server() -> ScratchServer:
    with scratch_server() as running:
        yield running  # type: ignore[misc]


def make_dump(server: ScratchServer, folder: Path, rows: int) -> Path:
    """Create a database with a table of ROWS rows in SERVER and dump it (custom format)."""
    server._psql("postgres", "CREATE DATABASE source")
    server._psql("source", "CREATE SCHEMA shop")
    server._psql(
        "source",
        f"CREATE TABLE shop.orders AS SELECT g AS id FROM generate_series(1, {rows}) AS g",
    )
    dump = server.folder / "source.dump"
    subprocess.run(
        _as_postgres(
            [
                find_binary("pg_dump"),
                "-Fc",
                "-h",
                str(server.folder),
                "-p",
                str(server.port),
                "-U",
                "postgres",
                "-f",
                str(dump),
                "source",
            ]
        ),
        check=True,
        capture_output=True,
    )
    copy = folder / "source.dump"
    shutil.copyfile(dump, copy)
    return copy


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
