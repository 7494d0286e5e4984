"""Benchmark the event handler's share of a large play: many small tasks on 10 hosts.

Run: ``.venv/bin/python bench/events.py [--tasks 100] [--hosts 10] [--rounds 5]``
(``--tasks 500`` for the issue's 500 x 10: about five times longer, the same share,
which is per event).
A generated play of ``debug`` tasks runs on hosts that Ansible reaches through its
``local`` connection (no SSH, no lab: what is measured is Ansible's own work and
ours on each event). In alternating rounds, the same play runs:

- through the engine's runner (ansible-runner with the event handler that folds
  each event into per-host results and masks the kept output), the time spent in
  the handler measured around each call;
- as plain ``ansible-playbook`` with the same configuration, output discarded.

Prints the handler's share of the runner's wall time (target: under 5 %) and the
runner / plain ratio, medians of the rounds (min, max). Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from webmg_ops.ansible import runner
from webmg_ops.ansible.runner import ANSIBLE_CFG, Job, run_playbook
from webmg_ops.secrets import SecretSet

TARGET_SHARE = 0.05


def write_play(folder: Path, tasks: int, hosts: int) -> tuple[Path, Path, list[str]]:
    """Write the play and its inventory into FOLDER; return their paths and the hosts."""
    names = [f"bench-{index:02d}" for index in range(1, hosts + 1)]
    inventory = folder / "hosts.yml"
    lines = ["all:", "  hosts:"]
    for name in names:
        lines += [
            f"    {name}:",
            "      ansible_connection: local",
            f"      ansible_python_interpreter: {sys.executable}",
        ]
    inventory.write_text("\n".join(lines) + "\n")
    playbook = folder / "events.yml"
    steps = [
        "- name: Many small tasks",
        "  hosts: all",
        "  gather_facts: false",
        "  tasks:",
    ]
    for index in range(1, tasks + 1):
        steps += [
            f"    - name: Step {index}",
            "      ansible.builtin.debug:",
            f'        msg: "step {index} of {{{{ inventory_hostname }}}}"',
        ]
    playbook.write_text("\n".join(steps) + "\n")
    return playbook, inventory, names


class HandlerClock:
    """Wraps the event collector's ``handle``: counts the events and the time in it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.events = 0
        self._lock = threading.Lock()
        self._original: Callable[..., bool] = runner.EventCollector.handle

    def __enter__(self) -> HandlerClock:
        clock = self
        original = self._original

        def timed(collector: Any, event: Mapping[str, Any]) -> bool:
            started = time.perf_counter()
            try:
                return original(collector, event)
            finally:
                elapsed = time.perf_counter() - started
                with clock._lock:
                    clock.seconds += elapsed
                    clock.events += 1

        runner.EventCollector.handle = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        runner.EventCollector.handle = self._original  # type: ignore[method-assign]


#: As a run has them (the vault's restic password, an S3 key): every kept line is masked.
SECRETS = SecretSet.of(["bench-restic-password-" + "x" * 21, "bench-s3-secret-key-0123456789"])


def through_runner(
    folder: Path, playbook: Path, inventory: Path, hosts: list[str], round_: int
) -> tuple[float, float, int]:
    """Run the play through the engine's runner; return (wall s, handler s, events)."""
    job = Job(
        run_id=f"bench-events-{round_}",
        playbook=playbook,
        inventory=inventory,
        private_dir=folder / f"runner-{round_}",
        ansible_cfg=ANSIBLE_CFG,
    )
    with HandlerClock() as clock:
        started = time.perf_counter()
        result = run_playbook(job, hosts, SECRETS)
        wall = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"the play failed through the runner: {result.status}")
    return wall, clock.seconds, clock.events


def plain(playbook: Path, inventory: Path) -> float:
    """Run the play with plain ansible-playbook; return its wall time."""
    environment = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_CFG)}
    tools = Path(sys.executable).parent
    started = time.perf_counter()
    subprocess.run(
        [str(tools / "ansible-playbook"), "-i", str(inventory), str(playbook)],
        env=environment,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def _summary(values: list[float], unit: str = "s") -> str:
    median = statistics.median(values)
    if unit == "%":
        return f"{median * 100:5.2f} % ({min(values) * 100:.2f}, {max(values) * 100:.2f})"
    return f"{median:6.2f} s ({min(values):.2f}, {max(values):.2f})"


def main() -> None:
    """Run both ways in alternating rounds and print the handler's share and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="webmg-bench-events-") as name:
        folder = Path(name)
        playbook, inventory, hosts = write_play(folder, options.tasks, options.hosts)
        walls, shares, ratios, plains = [], [], [], []
        events = 0
        for round_ in range(options.rounds):
            wall, handler, events = through_runner(folder, playbook, inventory, hosts, round_)
            bare = plain(playbook, inventory)
            walls.append(wall)
            plains.append(bare)
            shares.append(handler / wall)
            ratios.append(wall / bare)
    share = statistics.median(shares)
    print(
        f"event handler, {options.tasks} tasks x {options.hosts} hosts ({events} events), "
        f"median of {options.rounds} alternating rounds (min, max):"
    )
    print(f"  through the runner     {_summary(walls)}")
    print(f"  plain ansible-playbook {_summary(plains)}")
    print(f"  runner / plain         {statistics.median(ratios):6.2f}")
    print(
        f"  handler's share        {_summary(shares, '%')}; target under "
        f"{TARGET_SHARE:.0%}: {'met' if share < TARGET_SHARE else 'not met'}"
    )


if __name__ == "__main__":
    main()
