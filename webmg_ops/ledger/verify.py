"""Verify the ledger: recompute the hash chain from the stored columns.

Verification proves that the stored history is the one that was hashed:
an edited, deleted, reordered or relinked entry breaks the chain. Someone
able to write the database could rewrite history and recompute every later
hash; only a checkpoint (``seq:hash``) kept elsewhere earlier, for example
printed in a client's report or published offsite after each run, reveals
that: :func:`verify_ledger` compares the chain with every checkpoint given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from webmg_ops.ledger.canonical import ENTRY_FORMATS, GENESIS_HASH, canonical_entry, chain_hash
from webmg_ops.ledger.ranges import check_in_ranges
from webmg_ops.ledger.records import Checkpoint
from webmg_ops.ledger.store import Ledger


@dataclass(frozen=True)
class VerifyReport:
    """The result of verifying a ledger.

    ``entries_checked`` counts the entries found intact, in order, before the
    first problem (all of them when ``ok``); ``head`` is the checkpoint of the
    last intact entry (None when there is none); ``first_bad_seq`` and
    ``reason`` name the first problem; ``published_compared`` counts the
    published checkpoints the chain was compared with.
    """

    ok: bool
    entries_checked: int
    head: Checkpoint | None
    first_bad_seq: int | None = None
    reason: str | None = None
    published_compared: int = 0

    def to_document(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dictionary (``head`` as ``seq:hash``)."""
        document = asdict(self)
        document["head"] = None if self.head is None else str(self.head)
        return document


PublishedCheckpoint = tuple[Checkpoint, str]
"""A checkpoint published earlier, and where it was read (for messages)."""


def _by_seq(published: Sequence[PublishedCheckpoint]) -> dict[int, list[PublishedCheckpoint]]:
    found: dict[int, list[PublishedCheckpoint]] = {}
    for item in published:
        found.setdefault(item[0].seq, []).append(item)
    return found


def verify_ledger(
    ledger: Ledger,
    checkpoint: Checkpoint | None = None,
    published: Sequence[PublishedCheckpoint] = (),
    *,
    ranges: int | None = None,
) -> VerifyReport:
    """Given a ledger, optionally an earlier checkpoint and published ones, return the report.

    A long ledger is first checked in ``ranges`` at once, one process each
    (None: one per core, see :mod:`webmg_ops.ledger.ranges`; 1: not at all).
    Found intact there, and agreeing with every checkpoint, it is reported
    intact; otherwise it is verified in one pass, as follows, which names
    what is wrong.

    Every stored entry is re-hashed in seq order, in its own format; the first entry whose seq
    is not the next one, whose ``prev_hash`` is not its predecessor's hash,
    or whose hash differs from the recomputed one is named. With a
    checkpoint, the entry at its seq must still have its hash, and the
    ledger must reach its seq. Each ``published`` checkpoint (with where it
    was read) is held to the same rule, so a history rewritten and re-hashed
    is named at the first published checkpoint it contradicts. Raise
    EnvironmentProblem if the database fails.
    """
    given = [item[0] for item in published] + ([checkpoint] if checkpoint is not None else [])
    if ranges != 1:
        intact = check_in_ranges(ledger, {item.seq for item in given}, ranges)
        if intact is not None and all(intact.hashes.get(item.seq) == item.hash for item in given):
            compared = len(published)
            return VerifyReport(True, intact.head.seq, intact.head, published_compared=compared)
    expected_seq = 1
    prev_hash = GENESIS_HASH
    pending_published = _by_seq(published)
    matching: Checkpoint | None = None  # the newest published checkpoint the chain agrees with

    def intact_head() -> Checkpoint | None:
        return Checkpoint(expected_seq - 1, prev_hash) if expected_seq > 1 else None

    def broken(seq: int, reason: str) -> VerifyReport:
        compared = len(published) - sum(len(items) for items in pending_published.values())
        return VerifyReport(False, expected_seq - 1, intact_head(), seq, reason, compared)

    for row in ledger.stored_rows():
        seq, kind, client, at, actor, payload_json, stored_prev, stored_hash, entry_format = row
        if seq != expected_seq:
            if seq > expected_seq:
                return broken(
                    expected_seq,
                    f"entry {expected_seq} is missing (the next stored entry is {seq})",
                )
            return broken(expected_seq, f"expected entry {expected_seq}, found seq {seq!r}")
        if stored_prev != prev_hash:
            return broken(
                seq,
                "prev_hash does not match the hash of "
                + ("the genesis" if seq == 1 else f"entry {seq - 1}")
                + " (entries reordered, replaced or relinked)",
            )
        try:
            recomputed = chain_hash(
                prev_hash,
                canonical_entry(seq, kind, client, at, actor, payload_json, entry_format),
            )
        except (TypeError, ValueError):
            if entry_format not in ENTRY_FORMATS:
                return broken(
                    seq, f"unknown entry format {entry_format!r} (altered outside the ledger)"
                )
            return broken(seq, "stored columns have the wrong types (altered outside the ledger)")
        if recomputed != stored_hash:
            return broken(seq, "stored hash does not match the entry's content (entry altered)")
        if checkpoint is not None and seq == checkpoint.seq and stored_hash != checkpoint.hash:
            return broken(
                seq,
                f"hash of entry {seq} differs from checkpoint {checkpoint}: "
                f"history up to entry {seq} was rewritten",
            )
        for expected, where in pending_published.pop(seq, ()):
            if stored_hash != expected.hash:
                # A copy of the same checkpoint that agrees bounds nothing: it is the same entry.
                since = (
                    f"after entry {matching.seq}, "
                    if matching is not None and matching.seq < seq
                    else ""
                )
                return broken(
                    seq,
                    f"the chain recomputes, but entry {seq}'s hash differs from the checkpoint "
                    f"{expected} published at {where}: history {since}up to entry {seq} "
                    "was rewritten",
                )
            matching = expected
        prev_hash = stored_hash
        expected_seq += 1

    if pending_published:
        expected, where = pending_published[min(pending_published)][0]
        return broken(
            expected_seq,
            f"the ledger ends at entry {expected_seq - 1} but the checkpoint {expected} "
            f"published at {where} names entry {expected.seq}: entries from "
            f"{expected_seq} on were removed",
        )
    if checkpoint is not None and checkpoint.seq >= expected_seq:
        return broken(
            expected_seq,
            f"the ledger ends at entry {expected_seq - 1} but checkpoint {checkpoint} "
            f"names entry {checkpoint.seq}: entries from {expected_seq} on were removed",
        )
    return VerifyReport(True, expected_seq - 1, intact_head(), published_compared=len(published))
