"""What ``ledger verify`` reports: each reason in full, the counts, the head, the boundaries.

The expected reasons are written out by hand from the rule each one states;
the expected hashes are read from the stored rows, never recomputed by the
code under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.ledger import forge, read_row, sqlite_url, tamper

from webmg_ops.ledger import Checkpoint, NewEntry, VerifyReport, open_ledger, verify_ledger
from webmg_ops.ledger.verify import PublishedCheckpoint

pytestmark = pytest.mark.usefixtures("both_ways_of_verifying")

COUNT = 6
OTHER_HASH = "ab" * 32
"""A well-formed hash that no entry of these ledgers has."""


@pytest.fixture
def db_file(tmp_path: Path) -> Iterator[Path]:
    """Return a SQLite ledger file holding COUNT note entries."""
    path = tmp_path / "ledger.db"
    with open_ledger(sqlite_url(path)) as ledger:
        ledger.append_many(
            NewEntry("note", "alpenhof", {"n": n}, actor="ana") for n in range(1, COUNT + 1)
        )
    yield path


def stored(db_file: Path, seq: int) -> Checkpoint:
    """Given a ledger file and a seq, return that entry's checkpoint as stored."""
    return Checkpoint(seq, read_row(db_file, seq)["hash"])


def verify(
    db_file: Path,
    checkpoint: Checkpoint | None = None,
    published: list[PublishedCheckpoint] | None = None,
) -> VerifyReport:
    """Given a ledger file and what to compare it with, return the report of verifying it."""
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        return verify_ledger(ledger, checkpoint, published or [])


def raw_sql(db_file: Path, sql: str, parameters: tuple[object, ...] = ()) -> None:
    """Given a ledger file, run one statement with its triggers and checks off, as a forger can."""
    forge(db_file, (sql, parameters))


# --- an intact ledger ---------------------------------------------------------------


def test_an_empty_ledger_is_intact_with_no_head(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with open_ledger(sqlite_url(path)):
        pass
    assert verify(path) == VerifyReport(True, 0, None, None, None, 0)


def test_an_intact_ledger_reports_every_entry_and_its_last_as_head(db_file: Path) -> None:
    assert verify(db_file) == VerifyReport(True, COUNT, stored(db_file, COUNT), None, None, 0)


def test_a_one_entry_ledger_has_that_entry_as_head(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with open_ledger(sqlite_url(path)) as ledger:
        ledger.append("note", None, {"n": 1}, actor="ana")
    assert verify(path) == VerifyReport(True, 1, stored(path, 1), None, None, 0)


def test_the_report_document_writes_the_head_as_seq_colon_hash(db_file: Path) -> None:
    head_hash = read_row(db_file, COUNT)["hash"]
    assert verify(db_file).to_document() == {
        "ok": True,
        "entries_checked": COUNT,
        "head": f"{COUNT}:{head_hash}",
        "first_bad_seq": None,
        "reason": None,
        "published_compared": 0,
    }


def test_the_document_of_an_empty_ledger_has_no_head(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with open_ledger(sqlite_url(path)):
        pass
    assert verify(path).to_document()["head"] is None


def test_every_published_checkpoint_agreeing_is_counted(db_file: Path) -> None:
    published = [
        (stored(db_file, 2), "s3://a/2"),
        (stored(db_file, 2), "s3://b/2"),  # the same checkpoint published at two targets
        (stored(db_file, COUNT), "s3://a/6"),
    ]
    report = verify(db_file, published=published)
    assert report == VerifyReport(True, COUNT, stored(db_file, COUNT), None, None, 3)


# --- a checkpoint given ------------------------------------------------------------------


def test_a_checkpoint_at_the_head_agrees(db_file: Path) -> None:
    assert verify(db_file, stored(db_file, COUNT)).ok


def test_a_checkpoint_one_past_the_end_names_the_removed_entries(db_file: Path) -> None:
    beyond = Checkpoint(COUNT + 1, OTHER_HASH)
    assert verify(db_file, beyond) == VerifyReport(
        False,
        COUNT,
        stored(db_file, COUNT),
        COUNT + 1,
        f"the ledger ends at entry 6 but checkpoint 7:{OTHER_HASH} names entry 7: "
        "entries from 7 on were removed",
        0,
    )


def test_a_checkpoint_whose_hash_differs_names_a_rewritten_history(db_file: Path) -> None:
    report = verify(db_file, Checkpoint(4, OTHER_HASH))
    assert report == VerifyReport(
        False,
        3,
        stored(db_file, 3),
        4,
        f"hash of entry 4 differs from checkpoint 4:{OTHER_HASH}: "
        "history up to entry 4 was rewritten",
        0,
    )


# --- the chain itself broken ---------------------------------------------------------------


def test_a_missing_entry_is_named_with_the_next_one_stored(db_file: Path) -> None:
    tamper(db_file, ("DELETE FROM ledger_entries WHERE seq IN (3, 4)", ()))
    assert verify(db_file) == VerifyReport(
        False, 2, stored(db_file, 2), 3, "entry 3 is missing (the next stored entry is 5)", 0
    )


def test_a_missing_first_entry_leaves_no_intact_head(db_file: Path) -> None:
    tamper(db_file, ("DELETE FROM ledger_entries WHERE seq = 1", ()))
    assert verify(db_file) == VerifyReport(
        False, 0, None, 1, "entry 1 is missing (the next stored entry is 2)", 0
    )


def test_an_entry_numbered_before_the_first_is_named(db_file: Path) -> None:
    first = read_row(db_file, 1)
    raw_sql(
        db_file,
        "INSERT INTO ledger_entries VALUES (0, 'note', NULL, ?, 'mallory', '{}', ?, ?, 2)",
        (first["at"], "0" * 64, OTHER_HASH),
    )
    assert verify(db_file) == VerifyReport(False, 0, None, 1, "expected entry 1, found seq 0", 0)


def test_a_first_entry_not_linked_to_the_genesis_is_named(db_file: Path) -> None:
    tamper(db_file, ("UPDATE ledger_entries SET prev_hash = ? WHERE seq = 1", (OTHER_HASH,)))
    assert verify(db_file) == VerifyReport(
        False,
        0,
        None,
        1,
        "prev_hash does not match the hash of the genesis "
        "(entries reordered, replaced or relinked)",
        0,
    )


def test_an_entry_not_linked_to_its_predecessor_is_named(db_file: Path) -> None:
    tamper(db_file, ("UPDATE ledger_entries SET prev_hash = ? WHERE seq = 5", (OTHER_HASH,)))
    assert verify(db_file) == VerifyReport(
        False,
        4,
        stored(db_file, 4),
        5,
        "prev_hash does not match the hash of entry 4 (entries reordered, replaced or relinked)",
        0,
    )


def test_an_altered_entry_is_named(db_file: Path) -> None:
    tamper(db_file, ("UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 2", ()))
    assert verify(db_file) == VerifyReport(
        False,
        1,
        stored(db_file, 1),
        2,
        "stored hash does not match the entry's content (entry altered)",
        0,
    )


def test_an_unknown_entry_format_is_named(db_file: Path) -> None:
    tamper(db_file, ("UPDATE ledger_entries SET format = 9 WHERE seq = 3", ()))
    assert verify(db_file) == VerifyReport(
        False,
        2,
        stored(db_file, 2),
        3,
        "unknown entry format 9 (altered outside the ledger)",
        0,
    )


def test_a_column_of_the_wrong_type_is_named(db_file: Path) -> None:
    # SQLite keeps bytes stored in a text column as bytes: the actor is no longer text.
    tamper(db_file, ("UPDATE ledger_entries SET actor = X'616E61' WHERE seq = 3", ()))
    assert verify(db_file) == VerifyReport(
        False,
        2,
        stored(db_file, 2),
        3,
        "stored columns have the wrong types (altered outside the ledger)",
        0,
    )


# --- published checkpoints -------------------------------------------------------------------


def test_the_first_published_checkpoint_contradicted_is_named_with_where_it_was_read(
    db_file: Path,
) -> None:
    published = [
        (stored(db_file, 2), "s3://alpenhof/2"),
        (Checkpoint(4, OTHER_HASH), "s3://alpenhof/4"),
        (Checkpoint(5, OTHER_HASH), "s3://alpenhof/5"),
    ]
    assert verify(db_file, published=published) == VerifyReport(
        False,
        3,
        stored(db_file, 3),
        4,
        f"the chain recomputes, but entry 4's hash differs from the checkpoint 4:{OTHER_HASH} "
        "published at s3://alpenhof/4: history after entry 2, up to entry 4 was rewritten",
        2,
    )


def test_a_published_checkpoint_contradicted_with_none_agreeing_before(db_file: Path) -> None:
    published = [(Checkpoint(3, OTHER_HASH), "folder/3.txt")]
    assert verify(db_file, published=published) == VerifyReport(
        False,
        2,
        stored(db_file, 2),
        3,
        f"the chain recomputes, but entry 3's hash differs from the checkpoint 3:{OTHER_HASH} "
        "published at folder/3.txt: history up to entry 3 was rewritten",
        1,
    )


def test_the_newest_agreeing_checkpoint_bounds_the_rewrite(db_file: Path) -> None:
    published = [
        (stored(db_file, 4), "b/4"),
        (stored(db_file, 1), "a/1"),
        (Checkpoint(6, OTHER_HASH), "c/6"),
    ]
    report = verify(db_file, published=published)
    assert report.reason == (
        f"the chain recomputes, but entry 6's hash differs from the checkpoint 6:{OTHER_HASH} "
        "published at c/6: history after entry 4, up to entry 6 was rewritten"
    )
    assert (report.first_bad_seq, report.entries_checked, report.published_compared) == (6, 5, 3)


def test_a_second_copy_of_a_checkpoint_is_held_to_the_rule_too(db_file: Path) -> None:
    published = [(stored(db_file, 3), "a/3"), (Checkpoint(3, OTHER_HASH), "b/3")]
    report = verify(db_file, published=published)
    assert report.reason == (
        f"the chain recomputes, but entry 3's hash differs from the checkpoint 3:{OTHER_HASH} "
        "published at b/3: history up to entry 3 was rewritten"
    )
    assert (report.first_bad_seq, report.published_compared) == (3, 2)


def test_a_broken_chain_counts_only_the_published_checkpoints_reached(db_file: Path) -> None:
    tamper(db_file, ("UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 4", ()))
    published = [
        (stored(db_file, 2), "a/2"),
        (stored(db_file, 3), "a/3"),
        (stored(db_file, 5), "a/5"),
    ]
    report = verify(db_file, published=published)
    assert (report.first_bad_seq, report.published_compared) == (4, 2)


def test_published_checkpoints_past_the_end_name_the_lowest_one(db_file: Path) -> None:
    published = [
        (Checkpoint(9, OTHER_HASH), "s3://a/9"),
        (Checkpoint(7, OTHER_HASH), "s3://a/7"),
        (Checkpoint(7, "cd" * 32), "s3://b/7"),
        (stored(db_file, 3), "s3://a/3"),
    ]
    assert verify(db_file, published=published) == VerifyReport(
        False,
        COUNT,
        stored(db_file, COUNT),
        7,
        f"the ledger ends at entry 6 but the checkpoint 7:{OTHER_HASH} published at s3://a/7 "
        "names entry 7: entries from 7 on were removed",
        1,
    )


def test_published_checkpoints_are_compared_before_the_given_one_past_the_end(
    db_file: Path,
) -> None:
    report = verify(
        db_file, Checkpoint(8, OTHER_HASH), published=[(Checkpoint(7, OTHER_HASH), "a/7")]
    )
    assert report.first_bad_seq == 7
    assert report.reason is not None and report.reason.startswith(
        "the ledger ends at entry 6 but the checkpoint 7:"
    )
