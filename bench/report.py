"""Benchmark the client's report over a year of one-minute samples of one check.

Run: ``.venv/bin/python bench/report.py [--days 365]``. Stores that many days of
one-minute samples of the hotel client's check (about 1 % of them failed, half of
those planned) in a temporary SQLite ledger, rolls them up by day (in SQL), then
times ``report`` for the last quarter of them and for the last month: figures,
charts, HTML, PDF and the report-written entry. Target: under 5 s. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from webmg_ops.ledger import open_ledger
from webmg_ops.ledger.samples import Sample, roll_up, store_samples
from webmg_ops.service.report import write_client_report
from webmg_ops.settings import Settings

REPO = Path(__file__).resolve().parent.parent
CLIENT = "alpenhof"
CHECK = "booking site"
START = datetime(2025, 10, 1, tzinfo=UTC)
BATCH = 20_000


def main() -> None:
    """Parse the arguments, fill the samples, time the reports, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    options = parser.parse_args()
    # The lab encrypts the hotel client's vault: the report masks its values, so it reads it.
    given = os.environ.get("WEBMG_VAULT_PASSWORD_FILE")
    vault_password = Path(given) if given else None
    with tempfile.TemporaryDirectory(prefix="webmg-bench-report-") as work:
        settings = Settings(
            inventories=REPO / "inventories",
            ledger_url=f"sqlite:///{Path(work) / 'ledger.db'}",
            var_dir=Path(work) / "var",
        )
        minutes = options.days * 1440
        with open_ledger(settings.ledger_url) as ledger:
            for first in range(0, minutes, BATCH):
                store_samples(
                    ledger,
                    [
                        Sample(
                            client=CLIENT,
                            check=CHECK,
                            at=START + timedelta(minutes=minute),
                            up=minute % 100 != 0,
                            status=200,
                            latency_ms=float(minute % 300),
                            planned=minute % 200 == 0,
                            page_bytes=900_000,
                            page_budget=1_000_000,
                        )
                        for minute in range(first, min(first + BATCH, minutes))
                    ],
                )
            roll_up(ledger, START + timedelta(days=options.days, hours=1))
        now = START + timedelta(days=options.days, hours=2)
        print(f"{minutes} one-minute samples of one check ({options.days} days)")
        for period in ("2026-Q3", "2026-09"):
            began = time.perf_counter()
            document = write_client_report(settings, CLIENT, period, now, vault_password)
            took = time.perf_counter() - began
            probes = document["figures"]["availability"][0]["probes"]
            print(f"  report {period} ({probes} probes, HTML + PDF): {took:.2f} s")


if __name__ == "__main__":
    main()
