"""No lost access: after ``harden`` on every level, the maintenance keeps its ways in.

For one web node of a client of each level, the test hardens it with the whole
baseline and then proves, on the hardened host: no control fails (what the host
cannot honour is a residual risk that says why); the maintenance account logs in
with its key and uses sudo; Ansible still pipelines its modules over one
ControlPersist master (MaxSessions, forwarding off and LogLevel VERBOSE included);
the host still backs up to the agency's target; and a second ``harden`` changes
nothing. The host is reset afterwards, whatever happens.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.lab import Lab, edited_contract
from support.updates import always_open

from webmg_ops.ansible.connection import ansible_trust_environment
from webmg_ops.errors import ExitCode

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("prepared_target")]

REPO = Path(__file__).resolve().parents[2]

#: One web node per level: (client, host).
BY_LEVEL = {
    "stability-security": ("atelier-nord", "atelier-web1"),
    "continuous-evolution": ("terre-solidaire", "terre-web1"),
    "institutional-sla": ("riverton", "riverton-web1"),
}


def _run(lab: Lab, client: str, host: str, action: str, *flags: str) -> dict[str, Any]:
    done = lab.cli(
        "run", client, action, "--limit", host, "--reason", "no lost access", *flags, "--json",
        timeout=1800,
    )  # fmt: skip
    report: dict[str, Any] = json.loads(done.stdout or done.stderr)
    assert done.returncode == ExitCode.OK, report
    return report


def _ansible_ping(lab: Lab, client: str, host: str, control_dir: Path) -> str:
    """Ping HOST with plain Ansible and the project's configuration; return its -vvv log."""
    done = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "ansible"), host, "-m", "ansible.builtin.ping",
            "-i", str(lab.inventories / client / "hosts.yml"), "--become", "-vvv",
        ],
        # The project's ansible.cfg (pipelining, ControlPersist), then the engine's trust
        # settings over it, as every run has them.
        env={
            **lab.ansible_env(),
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
            **ansible_trust_environment(lab.inventories / client, REPO / "ansible.cfg"),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.parametrize("level", sorted(BY_LEVEL))
def test_after_harden_the_maintenance_ansible_and_backups_still_get_in(
    lab: Lab, level: str, tmp_path: Path
) -> None:
    client, host = BY_LEVEL[level]
    address = str(lab.host(host)["address"])

    def open_for_the_test(data: dict[str, Any]) -> None:
        always_open(data)
        assert data["level"] == level

    try:
        with edited_contract(lab.inventories, client, open_for_the_test):
            lab.diagnosed(client)
            if level == "institutional-sla":
                approved = lab.cli("approve", client, "harden", "--by", "I. Holm", "--note", "T")
                assert approved.returncode == ExitCode.OK, approved.stderr
            _run(lab, client, host, "harden")
            compliance = lab.cli("compliance", client, "--limit", host, "--json")
            assert compliance.returncode == ExitCode.OK, compliance.stderr
            checked = json.loads(compliance.stdout)["hosts"][host]
            assert checked["failed"] == [], checked["failed"]
            for control in checked["residual_risk"]:
                assert checked["controls"][control]["detail"], control
            print(f"\n{level} {host}: {checked['score']}, residual {checked['residual_risk']}")

            # The sandboxed application still answers, and still writes its records.
            health = lab.ssh(address, "curl -fsS http://127.0.0.1/health")
            assert health.returncode == 0 and '"ok"' in health.stdout, health.stderr
            booked = lab.ssh(address, "curl -fsS -X POST -d '{}' http://127.0.0.1/records")
            assert booked.returncode == 0, booked.stdout + booked.stderr
            # The maintenance account: its key and passwordless sudo.
            assert lab.ssh(address, "sudo -n id -u").stdout.strip() == "0"
            # Ansible: a module pipelined (no file copied over) on a ControlPersist master.
            control_dir = tmp_path / "cp"
            control_dir.mkdir()
            log = _ansible_ping(lab, client, host, control_dir)
            assert "PUT " not in log, "modules are piped, not copied, with pipelining"
            sockets = list(control_dir.iterdir())
            assert sockets, "a ControlPersist master outlives the command"
            master = subprocess.run(
                ["ssh", "-O", "check", "-o", f"ControlPath={sockets[0]}", host],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            assert master.returncode == 0, master.stderr
            subprocess.run(
                ["ssh", "-O", "exit", "-o", f"ControlPath={sockets[0]}", host],
                capture_output=True, timeout=30, check=False,
            )  # fmt: skip
            # The engine's own run, and a backup through the hardened host's own SSH.
            _run(lab, client, host, "check")
            _run(lab, client, host, "backup")
            # A second harden changes nothing.
            if level == "institutional-sla":
                approved = lab.cli("approve", client, "harden", "--by", "I. Holm", "--note", "T")
                assert approved.returncode == ExitCode.OK, approved.stderr
            again = _run(lab, client, host, "harden")
            assert [item["changed"] for item in again["hosts"]] == [0], again["hosts"]
    finally:
        lab.reset(host)
