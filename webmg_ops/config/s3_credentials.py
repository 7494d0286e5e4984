"""Offsite credentials: a target's S3 key pair, from where its settings say.

:func:`resolve_credentials` reads the key pair from the environment, an AWS
shared-credentials file or the client's decrypted vault. Messages name what
is missing, never a value.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from webmg_ops.config.offsite_target import OffsiteTarget
from webmg_ops.errors import BadInput, EnvironmentProblem
from webmg_ops.secrets import SecretSet

VAULT_ACCESS_KEY_ID = "webmg_s3_access_key_id"
VAULT_SECRET_ACCESS_KEY = "webmg_s3_secret_access_key"
VAULT_SESSION_TOKEN = "webmg_s3_session_token"

ENVIRONMENT_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
ENVIRONMENT_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
ENVIRONMENT_SESSION_TOKEN = "AWS_SESSION_TOKEN"


@dataclass(frozen=True)
class OffsiteCredentials:
    """An S3 key pair, and where it came from (``source``, safe to print)."""

    source: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def secret_set(self) -> SecretSet:
        """Return the values to mask wherever text leaves this module."""
        return SecretSet.of((self.access_key_id, self.secret_access_key, self.session_token))

    def environment(self) -> dict[str, str]:
        """Return the variables that hand the keys to a child process (restic)."""
        return {
            ENVIRONMENT_ACCESS_KEY_ID: self.access_key_id,
            ENVIRONMENT_SECRET_ACCESS_KEY: self.secret_access_key,
            # Empty rather than absent: a token inherited from the caller's
            # environment would otherwise be sent with these keys, and refused.
            ENVIRONMENT_SESSION_TOKEN: self.session_token or "",
        }


def _present(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def _from_environment(environ: Mapping[str, str]) -> OffsiteCredentials:
    key_id = _present(environ.get(ENVIRONMENT_ACCESS_KEY_ID))
    secret = _present(environ.get(ENVIRONMENT_SECRET_ACCESS_KEY))
    missing = [
        name
        for name, value in (
            (ENVIRONMENT_ACCESS_KEY_ID, key_id),
            (ENVIRONMENT_SECRET_ACCESS_KEY, secret),
        )
        if value is None
    ]
    if key_id is None or secret is None:
        raise EnvironmentProblem(
            f"offsite credentials 'environment': {' and '.join(missing)} not set"
        )
    return OffsiteCredentials(
        "environment", key_id, secret, _present(environ.get(ENVIRONMENT_SESSION_TOKEN))
    )


def _from_file(path: Path, profile: str) -> OffsiteCredentials:
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise EnvironmentProblem(
            f"offsite credentials file {path}: {error.strerror or 'cannot be read'}"
        ) from None
    if mode & 0o077:
        raise BadInput(
            f"offsite credentials file {path} is open to group or others "
            f"(mode {mode & 0o777:04o}): chmod 600 it"
        )
    # No interpolation: a secret may hold '%'.
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except OSError as error:
        raise EnvironmentProblem(
            f"offsite credentials file {path}: {error.strerror or 'cannot be read'}"
        ) from None
    except configparser.Error:
        # configparser's messages quote the offending line, which may be a secret.
        raise BadInput(f"offsite credentials file {path} is not an AWS credentials file") from None
    if not parser.has_section(profile):
        raise BadInput(f"offsite credentials file {path} has no [{profile}] section")
    section = parser[profile]
    key_id = _present(section.get("aws_access_key_id"))
    secret = _present(section.get("aws_secret_access_key"))
    if key_id is None or secret is None:
        raise BadInput(
            f"offsite credentials file {path} [{profile}] needs aws_access_key_id "
            "and aws_secret_access_key"
        )
    return OffsiteCredentials(
        f"file {path} [{profile}]", key_id, secret, _present(section.get("aws_session_token"))
    )


def vault_credentials(vault: Mapping[str, str]) -> OffsiteCredentials:
    """Given a client's decrypted vault variables, return its S3 key pair.

    Raise BadInput naming the variables the vault lacks (never a value).
    """
    key_id = _present(vault.get(VAULT_ACCESS_KEY_ID))
    secret = _present(vault.get(VAULT_SECRET_ACCESS_KEY))
    if key_id is None or secret is None:
        missing = [
            name
            for name, value in ((VAULT_ACCESS_KEY_ID, key_id), (VAULT_SECRET_ACCESS_KEY, secret))
            if value is None
        ]
        raise BadInput(f"the vault lacks {' and '.join(missing)}")
    return OffsiteCredentials("vault", key_id, secret, _present(vault.get(VAULT_SESSION_TOKEN)))


def _from_vault(vault: Mapping[str, str] | None) -> OffsiteCredentials:
    if vault is None:
        raise BadInput(
            "offsite credentials 'vault' need the client's vault: give the vault password"
        )
    try:
        return vault_credentials(vault)
    except BadInput as error:
        raise BadInput(f"offsite credentials 'vault': {error}") from None


def resolve_credentials(
    target: OffsiteTarget,
    *,
    environ: Mapping[str, str] | None = None,
    vault: Mapping[str, str] | None = None,
) -> OffsiteCredentials:
    """Given a target, return its key pair from where ``target.credentials`` says.

    ``environ`` defaults to the process environment; ``vault`` holds the
    client's decrypted vault variables by name (needed for ``vault``). Raise
    EnvironmentProblem if the environment variables or the file are missing,
    BadInput if the file is open to others, lacks the profile or a key, or
    the vault lacks a key. Messages name what is missing, never a value.
    """
    file = target.credentials_file
    if file is not None:
        return _from_file(file, target.profile)
    if target.credentials == "vault":
        return _from_vault(vault)
    return _from_environment(os.environ if environ is None else environ)
