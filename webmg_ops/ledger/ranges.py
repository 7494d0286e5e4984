"""Check a long ledger's chain in seq ranges, one process per range, on the controller's cores.

Each entry stores the hash it is chained to (``prev_hash``), so an entry's
hash can be recomputed without the entries before it. A long ledger is
therefore checked in ranges at once, each range in its own process; the
ranges are then joined: each range's first ``prev_hash`` must be the hash of
the previous range's last entry (the genesis for the first).

This answers one question, whether the whole ledger is intact, and
:func:`webmg_ops.ledger.verify.verify_ledger` asks it first. A ledger found
broken, or one this cannot check (short, in memory, or in a process running
threads), is verified again in one pass, which names what is wrong. So both
ways give the same report, and this way only has to be sound: never intact
where one pass would find a fault.

Processes are forked, not started afresh: a new interpreter would spend
longer importing the ledger's code than a range takes to check. A child
opens connections of its own and leaves by ``os._exit``.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
from collections.abc import Collection, Iterable
from contextlib import suppress
from dataclasses import dataclass

from webmg_ops.ledger.canonical import GENESIS_HASH, canonical_entry, chain_hash
from webmg_ops.ledger.records import Checkpoint
from webmg_ops.ledger.store import Ledger, StoredRow

MIN_RANGE_ENTRIES = 10_000
"""The fewest entries a range is given: forking and joining a process costs a
few milliseconds, the time to check about 2,000 entries."""

Bounds = tuple[int | None, int | None]
"""A range of seqs: after ``[0]`` (None: from the first stored) up to ``[1]``
included (None: to the last stored)."""


@dataclass(frozen=True)
class RangeCheck:
    """A range found intact: its first entry's ``prev_hash``, its last entry, the hashes asked for.

    ``hashes`` maps each seq asked for that lies in the range to its stored hash.
    """

    first_prev: str
    last: Checkpoint
    hashes: dict[int, str]


@dataclass(frozen=True)
class IntactLedger:
    """A ledger found intact: its last entry and the stored hashes asked for, by seq."""

    head: Checkpoint
    hashes: dict[int, str]


def check_range(
    rows: Iterable[StoredRow], first_seq: int, wanted: Collection[int]
) -> RangeCheck | None:
    """Given a range's stored rows in seq order, the seq it starts at and seqs whose hashes are
    wanted, return the range's check.

    Return None if the range is empty, a seq is not the next one, an entry is
    not linked to the one before it, a column has the wrong type or an
    entry's hash is not that of its content.
    """
    expected = first_seq
    first_prev: str | None = None
    last_hash: str | None = None
    hashes: dict[int, str] = {}
    for seq, kind, client, at, actor, payload, prev_hash, stored_hash, entry_format in rows:
        if seq != expected or (last_hash is not None and prev_hash != last_hash):
            return None
        try:
            content = canonical_entry(seq, kind, client, at, actor, payload, entry_format)
            if chain_hash(prev_hash, content) != stored_hash:
                return None
        except (TypeError, ValueError):
            return None
        if first_prev is None:
            first_prev = prev_hash
        if seq in wanted:
            hashes[seq] = stored_hash
        last_hash = stored_hash
        expected += 1
    if first_prev is None or last_hash is None:
        return None
    return RangeCheck(first_prev, Checkpoint(expected - 1, last_hash), hashes)


def split(last_seq: int, count: int) -> list[Bounds]:
    """Given the last seq and a count of ranges, return the ranges' bounds, of equal length.

    The first range has no lower bound, so that a stored seq below 1 is met
    (and refused); the last has no upper bound, so that it ends at the last
    entry stored when it is read.
    """
    length = last_seq // count
    inner = [length * index for index in range(1, count)]
    return list(zip([None, *inner], [*inner, None], strict=True))


def ranges_worth_forking(entries: int) -> int:
    """Given a ledger's length, return how many ranges to check it in (1: one pass).

    One per core this process may run on, each of at least
    :data:`MIN_RANGE_ENTRIES` entries.
    """
    return max(1, min(len(os.sched_getaffinity(0)), entries // MIN_RANGE_ENTRIES))


def other_threads_running() -> bool:
    """Whether a thread besides this one runs in this process, which makes forking unsafe.

    A fork copies only the calling thread: a lock another thread holds at
    that moment (in the interpreter, a driver or OpenSSL) is never released
    in the child.
    """
    return threading.active_count() > 1


def _check_bounds(ledger: Ledger, bounds: Bounds, wanted: Collection[int]) -> RangeCheck | None:
    after, through = bounds
    rows = ledger.stored_rows(after_seq=after, through_seq=through)
    return check_range(rows, 1 if after is None else after + 1, wanted)


def _fork_check(ledger: Ledger, bounds: Bounds, wanted: Collection[int]) -> tuple[int, int]:
    """Fork a child that checks one range and writes its pickled check to a pipe.

    Return the child's pid and the pipe's end to read.
    """
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:
        status = 1
        try:
            os.close(read_end)
            with ledger.reopened() as own:
                found = _check_bounds(own, bounds, wanted)
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump(found, pipe)
            status = 0
        finally:
            # Whatever happened, the child must not return into the parent's code,
            # nor run its exit handlers or finalizers.
            os._exit(status)
    os.close(write_end)
    return pid, read_end


def _collect(pid: int, read_end: int) -> RangeCheck | None:
    """Given a child checking a range and its pipe, wait for it and return its check."""
    try:
        with os.fdopen(read_end, "rb") as pipe:
            sent = pipe.read()
    finally:
        _, status = os.waitpid(pid, 0)
    if status != 0 or not sent:
        return None
    found = pickle.loads(sent)  # written by our own child, just above
    return found if isinstance(found, RangeCheck) else None


def _stop(children: Iterable[tuple[int, int]]) -> None:
    """Given children not collected, end them and reap them (after an error in the parent)."""
    for pid, read_end in children:
        with suppress(OSError):
            os.close(read_end)
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _joined(checks: list[RangeCheck | None]) -> IntactLedger | None:
    """Given each range's check in order, return the ledger's if every range is intact and
    each begins where the one before it ends."""
    previous = Checkpoint(0, GENESIS_HASH)
    hashes: dict[int, str] = {}
    for check in checks:
        if check is None or check.first_prev != previous.hash:
            return None
        hashes |= check.hashes
        previous = check.last
    return IntactLedger(previous, hashes)


def check_in_ranges(
    ledger: Ledger, wanted: Collection[int], count: int | None = None
) -> IntactLedger | None:
    """Given a ledger, seqs whose stored hashes are wanted and optionally a count of ranges,
    return the ledger found intact, checked in ranges, one process each.

    The count defaults to :func:`ranges_worth_forking` of the ledger's length.
    Return None if the ledger is not intact, or if it is not checked this way:
    one range, a ledger other processes cannot open, or other threads running
    here (:func:`other_threads_running`). Raise EnvironmentProblem if the
    database fails in this process.
    """
    head = ledger.head()
    if head is None or not ledger.readable_by_other_processes:
        return None
    count = min(ranges_worth_forking(head.seq) if count is None else count, head.seq)
    if count < 2 or other_threads_running():
        return None
    first, *others = split(head.seq, count)
    children: list[tuple[int, int]] = []
    try:
        for bounds in others:
            children.append(_fork_check(ledger, bounds, wanted))
        checks = [_check_bounds(ledger, first, wanted)]
        while children:
            checks.append(_collect(*children.pop(0)))
    except OSError:  # no process to spare (fork or pipe refused): one pass will do
        return None
    finally:
        _stop(children)
    return _joined(checks)
