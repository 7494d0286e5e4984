"""Helpers for the ledger's tests: private ledgers, raw tampering, JSON strategies.

Tests run on SQLite; set WEBMG_TEST_POSTGRES_URL (a server URL whose user may
create databases) to run the backend-neutral ones on PostgreSQL as well.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from support.capability import missing
from support.postgres_server import POSTGRES_VARIABLE
from webmg_ops.ledger.canonical import GENESIS_HASH
from webmg_ops.ledger.migrate import MIGRATIONS_DIR
from webmg_ops.ledger.records import CORRECTS_KEY

BACKENDS = ["sqlite", "postgresql"]

TRIGGERS_SQL = (
    "CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE refused'); END",
    "CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE refused'); END",
)


def sqlite_url(path: Path) -> str:
    """Given a file path, return its SQLite URL."""
    return f"sqlite:///{path}"


@contextmanager
def postgres_database() -> Iterator[str]:
    """Yield the URL of a new, empty PostgreSQL database, dropped afterwards.

    Fail the test (or skip it, with the opt-out set) if WEBMG_TEST_POSTGRES_URL is not set.
    """
    base = os.environ.get(POSTGRES_VARIABLE)
    if not base:
        missing(f"no PostgreSQL: set {POSTGRES_VARIABLE} or run `make setup`")
    name = f"webmg_ledger_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def backend_url(backend: str, folder: Path) -> Iterator[str]:
    """Given a backend name and a private folder, yield the URL of an empty ledger there."""
    if backend == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        yield sqlite_url(folder / "var" / "ledger.db")


def tamper(db_file: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Given a SQLite ledger file and SQL statements, run them with the guard triggers off.

    This is what an attacker with write access to the file can do: drop the
    triggers, change rows, put the triggers back.
    """
    with closing(sqlite3.connect(db_file)) as connection, connection:
        connection.execute("DROP TRIGGER ledger_entries_no_update")
        connection.execute("DROP TRIGGER ledger_entries_no_delete")
        for sql, parameters in statements:
            connection.execute(sql, parameters)
        for sql in TRIGGERS_SQL:
            connection.execute(sql)


def forge(db_file: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Given a SQLite ledger file and SQL statements, run them with its triggers and checks off.

    Unlike :func:`tamper`, the guard triggers stay dropped and the table's
    checks are ignored: a forger can store what the schema would refuse.
    """
    with closing(sqlite3.connect(db_file)) as connection, connection:
        connection.execute("PRAGMA ignore_check_constraints = ON")
        connection.execute("DROP TRIGGER IF EXISTS ledger_entries_no_update")
        connection.execute("DROP TRIGGER IF EXISTS ledger_entries_no_delete")
        for sql, parameters in statements:
            connection.execute(sql, parameters)


def read_row(db_file: Path, seq: int) -> dict[str, Any]:
    """Given a SQLite ledger file and a seq, return that stored row as a dict."""
    with closing(sqlite3.connect(db_file)) as connection:
        connection.row_factory = sqlite3.Row
        row = connection.execute("SELECT * FROM ledger_entries WHERE seq = ?", (seq,)).fetchone()
    return dict(row)


def flip_one_char(text_value: str, index: int) -> str:
    """Given a text and a position, return it with that one character replaced."""
    position = index % len(text_value)
    replacement = "x" if text_value[position] != "x" else "y"
    return text_value[:position] + replacement + text_value[position + 1 :]


json_scalars = (
    st.none()
    | st.booleans()
    # RFC 8785 writes numbers as doubles: entries hold integers up to ±(2^53-1) only.
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
#: Payloads of plain entries: the key naming a corrected entry has its own rules and tests.
payloads = st.dictionaries(
    st.text(max_size=8).filter(lambda key: key != CORRECTS_KEY), json_values, max_size=5
)
kinds = st.sampled_from(["run-started", "run-finished", "note", "incident", "approval-given"])
clients = st.none() | st.sampled_from(["alpenhof", "riverton", "terre-solidaire"])


def legacy_ledger(db_file: Path, count: int) -> list[str]:
    """Given a file, make a ledger at schema revision 0001 holding ``count`` entries hashed
    as before format 2 (sorted compact JSON, no format); return their hashes."""
    engine = create_engine(sqlite_url(db_file))
    with engine.begin() as migrating:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = migrating
        command.upgrade(config, "0001")
    engine.dispose()
    hashes, prev = [], GENESIS_HASH
    rows: list[tuple[Any, ...]] = []
    for seq in range(1, count + 1):
        at = f"2024-01-0{seq}T08:00:00.000000Z"
        payload = {"outcome": "succeeded", "duration_s": 2.0, "run": seq}
        entry = {"seq": seq, "kind": "note", "client": "alpenhof", "at": at, "actor": "ana"}
        text = json.dumps(
            {**entry, "payload": payload},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        hash_ = hashlib.sha256((prev + text).encode()).hexdigest()
        payload_text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        rows.append((seq, "note", "alpenhof", at, "ana", payload_text, prev, hash_))
        hashes.append(hash_)
        prev = hash_
    with closing(sqlite3.connect(db_file)) as connection, connection:
        connection.executemany("INSERT INTO ledger_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return hashes


@dataclass(frozen=True)
class Run:
    """How one command exited and what it printed."""

    code: int
    out: str
    err: str


#: Runs ``webmg-ops ARGS`` in-process (the ``run`` fixture of the ledger tests).
Runner = Callable[..., Run]
