"""What root on a client host can do with the backup secrets the role leaves there.

The attacks of the backup tests run restic as root on a client host, with
the files the backup role wrote there (the host's key, pinned host key and
password file), against a repository of the attacker's choosing.
"""

from __future__ import annotations

import shlex
import subprocess

from lab_testing import Lab

#: The backup target of the lab's clients.
TARGET_ADDRESS = "198.18.0.5"
#: The role's root-only folder on every client host.
SECRET_DIR = "/var/lib/webmg-backup"
#: ssh as the role sets it up for restic: the host's own key, its pinned host key.
HOST_SSH = (
    "ssh",
    "-i",
    f"{SECRET_DIR}/id_ed25519",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    f"UserKnownHostsFile={SECRET_DIR}/known_hosts",
)


def target_account(client: str) -> str:
    """Return CLIENT's account on the lab's backup target."""
    return f"restic-{client}@{TARGET_ADDRESS}"


def sftp_repository(client: str, host: str) -> str:
    """Return the location of HOST's own repository of CLIENT on the lab's backup target."""
    return f"sftp:{target_account(client)}:/srv/restic/{client}/{host}"


def as_root_on(lab: Lab, address: str, command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run COMMAND (argv) as root on the host at ADDRESS; return what it did."""
    return lab.ssh(address, shlex.join(["sudo", *command]))


def restic_as_root_on(
    lab: Lab, address: str, repository: str, *arguments: str, account: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run restic as root on the host at ADDRESS against REPOSITORY, with the host's own
    key and password file, logging in as ACCOUNT (the repository's); return what it did."""
    login = account or repository.removeprefix("sftp:").partition(":")[0]
    command = [
        "sudo",
        "env",
        f"RESTIC_REPOSITORY={repository}",
        f"RESTIC_PASSWORD_FILE={SECRET_DIR}/restic-password",
        "RESTIC_CACHE_DIR=/var/cache/webmg-backup",
        "restic",
        "-o",
        f"sftp.command={shlex.join([*HOST_SSH, login, '-s', 'sftp'])}",
        *arguments,
    ]
    return lab.ssh(address, shlex.join(command))
