"""Benchmark the queue's throughput: queued checks drained by 1, 2 and 4 workers.

Run as root: ``.venv/bin/python bench/throughput.py [--clients 100] [--workers 1,2,4]``.
It starts the rehearsal lab if needed, then makes ``--clients`` synthetic clients
whose hosts are the lab's: each a copy of one lab client's folder (contract,
inventory, key and known_hosts) under a new name, so that 25 clients share each
lab client's hosts. For each worker count, on a new database of a scratch PostgreSQL
server (ledger and queue), it queues one ``check`` per client, starts that many
``webmg-ops worker --drain`` processes at once and times them until the queue is
drained; every run must have succeeded.

Prints, side by side, runs per minute, the CPU seconds one run costs the controller
(the workers and all they started), the load average, and the most database
connections, ssh processes and resident memory (the workers and all they started)
seen at once (sampled twice a second), and an estimate of a larger
controller's rate from the CPU cost: where the two cores saturate, more workers add
nothing here. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from sqlalchemy import create_engine, text

from webmg_ops.ansible.revision import project_revision
from webmg_ops.backups.scratchdb import scratch_server
from webmg_ops.ledger import open_ledger
from webmg_ops.queue.app import open_queue
from webmg_ops.queue.jobs import QueuedRun, submit
from webmg_ops.queue.worker import register_tasks
from webmg_ops.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LAB_CLIENTS = ("alpenhof", "atelier-nord", "riverton", "terre-solidaire")
DRAIN_TIMEOUT_S = 3600


def make_clients(inventories: Path, count: int) -> list[str]:
    """Write COUNT clients, each a lab client's folder under a new name; return the names."""
    names = []
    for index in range(count):
        source = ROOT / "inventories" / LAB_CLIENTS[index % len(LAB_CLIENTS)]
        name = f"bench-{index:03d}"
        shutil.copytree(source, inventories / name)
        contract = inventories / name / "client.yml"
        data = yaml.safe_load(contract.read_text())
        data["name"] = name
        contract.write_text(yaml.safe_dump(data, sort_keys=False))
        names.append(name)
    return names


def _descendants_of(root: int) -> list[tuple[str, int]]:
    """Return (command name, resident bytes) of every process under ROOT, read from /proc."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid ...": the name may hold spaces and parentheses.
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        parents[int(entry.name)] = int(rest.split()[1])
        names[int(entry.name)] = name
    found = []
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in names:
        ancestor = parents.get(pid)
        while ancestor and ancestor != root:
            ancestor = parents.get(ancestor)
        if ancestor != root:
            continue
        try:
            resident = int((Path("/proc") / str(pid) / "statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        found.append((names[pid], resident))
    return found


class Peaks:
    """Samples, in a thread of its own twice a second, how many connections a database
    has open, and the processes this benchmark started (the workers, their runs, Ansible
    and its ssh connections): the most connections, ssh processes and resident memory
    seen at once. Used as a context manager around the drain."""

    def __init__(self, url: str, database: str) -> None:
        self.engine = create_engine(url)
        self.database = database
        self.connections = 0
        self.ssh = 0
        self.resident = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :database")
        with self.engine.connect() as connection:
            while not self.stop.wait(0.5):
                count = connection.execute(query, {"database": self.database}).scalar_one()
                # The sampler's own connection is not the workers'.
                self.connections = max(self.connections, int(count) - 1)
                connection.rollback()
                # The scratch PostgreSQL server is the database's, not the controller's.
                processes = [p for p in _descendants_of(os.getpid()) if p[0] != "postgres"]
                self.ssh = max(self.ssh, sum(1 for name, _ in processes if name == "ssh"))
                self.resident = max(self.resident, sum(size for _, size in processes))

    def __enter__(self) -> Peaks:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        self.engine.dispose()


def drain(base_url: str, inventories: Path, names: list[str], workers: int) -> dict[str, float]:
    """Queue a check of each client on a new database, drain it with WORKERS workers;
    return the wall seconds, the CPU seconds of the workers and their children, the
    runs that succeeded, and the peaks of :class:`Peaks`."""
    database = f"throughput_{workers}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    url = base_url.rsplit("/", 1)[0] + f"/{database}"
    var = Path(tempfile.mkdtemp(prefix="webmg-throughput-var-"))
    settings = Settings(inventories=inventories, ledger_url=url, var_dir=var)
    revision = project_revision()
    with open_queue(settings, register_tasks) as app:
        for name in names:
            request = QueuedRun(name, "check", "bench", revision, reason="throughput")
            submit(settings, app, request, None)
    env = {
        **os.environ,
        "WEBMG_INVENTORIES": str(inventories),
        "WEBMG_LEDGER_URL": url,
        "WEBMG_VAR": str(var),
        "WEBMG_OPERATOR": "bench",
        "WEBMG_VAULT_PASSWORD_FILE": str(ROOT / "var" / "lab" / "vault-password"),
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with Peaks(url, database) as peaks:
        processes = [
            subprocess.Popen(
                [str(BIN / "webmg-ops"), "worker", "--drain"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(workers)
        ]
        for process in processes:
            _out, err = process.communicate(timeout=DRAIN_TIMEOUT_S)
            if process.returncode != 0:
                raise SystemExit(f"a worker failed ({process.returncode}):\n{err[-3000:]}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open_ledger(url) as ledger:
        outcomes = [entry.payload["outcome"] for entry in ledger.entries(kinds=("run-finished",))]
    succeeded = outcomes.count("succeeded")
    if succeeded != len(names):
        raise SystemExit(f"{succeeded} of {len(names)} runs succeeded: {sorted(set(outcomes))}")
    shutil.rmtree(var, ignore_errors=True)
    return {
        "wall": wall,
        "cpu": cpu,
        "runs": float(succeeded),
        "load": os.getloadavg()[0],
        "connections": float(peaks.connections),
        "ssh": float(peaks.ssh),
        "resident_mb": peaks.resident / 2**20,
    }


def main() -> None:
    """Start the lab, make the clients, drain the queue with each worker count, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100, help="synthetic clients (checks)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    args = parser.parse_args()
    counts = [int(word) for word in args.workers.split(",") if word.strip()]
    if args.clients < 1 or not counts or min(counts) < 1:
        parser.error("--clients and every worker count must be at least 1")
    subprocess.run([str(BIN / "webmg-ops"), "lab", "up"], check=True, cwd=ROOT, capture_output=True)
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="webmg-throughput-") as folder:
        inventories = Path(folder) / "inventories"
        inventories.mkdir()
        names = make_clients(inventories, args.clients)
        with scratch_server(listen_tcp=True) as server:
            for workers in counts:
                results[workers] = drain(server.url, inventories, names, workers)
    cores = os.cpu_count() or 1
    print(
        f"queue throughput: {args.clients} checks of clients on the lab's hosts, "
        f"drained by each worker count ({cores} cores)"
    )
    print(
        f"  {'workers':>7} {'wall s':>8} {'runs/min':>9} {'cpu s/run':>10} {'load':>6} "
        f"{'connections':>11} {'ssh':>4} {'memory MB':>9}"
    )
    for workers, figures in results.items():
        per_minute = figures["runs"] / figures["wall"] * 60
        per_run = figures["cpu"] / figures["runs"]
        print(
            f"  {workers:7d} {figures['wall']:8.1f} {per_minute:9.1f} {per_run:10.2f} "
            f"{figures['load']:6.2f} {figures['connections']:11.0f} {figures['ssh']:4.0f} "
            f"{figures['resident_mb']:9.0f}"
        )
    cheapest = min(figures["cpu"] / figures["runs"] for figures in results.values())
    for larger in (8, 16):
        estimate = larger * 60 / cheapest
        print(
            f"  estimate for {larger} cores, CPU-bound at {cheapest:.2f} s a run: "
            f"{estimate:.0f} runs/min"
        )


if __name__ == "__main__":
    main()
