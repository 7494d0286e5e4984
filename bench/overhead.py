"""Benchmark the run engine against plain Ansible, and tuned settings against defaults.

Run as root: ``.venv/bin/python bench/overhead.py [--rounds N] [--client C]``.
It starts the rehearsal lab if needed, then measures side by side, in
alternating rounds:

1. ``webmg-ops run CLIENT check`` against plain ``ansible-playbook`` with the
   project's ansible.cfg on the same playbook and hosts: the orchestrator's
   overhead (preflight, ledger, run log), as a wall-time ratio;
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="Counted rounds per pair.")
    parser.add_argument("--client", default="atelier-nord", help="A lab-only client.")
    options = parser.parse_args()
    subprocess.run([str(BIN / "webmg-ops"), "lab", "up"], check=True, cwd=ROOT, capture_output=True)
    inventory = ROOT / "inventories" / options.client / "hosts.yml"
    work = Path(tempfile.mkdtemp(prefix="webmg-bench-"))
    control = Path(tempfile.mkdtemp(prefix="webmg-cp-"))
    try:
        measure(options.rounds, inventory, work, control)
    finally:
        # The benchmark's ledger, facts and control sockets are its own: nothing is left behind.
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(control, ignore_errors=True)


def measure(rounds: int, inventory: Path, work: Path, control: Path) -> None:
    """Given the rounds, a client's inventory, a work folder and an SSH control folder,
    time the orchestrator against plain Ansible and tuned against default settings,
    and print both ratios."""
    base_env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    # The lab clients' group_vars hold vault-encrypted values: plain Ansible needs
    # the same password file the engine reads.
    vault_password = os.environ.get("WEBMG_VAULT_PASSWORD_FILE")
    if vault_password:
        base_env["ANSIBLE_VAULT_PASSWORD_FILE"] = vault_password
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
        "WEBMG_VAR": str(work / "var"),
        "WEBMG_LEDGER_URL": f"sqlite:///{work / 'ledger.db'}",
    }
    plain = [
        str(BIN / "ansible-playbook"),
        "-i",
        str(inventory),
        str(ROOT / "playbooks" / "check.yml"),
    ]
    engine = [
        str(BIN / "webmg-ops"),
        "run",
        inventory.parent.name,
        "check",
        "--json",
        "--reason",
        "benchmark",
    ]
    a, b = alternate(engine, plain, (engine_env, tuned), rounds)
    report(
        "Orchestrator overhead (check playbook, target <= 1.10 on 3 hosts)",
        "webmg-ops run",
        a,
        "ansible-playbook (tuned cfg)",
        b,
    )

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
    engine_mitogen = {**engine_env, STRATEGY_VARIABLE: MITOGEN_STRATEGY}
    a, b = alternate(engine, plain, (engine_mitogen, tuned), rounds)
    report(
        "Orchestrator with Mitogen against plain Ansible (check playbook, target <= 1.10)",
        "webmg-ops run (Mitogen)",
        a,
        "ansible-playbook (tuned cfg)",
        b,
    )
    for socket in control.iterdir():
        subprocess.run(
            ["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "bench"],
            capture_output=True,
            check=False,
        )


if __name__ == "__main__":
    main()
