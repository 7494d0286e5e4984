"""Mitogen's strategy on rehearsal-lab hosts: real SSH, sudo, the client's host keys.

The option must change how tasks reach a host (one interpreter per host for the
whole play), never whom the controller trusts: the same OpenSSH command line,
the client's ``known_hosts`` checked strictly, the client's key alone.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from support.engine import PLAYBOOKS
from support.lab import Lab

from webmg_ops.ansible.runner import ANSIBLE_CFG, OUTPUT_FILE, Job, run_playbook
from webmg_ops.ansible.strategy import MITOGEN_STRATEGY, STRATEGY_VARIABLE
from webmg_ops.errors import ExitCode
from webmg_ops.runs.records import HostStatus
from webmg_ops.secrets import SecretSet

pytestmark = pytest.mark.lab

CLIENT = "atelier-nord"
WEB1 = "atelier-web1"
DB1_ADDRESS = "198.18.0.42"
PARENTS = re.compile(r"parents parent=(\d+) user=(\w+) parent=(\d+) user=(\w+)")


def _two_parents(lab: Lab, host: str, private_dir: Path) -> tuple[HostStatus, list[str], str]:
    """Run the two-task play on HOST with the engine's runner; return the host's status,
    each task's (parent, user) and the masked output."""
    folder = lab.inventories / CLIENT
    job = Job(
        run_id=f"mitogen-{private_dir.name}",
        playbook=PLAYBOOKS / "two_parents.yml",
        inventory=folder / "hosts.yml",
        private_dir=private_dir,
        limit=host,
        vault_password_file=Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"]),
        ansible_cfg=ANSIBLE_CFG,
    )
    (result,) = run_playbook(job, [host], SecretSet.of([])).hosts
    output = (private_dir / OUTPUT_FILE).read_text()
    found = PARENTS.search(output)
    return result.status, list(found.groups()) if found else [], result.note + output


def test_under_mitogen_a_play_keeps_one_root_interpreter_per_host(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STRATEGY_VARIABLE, raising=False)
    status, linear, output = _two_parents(lab, WEB1, tmp_path / "linear")
    assert status == HostStatus.OK, output
    first, first_user, second, second_user = linear
    assert (first_user, second_user) == ("root", "root")
    assert first != second  # Ansible's own strategy: an interpreter per task

    monkeypatch.setenv(STRATEGY_VARIABLE, MITOGEN_STRATEGY)
    status, mitogen, output = _two_parents(lab, WEB1, tmp_path / "mitogen")
    assert status == HostStatus.OK, output
    first, first_user, second, second_user = mitogen
    assert (first_user, second_user) == ("root", "root")  # through sudo, as before
    assert first == second  # one interpreter for the whole play


def test_under_mitogen_a_changed_host_key_is_still_refused(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STRATEGY_VARIABLE, MITOGEN_STRATEGY)
    regenerate = (
        "sudo rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub && "
        "sudo ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && "
        "sudo systemctl restart ssh"
    )
    with lab.resetting("atelier-db1"):
        assert lab.ssh(DB1_ADDRESS, regenerate).returncode == 0
        # Straight to the runner: the engine's preflight would have refused the host first.
        status, parents, output = _two_parents(lab, "atelier-db1", tmp_path / "changed")
        assert status == HostStatus.UNREACHABLE, output
        assert parents == []  # no task ran
        assert "host key" in output.lower(), output


def test_a_check_run_under_mitogen_is_recorded_as_under_ansibles_own(lab: Lab) -> None:
    # A first run fills the fact cache (its fact gathering counts as one more task):
    # the two runs compared both find the facts cached.
    first = lab.cli("run", CLIENT, "check", "--reason", "strategy: facts", "--json")
    assert first.returncode == ExitCode.OK, first.stderr
    linear = lab.cli("run", CLIENT, "check", "--reason", "strategy: linear", "--json")
    assert linear.returncode == ExitCode.OK, linear.stderr
    mitogen = lab.cli(
        "run",
        CLIENT,
        "check",
        "--reason",
        "strategy: mitogen",
        "--json",
        extra_env={STRATEGY_VARIABLE: MITOGEN_STRATEGY},
    )
    assert mitogen.returncode == ExitCode.OK, mitogen.stderr

    def hosts(done: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, int, int]]:
        report = json.loads(done.stdout)
        return {h["host"]: (h["status"], h["ok"], h["changed"]) for h in report["hosts"]}

    assert hosts(mitogen) == hosts(linear)
