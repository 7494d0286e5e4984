"""Where a client's restic repository lives, read from the contract's ``backup.repository``.

Two kinds are understood, the two the backup role can reach from a client's
hosts and the controller can open for restore drills:

- ``sftp:USER@HOST:/PATH``: a folder on the agency's backup target, reached
  over SSH with per-host keys and a pinned host key;
- ``s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]``: an S3-compatible bucket,
  with the client's S3 key pair from its vault.

The parts of an SFTP location reach the backup target's play (which
creates the account and the folder) and ssh's command line, so each is
strict: the user a POSIX account name that is neither root nor an account
a Debian server already has, the host a DNS name or IPv4 address, the path
absolute without ``.`` or ``..`` segments.

Each backed-up host has a repository of its own inside the client's
location (:func:`host_repository_location`): a host's password opens
only its own history, and a drill reads each host's snapshots from the
repository that host writes, never by a hostname label.

The scheme of an S3 endpoint is required (restic would otherwise assume
HTTPS silently), and a location never carries credentials. An S3 endpoint
and bucket follow the same rules as an offsite target's
(:mod:`webmg_ops.config.offsite_target`): plain http only on loopback and the
lab's range, bucket names by S3's naming rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from webmg_ops.config.accounts import SYSTEM_ACCOUNTS, account_problem
from webmg_ops.config.offsite_target import bucket_name_problem, check_endpoint

_SFTP = re.compile(r"^sftp:(?P<user>[^@:/\s]+)@(?P<host>[^:/\s]+):(?P<path>/\S*)$")
_S3 = re.compile(r"^s3:(?P<url>https?://\S+)$")
_SFTP_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_SFTP_PATH = re.compile(r"^(/[A-Za-z0-9_@+=:,~.-]+)+/?$")

#: An inventory host name that is safe as one folder or key segment (no '/', no leading '.').
_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

#: What a valid location reads like, for error messages.
EXPECTED = "sftp:USER@HOST:/PATH or s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]"


@dataclass(frozen=True)
class SftpLocation:
    """A repository folder on a backup target, reached over SFTP."""

    user: str
    host: str
    path: str
    port: int = 22


@dataclass(frozen=True)
class S3Location:
    """A repository in an S3 bucket: ``endpoint`` is ``scheme://host[:port]``."""

    endpoint: str
    bucket: str
    prefix: str = ""


RepositoryLocation = SftpLocation | S3Location


def parse_repository_location(text: str) -> RepositoryLocation:
    """Given a contract's ``backup.repository``, return where the repository lives.

    Raise ValueError, naming the expected forms, for anything else
    (including a location that carries a user name or key for S3).
    """
    sftp = _SFTP.match(text)
    if sftp is not None:
        return _sftp_location(text, sftp["user"], sftp["host"], sftp["path"])
    s3 = _S3.match(text)
    if s3 is None:
        raise ValueError(f"backup repository {text!r}: expected {EXPECTED}")
    parts = urlsplit(s3["url"])
    if "@" in parts.netloc:
        # Never echo this location: it holds what looks like a key.
        raise ValueError(
            "backup repository: an S3 location carries no credentials "
            "(they are in the client's vault: each host's in webmg_s3_host_keys, the "
            "controller's in webmg_s3_access_key_id and webmg_s3_secret_access_key)"
        )
    bucket, _, prefix = parts.path.strip("/").partition("/")
    problem = bucket_name_problem(bucket)
    if problem is not None:
        raise ValueError(f"backup repository {text!r}: bucket name {problem} (expected {EXPECTED})")
    try:
        endpoint = check_endpoint(f"{parts.scheme}://{parts.netloc}")
    except ValueError as error:
        raise ValueError(f"backup repository {text!r}: {error}") from None
    return S3Location(endpoint=endpoint, bucket=bucket, prefix=prefix)


def _sftp_location(text: str, user: str, host: str, path: str) -> SftpLocation:
    """Given an SFTP location's text and parts, return it.

    Raise ValueError naming the first part that is not strict enough.
    """
    problem = account_problem(user, SYSTEM_ACCOUNTS)
    if problem is None and not _SFTP_HOST.match(host):
        problem = f"host {host!r} is not a DNS name or IPv4 address"
    if problem is None and (
        not _SFTP_PATH.match(path) or any(part in (".", "..") for part in path.split("/"))
    ):
        problem = (
            f"path {path!r} must be absolute, of letters, digits and '_@+=:,~.-', "
            "without '.' or '..' segments"
        )
    if problem is not None:
        raise ValueError(f"backup repository {text!r}: {problem} (expected {EXPECTED})")
    return SftpLocation(user=user, host=host, path=path)


def host_repository_location(text: str, host: str) -> str:
    """Given a contract's ``backup.repository`` and a backed-up host, return that host's
    own repository: the host's name appended to the location's path (SFTP) or key
    prefix (S3).

    Raise ValueError if the location is not valid or the host name is not a
    single safe path segment.
    """
    parse_repository_location(text)
    if not _HOST_NAME.match(host):
        raise ValueError(f"host name {host!r} cannot name a repository folder")
    return f"{text.rstrip('/')}/{host}"
