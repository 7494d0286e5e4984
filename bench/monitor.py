"""Benchmark ``monitor``: a thousand health checks probed every minute, CPU share measured.

Run: ``nice -n 19 .venv/bin/python bench/monitor.py [--clients 100] [--checks 10]
[--warmup 60] [--measure 120]``. Generates that many clients (copies of the demo
institutional-sla client: one-minute interval), each with that many health checks on
a loopback HTTP server running in a process of its own (its CPU is not the
monitor's), starts a real ``webmg-ops monitor`` on a temporary SQLite ledger, lets it
settle for the warm-up, then reads its CPU time (user + system, every thread, from
/proc) over the measured span and prints it as a share of one core, with the samples
stored per minute. SIGTERM ends it. The issue's target is under 10 % of one core for
1,000 checks at a one-minute interval. Asserts nothing.
"""

from __future__ import annotations

import argparse
import http.server
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = "riverton"
TICKS = os.sysconf("SC_CLK_TCK")


class _Health(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(port: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Serve the health pages on a free loopback port; put the port on the queue."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    server.daemon_threads = True
    port.put(server.server_address[1])
    server.serve_forever()


def make_inventories(folder: Path, clients: int, checks: int, port: int) -> None:
    """Write ``clients`` copies of the template client, each with ``checks`` checks."""
    source = REPO / "inventories" / TEMPLATE
    for index in range(clients):
        name = f"bench-{index:03d}"
        target = folder / name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("vault.yml"))
        contract = yaml.safe_load((target / "client.yml").read_text())
        contract["name"] = name
        contract["health_checks"] = [
            {"name": f"check {number}", "url": f"http://127.0.0.1:{port}/{name}/{number}"}
            for number in range(checks)
        ]
        (target / "client.yml").write_text(yaml.safe_dump(contract, sort_keys=False))


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def count_samples(database: Path) -> int:
    """Return how many samples the ledger's database holds (0 before it has the table)."""
    try:
        with sqlite3.connect(database, timeout=30) as connection:
            return int(connection.execute("SELECT count(*) FROM samples").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def main() -> None:
    """Parse the arguments, run the monitor, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--checks", type=int, default=10)
    parser.add_argument("--warmup", type=float, default=60.0)
    parser.add_argument("--measure", type=float, default=120.0)
    options = parser.parse_args()
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports,), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    with tempfile.TemporaryDirectory(prefix="webmg-bench-monitor-") as work:
        root = Path(work)
        inventories = root / "inventories"
        make_inventories(inventories, options.clients, options.checks, port)
        database = root / "var" / "ledger.db"
        environment = {**os.environ, "WEBMG_VAR": str(root / "var")}
        command = [
            sys.executable,
            "-m",
            "webmg_ops.cli.main",
            "--inventories",
            str(inventories),
            "--ledger",
            f"sqlite:///{database}",
            "monitor",
            "--metrics",
            "off",
        ]
        monitor = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(options.warmup)  # a benchmark, not a test: it measures wall time
            cpu_before, wall_before = cpu_seconds(monitor.pid), time.monotonic()
            samples_before = count_samples(database)
            time.sleep(options.measure)
            cpu_after, wall_after = cpu_seconds(monitor.pid), time.monotonic()
            samples_after = count_samples(database)
        finally:
            monitor.send_signal(signal.SIGTERM)
            _out, errors = monitor.communicate(timeout=120)
            server.terminate()
    share = (cpu_after - cpu_before) / (wall_after - wall_before)
    per_minute = (samples_after - samples_before) / ((wall_after - wall_before) / 60)
    checks = options.clients * options.checks
    print(f"monitor of {checks} checks at a one-minute interval ({options.clients} clients)")
    print(f"  CPU: {share * 100:.1f} % of one core over {wall_after - wall_before:.0f} s")
    print(f"  samples stored: {per_minute:.0f} per minute (expected {checks})")
    print(f"  exit status after SIGTERM: {monitor.returncode}")
    if monitor.returncode:
        print(errors[-2000:])


if __name__ == "__main__":
    main()
