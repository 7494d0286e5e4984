"""Benchmark the run engine against plain Ansible, and tuned settings against defaults.

Run as root: ``.venv/bin/python bench/overhead.py [--rounds N] [--client C]``.
It starts the rehearsal lab if needed, then measures side by side, in
alternating rounds:

1. ``webmg-ops run CLIENT check`` against plain ``ansible-playbook`` with the
   project's ansible.cfg on the same playbook and hosts: the orchestrator's
   overhead (preflight, ledger, run log), as a wall-time ratio; then the same
   on a client the benchmark writes for itself, holding every client host of
   the lab (10: the backup target may not be in a client's inventory), where
   the fixed cost is spread over a longer play;
2. the same small-task playbook with Ansible's defaults against the
   project's tuned ansible.cfg, as a speed-up;
3. the same with the tuned ansible.cfg and Mitogen's strategy (the engine's
   opt-in, ``WEBMG_ANSIBLE_STRATEGY=mitogen_linear``), against the defaults;
4. ``webmg-ops run CLIENT check`` with Mitogen against plain
   ``ansible-playbook`` with the tuned ansible.cfg (without Mitogen).

Prints medians and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from webmg_ops.ansible.connection import ansible_trust_environment
from webmg_ops.ansible.strategy import MITOGEN_STRATEGY, STRATEGY_VARIABLE, mitogen_strategy_folder

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def end_ssh_masters(control: Path) -> None:
    """End the SSH masters a plain run left, so every measured run starts cold, as a window does."""
    for socket in control.iterdir():
        subprocess.run(
            ["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "bench"],
            capture_output=True,
            check=False,
        )


def timed(argv: Sequence[str], env: dict[str, str]) -> float:
    """Run a command cold; return its wall time in seconds. Fail loudly if it fails."""
    control = env.get("ANSIBLE_SSH_CONTROL_PATH_DIR")
    if control:
        end_ssh_masters(Path(control))
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        output = f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{output}")
    return elapsed


def alternate(
    first: Sequence[str],
    second: Sequence[str],
    envs: tuple[dict[str, str], dict[str, str]],
    rounds: int,
) -> tuple[list[float], list[float]]:
    """Run two commands in turn (A B A B ...) after one warm-up each; return their times."""
    timed(first, envs[0])
    timed(second, envs[1])
    times_a, times_b = [], []
    for _ in range(rounds):
        times_a.append(timed(first, envs[0]))
        times_b.append(timed(second, envs[1]))
    return times_a, times_b


def _spread(values: list[float], unit: str = " s") -> str:
    return (
        f"median {statistics.median(values):6.3f}{unit} "
        f"(min {min(values):.3f}, max {max(values):.3f})"
    )


def report(title: str, label_a: str, a: list[float], label_b: str, b: list[float]) -> None:
    """Print both commands' times and their ratio, pair by pair."""
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    print(f"\n{title}")
    print(f"  {label_a:<34} {_spread(a)}")
    print(f"  {label_b:<34} {_spread(b)}")
    print(f"  ratio {label_a} / {label_b}: {_spread(ratios, '')}")


def main() -> None:
    """Start the lab if needed, measure every pair side by side and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="Counted rounds per pair.")
    parser.add_argument(
        "--client", default="terre-solidaire", help="A lab-only client (3 hosts by default)."
    )
    options = parser.parse_args()
    subprocess.run([str(BIN / "webmg-ops"), "lab", "up"], check=True, cwd=ROOT, capture_output=True)
    inventory = ROOT / "inventories" / options.client / "hosts.yml"
    work = Path(tempfile.mkdtemp(prefix="webmg-bench-"))
    control = Path(tempfile.mkdtemp(prefix="webmg-cp-"))
    try:
        measure(options.rounds, inventory, work, control)
        whole = lab_wide_client(ROOT / "inventories", work / "inventories")
        measure_run(
            options.rounds,
            whole / "hosts.yml",
            work,
            control,
            f"Orchestrator overhead (check playbook, all {len(hosts_of(whole))} client hosts "
            "of the lab, target <= 1.03)",
        )
    finally:
        # The benchmark's ledger, facts and control sockets are its own: nothing is left behind.
        end_ssh_masters(control)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(control, ignore_errors=True)


def base_environment() -> dict[str, str]:
    """Return this environment with the virtual environment's tools first on PATH."""
    base_env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    # The lab clients' group_vars hold vault-encrypted values: plain Ansible needs
    # the same password file the engine reads.
    vault_password = os.environ.get("WEBMG_VAULT_PASSWORD_FILE")
    if vault_password:
        base_env["ANSIBLE_VAULT_PASSWORD_FILE"] = vault_password
    return base_env


def environments(
    inventory: Path, work: Path, control: Path
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Given a client's inventory, a work folder and an SSH control folder, return the
    environments of plain Ansible with the project's tuned ansible.cfg, of the engine, and
    the trust settings the engine gives every Ansible process for that client."""
    base_env = base_environment()
    # The client's host keys and key, as the engine hands them to every Ansible process.
    trust = ansible_trust_environment(inventory.parent, ROOT / "ansible.cfg")
    tuned = {
        **base_env,
        **trust,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(work / "facts"),
    }
    engine_env = {
        **base_env,
        "WEBMG_INVENTORIES": str(inventory.parent.parent),
        "WEBMG_VAR": str(work / "var"),
        "WEBMG_LEDGER_URL": f"sqlite:///{work / 'ledger.db'}",
    }
    return tuned, engine_env, trust


def check_commands(inventory: Path) -> tuple[list[str], list[str]]:
    """Given a client's inventory, return the engine's check run and plain Ansible's."""
    plain = [str(BIN / "ansible-playbook"), "-i", str(inventory)]
    plain.append(str(ROOT / "playbooks" / "check.yml"))
    engine = [str(BIN / "webmg-ops"), "run", inventory.parent.name, "check"]
    engine += ["--json", "--reason", "benchmark"]
    return engine, plain


def measure_run(
    rounds: int, inventory: Path, work: Path, control: Path, title: str, strategy: str = ""
) -> None:
    """Given the rounds, a client's inventory, a work folder, an SSH control folder, a title
    and a strategy for the engine (empty: Ansible's own), time ``webmg-ops run CLIENT check``
    against plain ``ansible-playbook`` with the tuned ansible.cfg, and print the ratio."""
    tuned, engine_env, _trust = environments(inventory, work, control)
    if strategy:
        engine_env[STRATEGY_VARIABLE] = strategy
    engine, plain = check_commands(inventory)
    a, b = alternate(engine, plain, (engine_env, tuned), rounds)
    label = "webmg-ops run" + (" (Mitogen)" if strategy else "")
    report(title, label, a, "ansible-playbook (tuned cfg)", b)


def hosts_of(client_dir: Path) -> dict[str, str]:
    """Given a client folder, return its hosts and their addresses, read from ``hosts.yml``."""
    found: dict[str, str] = {}

    def walk(group: dict[str, Any]) -> None:
        for name, variables in (group.get("hosts") or {}).items():
            found[name] = str((variables or {}).get("ansible_host", name))
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk((yaml.safe_load((client_dir / "hosts.yml").read_text()) or {}).get("all") or {})
    return found


def lab_wide_client(inventories: Path, target: Path, name: str = "lab-wide") -> Path:
    """Given the lab's inventories and a folder, write there a client holding every client
    host of the lab and return its folder.

    It is the demo client's folder (its level, always-open window and connection
    settings; the lab gives every client the same key) with every other client's hosts
    and enrolled host keys added. The agency's backup target stays out: no client's
    inventory may name it.
    """
    source = inventories / "atelier-nord"
    folder = target / name
    shutil.copytree(source, folder)
    contract = (source / "client.yml").read_text()
    contract = contract.replace("name: atelier-nord", f"name: {name}", 1)
    contract = contract.replace("display_name: Atelier Nord", "display_name: The whole lab", 1)
    (folder / "client.yml").write_text(contract)
    hosts: dict[str, str] = {}
    known: list[str] = []
    for client in sorted(path for path in inventories.iterdir() if (path / "client.yml").is_file()):
        if client.name == "agency":
            continue
        hosts |= hosts_of(client)
        known.append((client / "known_hosts").read_text())
    document = {
        "all": {"hosts": {host: {"ansible_host": address} for host, address in hosts.items()}}
    }
    (folder / "hosts.yml").write_text(yaml.safe_dump(document))
    (folder / "known_hosts").write_text("".join(known))
    return folder


def measure(rounds: int, inventory: Path, work: Path, control: Path) -> None:
    """Given the rounds, a client's inventory, a work folder and an SSH control folder,
    time the orchestrator against plain Ansible and tuned against default settings,
    and print both ratios."""
    hosts = len(hosts_of(inventory.parent))
    measure_run(
        rounds,
        inventory,
        work,
        control,
        f"Orchestrator overhead (check playbook, {inventory.parent.name}'s {hosts} hosts, "
        "target <= 1.10)",
    )
    tuned, _engine_env, trust = environments(inventory, work, control)
    base_env = base_environment()

    empty_cfg = work / "defaults.cfg"
    empty_cfg.write_text("[defaults]\n")
    defaults = {
        **base_env,
        # Trust alone, none of the tuned ssh_args.
        "ANSIBLE_SSH_COMMON_ARGS": trust["ANSIBLE_SSH_COMMON_ARGS"],
        "ANSIBLE_CONFIG": str(empty_cfg),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
    }
    small = [
        str(BIN / "ansible-playbook"),
        "-i",
        str(inventory),
        str(ROOT / "bench" / "small_tasks.yml"),
    ]
    a, b = alternate(small, small, (defaults, tuned), rounds)
    report(
        "Tuned ansible.cfg against Ansible's defaults (small-task window, target >= 2.5)",
        "defaults",
        a,
        "tuned",
        b,
    )
    # Mitogen's connection process listens in the temporary folder: the benchmark's own.
    mitogen = {
        **tuned,
        "ANSIBLE_STRATEGY": MITOGEN_STRATEGY,
        "ANSIBLE_STRATEGY_PLUGINS": str(mitogen_strategy_folder()),
        "TMPDIR": str(control),
    }
    a, b = alternate(small, small, (defaults, mitogen), rounds)
    report(
        "Tuned ansible.cfg with Mitogen against Ansible's defaults (small-task window, "
        "target >= 4)",
        "defaults",
        a,
        "tuned + Mitogen",
        b,
    )
    a, b = alternate(small, small, (tuned, mitogen), rounds)
    report(
        "Mitogen against the tuned ansible.cfg alone (small-task window)",
        "tuned",
        a,
        "tuned + Mitogen",
        b,
    )
    measure_run(
        rounds,
        inventory,
        work,
        control,
        "Orchestrator with Mitogen against plain Ansible (check playbook, target <= 1.10)",
        MITOGEN_STRATEGY,
    )


if __name__ == "__main__":
    main()
