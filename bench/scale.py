"""Benchmark planning at fleet scale: ``plan`` of one client, ``due`` and ``schedule`` of all.

Run: ``.venv/bin/python bench/scale.py [--clients 1000] [--hosts-per-client 10]
[--rounds 5] [--keep DIR]``. Generates two fleets of synthetic clients into a
temporary folder, the full one (``--clients``) and one of half its size, each
client a folder like the demo ones (``client.yml``, ``hosts.yml``,
``group_vars/``): contracts spread over every sector and level the schema allows,
with varied windows, time zones, freezes and business hours, and hosts on the
lab's range or under ``.example`` names (nothing is ever contacted; the files
are only read). Each fleet gets a SQLite ledger holding a diagnostic and a few
successful runs per client, so that ``due`` reads a history, and a var folder,
as an installation has.

Before timing, a sample of each fleet (one client of every sector and level, and
a few more) must pass ``webmg-ops validate``, ``due`` must list every client with
exit 0 and ``plan`` must plan: a benchmark of invalid input would measure nothing,
so the script stops there if one does not.

The checks run first, so the timed commands find the contract cache (in the var
folder) filled, as every run after the first one does.

Times, as whole processes in alternating rounds, ``webmg-ops plan CLIENT update``
for one client (the same in both fleets), ``webmg-ops due --json`` and
``webmg-ops schedule --dry-run --json`` (the runs every contract makes due) over all
clients, for both fleets. Prints the medians of wall time (min, max) and of CPU
time (user + system: the machines here are shared, and CPU time says what the
command itself costs), each wall median against its target (under 1 s at 10,000
hosts), and the ratio full fleet / half fleet, whose target (at most 2.2) says the
time grows linearly with the fleet. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from webmg_ops.config.contract import Level, Sector
from webmg_ops.ledger import NewEntry, open_ledger
from webmg_ops.runs.records import (
    RUN_FINISHED,
    HostResult,
    HostStatus,
    Outcome,
    RunFinished,
    to_payload,
)

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "webmg_ops.cli.main"]
#: The targets of the issue: each command under a second at 10,000 hosts, and linear growth.
TARGET_S = 1.0
TARGET_RATIO = 2.2
#: Extra clients validated beside one of every sector and level.
EXTRA_SAMPLE = 5
SEED = 20261130
APPROVED_VERSIONS = "approved-versions.yml"

#: Time zones of the agency's clients: Europe first, then the rest of the world.
TIME_ZONES = (
    "Europe/Vienna",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Lisbon",
    "Europe/Helsinki",
    "America/New_York",
    "America/Chicago",
    "America/Sao_Paulo",
    "Africa/Nairobi",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
)
#: Country of each zone, for business hours' public holidays.
COUNTRIES = {
    "Europe/Vienna": "AT",
    "Europe/Paris": "FR",
    "Europe/Berlin": "DE",
    "Europe/London": "GB",
    "Europe/Lisbon": "PT",
    "Europe/Helsinki": "FI",
    "America/New_York": "US",
    "America/Chicago": "US",
    "America/Sao_Paulo": "BR",
    "Africa/Nairobi": "KE",
    "Asia/Kolkata": "IN",
    "Asia/Tokyo": "JP",
    "Australia/Sydney": "AU",
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Freezes a client adds to its sector's: (name, reason, first day, length in days).
FREEZES = (
    ("year-end closing", "accounts are closed and audited", (12, 15), 20),
    ("spring campaign", "the yearly campaign brings most visitors", (3, 20), 14),
    ("trade fair", "orders taken at the fair go through the site", (10, 5), 6),
    ("product launch", "the launch pages must stay up", (5, 10), 5),
    ("board meeting week", "the board reviews the platform", (9, 1), 7),
)
SITES = {
    Sector.HOTEL: ("booking site", "offer pages", "site database"),
    Sector.NGO: ("donation platform", "donor database", "newsletter archive"),
    Sector.EDUCATION: ("learning platform", "admissions portal", "student database"),
    Sector.GOVERNMENT: ("citizen portal", "permit forms", "portal database"),
    Sector.SME: ("online shop", "shop database", "company site"),
}


@dataclass(frozen=True)
class Fleet:
    """One generated fleet: its inventories, its ledger and the client that plan reads."""

    clients: int
    hosts: int
    inventories: Path
    ledger_url: str
    var_dir: Path
    planned: str


def client_name(index: int) -> str:
    """Given a client's index, return its folder name."""
    return f"client-{index:05d}"


def sector_and_level(index: int) -> tuple[Sector, Level]:
    """Given a client's index, return its sector and level: every pair in 15 clients."""
    sectors, levels = list(Sector), list(Level)
    return sectors[index % len(sectors)], levels[(index // len(sectors)) % len(levels)]


def make_windows(rng: random.Random, level: Level, zone: str) -> list[dict[str, Any]]:
    """Return one to three windows in the client's zone (an institutional level gets one)."""
    count = 1 if level is Level.INSTITUTIONAL_SLA else rng.randint(1, 3)
    windows = []
    for number in range(count):
        days = sorted(rng.sample(range(7), rng.randint(1, 2)))
        start = rng.choice((1, 2, 5, 6, 19, 20, 21, 22, 23))
        windows.append(
            {
                "name": f"window {number + 1}",
                "weekdays": [WEEKDAYS[day] for day in days],
                "start": f"{start:02d}:{rng.choice((0, 30)):02d}",
                "duration": f"{rng.choice((2, 3, 4, 6))}h",
                "timezone": zone,
            }
        )
    return windows


def make_freezes(rng: random.Random) -> list[dict[str, Any]]:
    """Return zero to two freezes of the client's own: yearly ones and one-off ones."""
    freezes = []
    for name, reason, (month, day), days in rng.sample(FREEZES, rng.randint(0, 2)):
        yearly = rng.random() < 0.6
        start = date(2026 + rng.randint(0, 1), month, day)
        freezes.append(
            {
                "name": name,
                "start": start.isoformat(),
                "end": (start + timedelta(days=days)).isoformat(),
                "yearly": yearly,
                "reason": reason,
            }
        )
    return freezes


def make_contract(index: int, hosts: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Given a client's index and its hosts (name, address, group), return its contract."""
    rng = random.Random(SEED + index)
    name = client_name(index)
    sector, level = sector_and_level(index)
    zone = rng.choice(TIME_ZONES)
    domain = f"{name}.example"
    site, *others = SITES[sector]
    institutional = level is Level.INSTITUTIONAL_SLA
    contract: dict[str, Any] = {
        "name": name,
        "display_name": f"Client {index} ({sector.value})",
        "sector": sector.value,
        "level": level.value,
        "business_owner": {
            "name": f"Owner {index}",
            "email": f"owner@{domain}",
            "phone": f"+1 555 01{index % 100:02d} {index % 1000:03d}",
        },
        "contacts": [
            {"role": "site manager", "name": f"Manager {index}", "email": f"web@{domain}"}
        ],
        "escalation": [
            {
                "role": "on-call engineer (agency)",
                "name": "Agency on-call",
                "phone": "+1 555 0100 900",
                "after": "15m" if institutional else "4h",
            },
            {
                "role": "owner",
                "name": f"Owner {index}",
                "phone": f"+1 555 02{index % 100:02d} {index % 1000:03d}",
                "after": "1h" if institutional else "1d",
            },
        ],
        "windows": make_windows(rng, level, zone),
        "freezes": make_freezes(rng),
        "scope": {"included": [site, *others, "backups"], "excluded": ["e-mail"]},
        "health_checks": [
            {"name": f"{site} ({host})", "url": f"http://{address}/health", "max_latency_ms": 800}
            for host, address, group in hosts
            if group == "web"
        ][:2],
        "backup": {
            "paths": ["/etc", "/var/lib/app"],
            "databases": [{"name": "app", "engine": "postgresql", "host_group": "db"}],
            "repository": f"sftp:restic-{name}@198.18.0.5:/srv/restic/{name}",
        },
        "fit": {
            "in_production": True,
            "business_dependency": True,
            "availability_requirements": institutional,
            "sensitive_data": sector in (Sector.GOVERNMENT, Sector.EDUCATION),
            "evolution_required": level is Level.CONTINUOUS_EVOLUTION,
            "stabilized": True,
            "experimental": False,
            "governance_accepted": True,
        },
    }
    if rng.random() < 0.5 or institutional:
        contract["business_hours"] = {
            "start": rng.choice(("08:00", "08:30", "09:00")),
            "end": rng.choice(("17:00", "17:30", "18:00")),
            "timezone": zone,
            "country": COUNTRIES[zone],
        }
    if institutional:
        contract["response_times"] = {"p1": rng.choice(("15m", "20m", "30m"))}
    updates: dict[str, Any] = {}
    if rng.random() < 0.3:
        updates["holds"] = [rng.choice(("postgresql-15", "nginx", "php8.2-fpm"))]
    if institutional:
        # Approved versions only: an update needs the change board's list.
        updates["approved_versions_file"] = APPROVED_VERSIONS
    if updates:
        contract["updates"] = updates
    if not contract["freezes"]:
        del contract["freezes"]
    return contract


def make_hosts(index: int, count: int) -> list[tuple[str, str, str]]:
    """Given a client's index and its host count, return its hosts (name, address, group).

    A third of the clients are rehearsal-lab clients (198.18.0.0/24); the others name
    their hosts under ``.example``, which resolves nowhere.
    """
    name = client_name(index)
    web = max(1, count - max(1, count // 4))
    hosts = []
    for number in range(count):
        group = "web" if number < web else "db"
        host = f"{name}-{group}{number + 1:02d}"
        if index % 3 == 0:
            address = f"198.18.0.{10 + (index * count + number) % 240}"
        else:
            address = f"{group}{number + 1:02d}.{name}.example"
        hosts.append((host, address, group))
    return hosts


def write_client(folder: Path, index: int, count: int) -> None:
    """Write one client's folder: contract, inventory and group variables."""
    hosts = make_hosts(index, count)
    target = folder / client_name(index)
    for sub in ("group_vars/all", "group_vars/web"):
        (target / sub).mkdir(parents=True)
    (target / "client.yml").write_text(
        yaml.safe_dump(make_contract(index, hosts), sort_keys=False), encoding="utf-8"
    )
    groups: dict[str, dict[str, Any]] = {}
    for host, address, group in hosts:
        groups.setdefault(group, {"hosts": {}})["hosts"][host] = {"ansible_host": address}
    (target / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": groups}}, sort_keys=False), encoding="utf-8"
    )
    if sector_and_level(index)[1] is Level.INSTITUTIONAL_SLA:
        (target / APPROVED_VERSIONS).write_text(
            'app: "2.4.1"\nnginx: "1.22.1-9"\n', encoding="utf-8"
        )
    (target / "group_vars/all/main.yml").write_text(
        "ansible_user: webmg\nansible_become: true\n", encoding="utf-8"
    )
    (target / "group_vars/all/management.yml").write_text(
        "hardening_management_networks:\n  - 198.18.0.0/24\n", encoding="utf-8"
    )
    (target / "group_vars/web/main.yml").write_text(
        "hardening_app_units:\n  - app.service\n", encoding="utf-8"
    )


def seed_ledger(url: str, clients: int, now: datetime) -> None:
    """Append a few successful runs of each client to a new ledger, days before ``now``."""
    drafts = []
    for index in range(clients):
        rng = random.Random(SEED - index)
        for action in ("diagnose", "update", "harden", "backup", "drill"):
            if action != "diagnose" and rng.random() < 0.25:
                continue  # never ran: due (every client had its scoping diagnostic)
            finished = RunFinished(
                run_id=f"{client_name(index)}-{action}",
                action=action,
                check=False,
                outcome=Outcome.SUCCEEDED,
                started_seq=0,
                duration_s=60.0,
                hosts=(HostResult(host=f"{client_name(index)}-web01", status=HostStatus.OK),),
            )
            drafts.append(
                NewEntry(
                    RUN_FINISHED,
                    client_name(index),
                    to_payload(finished),
                    actor="bench",
                    at=now - timedelta(days=rng.randint(1, 120)),
                )
            )
    with open_ledger(url) as ledger:
        ledger.append_many(drafts)


def make_fleet(base: Path, clients: int, per_client: int, now: datetime, planned: int) -> Fleet:
    """Write a fleet of ``clients`` clients of ``per_client`` hosts under ``base``; plan
    reads the client of index ``planned``."""
    inventories = base / "inventories"
    inventories.mkdir(parents=True)
    for index in range(clients):
        write_client(inventories, index, per_client)
    url = f"sqlite:///{base / 'ledger.db'}"
    seed_ledger(url, clients, now)
    # An installation's var folder exists (its ledger, run logs and caches live there);
    # a command that only reads never makes one, so the fleet gets its own.
    (base / "var").mkdir(mode=0o700)
    return Fleet(
        clients=clients,
        hosts=clients * per_client,
        inventories=inventories,
        ledger_url=url,
        var_dir=base / "var",
        planned=client_name(planned),
    )


def command(fleet: Fleet, *arguments: str) -> list[str]:
    """Return the command line of a webmg-ops command on the fleet."""
    return [
        *CLI,
        "--inventories",
        str(fleet.inventories),
        "--ledger",
        fleet.ledger_url,
        *arguments,
    ]


def environment(fleet: Fleet) -> dict[str, str]:
    """Return the environment of a command: this checkout's code, the fleet's var folder."""
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
        "WEBMG_VAR": str(fleet.var_dir),
    }


def check_fleet(fleet: Fleet) -> None:
    """Stop the benchmark if a sample of the fleet fails ``validate`` or ``due`` misses one.

    Raise SystemExit naming what failed.
    """
    rng = random.Random(SEED)
    sample = sorted({*range(min(15, fleet.clients)), *rng.sample(range(fleet.clients), 5)})
    names = [client_name(index) for index in sample]
    checked = subprocess.run(
        command(fleet, "validate", *names),
        env=environment(fleet),
        capture_output=True,
        text=True,
        check=False,
    )
    if checked.returncode != 0:
        raise SystemExit(f"generated clients are invalid:\n{checked.stdout}{checked.stderr}")
    due = subprocess.run(
        command(fleet, "due", "--json"),
        env=environment(fleet),
        capture_output=True,
        text=True,
        check=False,
    )
    listed = len(json.loads(due.stdout)) if due.stdout.strip() else 0
    if due.returncode != 0 or listed != fleet.clients:
        raise SystemExit(
            f"due listed {listed} of {fleet.clients} clients (exit {due.returncode}):\n"
            f"{due.stderr[-2000:]}"
        )
    planned = subprocess.run(
        command(fleet, "plan", fleet.planned, "update"),
        env=environment(fleet),
        capture_output=True,
        text=True,
        check=False,
    )
    # 3 is a refusal by policy (outside the window, in a freeze): a plan all the same.
    if planned.returncode not in (0, 3):
        raise SystemExit(f"plan failed (exit {planned.returncode}):\n{planned.stderr[-2000:]}")


@dataclass(frozen=True)
class Timing:
    """One run of a command: wall time, and CPU time (user + system) of its process."""

    wall_s: float
    cpu_s: float


def timed(argv: list[str], env: dict[str, str]) -> Timing:
    """Run ARGV to its end (output discarded); return its wall and CPU times.

    Raise CalledProcessError if it fails (exit 3, a plan's refusal, is no failure).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 3):
        raise subprocess.CalledProcessError(result.returncode, argv, stderr=result.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(elapsed, cpu)


@contextmanager
def work_folder(keep: Path | None) -> Iterator[Path]:
    """Yield the folder the fleets are written to: ``keep`` (left in place) or a temporary one."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="webmg-bench-scale-") as folder:
            yield Path(folder)
        return
    if keep.exists():
        shutil.rmtree(keep)
    keep.mkdir(parents=True)
    yield keep


def main() -> None:
    """Generate the fleets, check them, time both commands and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000, help="clients of the full fleet")
    parser.add_argument("--hosts-per-client", type=int, default=10, help="hosts of each client")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (at least 5)")
    parser.add_argument("--keep", type=Path, help="write the fleets here and keep them")
    args = parser.parse_args()
    if args.clients < 2 or args.hosts_per_client < 1 or args.rounds < 5:
        parser.error("--clients must be at least 2, --hosts-per-client 1 and --rounds 5")
    now = datetime.now(UTC)
    # The same client in both fleets (generation depends on the index alone): the ratio
    # then says what the fleet's size does to planning it.
    planned = args.clients // 4

    with work_folder(args.keep) as base:
        started = time.perf_counter()
        half = make_fleet(base / "half", args.clients // 2, args.hosts_per_client, now, planned)
        full = make_fleet(base / "full", args.clients, args.hosts_per_client, now, planned)
        generated_s = time.perf_counter() - started
        for fleet in (half, full):
            check_fleet(fleet)
        cases = {
            (fleet, name): (argv, environment(fleet))
            for fleet in (half, full)
            for name, argv in (
                ("plan", command(fleet, "plan", fleet.planned, "update")),
                ("due", command(fleet, "due", "--json")),
                ("schedule", command(fleet, "schedule", "--dry-run", "--json")),
            )
        }
        times: dict[tuple[Fleet, str], list[Timing]] = {case: [] for case in cases}
        for _ in range(args.rounds):
            for case, (argv, env) in cases.items():
                times[case].append(timed(argv, env))
    print_figures(full, half, args.hosts_per_client, generated_s, times)


def print_figures(
    full: Fleet,
    half: Fleet,
    per_client: int,
    generated_s: float,
    times: dict[tuple[Fleet, str], list[Timing]],
) -> None:
    """Print each command's medians against its target, and the full / half ratios."""
    rounds = len(next(iter(times.values())))
    print(
        f"fleet planning: {full.clients} clients x {per_client} hosts and half of it, "
        f"generated in {generated_s:.1f} s; a sample of each fleet validated"
    )
    print(
        f"whole processes, median of {rounds} alternating rounds: wall (min, max) and CPU "
        "(user + system); targets on the wall median"
    )
    print(f"  {'hosts':>6}  {'command':26} {'wall s':>7} {'(min, max)':18} {'cpu s':>6}  target")
    for (fleet, name), values in times.items():
        wall = [value.wall_s for value in values]
        median = statistics.median(wall)
        cpu = statistics.median(value.cpu_s for value in values)
        what = {
            "plan": f"plan {fleet.planned} update",
            "due": "due --json (all clients)",
            "schedule": "schedule --dry-run (all)",
        }[name]
        spread = f"({min(wall):.3f}, {max(wall):.3f})"
        target = ""
        if fleet is full:
            target = f"< {TARGET_S:.1f} s: {'met' if median < TARGET_S else 'not met'}"
        line = f"  {fleet.hosts:6d}  {what:26} {median:7.3f} {spread:18} {cpu:6.3f}  {target}"
        print(line.rstrip())
    for name in ("plan", "due", "schedule"):
        ratio = statistics.median(value.wall_s for value in times[(full, name)]) / (
            statistics.median(value.wall_s for value in times[(half, name)])
        )
        what = f"ratio {full.hosts}/{half.hosts}, {name}"
        verdict = "met" if ratio <= TARGET_RATIO else "not met"
        print(f"  {'':6}  {what:26} {ratio:7.2f} {'':18} {'':6}  <= {TARGET_RATIO}: {verdict}")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"  load average at the end: {load} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
