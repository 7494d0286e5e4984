"""A long ledger is checked in seq ranges, one process each: soundly, and joined at the seams.

The ledgers here are short, so the count of ranges is given. Ranges of 9
entries split in 3 are seqs 1-3, 4-6 and 7-9: the tampering below is aimed
at those seams. The expected hashes are read from the stored rows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from support.ledger import BACKENDS, backend_url, forge, read_row, sqlite_url

from webmg_ops.ledger import Checkpoint, NewEntry, open_ledger, verify_ledger
from webmg_ops.ledger import ranges as ranges_module
from webmg_ops.ledger.canonical import canonical_entry, chain_hash
from webmg_ops.ledger.ranges import (
    MIN_RANGE_ENTRIES,
    IntactLedger,
    check_in_ranges,
    ranges_worth_forking,
    split,
)

COUNT = 9
RANGES = 3


def notes(count: int = COUNT) -> list[NewEntry]:
    """Given a count, return that many note entries."""
    return [NewEntry("note", "alpenhof", {"n": n}, actor="ana") for n in range(1, count + 1)]


@pytest.fixture
def db_file(tmp_path: Path) -> Iterator[Path]:
    """Return a SQLite ledger file holding COUNT entries."""
    path = tmp_path / "ledger.db"
    with open_ledger(sqlite_url(path)) as ledger:
        ledger.append_many(notes())
    yield path


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Return the list of the pids forked from here on (the real fork still forks).

    The threads that earlier tests of this process left (their idle servers)
    are not counted as running: a test that starts one says so.
    """
    monkeypatch.setattr(ranges_module, "other_threads_running", lambda: False)
    forked: list[int] = []
    real_fork = os.fork

    def counting_fork() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counting_fork)
    return forked


def rehash(db_file: Path, first_seq: int, prev_hash: str) -> None:
    """Given a ledger file, chain its entries from ``first_seq`` on to ``prev_hash``, as a
    forger who relinks the rest of the ledger would: each entry is consistent with the next."""
    statements: list[tuple[str, tuple[object, ...]]] = []
    for seq in range(first_seq, COUNT + 1):
        row = read_row(db_file, seq)
        content = canonical_entry(
            seq, row["kind"], row["client"], row["at"], row["actor"], row["payload"], row["format"]
        )
        new_hash = chain_hash(prev_hash, content)
        statements.append(
            (
                "UPDATE ledger_entries SET prev_hash = ?, hash = ? WHERE seq = ?",
                (prev_hash, new_hash, seq),
            )
        )
        prev_hash = new_hash
    forge(db_file, *statements)


def stored_hash(db_file: Path, seq: int) -> str:
    """Given a ledger file and a seq, return that entry's stored hash."""
    return str(read_row(db_file, seq)["hash"])


# --- how a ledger is split ------------------------------------------------------------------


def test_ranges_are_of_equal_length_and_the_last_runs_to_the_end() -> None:
    assert split(9, 3) == [(None, 3), (3, 6), (6, None)]
    assert split(11, 3) == [(None, 3), (3, 6), (6, None)]
    assert split(20_000, 2) == [(None, 10_000), (10_000, None)]


@pytest.mark.parametrize(
    ("entries", "cores", "expected"),
    [
        (MIN_RANGE_ENTRIES - 1, 4, 1),
        (MIN_RANGE_ENTRIES, 4, 1),
        (2 * MIN_RANGE_ENTRIES, 4, 2),
        (100 * MIN_RANGE_ENTRIES, 4, 4),
        (100 * MIN_RANGE_ENTRIES, 1, 1),
    ],
)
def test_a_range_per_core_each_of_the_least_worth_a_process(
    entries: int, cores: int, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)))
    assert ranges_worth_forking(entries) == expected


# --- an intact ledger -----------------------------------------------------------------------


def test_an_intact_ledger_is_checked_in_a_process_per_range(
    db_file: Path, forks: list[int]
) -> None:
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        found = check_in_ranges(ledger, {2, 4, 9, 12}, RANGES)
    assert found == IntactLedger(
        Checkpoint(COUNT, stored_hash(db_file, COUNT)),
        {seq: stored_hash(db_file, seq) for seq in (2, 4, 9)},
    )
    assert len(forks) == RANGES - 1


def test_in_ranges_or_in_one_pass_an_intact_ledger_gets_the_same_report(
    db_file: Path, forks: list[int]
) -> None:
    published = [
        (Checkpoint(seq, stored_hash(db_file, seq)), f"s3://proofs/{seq}") for seq in (3, 4, 7)
    ]
    head = Checkpoint(COUNT, stored_hash(db_file, COUNT))
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        one_pass = verify_ledger(ledger, head, published, ranges=1)
        assert forks == []
        in_ranges = verify_ledger(ledger, head, published, ranges=RANGES)
    assert len(forks) == RANGES - 1
    assert in_ranges == one_pass
    assert (in_ranges.ok, in_ranges.entries_checked, in_ranges.head) == (True, COUNT, head)
    assert in_ranges.published_compared == len(published)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_parents_connections_outlive_the_checking_processes(
    backend: str, tmp_path: Path, forks: list[int]
) -> None:
    with backend_url(backend, tmp_path) as url, open_ledger(url) as ledger:
        ledger.append_many(notes())
        found = check_in_ranges(ledger, {5}, RANGES)
        assert len(forks) == RANGES - 1
        # The children read on connections of their own: the parent's still write.
        ledger.append("note", "alpenhof", {"n": COUNT + 1}, actor="ana")
        again = check_in_ranges(ledger, {5}, RANGES)
        engine = create_engine(url)
        with engine.connect() as connection:
            hashes = dict(connection.execute(text("SELECT seq, hash FROM ledger_entries")).all())
        engine.dispose()
    assert found == IntactLedger(Checkpoint(COUNT, hashes[COUNT]), {5: hashes[5]})
    assert again == IntactLedger(Checkpoint(COUNT + 1, hashes[COUNT + 1]), {5: hashes[5]})


# --- a ledger changed at a seam between ranges ----------------------------------------------


def delete(seq: int) -> Callable[[Path], None]:
    """Return a forgery that deletes the entry ``seq``."""
    return lambda path: forge(path, ("DELETE FROM ledger_entries WHERE seq = ?", (seq,)))


def relink(seq: int) -> Callable[[Path], None]:
    """Return a forgery that chains the entries from ``seq`` on to another hash."""
    return lambda path: rehash(path, seq, "f" * 64)


def cut_out(seq: int) -> Callable[[Path], None]:
    """Return a forgery that deletes the entry ``seq`` and chains the next one to the one before."""

    def forgery(path: Path) -> None:
        before = stored_hash(path, seq - 1)
        delete(seq)(path)
        rehash(path, seq + 1, before)

    return forgery


def alter(seq: int) -> Callable[[Path], None]:
    """Return a forgery that changes the entry ``seq``'s payload and nothing else."""
    return lambda path: forge(
        path, ("UPDATE ledger_entries SET payload = '{\"n\":0}' WHERE seq = ?", (seq,))
    )


def prepend(path: Path) -> None:
    """Store an entry numbered 0 before the first, chained to the genesis."""
    row = read_row(path, 1)
    forge(
        path,
        (
            "INSERT INTO ledger_entries VALUES (0, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row["kind"], row["client"], row["at"], row["actor"], "{}", "0" * 64, "0" * 64, 2),
        ),
    )


def retype(path: Path) -> None:
    """Store entry 8's format as text."""
    forge(path, ("UPDATE ledger_entries SET format = 'two' WHERE seq = 8", ()))


@pytest.mark.parametrize(
    "forgery",
    [
        delete(3),
        delete(4),
        delete(7),
        cut_out(4),
        alter(5),
        relink(4),
        relink(7),
        relink(1),
        prepend,
        retype,
    ],
    ids=[
        "last-of-first-deleted",
        "first-of-second-deleted",
        "first-of-last-deleted",
        "first-of-second-cut-out-and-the-rest-relinked",
        "payload-in-second-altered",
        "second-relinked",
        "last-relinked",
        "all-relinked",
        "entry-0-stored",
        "wrong-type-in-last",
    ],
)
def test_a_ledger_changed_at_a_seam_is_not_intact_and_is_reported_as_one_pass_finds_it(
    db_file: Path, forgery: Callable[[Path], None], forks: list[int]
) -> None:
    forgery(db_file)
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        assert check_in_ranges(ledger, (), RANGES) is None
        assert len(forks) == RANGES - 1
        in_ranges = verify_ledger(ledger, ranges=RANGES)
        one_pass = verify_ledger(ledger, ranges=1)
    assert not one_pass.ok
    assert in_ranges == one_pass


def test_a_truncated_tail_is_intact_in_ranges_but_contradicts_the_checkpoint(
    db_file: Path, forks: list[int]
) -> None:
    checkpoint = Checkpoint(COUNT, stored_hash(db_file, COUNT))
    delete(COUNT)(db_file)
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        assert check_in_ranges(ledger, {COUNT}, RANGES) == IntactLedger(
            Checkpoint(COUNT - 1, stored_hash(db_file, COUNT - 1)), {}
        )
        report = verify_ledger(ledger, checkpoint, ranges=RANGES)
        assert report == verify_ledger(ledger, checkpoint, ranges=1)
    assert (report.ok, report.first_bad_seq, report.entries_checked) == (False, COUNT, COUNT - 1)


def test_a_rewritten_history_that_rehashes_is_named_at_the_published_checkpoint(
    db_file: Path, forks: list[int]
) -> None:
    published = [(Checkpoint(5, stored_hash(db_file, 5)), "s3://proofs/5")]
    forge(db_file, ("UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 5", ()))
    rehash(db_file, 5, stored_hash(db_file, 4))  # entry 5 rewritten, the chain rehashed from it
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        assert check_in_ranges(ledger, {5}, RANGES) is not None  # the chain alone holds
        report = verify_ledger(ledger, None, published, ranges=RANGES)
        assert report == verify_ledger(ledger, None, published, ranges=1)
    assert (report.ok, report.first_bad_seq) == (False, 5)


# --- when a ledger is checked in one pass ---------------------------------------------------


def test_with_another_thread_running_the_ledger_is_checked_in_one_pass(
    db_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked with another thread running"))
    release = threading.Event()
    waiting = threading.Thread(target=release.wait)
    waiting.start()
    try:
        with open_ledger(sqlite_url(db_file), create=False) as ledger:
            assert check_in_ranges(ledger, (), RANGES) is None
            report = verify_ledger(ledger, ranges=RANGES)
    finally:
        release.set()
        waiting.join()
    assert (report.ok, report.entries_checked) == (True, COUNT)


def test_a_ledger_in_memory_is_checked_in_one_pass(forks: list[int]) -> None:
    with open_ledger("sqlite://") as ledger:
        ledger.append_many(notes())
        assert check_in_ranges(ledger, (), RANGES) is None
        report = verify_ledger(ledger, ranges=RANGES)
    assert forks == []
    assert (report.ok, report.entries_checked) == (True, COUNT)


def test_an_empty_ledger_is_checked_in_one_pass(tmp_path: Path, forks: list[int]) -> None:
    with open_ledger(sqlite_url(tmp_path / "ledger.db")) as ledger:
        assert check_in_ranges(ledger, (), RANGES) is None
    assert forks == []


def test_a_child_that_dies_leaves_the_ledger_to_one_pass(
    db_file: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    real_check = ranges_module._check_bounds
    parent = os.getpid()

    def dying_in_children(*args: object) -> object:
        if os.getpid() != parent:
            os._exit(3)
        return real_check(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(ranges_module, "_check_bounds", dying_in_children)
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        assert check_in_ranges(ledger, (), RANGES) is None
        assert len(forks) == RANGES - 1
        report = verify_ledger(ledger, ranges=RANGES)
    assert (report.ok, report.entries_checked) == (True, COUNT)
