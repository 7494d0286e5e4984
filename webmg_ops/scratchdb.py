"""A scratch PostgreSQL server on the controller: where drills restore database dumps.

A restore drill never restores into a live database. It starts a private
server (Debian's ``postgresql`` binaries, ``make setup`` installs them) in a
scratch folder, listening only on a Unix socket in that folder, restores the
dump into a fresh database there, counts rows, and removes it all. The
server runs as the ``postgres`` account when the controller runs as root
(PostgreSQL refuses root).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from webmg_ops.errors import EnvironmentProblem, Failed

#: A plain SQL identifier; anything else is refused before it reaches SQL.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
START_TIMEOUT_S = 60
RESTORE_TIMEOUT_S = 3600


def find_binary(name: str) -> str:
    """Given a PostgreSQL program name, return its path (newest major version first).

    Raise EnvironmentProblem if it is not installed.
    """
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    if not candidates:
        raise EnvironmentProblem(f"PostgreSQL's {name} is not installed (make setup)")
    return str(candidates[0])


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run it as the postgres account.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def free_port() -> int:
    """Return a TCP port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class ScratchServer:
    """A running scratch server: where its socket is and on which port."""

    folder: Path
    port: int
    listen_tcp: bool

    @property
    def url(self) -> str:
        """Return a SQLAlchemy URL of the server (TCP on loopback when it listens there)."""
        if self.listen_tcp:
            return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        return f"postgresql+psycopg://postgres@/postgres?host={self.folder}&port={self.port}"

    def _connection(self, database: str) -> list[str]:
        """Return the client arguments that reach DATABASE on this server's socket."""
        return ["-h", str(self.folder), "-p", str(self.port), "-U", "postgres", "-d", database]

    def _psql(self, database: str, command: str) -> str:
        done = subprocess.run(
            _as_postgres(
                [
                    find_binary("psql"),
                    "-X",
                    "-At",
                    "-v",
                    "ON_ERROR_STOP=1",
                    *self._connection(database),
                    "-c",
                    command,
                ]
            ),
            capture_output=True,
            text=True,
            timeout=RESTORE_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise Failed(f"scratch database: {done.stderr.strip() or 'psql failed'}")
        return done.stdout

    def restore_dump(self, dump: Path, database: str) -> None:
        """Given a custom-format dump and a new database name, restore the dump into it.

        Raise Failed with pg_restore's message if the dump does not restore.
        """
        if not _IDENTIFIER.match(database):
            raise Failed(f"invalid scratch database name {database!r}")
        self._psql("postgres", f'CREATE DATABASE "{database}"')
        # pg_restore reads the dump as the postgres account: give it a readable copy.
        readable = self.folder / f"{database}.dump"
        shutil.copyfile(dump, readable)
        if os.geteuid() == 0:
            shutil.chown(readable, "postgres", "postgres")
        done = subprocess.run(
            _as_postgres(
                [
                    find_binary("pg_restore"),
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    *self._connection(database),
                    str(readable),
                ]
            ),
            capture_output=True,
            text=True,
            timeout=RESTORE_TIMEOUT_S,
            check=False,
        )
        readable.unlink(missing_ok=True)
        if done.returncode != 0:
            detail = " ".join(done.stderr.strip().splitlines()[-2:]) or "pg_restore failed"
            raise Failed(f"the dump {dump.name} does not restore: {detail}")

    def count_rows(self, database: str, schema: str, table: str) -> int:
        """Given a database, a schema and a table, return the table's exact row count.

        Raise Failed if a name is not a plain identifier or the query fails.
        """
        for name in (schema, table):
            if not _IDENTIFIER.match(name):
                raise Failed(f"invalid table name {name!r} in the manifest")
        return int(self._psql(database, f'SELECT count(*) FROM "{schema}"."{table}"').strip())


@contextmanager
def scratch_server(*, listen_tcp: bool = False) -> Iterator[ScratchServer]:
    """Start a private PostgreSQL server in a scratch folder; stop and remove it at the end.

    It listens on a Unix socket in its folder (and on loopback with
    ``listen_tcp``). Raise EnvironmentProblem if PostgreSQL is not installed
    or does not start.
    """
    initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
    folder = Path(tempfile.mkdtemp(prefix="webmg-scratch-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    try:
        subprocess.run(
            _as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )
        listen = "127.0.0.1" if listen_tcp else "''"
        options = f"-c listen_addresses={listen} -p {port} -k {folder} -c fsync=off"
        subprocess.run(
            _as_postgres(
                [pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(folder / "log"), "start"]
            ),
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise EnvironmentProblem(f"the scratch PostgreSQL server did not start: {error}") from None
    try:
        yield ScratchServer(folder=folder, port=port, listen_tcp=listen_tcp)
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )
        shutil.rmtree(folder, ignore_errors=True)
