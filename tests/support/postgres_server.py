"""A throwaway PostgreSQL server for the tests, on loopback, in a temporary folder.

The ledger must pass the same tests on PostgreSQL as on SQLite. When
``WEBMG_TEST_POSTGRES_URL`` is not given, the tests start their own server
with the product's scratch server (Debian's ``postgresql`` binaries, which
``make setup`` installs) and stop it at the end.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from support.capability import missing
from webmg_ops.backups.scratchdb import ScratchServer, find_binary, scratch_server
from webmg_ops.errors import EnvironmentProblem


@contextmanager
def postgres_server() -> Iterator[str | None]:
    """Yield the URL of a running PostgreSQL server (None if none can be started here)."""
    try:
        find_binary("initdb")
    except EnvironmentProblem:
        yield None
        return
    with scratch_server(listen_tcp=True) as server:
        yield server.url


#: How long a scratch server may take to stop or start.
PG_CTL_TIMEOUT_S = 120

#: A server URL whose user may create databases; when set, no server is started.
POSTGRES_VARIABLE = "WEBMG_TEST_POSTGRES_URL"


@contextmanager
def session_postgres() -> Iterator[str]:
    """Yield the URL of the PostgreSQL server the tests use: the one given in
    ``WEBMG_TEST_POSTGRES_URL``, else one started here (and set there) until the end.

    A missing PostgreSQL is a failure, not a skip (see :mod:`support.capability`).
    """
    given = os.environ.get(POSTGRES_VARIABLE)
    if given:
        yield given
        return
    with postgres_server() as url:
        if url is None:
            missing("PostgreSQL binaries not found: run `make setup`")
        os.environ[POSTGRES_VARIABLE] = url
        try:
            yield url
        finally:
            os.environ.pop(POSTGRES_VARIABLE, None)


def pg_ctl(server: ScratchServer, action: str) -> None:
    """Stop or start a scratch server (as its account) and wait until it has."""
    # A start takes the options the server was first started with (its port above all).
    listen = "127.0.0.1" if server.listen_tcp else "''"
    started_with = f"-c listen_addresses={listen} -p {server.port} -k {server.folder}"
    options = [] if action == "stop" else ["-o", started_with, "-l", str(server.folder / "log")]
    done = subprocess.run(
        [
            "runuser",
            "-u",
            server.account.name,
            "--",
            find_binary("pg_ctl"),
            "-D",
            str(server.folder / "data"),
            "-m",
            "fast",
            "-w",
            *options,
            action,
        ],
        capture_output=True,
        text=True,
        timeout=PG_CTL_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
