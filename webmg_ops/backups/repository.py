"""A client's backup repositories, as the controller opens them (restore drills, checks, tests).

Every backed-up host has a repository of its own, inside the contract's
location (``backup.repository``, see
:func:`webmg_ops.config.repository_location.host_repository_location`), with a
password of its own: HMAC-SHA256 of the host's name keyed with the
client's vault password (``webmg_restic_password``). A host holds only its
own password, so it cannot decrypt another host's snapshots; the
controller, which holds the vault, derives each of them. The role derives
the same value with its ``webmg_host_restic_password`` filter. Passwords
never come from a file in clear. An ``sftp:`` repository is reached with the client's own SSH key
(``ssh/id_ed25519``, the key Ansible uses for the client's hosts, whose
public half the agency's target run authorizes for SFTP on the client's
account) and the target's host key from the agency's enrolled
``known_hosts``, strictly checked. An ``s3:``
repository is opened with the controller's S3 key pair from the client's
vault (``webmg_s3_access_key_id`` and ``webmg_s3_secret_access_key``; never a
host's, see :mod:`webmg_ops.backups.s3_policy`), handed to restic through its
environment.
"""

from __future__ import annotations

import hashlib
import hmac
import shlex
from pathlib import Path

from webmg_ops.ansible.vault import RESTIC_PASSWORD_VARIABLE, Vault
from webmg_ops.backups.restic import Repository
from webmg_ops.config.clients import AGENCY, Client
from webmg_ops.config.repository_location import (
    SftpLocation,
    host_repository_location,
    parse_repository_location,
)
from webmg_ops.config.s3_credentials import vault_credentials
from webmg_ops.errors import BadInput
from webmg_ops.remote.ssh import openssh_argv

#: The vault variable holding a client's restic password.
PASSWORD_VARIABLE = RESTIC_PASSWORD_VARIABLE

#: What a host's name is prefixed with before it is keyed with the client's password
#: (the same words as the role's filter plugin, ``roles/backup/filter_plugins``).
HOST_PASSWORD_CONTEXT = b"webmg-ops restic repository of host "


def host_password(client_password: str, host: str) -> str:
    """Given the client's restic password and a host's name, return the host's own
    repository password (hex HMAC-SHA256 of the name, keyed with the client's password).
    """
    return hmac.new(
        client_password.encode(), HOST_PASSWORD_CONTEXT + host.encode(), hashlib.sha256
    ).hexdigest()


def backed_up_hosts(client: Client) -> tuple[str, ...]:
    """Given a client, return its hosts that are backed up (all of them)."""
    return tuple(host.name for host in client.hosts)


def target_known_hosts(client: Client) -> Path:
    """Given a client, return the known_hosts that holds the backup target's host key: the
    agency's, beside the client's folder (the target is in no client's inventory).
    """
    return client.folder.parent / AGENCY / "known_hosts"


def sftp_command(location: SftpLocation, key: Path, known_hosts: Path) -> str:
    """Given an SFTP location, the SSH key and known_hosts, return restic's ``sftp.command``.

    Host keys are checked strictly against ``known_hosts``; nothing is trusted on first use.
    ``LogLevel=ERROR`` leaves out the target's login banner (shown at INFO), which would
    otherwise open every error restic reports; errors, a changed host key among them, stay.
    """
    argv = openssh_argv(
        key,
        known_hosts,
        f"{location.user}@{location.host}",
        port=location.port,
        options=("LogLevel=ERROR",),
        subsystem="sftp",
    )
    return shlex.join(argv)


def client_vault(client: Client, vault: Vault) -> dict[str, str]:
    """Given a client and the command's vault, return the client's vault variables.

    Raise BadInput if no vault password is given or it does not decrypt the
    client's vault.
    """
    if vault.password is None:
        raise BadInput(
            f"{client.name}: the restic password is in the client's vault: give the vault "
            "password with --vault-password-file or WEBMG_VAULT_PASSWORD_FILE"
        )
    return {
        name: str(value)
        for name, value in vault.variables(client.folder).items()
        if value is not None
    }


def restic_password(client: Client, vault: Vault) -> str:
    """Given a client and the command's vault, return the client's restic password.

    Raise BadInput if no vault password is given, it does not decrypt the
    client's vault, or the vault holds no ``webmg_restic_password``.
    """
    return _restic_password(client, client_vault(client, vault))


def _restic_password(client: Client, vault: dict[str, str]) -> str:
    value = vault.get(PASSWORD_VARIABLE)
    if value:
        return value
    raise BadInput(
        f"{client.name}: no {PASSWORD_VARIABLE} in a vault file of {client.folder / 'group_vars'}"
    )


def host_repositories(
    client: Client,
    vault: Vault,
    *,
    hosts: tuple[str, ...] | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Repository]:
    """Given a client and the command's vault, return each backed-up host's own
    repository as the controller opens it (``hosts``: those hosts only).

    Raise BadInput if the contract names no repository, an SFTP repository's
    SSH key or known_hosts is missing, a host's name cannot name a
    repository, or the vault does not give the password (or, for S3, the
    key pair).
    """
    text = client.contract.backup.repository
    if not text:
        raise BadInput(f"{client.name}: the contract names no backup repository")
    try:
        location = parse_repository_location(text)
        locations = {
            host: host_repository_location(text, host)
            for host in (backed_up_hosts(client) if hosts is None else hosts)
        }
    except ValueError as error:
        raise BadInput(f"{client.name}: {error}") from None
    options: tuple[str, ...] = ()
    environment: dict[str, str] = {}
    if isinstance(location, SftpLocation):
        key = client.folder / "ssh" / "id_ed25519"
        known_hosts = target_known_hosts(client)
        for needed, how in ((key, "the client's key"), (known_hosts, "enrol the agency's hosts")):
            if not needed.is_file():
                raise BadInput(f"{client.name}: {needed} is missing ({how} first)")
        options = (f"sftp.command={sftp_command(location, key.resolve(), known_hosts.resolve())}",)
    held = client_vault(client, vault)
    password = _restic_password(client, held)
    if not isinstance(location, SftpLocation):
        try:
            environment = vault_credentials(held).environment()
        except BadInput as error:
            raise BadInput(f"{client.name}: S3 repository: {error}") from None
    return {
        host: Repository(
            location=host_location,
            password=host_password(password, host),
            cache_dir=cache_dir,
            environment=environment,
            options=options,
        )
        for host, host_location in locations.items()
    }


def host_repository(
    client: Client, host: str, vault: Vault, *, cache_dir: Path | None = None
) -> Repository:
    """Given a client, one of its backed-up hosts and the command's vault, return the
    host's own repository. Raise BadInput as :func:`host_repositories` does.
    """
    return host_repositories(client, vault, hosts=(host,), cache_dir=cache_dir)[host]
