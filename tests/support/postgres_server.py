"""A throwaway PostgreSQL server for the tests, on loopback, in a temporary folder.

The ledger must pass the same tests on PostgreSQL as on SQLite. When
``WEBMG_TEST_POSTGRES_URL`` is not given, the tests start their own server
with the product's scratch server (Debian's ``postgresql`` binaries, which
``make setup`` installs) and stop it at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from webmg_ops.backups.scratchdb import find_binary, scratch_server
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
