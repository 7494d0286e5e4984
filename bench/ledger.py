"""Benchmark the ledger: batched appends, verify, and a raw sha256 chain side by side.

Run: ``.venv/bin/python bench/ledger.py [--entries N] [--batch B]``. Prints
rates and the ratio verify / raw (raw = the same canonical bytes hashed in a
chain in memory, no database, in one thread), on SQLite and then on a scratch
PostgreSQL server on loopback (the drill's, from ``make setup``'s binaries);
the figures are measured in one run, so the ratio means more than the
absolute rates on a noisy machine. Verify is measured as ``ledger verify``
runs it (a long ledger in ranges, a process per core) and in one pass.
Reading the stored rows alone is printed beside them: one pass reads every
row, so reading/raw bounds one pass/raw. Asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from webmg_ops.backups.scratchdb import scratch_server
from webmg_ops.errors import EnvironmentProblem
from webmg_ops.ledger import (
    Ledger,
    NewEntry,
    canonical_entry,
    open_ledger,
    verify_ledger,
)
from webmg_ops.ledger.ranges import ranges_worth_forking

ACTIONS = ("update", "harden", "backup", "drill", "diagnose")
CLIENTS = ("alpenhof", "riverton", "terre-solidaire", "atelier-nord")


def make_drafts(count: int) -> list[NewEntry]:
    """Given a count, return that many realistic run entries (started/finished pairs)."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    drafts = []
    for index in range(count):
        action = ACTIONS[index % len(ACTIONS)]
        finished = index % 2 == 1
        payload: dict[str, object] = {
            "run_id": f"run-{index // 2:08d}",
            "action": action,
            "hosts": ["web1", "db1"],
        }
        if finished:
            payload |= {"outcome": "succeeded", "duration_s": 12.5, "changed": index % 7}
        drafts.append(
            NewEntry(
                kind="run-finished" if finished else "run-started",
                client=CLIENTS[index % len(CLIENTS)],
                payload=payload,
                actor="bench",
                at=start + timedelta(seconds=index),
            )
        )
    return drafts


def measure_raw_chain(canonical: list[bytes]) -> float:
    """Given canonical entries as bytes, return the seconds to hash them in a chain."""
    started = time.perf_counter()
    prev = b"0" * 64
    for item in canonical:
        prev = hashlib.sha256(prev + item).hexdigest().encode()
    return time.perf_counter() - started


def measure_append(ledger: Ledger, drafts: list[NewEntry], batch: int) -> float:
    """Given an empty ledger and entries, return the seconds to append them in batches."""
    started = time.perf_counter()
    for first in range(0, len(drafts), batch):
        ledger.append_many(drafts[first : first + batch])
    return time.perf_counter() - started


@dataclass(frozen=True)
class Figures:
    """One database's figures, each the best of the rounds, in seconds."""

    append_s: float
    verify_s: float
    one_pass_s: float
    read_s: float
    raw_s: float
    ok: bool


def measure(
    make_url: Callable[[int], str], drafts: list[NewEntry], batch: int, rounds: int
) -> Figures:
    """Given a maker of empty ledger URLs (one per round), entries, a batch size and the
    rounds, return the best append, verify (as run, then in one pass), read and raw-chain
    times of that database."""
    append_s = float("inf")
    for round_ in range(rounds):
        url = make_url(round_)
        with open_ledger(url) as ledger:
            append_s = min(append_s, measure_append(ledger, drafts, batch))
    with open_ledger(url) as ledger:
        canonical = [
            canonical_entry(seq, kind, client, at, actor, payload, fmt).encode()
            for seq, kind, client, at, actor, payload, _prev, _hash, fmt in ledger.stored_rows()
        ]
        # Best of a few alternating rounds: the ratio should reflect the code, not a
        # neighbour's burst of load.
        verify_s = one_pass_s = raw_s = read_s = float("inf")
        for _round in range(rounds):
            started = time.perf_counter()
            report = verify_ledger(ledger)
            verify_s = min(verify_s, time.perf_counter() - started)
            started = time.perf_counter()
            one_pass = verify_ledger(ledger, ranges=1)
            one_pass_s = min(one_pass_s, time.perf_counter() - started)
            raw_s = min(raw_s, measure_raw_chain(canonical))
            started = time.perf_counter()
            for _row in ledger.stored_rows():
                pass
            read_s = min(read_s, time.perf_counter() - started)
    return Figures(append_s, verify_s, one_pass_s, read_s, raw_s, report.ok and one_pass.ok)


def show(name: str, count: int, figures: Figures) -> None:
    """Print one database's rates and ratios."""
    print(f"{name}")
    print(f"  append              {count / figures.append_s:12,.0f} entries/s  (target >= 50,000)")
    ranges = ranges_worth_forking(count)
    print(
        f"  verify              {count / figures.verify_s:12,.0f} entries/s  ok={figures.ok}"
        f"  ({ranges} range(s) at once, one process each)"
    )
    print(f"  verify, one pass    {count / figures.one_pass_s:12,.0f} entries/s")
    print(
        f"    of which reading  {count / figures.read_s:12,.0f} rows/s     (the stored rows alone)"
    )
    print(f"  raw sha256 chain    {count / figures.raw_s:12,.0f} entries/s  (same canonical bytes)")
    print(f"  ratio verify/raw    {figures.raw_s / figures.verify_s:12.2f}  (target >= 0.3)")
    print(f"  ratio one pass/raw  {figures.raw_s / figures.one_pass_s:12.2f}")
    ceiling = figures.raw_s / figures.read_s
    print(f"  ratio reading/raw   {ceiling:12.2f}  (one pass's ceiling: it reads the rows)")
    print(f"  ratio append/raw    {figures.raw_s / figures.append_s:12.2f}")


def main() -> None:
    """Run the benchmark on SQLite, then on a scratch PostgreSQL server, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=50_000, help="entries to append")
    parser.add_argument("--batch", type=int, default=1_000, help="entries per transaction")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each measure (best kept)")
    args = parser.parse_args()

    drafts = make_drafts(args.entries)
    print(f"entries             {args.entries} (batches of {args.batch})")
    print(f"rounds              {args.rounds} (best of, for each figure)")
    with tempfile.TemporaryDirectory(prefix="webmg-bench-") as folder:
        figures = measure(
            lambda round_: f"sqlite:///{Path(folder) / f'ledger-{round_}.db'}",
            drafts,
            args.batch,
            args.rounds,
        )
    show("SQLite (WAL)", args.entries, figures)
    with ExitStack() as stack:
        try:
            server = stack.enter_context(scratch_server(listen_tcp=True))
        except EnvironmentProblem as problem:
            print(f"PostgreSQL: not measured ({problem.message})")
            return
        base = server.url.rsplit("/", 1)[0]
        for round_ in range(args.rounds):
            create_database(server.url, f"ledger_{round_}")
        figures = measure(lambda round_: f"{base}/ledger_{round_}", drafts, args.batch, args.rounds)
    show("PostgreSQL (a scratch server on loopback)", args.entries, figures)


def create_database(url: str, name: str) -> None:
    """Given a server's URL and a plain name, create that empty database on it."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
