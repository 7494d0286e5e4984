"""Canary secrets through a real ansible-runner run on this machine: nothing kept holds them.

The canary playbook echoes secrets, loops over them, prints every encoded
form of them and fails with them in its arguments; ansible's YAML result
format folds the long vault canary (it holds spaces) across lines. Every
file left under the run's folder and ``var/``, at every step of the play
and after it, is searched for each form, by decoding what is there rather
than by asking the masking code. At a step, ansible-runner's event partials
are left out: each lives until the runner has read it (on a busy machine,
long enough to be seen), and after a crash they go with the other raw files.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets as random
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.engine import LOCAL_INVENTORY
from support.leak_search import leaks
from support.waiting import wait_until

from webmg_ops.ansible.runner import (
    CONTROL_DIR_FILE,
    OUTPUT_FILE,
    Job,
    Progress,
    end_run_processes,
    run_playbook,
)
from webmg_ops.ansible.vault import client_vault_values, read_vault_password
from webmg_ops.secrets import MASK, SecretSet, collect_secrets, secrets_from_environment

#: Real Ansible plays on this machine: not in the fast inner loop.
pytestmark = pytest.mark.tools

CANARY_PLAYBOOK = Path(__file__).resolve().parent.parent / "playbooks" / "canary.yml"
#: The file that carries extra vars to ansible-playbook while it runs (0600, removed after).
EXTRA_VARS_FILE = "extravars.json"
FOLD_WIDTH = 80
"""Ansible's YAML result format folds lines longer than this."""


#: ansible-runner's folder of event partials: the play's callback writes each event there
#: and the runner deletes it once read (on a busy machine one may wait a moment); a crash's
#: leftovers are removed with the other raw files (see the crash test below).
EVENT_PARTIALS = "job_events"


def _kept_text(folder: Path, skip: str = "", *, mid_run: bool = False) -> str:
    """Given a folder, return the text of every file beneath it but ``skip``; mid-run,
    without the event partials in flight (a file gone while read was not kept)."""
    texts = []
    for path in folder.rglob("*"):
        if not path.is_file() or path.name == skip:
            continue
        if mid_run and path.parent.name == EVENT_PARTIALS:
            continue
        with contextlib.suppress(FileNotFoundError):
            texts.append(path.read_bytes().decode(errors="replace"))
    return "\n".join(texts)


@pytest.fixture
def canaries() -> dict[str, str]:
    words = " ".join(random.token_hex(4) for _ in range(16))
    return {
        # Longer than the fold width, with spaces: YAML folds it across lines.
        "vault": f"vault canary {words}",
        "extra": f"extra-{random.token_hex(12)}",
        "environ": f"environ-{random.token_hex(12)}",
    }


def _client(tmp_path: Path, vault_token: str) -> tuple[Path, Path]:
    """Write a client folder whose one host is this machine; return it and its vault password."""
    client = tmp_path / "inventories" / "canary-client"
    (client / "group_vars" / "all").mkdir(parents=True)
    (client / "hosts.yml").write_text(LOCAL_INVENTORY)
    password = tmp_path / "vault-password"
    password.write_text(random.token_urlsafe(24) + "\n")
    password.chmod(0o600)
    vault = client / "group_vars" / "all" / "vault.yml"
    vault.write_text(yaml.safe_dump({"canary_vault_token": vault_token}))
    subprocess.run(
        (
            str(Path(sys.executable).parent / "ansible-vault"),
            "encrypt",
            "--vault-password-file",
            str(password),
            str(vault),
        ),
        check=True,
        capture_output=True,
    )
    return client, password


def test_canaries_in_every_form_never_reach_kept_files(
    tmp_path: Path, canaries: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(canaries["vault"]) > FOLD_WIDTH and " " in canaries["vault"]
    client, password = _client(tmp_path, canaries["vault"])
    monkeypatch.setenv("WEBMG_CANARY_TOKEN", canaries["environ"])
    extra_vars = {"db_password": canaries["extra"]}
    # The secrets as the engine gathers them: the vault, the environment, the extra vars.
    secret_set = SecretSet.of(client_vault_values(client, read_vault_password(password))).union(
        secrets_from_environment(os.environ), collect_secrets(extra_vars)
    )
    var = tmp_path / "var"
    private_dir = var / "runs" / "run-canary" / "ansible"
    seen_mid_run: list[tuple[str, list[str]]] = []
    extra_vars_modes: set[int] = set()

    def search_mid_run(progress: Progress) -> None:
        # What a crash at this point would leave behind.
        found = leaks(_kept_text(var, skip=EXTRA_VARS_FILE, mid_run=True), canaries)
        if found:
            seen_mid_run.append((progress.task, found))
        # The extra vars (a secret among them) sit in a file only its owner reads.
        with contextlib.suppress(FileNotFoundError):
            extra_vars_modes.add(stat.S_IMODE((private_dir / EXTRA_VARS_FILE).stat().st_mode))

    result = run_playbook(
        Job(
            run_id="run-canary",
            playbook=CANARY_PLAYBOOK,
            inventory=client / "hosts.yml",
            private_dir=private_dir,
            extra_vars=extra_vars,
            vault_password_file=password,
            fact_cache=var / "facts" / "canary-client",
            verbosity=4,
        ),
        ["local1"],
        secret_set,
        on_progress=search_mid_run,
    )

    assert result.status == "failed", "the last task fails with secrets in its arguments"
    (host,) = result.hosts
    assert [task.task for task in host.failed_tasks] == ["Fail with a secret in the arguments"]
    assert MASK in host.failed_tasks[0].message
    assert leaks(host.failed_tasks[0].message, canaries) == []
    assert seen_mid_run == []
    assert extra_vars_modes == {0o600}
    kept = _kept_text(var)
    assert leaks(kept, canaries) == []
    output = (private_dir / OUTPUT_FILE).read_text()
    # The output is still useful: every task and the encoded forms, masked.
    assert "TASK [Print every encoded form of the secrets]" in output
    assert output.count(MASK) >= 3 * 12
    printed = next(
        line for line in output.splitlines() if "Print every" not in line and "hex" in line
    )
    assert json.loads(printed.split(" => ", 1)[1])["rc"] == 0


def test_the_leak_search_finds_every_form(canaries: dict[str, str]) -> None:
    # The search above must be able to see each form: a blind search proves nothing.
    value = canaries["vault"]
    raw = value.encode()
    folded = yaml.dump({"msg": value}, width=FOLD_WIDTH)
    assert value not in folded
    for form in (
        value,
        folded,
        json.dumps(value.split(" ")),
        raw.hex().upper(),
        value.swapcase(),
        base64.b64encode(b"x" + raw).decode(),
        base64.urlsafe_b64encode(b"xy" + raw).decode().rstrip("="),
        "%" + "%".join(f"{byte:02x}" for byte in raw),
        value.replace(" ", "+"),
    ):
        assert leaks(f"before {form} after", {"vault": value}) == ["vault"], form


_CRASHING_RUN = """
import json, os, signal, sys
from pathlib import Path
from webmg_ops.ansible.runner import Job, run_playbook
from webmg_ops.secrets import SecretSet

config = json.loads(Path(sys.argv[1]).read_text())

def crash(progress):
    if progress.task == config["crash_at"]:
        os.kill(os.getpid(), signal.SIGKILL)

run_playbook(
    Job(
        run_id="run-crash",
        playbook=Path(config["playbook"]),
        inventory=Path(config["inventory"]),
        private_dir=Path(config["private_dir"]),
        extra_vars=config["extra_vars"],
        vault_password_file=Path(config["vault_password_file"]),
        verbosity=4,
    ),
    ["local1"],
    SecretSet.of(config["secrets"]),
    on_progress=crash,
)
"""


def _gone(pids: list[int], timeout_s: float = 30.0) -> bool:
    """Return True once none of PIDS is running, False if one still is after TIMEOUT_S."""
    return wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), timeout_s)


def test_a_crashed_run_leaves_no_secret_once_its_processes_are_ended(
    tmp_path: Path, canaries: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, password = _client(tmp_path, canaries["vault"])
    monkeypatch.setenv("WEBMG_CANARY_TOKEN", canaries["environ"])
    var = tmp_path / "var"
    private_dir = var / "runs" / "run-crash" / "ansible"
    config = tmp_path / "crash.json"
    config.write_text(
        json.dumps(
            {
                "crash_at": "Fail with a secret in the arguments",
                "playbook": str(CANARY_PLAYBOOK),
                "inventory": str(client / "hosts.yml"),
                "private_dir": str(private_dir),
                "extra_vars": {"db_password": canaries["extra"]},
                "vault_password_file": str(password),
                "secrets": list(canaries.values()),
            }
        )
    )
    config.chmod(0o600)
    crashed = subprocess.run(
        (sys.executable, "-c", _CRASHING_RUN, str(config)),
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    control_dir = Path((private_dir / CONTROL_DIR_FILE).read_text())
    assert control_dir.is_dir()
    assert leaks(_kept_text(var), canaries), "the crash left the secrets in raw files"

    # What the next command does for a run whose orchestrator died.
    ended = end_run_processes(private_dir)

    assert _gone(ended)
    assert leaks(_kept_text(var), canaries) == []
    assert not control_dir.exists()
