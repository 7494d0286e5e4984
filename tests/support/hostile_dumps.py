"""Database dumps a hostile client host could leave in its backups, made with real pg_dump.

Each dump carries a function that runs ``COPY ... TO PROGRAM`` (a shell
command on the machine running the PostgreSQL server) and calls it where a
restore or a row count would: in an index expression (evaluated for every
row when pg_restore builds the index) or in a view (evaluated when its rows
are counted). The source database is made in a scratch server, as a client's
root would make it on its own database host.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from webmg_ops.backups.scratchdb import ScratchServer, find_binary


@contextlib.contextmanager
def payload_marker() -> Iterator[Path]:
    """Within the block, return where a hostile dump's payload would create a file: in a
    folder of /tmp that any account may write to, so the payload would succeed as whoever
    ran it. The folder is removed after, whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix="webmg-test-marker-", dir="/tmp"))
    folder.chmod(0o1777)
    try:
        yield folder / "payload-ran"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


#: Where the hostile code is evaluated: an index built at restore, or a view counted after.
KINDS = ("index", "view")

_HARMLESS = "CREATE OR REPLACE FUNCTION public.payload(integer) RETURNS integer "
_HARMLESS += "LANGUAGE sql IMMUTABLE AS 'SELECT $1'"


def _armed(command: str) -> tuple[str, str]:
    # COPY runs only in a volatile function; the index needs an immutable one,
    # which calls it. Dollar quoting keeps the shell command literal.
    return (
        "CREATE FUNCTION public.payload_program() RETURNS void LANGUAGE plpgsql VOLATILE "
        "AS $body$ BEGIN "
        f"EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', $cmd${command}$cmd$); "
        "END $body$",
        "CREATE OR REPLACE FUNCTION public.payload(integer) RETURNS integer "
        "LANGUAGE plpgsql IMMUTABLE AS $body$ BEGIN "
        "PERFORM public.payload_program(); RETURN $1; END $body$",
    )


def make_hostile_dump(
    server: ScratchServer, database: str, marker: Path, kind: str, target: Path
) -> Path:
    """Given a server to build on, a new database name, the file the payload creates,
    the kind (``index`` or ``view``) and the dump's path, write a custom-format dump of a
    database whose restore (index) or row count (view) of ``shop.orders`` (3 rows) runs
    ``touch MARKER``; return TARGET.
    """
    server._psql("postgres", f'CREATE DATABASE "{database}"')
    server._psql(database, "CREATE SCHEMA shop")
    # The function is harmless while the source is built (building the index
    # evaluates it here too), and armed just before the dump.
    server._psql(database, _HARMLESS)
    if kind == "index":
        server._psql(
            database,
            "CREATE TABLE shop.orders AS SELECT g AS id FROM generate_series(1, 3) AS g",
        )
        server._psql(database, "CREATE INDEX orders_payload ON shop.orders (public.payload(id))")
    else:
        server._psql(
            database,
            # In the filter: count(*) needs no column, but every row passes it.
            "CREATE VIEW shop.orders AS SELECT g AS id FROM generate_series(1, 3) AS g "
            "WHERE public.payload(g) > 0",
        )
    for statement in _armed(f"touch {shlex.quote(str(marker))}; cat >/dev/null"):
        server._psql(database, statement)
    return dump_database(server, database, target)


def dump_database(server: ScratchServer, database: str, target: Path) -> Path:
    """Given a scratch SERVER, dump its DATABASE to TARGET (custom format) and return TARGET.

    pg_dump is a client program: it runs as the test's own account, root included.
    """
    subprocess.run(
        [find_binary("pg_dump"), "-Fc", "-h", str(server.folder), "-p", str(server.port),
         "-U", "postgres", "-f", str(target), database],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return target
