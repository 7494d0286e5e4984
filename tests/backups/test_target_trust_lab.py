"""The backup target's host key is pinned from the agency's known_hosts, never trusted on first use.

A client host reaches the backup target with ssh (restic's rclone backend),
strictly checking the target's host key against a root-only known_hosts
that the backup role writes from the agency's enrolled
``inventories/agency/known_hosts``. Whatever the agency's file says is what
the host trusts: with the target's key missing there, the backup is refused
before the host connects; with a wrong key there, the host's ssh refuses the
real target; in neither case is the target's real key learnt or written
anywhere. The target's own sshd log says whether the host logged in.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.backup import TARGET_ADDRESS, target_account, target_clock, target_sshd_log
from support.held_backups import ADDRESSES, CLIENT
from support.lab import Lab, edited_file

from webmg_ops.errors import ExitCode

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("prepared_target")]

HOST = "terre-web2"
#: Where the backup role pins the target's host key on a client host (root only).
PINNED = "/var/lib/webmg-backup/known_hosts"
#: Where ssh would learn a key on first use, had it been let to.
LEARNT = "/root/.ssh/known_hosts"


def run_backup(lab: Lab, reason: str) -> tuple[int, dict[str, Any]]:
    """Back up HOST alone; return the exit status and the JSON report."""
    done = lab.cli("run", CLIENT, "backup", "--limit", HOST, "--reason", reason, "--json")
    return done.returncode, json.loads(done.stdout or done.stderr)


def root_file(lab: Lab, path: str) -> str | None:
    """Return the content of a root-only file on HOST, None if it does not exist."""
    done = lab.ssh(ADDRESSES[HOST], shlex.join(["sudo", "cat", path]))
    return done.stdout if done.returncode == 0 else None


def key_blob(line: str) -> str:
    """Return the base64 key of a known_hosts or public key line."""
    fields = line.split()
    return fields[fields.index("ssh-ed25519") + 1]


def logins_since(lab: Lab, since: str) -> list[str]:
    """Return the logins of HOST into the client's account on the target since SINCE,
    as the target's sshd logged them."""
    account = target_account(CLIENT).split("@")[0]
    wanted = f"Accepted publickey for {account} from {ADDRESSES[HOST]} "
    return [line for line in target_sshd_log(lab, since) if line.startswith(wanted)]


def target_files(lab: Lab) -> str:
    """Return the names, sizes and times of every file of HOST's repository on the target."""
    done = lab.ssh(
        ADDRESSES["backup1"],
        f"sudo find /srv/restic/{CLIENT}/{HOST} -type f -printf '%p %s %T@\\n' | sort",
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def without_target(known_hosts: str) -> str:
    """Return a known_hosts text without its lines for the backup target."""
    return "".join(
        f"{line}\n"
        for line in known_hosts.splitlines()
        if TARGET_ADDRESS not in line.split()[0].split(",")
    )


def test_the_target_key_comes_from_the_agencys_known_hosts_and_is_never_learnt(
    lab: Lab, tmp_path: Path
) -> None:
    """With the target's key missing from the agency's known_hosts the backup is refused
    before the host connects; with a wrong key there the host's ssh refuses the real
    target; neither learns nor writes the real key; with the enrolled key it backs up."""
    agency = lab.inventories / "agency" / "known_hosts"
    enrolled = agency.read_text()
    # The target's real key, read from the target itself.
    served = lab.ssh(ADDRESSES["backup1"], "cat /etc/ssh/ssh_host_ed25519_key.pub")
    assert served.returncode == 0, served.stderr
    real_key = key_blob(served.stdout)
    assert real_key in enrolled
    forged = tmp_path / "forged"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(forged)], check=True)
    wrong_line = f"{TARGET_ADDRESS} ssh-ed25519 {key_blob(forged.with_suffix('.pub').read_text())}"
    pinned_before, learnt_before = root_file(lab, PINNED), root_file(lab, LEARNT)
    files_before = target_files(lab)
    try:
        since = target_clock(lab)
        # 1. The agency has no key for the target: nothing to pin, and no first use.
        missing = without_target(enrolled)
        with edited_file(agency, missing):
            code, report = run_backup(lab, "target key missing from the agency's known_hosts")
            assert agency.read_text() == missing  # nothing was added to it
        assert code == ExitCode.FAILED, report
        (host,) = report["hosts"]
        (failed,) = host["failed_tasks"]
        assert failed["task"] == (
            "Refuse a backup target whose host key is not enrolled (never trusted on first use)"
        ), failed
        assert "never trusts a host key on first use" in failed["message"], failed
        assert root_file(lab, PINNED) == pinned_before
        assert root_file(lab, LEARNT) == learnt_before

        # 2. The agency's known_hosts names another key: the host's ssh refuses the target.
        with edited_file(agency, wrong_line + "\n"):
            code, report = run_backup(lab, "a wrong target key in the agency's known_hosts")
            assert agency.read_text() == wrong_line + "\n"
        assert code == ExitCode.FAILED, report
        (host,) = report["hosts"]
        (failed,) = host["failed_tasks"]
        assert failed["task"] == "Log in on the backup target with this host's key", failed
        assert "Host key verification failed" in failed["message"], failed
        # What the host trusts is the agency's line, and only that.
        pinned = root_file(lab, PINNED)
        assert pinned is not None and pinned.split() == wrong_line.split(), pinned
        assert real_key not in (root_file(lab, LEARNT) or "")
        # The host never logged in on the target, and nothing reached its repository.
        assert logins_since(lab, since) == []
        assert target_files(lab) == files_before

        # 3. The enrolled key: the same host backs up, through the key pinned from it.
        code, report = run_backup(lab, "the enrolled target key")
        assert code == ExitCode.OK, json.dumps(report["hosts"])
        pinned = root_file(lab, PINNED)
        assert pinned is not None and [key_blob(line) for line in pinned.splitlines()] == [
            real_key
        ], pinned
        assert len(logins_since(lab, since)) >= 1
        assert root_file(lab, LEARNT) == learnt_before
    finally:
        # The agency's file is back (edited_file); so is the host's pinned key, if the
        # test stopped while it held the wrong one.
        if key_blob(wrong_line) in (root_file(lab, PINNED) or ""):
            put_back = (
                f"printf %s {shlex.quote(pinned_before)} > {PINNED}"
                if pinned_before is not None
                else f"rm -f {PINNED}"
            )
            restored = lab.ssh(ADDRESSES[HOST], f"sudo sh -c {shlex.quote(put_back)}")
            assert restored.returncode == 0, restored.stderr
