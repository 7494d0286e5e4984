"""Export ledger entries as JSON Lines or CSV, for clients, auditors and reports."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Literal, TextIO

from webmg_ops.errors import BadInput
from webmg_ops.ledger.canonical import canonical_json, format_utc
from webmg_ops.ledger.store import Ledger, StoredRow

ExportFormat = Literal["jsonl", "csv"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv")
CSV_COLUMNS = ("seq", "at", "kind", "client", "actor", "payload", "prev_hash", "hash", "format")


def _write_jsonl(rows: Iterator[StoredRow], out: TextIO) -> int:
    quote = canonical_json
    count = 0
    for seq, kind, client, at, actor, payload_json, prev_hash, hash_, entry_format in rows:
        # Composed from the stored text, so an export shows exactly what was hashed.
        client_json = "null" if client is None else quote(client)
        out.write(
            f'{{"actor":{quote(actor)},"at":{quote(at)},"client":{client_json},'
            f'"format":{int(entry_format):d},"hash":{quote(hash_)},"kind":{quote(kind)},'
            f'"payload":{payload_json},"prev_hash":{quote(prev_hash)},"seq":{seq:d}}}\n'
        )
        count += 1
    return count


def _write_csv(rows: Iterator[StoredRow], out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for seq, kind, client, at, actor, payload_json, prev_hash, hash_, entry_format in rows:
        writer.writerow(
            (seq, at, kind, client or "", actor, payload_json, prev_hash, hash_, entry_format)
        )
        count += 1
    return count


_WRITERS: dict[str, Callable[[Iterator[StoredRow], TextIO], int]] = {
    "jsonl": _write_jsonl,
    "csv": _write_csv,
}


def export_entries(
    ledger: Ledger,
    fmt: ExportFormat,
    out: TextIO,
    *,
    client: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Given a ledger, a format and a text stream, write the entries and return how many.

    ``jsonl`` writes one canonical JSON object per line with the entry's
    ``seq, kind, client, at, actor, payload, prev_hash, hash, format``, so
    anyone can recompute the chain: an entry of format 1 hashes
    ``sha256(prev_hash + sorted compact JSON of {seq, kind, client, at, actor,
    payload})``, one of format 2 ``sha256(prev_hash + RFC 8785 JSON of {seq,
    kind, client, at, actor, format, payload})``. ``csv`` writes a header and
    one row per entry, the payload as canonical JSON text and a global
    entry's client empty. Only entries of ``client`` and at or after
    ``since`` (and before ``until``) are written, in seq order. Raise BadInput
    if the format is unknown or ``since`` or ``until`` naive,
    EnvironmentProblem if the database fails.
    """
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise BadInput(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    rows = ledger.stored_rows(client=client, since=since)
    if until is not None:
        # Stored times are fixed-width UTC text, so comparing the texts compares the times.
        before = format_utc(until)
        rows = (row for row in rows if row[3] < before)
    return writer(rows, out)
