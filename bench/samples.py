"""Benchmark the samples' daily roll-up: a year of one-minute samples of one check.

Run: ``.venv/bin/python bench/samples.py [--days 365] [--backend-url URL]``. Stores
that many days of one-minute samples (525,600 for a year, about 1 % of them failed,
half of those planned) in a temporary SQLite ledger (or the ledger at the URL given),
then times the roll-up of every complete day, which runs in the database, and reading
the days back. A report over a year reads those days, never the raw samples. Asserts
nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from webmg_ops.ledger import open_ledger
from webmg_ops.ledger.samples import Sample, read_days, roll_up, store_samples

START = datetime(2025, 11, 1, tzinfo=UTC)
BATCH = 20_000


def main() -> None:
    """Parse the arguments, fill the samples, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--backend-url", default=None)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="webmg-bench-samples-") as work:
        url = options.backend_url or f"sqlite:///{Path(work) / 'ledger.db'}"
        with open_ledger(url) as ledger:
            minutes = options.days * 1440
            began = time.perf_counter()
            for first in range(0, minutes, BATCH):
                store_samples(
                    ledger,
                    [
                        Sample(
                            client="bench",
                            check="site",
                            at=START + timedelta(minutes=minute),
                            up=minute % 100 != 0,
                            status=200,
                            latency_ms=float(minute % 300),
                            planned=minute % 200 == 0,
                        )
                        for minute in range(first, min(first + BATCH, minutes))
                    ],
                )
            stored = time.perf_counter() - began
            began = time.perf_counter()
            made = roll_up(ledger, START + timedelta(days=options.days, hours=1))
            rolled = time.perf_counter() - began
            began = time.perf_counter()
            days = read_days(ledger, "bench")
            read = time.perf_counter() - began
    print(f"{minutes} one-minute samples of one check ({options.days} days)")
    print(f"  stored in {stored:.1f} s")
    print(f"  roll-up of {made} days in the database: {rolled:.2f} s")
    print(f"  reading the {len(days)} days back: {read * 1000:.0f} ms")


if __name__ == "__main__":
    main()
