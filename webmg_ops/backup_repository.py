"""A client's backup repository, as the controller opens it (restore drills, checks, tests).

The location comes from the contract (``backup.repository``); the password
from the client's vault (``webmg_restic_password``), never from a file in
clear. An ``sftp:`` repository is reached with the client's own SSH key
(``ssh/id_ed25519``) and its enrolled ``known_hosts``, strictly checked,
the same keys Ansible uses for the client's hosts (the backup role
authorizes the key's public half on the backup target). An ``s3:``
repository is opened with the S3 key pair of the client's vault
(``webmg_s3_access_key_id`` and ``webmg_s3_secret_access_key``), handed to
restic through its environment.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from webmg_ops.clients import Client
from webmg_ops.errors import BadInput
from webmg_ops.offsite.credentials import vault_credentials
from webmg_ops.repository_location import (
    SftpLocation,
    parse_repository_location,
)
from webmg_ops.restic import Repository
from webmg_ops.ssh import openssh_argv
from webmg_ops.vault import client_vault_variables, read_vault_password

#: The vault variable holding a client's restic password.
PASSWORD_VARIABLE = "webmg_restic_password"


def sftp_command(location: SftpLocation, key: Path, known_hosts: Path) -> str:
    """Given an SFTP location, the SSH key and known_hosts, return restic's ``sftp.command``.

    Host keys are checked strictly against ``known_hosts``; nothing is trusted on first use.
    """
    argv = openssh_argv(
        key, known_hosts, f"{location.user}@{location.host}", port=location.port, subsystem="sftp"
    )
    return shlex.join(argv)


def client_vault(client: Client, vault_password_file: Path | None) -> dict[str, str]:
    """Given a client and the vault password file, return the client's vault variables.

    Raise BadInput if no vault password is given or it does not decrypt the
    client's vault.
    """
    password = read_vault_password(vault_password_file)
    if password is None:
        raise BadInput(
            f"{client.name}: the restic password is in the client's vault: give the vault "
            "password with --vault-password-file or WEBMG_VAULT_PASSWORD_FILE"
        )
    return {
        name: str(value)
        for name, value in client_vault_variables(client.folder, password).items()
        if value is not None
    }


def restic_password(client: Client, vault_password_file: Path | None) -> str:
    """Given a client and the vault password file, return the client's restic password.

    Raise BadInput if no vault password is given, it does not decrypt the
    client's vault, or the vault holds no ``webmg_restic_password``.
    """
    return _restic_password(client, client_vault(client, vault_password_file))


def _restic_password(client: Client, vault: dict[str, str]) -> str:
    value = vault.get(PASSWORD_VARIABLE)
    if value:
        return value
    raise BadInput(
        f"{client.name}: no {PASSWORD_VARIABLE} in a vault file of {client.folder / 'group_vars'}"
    )


def client_repository(
    client: Client, vault_password_file: Path | None, *, cache_dir: Path | None = None
) -> Repository:
    """Given a client and the vault password file, return its backup repository for the controller.

    Raise BadInput if the contract names no repository, an SFTP repository's
    SSH key or known_hosts is missing, or the vault does not give the
    password (or, for S3, the key pair).
    """
    text = client.contract.backup.repository
    if not text:
        raise BadInput(f"{client.name}: the contract names no backup repository")
    try:
        location = parse_repository_location(text)
    except ValueError as error:
        raise BadInput(f"{client.name}: {error}") from None
    if isinstance(location, SftpLocation):
        key = client.folder / "ssh" / "id_ed25519"
        known_hosts = client.folder / "known_hosts"
        for needed in (key, known_hosts):
            if not needed.is_file():
                raise BadInput(
                    f"{client.name}: {needed} is missing (enrol the client's hosts first)"
                )
        command = sftp_command(location, key.resolve(), known_hosts.resolve())
        return Repository(
            location=text,
            password=restic_password(client, vault_password_file),
            cache_dir=cache_dir,
            options=(f"sftp.command={command}",),
        )
    vault = client_vault(client, vault_password_file)
    try:
        credentials = vault_credentials(vault)
    except BadInput as error:
        raise BadInput(f"{client.name}: S3 repository: {error}") from None
    return Repository(
        location=text,
        password=_restic_password(client, vault),
        cache_dir=cache_dir,
        environment=credentials.environment(),
    )
