"""Estimate what 1,000 clients write to PostgreSQL in a year, from measured sizes.

Run: ``.venv/bin/python bench/growth.py [--ledger URL] [--clients 1000]
[--hosts-per-client 10]``, after ``make demo`` (whose ledger, ``var/ledger.db``,
holds one real run of each kind on the lab's hosts).

Measured, not assumed:

1. From the demo's ledger: the bytes of each ``run-started`` entry and of each
   ``run-finished`` entry per host, by action and mode (a hardening's evidence
   holds every control's result per host; an update's, a few lines).
2. On a scratch PostgreSQL server (Debian's binaries, the product's scratch server):
   the bytes on disk (table, indexes and TOAST, after ``VACUUM``) of 2,000 such
   entries of each kind appended through the ledger, and of 20,000 probe samples.
3. From the synthetic fleet of ``bench/scale.py`` (every sector and level, the same
   contracts): each client's effective policy, its cadences (update, hardening,
   drift check, backup, drill, report) and its health checks' probe interval and
   retention.

Prints per action the runs a year and the bytes a year, the samples kept at any
time, and the total. An estimate: a client's runs follow its cadences exactly (no
emergency, no retry, no incident), each on all its hosts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scale import make_fleet
from sqlalchemy import create_engine, text

from webmg_ops.backups.scratchdb import scratch_server
from webmg_ops.config.clients import list_client_names, load_client_contract
from webmg_ops.ledger import NewEntry, open_ledger
from webmg_ops.ledger.samples import Sample, store_samples
from webmg_ops.runs.records import RUN_FINISHED, RUN_STARTED

YEAR = timedelta(days=365)
#: Each recurring action as the run it makes: (action, check mode).
RUNS = {
    "update": ("update", False),
    "harden": ("harden", False),
    "drift": ("harden", True),
    "backup": ("backup", False),
    "drill": ("drill", False),
}
ROWS_MEASURED = 2000
SAMPLES_MEASURED = 20000


@dataclass(frozen=True)
class Sizes:
    """What one run of an action writes: its run-started entry and its run-finished
    entry per host, as JSON text, and a sample of each (for the on-disk measure)."""

    started: float
    finished_per_host: float
    started_payload: dict[str, Any]
    finished_payload: dict[str, Any]
    hosts: int


def measured_sizes(url: str) -> dict[tuple[str, bool], Sizes]:
    """Given a ledger with real runs, return the sizes of each (action, mode) found."""
    started: dict[str, dict[str, Any]] = {}
    found: dict[tuple[str, bool], list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
    with open_ledger(url, create=False) as ledger:
        for entry in ledger.entries(kinds=(RUN_STARTED, RUN_FINISHED)):
            run_id = str(entry.payload.get("run_id"))
            if entry.kind == RUN_STARTED:
                started[run_id] = dict(entry.payload)
            elif run_id in started and entry.payload.get("hosts"):
                key = (str(entry.payload["action"]), bool(entry.payload.get("check")))
                found[key].append((started[run_id], dict(entry.payload)))
    sizes: dict[tuple[str, bool], Sizes] = {}
    for key, pairs in found.items():
        sizes[key] = Sizes(
            started=statistics.mean(len(json.dumps(s)) for s, _ in pairs),
            finished_per_host=statistics.mean(
                len(json.dumps(f)) / len(f["hosts"]) for _, f in pairs
            ),
            started_payload=pairs[-1][0],
            finished_payload=pairs[-1][1],
            hosts=len(pairs[-1][1]["hosts"]),
        )
    return sizes


def on_disk(sizes: dict[tuple[str, bool], Sizes]) -> tuple[dict[tuple[str, bool], float], float]:
    """Given the sizes, return the bytes on PostgreSQL's disk of one run of each (action,
    mode) as measured (run-started and run-finished entries), and of one probe sample."""
    per_run: dict[tuple[str, bool], float] = {}
    with scratch_server(listen_tcp=True) as server:
        admin = create_engine(server.url, isolation_level="AUTOCOMMIT")
        for index, (key, size) in enumerate(sorted(sizes.items())):
            database = f"growth_{index}"
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{database}"'))
            url = server.url.rsplit("/", 1)[0] + f"/{database}"
            drafts = []
            for _ in range(ROWS_MEASURED // 2):
                drafts.append(NewEntry(RUN_STARTED, "client-00001", size.started_payload))
                drafts.append(NewEntry(RUN_FINISHED, "client-00001", size.finished_payload))
            with open_ledger(url) as ledger:
                ledger.append_many(drafts)
            per_run[key] = _bytes(url, "ledger_entries") / (ROWS_MEASURED // 2)
        with admin.connect() as connection:
            connection.execute(text('CREATE DATABASE "growth_samples"'))
        url = server.url.rsplit("/", 1)[0] + "/growth_samples"
        start = datetime(2026, 1, 1, tzinfo=UTC)
        samples = [
            Sample(
                client="client-00001",
                check="home",
                at=start + timedelta(minutes=minute),
                up=True,
                status=200,
                latency_ms=87.5,
                cert_days=61.0,
            )
            for minute in range(SAMPLES_MEASURED)
        ]
        with open_ledger(url) as ledger:
            store_samples(ledger, samples)
        per_sample = _bytes(url, "samples") / SAMPLES_MEASURED
        admin.dispose()
    return per_run, per_sample


def _bytes(url: str, table: str) -> float:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"VACUUM ANALYZE {table}"))
        size = connection.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar_one()
    engine.dispose()
    return float(size)


def main() -> None:
    """Measure, generate the fleet, estimate and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", default="sqlite:///var/ledger.db", help="a ledger with runs")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--hosts-per-client", type=int, default=10)
    args = parser.parse_args()
    sizes = measured_sizes(args.ledger)
    missing = sorted(
        {run for run in RUNS.values() if run[0] != "harden" or not run[1]} - set(sizes)
    )
    if missing:
        sys.exit(f"{args.ledger} holds no run of {missing}: run `make demo` first")
    # A drift check reports what a hardening does, every control of every host.
    drift_measured = ("harden", True) in sizes
    sizes.setdefault(("harden", True), sizes[("harden", False)])
    per_run, per_sample = on_disk(sizes)
    runs_a_year: dict[str, float] = defaultdict(float)
    samples_kept = 0.0
    with tempfile.TemporaryDirectory(prefix="webmg-growth-") as folder:
        now = datetime.now(UTC)
        fleet = make_fleet(Path(folder), args.clients, args.hosts_per_client, now, 0)
        for name in list_client_names(fleet.inventories):
            client = load_client_contract(fleet.inventories, name)
            for recurring in RUNS:
                cadence = client.policy.cadence(recurring)
                if cadence:
                    runs_a_year[recurring] += YEAR / cadence
            interval = client.policy.get("monitoring.interval")
            kept = client.policy.get("monitoring.samples_kept")
            if interval and kept:
                samples_kept += len(client.contract.health_checks) * (kept / interval)
    hosts = args.hosts_per_client
    print(
        f"ledger growth for {args.clients} clients x {hosts} hosts (the sizes of {args.ledger}, "
        "stored on PostgreSQL)"
    )
    print(f"  {'run':14} {'JSON/run':>9} {'disk/run':>9} {'runs/year':>10} {'disk/year':>10}")
    total = 0.0
    for recurring, key in RUNS.items():
        size = sizes[key]
        json_bytes = size.started + size.finished_per_host * hosts
        # The measured run had size.hosts hosts: its disk bytes scale with the JSON.
        measured_json = size.started + size.finished_per_host * size.hosts
        disk = per_run[key] * json_bytes / measured_json
        year = disk * runs_a_year[recurring]
        total += year
        print(
            f"  {recurring:14} {json_bytes / 1024:8.1f}K {disk / 1024:8.1f}K "
            f"{runs_a_year[recurring]:10.0f} {year / 2**20:9.0f}M"
        )
    runs = sum(runs_a_year.values())
    print(f"  {'runs, total':14} {'':9} {'':9} {runs:10.0f} {total / 2**20:9.0f}M")
    if not drift_measured:
        print("  (no drift check in the ledger: a drift check counted as a hardening's size)")
    print(
        f"  probe samples kept at any time: {samples_kept:,.0f} rows x {per_sample:.0f} B = "
        f"{samples_kept * per_sample / 2**20:,.0f}M (pruned as their retention ends)"
    )


if __name__ == "__main__":
    main()
