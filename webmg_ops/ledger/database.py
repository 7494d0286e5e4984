"""Connections to the ledger's database: URLs, engines, write locks, clear errors.

SQL stays portable except where a backend needs its own statement: the
write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL transaction-scoped
advisory lock), SQLite's journal pragmas, and the guard triggers in the
migrations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, insert, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from webmg_ops.errors import BadInput, EnvironmentProblem

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_S = 30.0
_WRITE_OPTION = "webmg_ledger_write"
# Any fixed 64-bit number: it names "the ledger's write lock" for every writer.
_POSTGRESQL_LOCK_KEY = 0x5745424D474C4544

_WRITE_LOCK_SQL: dict[str, str] = {
    "postgresql": f"SELECT pg_advisory_xact_lock({_POSTGRESQL_LOCK_KEY})",
}
_PASSWORD_IN_TEXT = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def mask_url(url: str | URL) -> str:
    """Given a database URL (even an unparsable one), return it with any password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return _PASSWORD_IN_TEXT.sub(r"\1***@", str(url))


def parse_database_url(url: str) -> URL:
    """Given a ledger URL, return it parsed.

    Raise BadInput if it is not a URL or names an unsupported database: that is the
    configuration's mistake (exit 2), where a missing driver or an unreachable server
    is the machine's (EnvironmentProblem, exit 4).
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:
        raise BadInput(f"invalid ledger URL {mask_url(url)}: {error}") from None
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise BadInput(
            f"ledger URL {mask_url(parsed)} names an unsupported database "
            f"{parsed.get_backend_name()!r}: use one of {', '.join(SUPPORTED_BACKENDS)}"
        )
    return parsed


def find_sqlite_file(url: URL) -> Path | None:
    """Given a parsed URL, return the SQLite file it names (None: not a SQLite file)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # URI filenames carry their own options
        return None
    return Path(database)


def _configure_sqlite(engine: Engine, *, writable: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own BEGIN is turned off so that ours (below) is used.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if writable:
                # WAL lets readers (verify, export) run while a window appends.
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock before reading the head, so two
        # processes appending at once cannot both extend the same head.
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: URL, *, writable: bool) -> Engine:
    """Given a parsed URL, return an engine. Raise EnvironmentProblem if no driver loads."""
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_S
    try:
        engine = create_engine(url, connect_args=connect_args)
    except (NoSuchModuleError, ImportError, ArgumentError) as error:
        raise EnvironmentProblem(
            f"cannot use ledger URL {mask_url(url)}: {error} (is the database driver installed?)"
        ) from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, writable=writable)
    return engine


def describe_error(url: URL, error: SQLAlchemyError) -> EnvironmentProblem:
    """Given a URL and a database error, return the problem to report, password masked."""
    cause = getattr(error, "orig", None) or error
    detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return EnvironmentProblem(f"ledger {mask_url(url)} is unusable: {detail}")


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """Given an engine, yield a connection in a transaction holding the ledger's write lock.

    The transaction commits when the block ends and rolls back on an exception.
    """
    with engine.connect() as connection:
        connection.execution_options(**{_WRITE_OPTION: True})
        with connection.begin():
            lock_sql = _WRITE_LOCK_SQL.get(engine.dialect.name)
            if lock_sql is not None:
                connection.execute(text(lock_sql))
            yield connection


def insert_rows(connection: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Given rows as tuples in the table's column order, insert them in one executemany.

    The INSERT is compiled by SQLAlchemy for the connection's dialect and run
    at driver level: per-row parameter processing would otherwise cost a
    third of a batched append, and these columns need no type conversion.
    """
    compiled = insert(table).compile(dialect=connection.dialect)
    names = [column.name for column in table.columns]
    if compiled.positional:
        if list(compiled.positiontup or ()) != names:
            raise RuntimeError(f"unexpected parameter order {compiled.positiontup}")
        connection.exec_driver_sql(compiled.string, list(rows))
    else:
        connection.exec_driver_sql(
            compiled.string, [dict(zip(names, row, strict=True)) for row in rows]
        )
