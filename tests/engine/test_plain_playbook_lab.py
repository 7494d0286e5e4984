"""Playbooks run unchanged under plain ``ansible-playbook`` with the same trust settings.

Without the orchestrator, ``playbooks/group_vars/all/trust.yml`` carries the
engine's trust settings: the client's enrolled ``known_hosts`` alone, checked
strictly, and the client's key ``ssh/id_ed25519`` offered alone. The tests run
the README's command (the project's ``ansible.cfg``, a client's inventory, a
playbook of ``playbooks/``) with the plain ``ansible-playbook`` binary, in an
environment holding nothing of the engine's (no ``ANSIBLE_*`` or ``WEBMG_*``
variable but the fact cache's place and the SSH control folder).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.lab import Lab
from support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
CLIENT = "atelier-nord"
WEB1, DB1 = "198.18.0.41", "198.18.0.42"
HOSTS = ("atelier-db1", "atelier-web1")
PLAY_TIMEOUT_SECONDS = 600
#: A host's line in Ansible's PLAY RECAP.
RECAP = re.compile(
    r"^(?P<host>[\w.-]+)\s*:\s*ok=(?P<ok>\d+)\s+changed=\d+\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)
#: ansible-playbook's exit status when a host could not be reached.
UNREACHABLE_STATUS = 4


def _plain_environment(facts: Path, control_dir: Path) -> dict[str, str]:
    """Return this process's environment without any Ansible or webmg-ops setting (nor an
    SSH agent): only the project's ansible.cfg, as the README runs it. The fact cache and
    the SSH control sockets go to the test's own folders, so nothing is left behind."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ANSIBLE_", "WEBMG_")) and name != "SSH_AUTH_SOCK"
    }
    environment.update(
        ANSIBLE_CONFIG="ansible.cfg",
        ANSIBLE_CACHE_PLUGIN_CONNECTION=str(facts),
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir),
        ANSIBLE_NOCOLOR="1",
    )
    return environment


@pytest.fixture
def control_dir() -> Iterator[Path]:
    """A short, private folder for the plays' SSH control sockets (a socket path must stay
    under 108 bytes); the masters left in it are ended afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="webmg-plain-cp-"))
    try:
        yield folder
    finally:
        for socket in [path for path in folder.rglob("*") if path.is_socket()]:
            subprocess.run(
                ["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "lab-host"],
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)


def _plain_play(
    inventory: Path, vault_password_file: str, environment: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``ansible-playbook -i INVENTORY playbooks/check.yml`` from the project's folder."""
    return subprocess.run(
        [
            str(ANSIBLE_PLAYBOOK),
            "-i",
            str(inventory),
            # The lab clients' group_vars/all/vault.yml is encrypted, as a real client's is.
            "--vault-password-file",
            vault_password_file,
            "playbooks/check.yml",
        ],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=PLAY_TIMEOUT_SECONDS,
        check=False,
    )


def _recap(output: str) -> dict[str, dict[str, int]]:
    return {
        match["host"]: {key: int(match[key]) for key in ("ok", "unreachable", "failed")}
        for match in RECAP.finditer(output.split("PLAY RECAP", 1)[-1])
    }


def _unreachable_message(output: str, host: str) -> str:
    """Return what Ansible said of HOST being unreachable (its result, up to the next one),
    on one line: the YAML result format may fold a long message."""
    start = output.index(f"fatal: [{host}]: UNREACHABLE!")
    end = min(
        (i for i in (output.find("fatal: [", start + 1), output.find("PLAY RECAP")) if i > 0),
        default=len(output),
    )
    return " ".join(output[start:end].split())


def _known_hosts_without(text: str, address: str) -> str:
    return "".join(
        line for line in text.splitlines(keepends=True) if line.split(" ", 1)[0] != address
    )


@pytest.mark.lab
def test_check_runs_under_plain_ansible_playbook_with_the_clients_trust(
    lab: Lab, tmp_path: Path, control_dir: Path
) -> None:
    vault_password_file = lab.env["WEBMG_VAULT_PASSWORD_FILE"]
    folder = lab.inventories / CLIENT
    # Each run has its own control folder: a master left by the first run would carry the
    # second one past its host key and key checks.
    (control_dir / "1").mkdir()
    (control_dir / "2").mkdir()
    environment = _plain_environment(tmp_path / "facts", control_dir / "1")

    done = _plain_play(folder / "hosts.yml", vault_password_file, environment)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    recap = _recap(done.stdout)
    assert set(recap) == set(HOSTS), done.stdout[-3000:]
    for host in HOSTS:
        assert recap[host]["ok"] > 1 and recap[host]["failed"] == 0, recap
        assert recap[host]["unreachable"] == 0, recap

    # The same run with a copy of the client's folder, in which web1 is not enrolled and
    # db1's key file is not the one its hosts authorize, while an SSH agent holds the one
    # they do: web1's unknown key is refused (not added, as accept-new would), and only
    # the folder's key is offered to db1 (never the agent's).
    copy = tmp_path / "inventories" / CLIENT
    shutil.copytree(folder, copy)
    # Nor may facts cached by the first run spare the second its connection.
    environment.update(
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir / "2"),
        ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts-2"),
    )
    known_hosts = copy / "known_hosts"
    known_hosts.write_text(_known_hosts_without(known_hosts.read_text(), WEB1))
    enrolled = known_hosts.read_bytes()
    assert DB1 in enrolled.decode()
    key = copy / "ssh" / "id_ed25519"
    key.unlink()
    key.with_suffix(".pub").unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "not authorized", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    agent_socket = Path(tempfile.mkdtemp(prefix="webmg-agent-")) / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(agent_socket)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(agent_socket.is_socket, 30), "the SSH agent did not start"
        added = subprocess.run(
            ["ssh-add", str(lab.lab_dir / "identity" / "id_ed25519")],
            env={**environment, "SSH_AUTH_SOCK": str(agent_socket)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert added.returncode == 0, added.stderr
        refused = _plain_play(
            copy / "hosts.yml",
            vault_password_file,
            {**environment, "SSH_AUTH_SOCK": str(agent_socket)},
        )
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        shutil.rmtree(agent_socket.parent, ignore_errors=True)
    assert refused.returncode == UNREACHABLE_STATUS, refused.stdout[-3000:]
    recap = _recap(refused.stdout)
    for host in HOSTS:
        # Refused at its first task, fact gathering: nothing ran on either host.
        assert recap[host] == {"ok": 0, "unreachable": 1, "failed": 0}, refused.stdout[-3000:]
    assert "Host key verification failed" in _unreachable_message(refused.stdout, "atelier-web1")
    assert "Permission denied (publickey" in _unreachable_message(refused.stdout, "atelier-db1")
    assert known_hosts.read_bytes() == enrolled, "a key was added to the client's known_hosts"


@pytest.mark.tools
def test_every_playbook_finds_its_roles_under_plain_ansible_playbook(tmp_path: Path) -> None:
    # Roles live beside playbooks/, not in it: the project's ansible.cfg must say where.
    playbooks = sorted(f"playbooks/{path.name}" for path in (REPO / "playbooks").glob("*.yml"))
    assert "playbooks/check.yml" in playbooks
    done = subprocess.run(
        [
            str(ANSIBLE_PLAYBOOK),
            "--syntax-check",
            "-i",
            "inventories/atelier-nord/hosts.yml",
            *playbooks,
        ],
        cwd=REPO,
        env=_plain_environment(tmp_path / "facts", tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
