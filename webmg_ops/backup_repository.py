"""A client's backup repository, as the controller opens it (restore drills, checks, tests).

The location comes from the contract (``backup.repository``); the password
from the client's vault (``webmg_restic_password``), never from a file in
clear; an ``sftp:`` repository is reached with the client's own SSH key
(``ssh/id_ed25519``) and its enrolled ``known_hosts``, strictly checked,
the same keys Ansible uses for the client's hosts (the backup role
authorizes the key's public half on the backup target).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from webmg_ops.clients import Client
from webmg_ops.errors import BadInput
from webmg_ops.restic import Repository
from webmg_ops.vault import client_vault_variables, read_vault_password

#: The vault variable holding a client's restic password.
PASSWORD_VARIABLE = "webmg_restic_password"

_SFTP = re.compile(r"^sftp:(?P<user>[^@:/\s]+)@(?P<host>[^:/\s]+):(?P<path>/\S*)$")


@dataclass(frozen=True)
class SftpLocation:
    """Where an ``sftp:USER@HOST:/PATH`` repository lives."""

    user: str
    host: str
    path: str
    port: int = 22


def parse_sftp_location(location: str) -> SftpLocation:
    """Given a repository location, return its SFTP parts.

    Raise BadInput unless it reads ``sftp:USER@HOST:/PATH``.
    """
    match = _SFTP.match(location)
    if match is None:
        raise BadInput(
            f"backup repository {location!r}: expected sftp:USER@HOST:/PATH "
            "(the backup role reaches its target over SFTP)"
        )
    return SftpLocation(user=match["user"], host=match["host"], path=match["path"])


def sftp_command(location: SftpLocation, key: Path, known_hosts: Path) -> str:
    """Given an SFTP location, the SSH key and known_hosts, return restic's ``sftp.command``.

    Host keys are checked strictly against ``known_hosts``; nothing is trusted on first use.
    """
    argv = [
        "ssh",
        "-i",
        str(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-p",
        str(location.port),
        f"{location.user}@{location.host}",
        "-s",
        "sftp",
    ]
    return shlex.join(argv)


def restic_password(client: Client, vault_password_file: Path | None) -> str:
    """Given a client and the vault password file, return the client's restic password.

    Raise BadInput if no vault password is given, it does not decrypt the
    client's vault, or the vault holds no ``webmg_restic_password``.
    """
    password = read_vault_password(vault_password_file)
    if password is None:
        raise BadInput(
            f"{client.name}: the restic password is in the client's vault: give the vault "
            "password with --vault-password-file or WEBMG_VAULT_PASSWORD_FILE"
        )
    value = client_vault_variables(client.folder, password).get(PASSWORD_VARIABLE)
    if value:
        return str(value)
    raise BadInput(
        f"{client.name}: no {PASSWORD_VARIABLE} in a vault file of {client.folder / 'group_vars'}"
    )


def client_repository(
    client: Client, vault_password_file: Path | None, *, cache_dir: Path | None = None
) -> Repository:
    """Given a client and the vault password file, return its backup repository for the controller.

    Raise BadInput if the contract names no repository or not an SFTP one,
    the client's SSH key or known_hosts is missing, or the vault does not
    give the password.
    """
    location = client.contract.backup.repository
    if not location:
        raise BadInput(f"{client.name}: the contract names no backup repository")
    sftp = parse_sftp_location(location)
    key = client.folder / "ssh" / "id_ed25519"
    known_hosts = client.folder / "known_hosts"
    for needed in (key, known_hosts):
        if not needed.is_file():
            raise BadInput(f"{client.name}: {needed} is missing (enrol the client's hosts first)")
    return Repository(
        location=location,
        password=restic_password(client, vault_password_file),
        cache_dir=cache_dir,
        options=(f"sftp.command={sftp_command(sftp, key.resolve(), known_hosts.resolve())}",),
    )
