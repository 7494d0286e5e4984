"""Vault-encrypted variables: where the password comes from, and which values are secret.

Every value a client keeps in Ansible Vault (an encrypted ``group_vars``
file, or an inline ``!vault`` value) is a secret the tool must mask in
everything it writes. This module finds and decrypts them with Ansible's
own vault library.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from webmg_ops.errors import BadInput
from webmg_ops.secrets import SecretSet, collect_secrets, secrets_from_environment

VAULT_PASSWORD_VARIABLE = "WEBMG_VAULT_PASSWORD_FILE"
#: Where a client keeps its vault-encrypted variables, relative to its folder.
CLIENT_VAULT_FILE = Path("group_vars") / "all" / "vault.yml"
#: The vault variable holding the client's restic repository password.
RESTIC_PASSWORD_VARIABLE = "webmg_restic_password"
_VAULT_HEADER = b"$ANSIBLE_VAULT"


#: What makes a vault password file unfit: another local user could read the
#: password (and decrypt every client's vault) or replace it.
_UNSAFE_PASSWORD_FILE_CHECKS: tuple[tuple[Callable[[os.stat_result], bool], str], ...] = (
    (
        lambda info: info.st_uid != os.geteuid(),
        "belongs to uid {uid}, not to this user (uid {euid}): take it over "
        "(chown {euid} {path}) and chmod 600 {path}",
    ),
    (
        lambda info: bool(info.st_mode & 0o077),
        "is open to group or others (mode {mode:04o}): chmod 600 {path}",
    ),
)


def vault_password_file(option: str | None) -> Path | None:
    """Given ``--vault-password-file`` (or None), return the file to use, if any.

    Falls back to ``WEBMG_VAULT_PASSWORD_FILE``. Raise BadInput if the named
    file does not exist, belongs to another user or is open to group or
    others (the message names the file, its mode and the fix).
    """
    name = option or os.environ.get(VAULT_PASSWORD_VARIABLE)
    if not name:
        return None
    path = Path(name)
    if not path.is_file():
        raise BadInput(f"vault password file {path} not found")
    info = path.stat()
    values = {"uid": info.st_uid, "euid": os.geteuid(), "mode": stat.S_IMODE(info.st_mode)}
    for check, problem in _UNSAFE_PASSWORD_FILE_CHECKS:
        if check(info):
            raise BadInput(f"vault password file {path} {problem.format(path=path, **values)}")
    return path


def read_vault_password(path: Path | None) -> bytes | None:
    """Given a vault password file (or None), return the password bytes (or None)."""
    if path is None:
        return None
    return path.read_bytes().strip()


class _Encrypted(str):
    """An inline ``!vault`` value, still encrypted."""


class _VaultAwareLoader(yaml.SafeLoader):
    """A safe YAML loader that keeps ``!vault`` values as :class:`_Encrypted`."""


def _construct_vault(loader: yaml.SafeLoader, node: yaml.Node) -> _Encrypted:
    return _Encrypted(loader.construct_scalar(node))  # type: ignore[arg-type]


_VaultAwareLoader.add_constructor("!vault", _construct_vault)
_VaultAwareLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


def _variable_files(client_dir: Path) -> Iterator[Path]:
    for folder in ("group_vars", "host_vars"):
        base = client_dir / folder
        if base.is_dir():
            yield from sorted(path for path in base.rglob("*") if path.is_file())


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _vault_decrypter(password: bytes | None) -> Any:
    """Return a function (data, file) -> plain text, raising BadInput as the docs say."""
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(password))]) if password is not None else None

    def decrypt(data: bytes, file: Path) -> str:
        if vault is None:
            raise BadInput(
                f"{file} holds vault-encrypted values: give the vault password with "
                f"--vault-password-file or {VAULT_PASSWORD_VARIABLE}"
            )
        try:
            plain: bytes = vault.decrypt(data)
            return plain.decode("utf-8")
        except AnsibleError as error:
            raise BadInput(f"{file}: cannot decrypt the vault (wrong password?)") from error

    return decrypt


def _vault_held(client_dir: Path, password: bytes | None) -> Iterator[tuple[str, Any]]:
    """Yield (top-level variable name, decrypted value) for everything the vault holds."""
    decrypt = _vault_decrypter(password)
    for file in _variable_files(client_dir):
        raw = file.read_bytes()
        if raw.lstrip().startswith(_VAULT_HEADER):
            data = yaml.load(decrypt(raw, file), Loader=_VaultAwareLoader)
            if isinstance(data, dict):
                yield from ((str(name), value) for name, value in data.items())
            continue
        try:
            data = yaml.load(raw, Loader=_VaultAwareLoader)
        except yaml.YAMLError:
            continue  # not YAML (Ansible also reads INI-style vars); nothing encrypted in it
        if not isinstance(data, dict):
            continue
        for name, value in data.items():
            if isinstance(value, _Encrypted):
                yield str(name), decrypt(value.encode(), file)
            else:
                for leaf in _leaves(value):
                    if isinstance(leaf, _Encrypted):
                        yield str(name), decrypt(leaf.encode(), file)


def client_vault_values(client_dir: Path, password: bytes | None) -> list[str]:
    """Given a client folder and the vault password, return every vault-held value, decrypted.

    Values of an encrypted file are all secret; so is every inline ``!vault``
    value. Raise BadInput, naming the file, if something is encrypted and no
    password was given, or the password is wrong.
    """
    return [
        str(leaf)
        for _name, value in _vault_held(client_dir, password)
        for leaf in _leaves(value)
        if leaf is not None
    ]


def client_vault_variables(client_dir: Path, password: bytes | None) -> dict[str, Any]:
    """Given a client folder and the vault password, return the vault-held variables by name.

    Raise BadInput as :func:`client_vault_values` does.
    """
    return dict(_vault_held(client_dir, password))


class Vault:
    """The vault of one command: the password file read once, each client's vault
    decrypted once, handed down as a value to whatever needs a secret.

    ``password_file`` stays for the tools that read the file themselves
    (ansible-playbook). The repr shows no secret.
    """

    def __init__(self, password_file: Path | None, *, password: bytes | None = None) -> None:
        self.password_file = password_file
        self._password = read_vault_password(password_file) if password is None else password
        # Every (name, value) held, in file order: a name set in group_vars and in
        # host_vars holds two secrets, both of which must be masked.
        self._held: dict[Path, list[tuple[str, Any]]] = {}

    @property
    def password(self) -> bytes | None:
        """The vault password (None when the command was given none)."""
        return self._password

    def variables(self, client_dir: Path) -> dict[str, Any]:
        """Given a client folder, return its vault-held variables by name (a copy).

        Raise BadInput as :func:`client_vault_values` does.
        """
        return dict(self._held_in(client_dir))

    def _held_in(self, client_dir: Path) -> list[tuple[str, Any]]:
        key = client_dir.resolve()
        if key not in self._held:
            self._held[key] = list(_vault_held(client_dir, self._password))
        return self._held[key]

    def values(self, client_dir: Path) -> list[str]:
        """Given a client folder, return every vault-held value, decrypted, as text."""
        return [
            str(leaf)
            for _name, value in self._held_in(client_dir)
            for leaf in _leaves(value)
            if leaf is not None
        ]

    def __repr__(self) -> str:
        return f"Vault(password_file={self.password_file!r})"


def encrypt_bytes(plain: bytes, password: bytes) -> bytes:
    """Given plain bytes and a vault password, return them as an Ansible Vault file's text."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    encrypted: bytes = VaultLib([("default", VaultSecret(password))]).encrypt(plain)
    return encrypted


def encrypt_values(values: Mapping[str, object], password: bytes) -> bytes:
    """Given variables and a vault password, return them as an encrypted vars file's text
    (YAML, keys sorted, then Ansible Vault).
    """
    return encrypt_bytes(yaml.safe_dump(dict(values), sort_keys=True).encode(), password)


def decrypt_bytes(data: bytes, password: bytes) -> bytes | None:
    """Given an Ansible Vault file's text and a vault password, return the plain bytes,
    or None if the password does not decrypt it (or it is not vault text).
    """
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultLib, VaultSecret

    try:
        plain: bytes = VaultLib([("default", VaultSecret(password))]).decrypt(data)
    except AnsibleError:
        return None
    return plain


def client_secrets(
    folder: Path, vault: Vault, variables: Mapping[str, Mapping[str, Any]]
) -> SecretSet:
    """Given a client's folder, the command's vault and its hosts' variables by host,
    return every value a command on that client must never write: vault values,
    secret-named variables, secret-looking environment variables, the vault password.

    Raise BadInput as :meth:`Vault.values` does.
    """
    found = SecretSet.of(vault.values(folder)).union(secrets_from_environment(os.environ))
    for host_vars in variables.values():
        found = found.union(collect_secrets(dict(host_vars)))
    if vault.password is not None:
        found = found.union(SecretSet.of([vault.password.decode(errors="replace")]))
    return found
