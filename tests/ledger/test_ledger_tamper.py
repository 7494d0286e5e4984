"""The database refuses changes; changes made around it are found by verify."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from support.ledger import BACKENDS, backend_url, read_row, sqlite_url, tamper

from webmg_ops.errors import Failed
from webmg_ops.ledger import (
    Checkpoint,
    Ledger,
    NewEntry,
    canonical_entry,
    chain_hash,
    open_ledger,
    verify_ledger,
)

pytestmark = pytest.mark.usefixtures("both_ways_of_verifying")

COUNT = 8


def fill(ledger: Ledger, count: int = COUNT) -> None:
    """Given an empty ledger, append ``count`` run entries to it."""
    ledger.append_many(
        NewEntry(
            "run-finished",
            "alpenhof",
            {"action": "backup", "outcome": "succeeded", "run": n},
            actor="ana",
        )
        for n in range(1, count + 1)
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET payload = '{}' WHERE seq = 2",
        "UPDATE ledger_entries SET seq = seq + 100",
        "DELETE FROM ledger_entries WHERE seq = 2",
        "DELETE FROM ledger_entries",
    ],
)
def test_the_database_refuses_update_and_delete(
    backend: str, statement: str, tmp_path: Path
) -> None:
    with backend_url(backend, tmp_path) as url, open_ledger(url) as ledger:
        fill(ledger, 3)
        engine = create_engine(url)
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
        engine.dispose()
        assert verify_ledger(ledger).entries_checked == 3


def test_postgresql_refuses_truncate(tmp_path: Path) -> None:
    with backend_url("postgresql", tmp_path) as url, open_ledger(url) as ledger:
        fill(ledger, 2)
        engine = create_engine(url)
        with pytest.raises(DBAPIError, match="TRUNCATE refused"), engine.begin() as connection:
            connection.execute(text("TRUNCATE ledger_entries"))
        engine.dispose()


def test_a_raw_sqlite_connection_is_refused_too(tmp_path: Path) -> None:
    db_file = tmp_path / "ledger.db"
    with open_ledger(sqlite_url(db_file)) as ledger:
        fill(ledger, 2)
    with closing(sqlite3.connect(db_file)) as connection:
        with pytest.raises(sqlite3.IntegrityError, match="UPDATE refused"):
            connection.execute("UPDATE ledger_entries SET actor = 'mallory'")
        with pytest.raises(sqlite3.IntegrityError, match="DELETE refused"):
            connection.execute("DELETE FROM ledger_entries")


@pytest.fixture
def db_file(tmp_path: Path) -> Iterator[Path]:
    """Return a SQLite ledger file holding COUNT entries."""
    path = tmp_path / "ledger.db"
    with open_ledger(sqlite_url(path)) as ledger:
        fill(ledger)
    yield path


def verify_file(db_file: Path, checkpoint: Checkpoint | None = None) -> tuple[bool, int | None]:
    """Given a ledger file, return (ok, first bad seq) of verifying it."""
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        report = verify_ledger(ledger, checkpoint)
    return report.ok, report.first_bad_seq


def head_of(db_file: Path) -> Checkpoint:
    """Given a ledger file, return its head."""
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        head = ledger.head()
    assert head is not None
    return head


def rehash_from(db_file: Path, first_seq: int) -> None:
    """Given a ledger file, recompute every hash from ``first_seq`` on, as a forger would."""
    rows = [read_row(db_file, seq) for seq in range(1, head_of(db_file).seq + 1)]
    prev_hash = rows[first_seq - 2]["hash"] if first_seq > 1 else "0" * 64
    statements = []
    for row in rows[first_seq - 1 :]:
        new_hash = chain_hash(
            prev_hash,
            canonical_entry(
                row["seq"],
                row["kind"],
                row["client"],
                row["at"],
                row["actor"],
                row["payload"],
                row["format"],
            ),
        )
        statements.append(
            (
                "UPDATE ledger_entries SET prev_hash = ?, hash = ? WHERE seq = ?",
                (prev_hash, new_hash, row["seq"]),
            )
        )
        prev_hash = new_hash
    tamper(db_file, *statements)


def test_an_intact_ledger_verifies(db_file: Path) -> None:
    assert verify_file(db_file) == (True, None)
    assert verify_file(db_file, head_of(db_file)) == (True, None)


def test_one_changed_byte_of_a_payload_is_named(db_file: Path) -> None:
    payload = read_row(db_file, 5)["payload"]
    assert '"succeeded"' in payload
    altered = payload.replace('"succeeded"', '"succeedeD"')
    tamper(db_file, ("UPDATE ledger_entries SET payload = ? WHERE seq = 5", (altered,)))
    assert verify_file(db_file) == (False, 5)


def test_a_deleted_middle_entry_is_named(db_file: Path) -> None:
    tamper(db_file, ("DELETE FROM ledger_entries WHERE seq = 4", ()))
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        report = verify_ledger(ledger)
    assert (report.ok, report.first_bad_seq, report.entries_checked) == (False, 4, 3)
    assert report.reason is not None and "missing" in report.reason


def test_two_swapped_entries_are_named(db_file: Path) -> None:
    third, sixth = read_row(db_file, 3), read_row(db_file, 6)
    columns = ("kind", "client", "at", "actor", "payload", "prev_hash", "hash")
    assignments = ", ".join(f"{column} = ?" for column in columns)
    tamper(
        db_file,
        (
            f"UPDATE ledger_entries SET {assignments} WHERE seq = 3",
            tuple(sixth[column] for column in columns),
        ),
        (
            f"UPDATE ledger_entries SET {assignments} WHERE seq = 6",
            tuple(third[column] for column in columns),
        ),
    )
    assert verify_file(db_file) == (False, 3)


def test_swapped_payloads_are_named(db_file: Path) -> None:
    second, seventh = read_row(db_file, 2), read_row(db_file, 7)
    tamper(
        db_file,
        ("UPDATE ledger_entries SET payload = ? WHERE seq = 2", (seventh["payload"],)),
        ("UPDATE ledger_entries SET payload = ? WHERE seq = 7", (second["payload"],)),
    )
    assert verify_file(db_file) == (False, 2)


def test_a_bad_prev_link_is_named(db_file: Path) -> None:
    tamper(db_file, ("UPDATE ledger_entries SET prev_hash = ? WHERE seq = 6", ("f" * 64,)))
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        report = verify_ledger(ledger)
    assert (report.ok, report.first_bad_seq) == (False, 6)
    assert report.reason is not None and "prev_hash" in report.reason


def test_a_forged_entry_appended_with_a_correct_chain_passes_verify(db_file: Path) -> None:
    # The chain proves the record was not changed after the fact, not who wrote it:
    # an append by someone with write access is, by design, just an append.
    head = head_of(db_file)
    at, actor, payload = "2025-03-01T08:00:00.000000Z", "mallory", '{"outcome":"succeeded"}'
    forged_hash = chain_hash(
        head.hash, canonical_entry(head.seq + 1, "run-finished", "alpenhof", at, actor, payload)
    )
    tamper(
        db_file,
        (
            "INSERT INTO ledger_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                head.seq + 1,
                "run-finished",
                "alpenhof",
                at,
                actor,
                payload,
                head.hash,
                forged_hash,
                2,
            ),
        ),
    )
    assert verify_file(db_file) == (True, None)
    assert verify_file(db_file, head) == (True, None)


def test_a_rewritten_history_is_revealed_only_by_an_earlier_checkpoint(db_file: Path) -> None:
    checkpoint = head_of(db_file)  # e.g. printed in last month's client report
    early = head_of_seq(db_file, 5)
    altered = read_row(db_file, 3)["payload"].replace("succeeded", "failed")
    tamper(db_file, ("UPDATE ledger_entries SET payload = ? WHERE seq = 3", (altered,)))
    assert verify_file(db_file) == (False, 3)
    rehash_from(db_file, 3)
    assert verify_file(db_file) == (True, None)  # the chain alone looks intact
    assert verify_file(db_file, checkpoint) == (False, checkpoint.seq)
    assert verify_file(db_file, early) == (False, 5)
    assert verify_file(db_file, head_of_seq(db_file, 2)) == (True, None)


def test_a_truncated_tail_is_revealed_by_a_checkpoint(db_file: Path) -> None:
    checkpoint = head_of(db_file)
    tamper(db_file, ("DELETE FROM ledger_entries WHERE seq > 5", ()))
    assert verify_file(db_file) == (True, None)
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        report = verify_ledger(ledger, checkpoint)
    assert (report.ok, report.first_bad_seq, report.entries_checked) == (False, 6, 5)
    assert report.head == head_of_seq(db_file, 5)


def test_a_truncated_and_regrown_tail_is_revealed_by_a_checkpoint(db_file: Path) -> None:
    checkpoint = head_of(db_file)
    tamper(db_file, ("DELETE FROM ledger_entries WHERE seq > 5", ()))
    with open_ledger(sqlite_url(db_file)) as ledger:
        fill(ledger, 4)
    assert verify_file(db_file) == (True, None)
    assert verify_file(db_file, checkpoint) == (False, checkpoint.seq)


def test_a_wiped_ledger_is_revealed_by_a_checkpoint(db_file: Path) -> None:
    checkpoint = head_of(db_file)
    tamper(db_file, ("DELETE FROM ledger_entries", ()))
    assert verify_file(db_file) == (True, None)
    assert verify_file(db_file, checkpoint) == (False, 1)


def head_of_seq(db_file: Path, seq: int) -> Checkpoint:
    """Given a ledger file and a seq, return the checkpoint of that entry as stored."""
    return Checkpoint(seq, read_row(db_file, seq)["hash"])


def test_reading_an_entry_altered_into_nonsense_fails_cleanly(db_file: Path) -> None:
    tamper(
        db_file,
        ("UPDATE ledger_entries SET payload = ? WHERE seq = 2", ("[1, 2",)),
        ("UPDATE ledger_entries SET at = ? WHERE seq = 4", ("yesterday",)),
    )
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        second, fourth = ledger.get(2), ledger.entries(after_seq=3)
        assert second is not None
        with pytest.raises(Failed, match="entry 2 has an unreadable payload"):
            _ = second.payload
        with pytest.raises(Failed, match="entry 4 has an unreadable time"):
            next(fourth)
        assert verify_ledger(ledger).first_bad_seq == 2
