"""The lab's Ansible Vault: one vault password per lab, one encrypted vars file per lab client.

A real client keeps its secrets (the restic repository password first) in
an Ansible Vault file of its own inventory. The lab does the same for the
clients whose hosts are all lab hosts: ``lab up`` generates one vault
password (``<lab dir>/vault-password``, 0600, kept across ``down``/``up``)
and, for each such client, ``group_vars/all/vault.yml`` holding
``webmg_restic_password``. A vault file that the lab's password decrypts
is kept as it is (its restic password opens repositories made before);
one it cannot decrypt (written by another lab) is replaced.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from webmg_ops.ansible.vault import (
    CLIENT_VAULT_FILE,
    RESTIC_PASSWORD_VARIABLE,
    decrypt_bytes,
    encrypt_values,
)
from webmg_ops.lab.paths import LabPaths
from webmg_ops.remote.keys import write_private

#: Where a client keeps its vault-encrypted variables, relative to its folder.
VAULT_FILE = CLIENT_VAULT_FILE


def ensure_vault_password(paths: LabPaths) -> Path:
    """Given the lab's paths, return its vault password file, generating it the first time."""
    file = paths.vault_password
    if not (file.is_file() and file.read_bytes().strip()):
        write_private(file, secrets.token_urlsafe(32) + "\n")
    file.chmod(0o600)
    return file


def _password(password_file: Path) -> bytes:
    return password_file.read_bytes().strip()


def read_vault_values(file: Path, password_file: Path) -> dict[str, object] | None:
    """Given a vault file and the vault password file, return its values.

    Return None if the file is missing, not encrypted, or the password does
    not decrypt it.
    """
    if not file.is_file():
        return None
    raw = file.read_bytes()
    if not raw.lstrip().startswith(b"$ANSIBLE_VAULT"):
        return None
    plain = decrypt_bytes(raw, _password(password_file))
    if plain is None:
        return None
    try:
        data = yaml.safe_load(plain)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def write_vault_values(file: Path, password_file: Path, values: dict[str, object]) -> None:
    """Given a vault file, the vault password file and values, write them encrypted (0600)."""
    encrypted = encrypt_values(values, _password(password_file))
    file.parent.mkdir(parents=True, exist_ok=True)
    write_private(file, encrypted)


def ensure_client_vaults(
    client_dirs: Iterable[Path], password_file: Path, shared: Mapping[str, str] | None = None
) -> list[Path]:
    """Given lab clients' folders, the vault password file and values every lab client
    shares (the lab S3 endpoint's keys), make sure each client has its vault.

    A vault file the password decrypts and that holds a restic password keeps
    that password (it opens repositories made before); the shared values are
    brought up to date. Any other file is (re)written with a new random
    restic password. Return the vault files written.
    """
    written = []
    for folder in client_dirs:
        file = folder / VAULT_FILE
        values = read_vault_values(file, password_file) or {}
        wanted = {**values, **(shared or {})}
        if not wanted.get(RESTIC_PASSWORD_VARIABLE):
            wanted[RESTIC_PASSWORD_VARIABLE] = secrets.token_urlsafe(32)
        if wanted == values:
            continue
        write_vault_values(file, password_file, wanted)
        written.append(file)
    return written
