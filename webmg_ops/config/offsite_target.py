"""Where an offsite copy goes: the validated S3 target of a client's policy.

:class:`OffsiteTarget` validates the offsite settings once, at the edge
(endpoint, bucket, region, key prefix, where the keys come from);
:func:`parse_target` turns settings read from YAML into one, or raises
BadInput. This module imports nothing from webmg_ops but the errors, so
that the contract can describe the target without the rest of the package.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from webmg_ops.errors import BadInput

OffsiteKind = Literal["restic-copy", "reports"]

#: Networks on which plain http is accepted: loopback, and 198.18.0.0/15, the
#: range reserved for test networks, where the rehearsal lab serves S3.
PLAIN_HTTP_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network("198.18.0.0/15"),
)

_BUCKET_CHARACTERS = re.compile(r"[a-z0-9.-]+")
_IP_ADDRESS_FORM = re.compile(r"\d+\.\d+\.\d+\.\d+")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_KEY_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


class _StrictModel(BaseModel):
    """Base of the offsite settings: unknown keys are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_endpoint(url: str) -> str:
    """Given an S3 endpoint URL, return it normalised (scheme, host, port).

    Raise ValueError if it is not http(s), holds credentials, a path or a
    query, or is plain http outside loopback and the lab's test range.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError("endpoint must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        # Never echo the URL: it holds what looks like a secret.
        raise ValueError("endpoint must not hold credentials: set `credentials` instead")
    host = parts.hostname
    if not host:
        raise ValueError("endpoint has no host")
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError("endpoint has an invalid port") from error
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            "endpoint must be scheme, host and port only: the bucket and prefix have their own keys"
        )
    if parts.scheme == "http" and not _plain_http_allowed(host):
        raise ValueError(
            "plain http is accepted only on loopback and the lab's test range: use https"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, "", "", ""))


def _plain_http_allowed(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in PLAIN_HTTP_NETWORKS)


def bucket_name_problem(name: str) -> str | None:
    """Given a bucket name, return what breaks S3's naming rules, or None if it is valid."""
    rules: tuple[tuple[bool, str], ...] = (
        (not 3 <= len(name) <= 63, "must be 3 to 63 characters long"),
        (
            not _BUCKET_CHARACTERS.fullmatch(name),
            "may hold only lowercase letters, digits, dots and hyphens",
        ),
        (
            not (name[:1].isalnum() and name[-1:].isalnum()),
            "must begin and end with a letter or digit",
        ),
        (".." in name, "must not hold two adjacent dots"),
        (bool(_IP_ADDRESS_FORM.fullmatch(name)), "must not be formatted as an IP address"),
        (name.startswith(_BUCKET_RESERVED_PREFIXES), "begins with a prefix S3 reserves"),
        (name.endswith(_BUCKET_RESERVED_SUFFIXES), "ends with a suffix S3 reserves"),
    )
    return next((message for broken, message in rules if broken), None)


def check_key_path(text: str, what: str) -> str:
    """Given a key path and what it is, return it if its segments are valid; else ValueError."""
    segments = text.split("/")
    if any(not _KEY_SEGMENT.fullmatch(segment) or segment in (".", "..") for segment in segments):
        raise ValueError(
            f"{what} must be '/'-separated segments of letters, digits, '.', '_' or '-' "
            "(no empty, '.' or '..' segment)"
        )
    return text


class OffsiteTarget(_StrictModel):
    """Where a client's offsite copy goes: an S3 bucket, and how to sign in to it.

    ``kind`` says what the policy asks for: ``restic-copy`` copies the
    snapshots into an S3 restic repository (:func:`copy_snapshots`),
    ``reports`` uploads the drill and run reports (:func:`publish_files`).
    Objects live under ``<prefix><client>/``.
    """

    kind: OffsiteKind = Field(
        description=(
            "What is copied offsite: 'restic-copy' (the snapshots, into an S3 restic "
            "repository) or 'reports' (the drill and run reports)."
        ),
        examples=["restic-copy"],
    )
    endpoint: str = Field(
        description=(
            "S3 endpoint URL: scheme, host and port only; https, or http on loopback and "
            "the lab's test range."
        ),
        examples=["https://s3.eu-central-1.amazonaws.com"],
    )
    bucket: str = Field(
        description=(
            "Bucket name, by S3's naming rules (3 to 63 lowercase letters, digits, '.', '-')."
        ),
        examples=["webmg-offsite"],
    )
    region: str = Field(
        default="us-east-1",
        pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
        max_length=32,
        description="Region the requests are signed for.",
        examples=["eu-central-1"],
    )
    prefix: str = Field(
        default="",
        description=(
            "Key prefix inside the bucket, empty or ending with '/'; the client's name is appended."
        ),
        examples=["webmg/"],
    )
    credentials: str = Field(
        default="environment",
        pattern=r"^(?:environment|vault|file:.+)$",
        description=(
            "Where the access keys come from: 'environment' (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY), 'file:<path>' (an AWS shared-credentials file, mode "
            "0600, section `profile`) or 'vault' (webmg_s3_access_key_id and "
            "webmg_s3_secret_access_key in the client's vault)."
        ),
        examples=["file:/etc/webmg-ops/s3-credentials"],
    )
    profile: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Section read from the shared-credentials file (credentials 'file:<path>').",
        examples=["offsite"],
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return check_endpoint(value)

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        problem = bucket_name_problem(value)
        if problem is not None:
            raise ValueError(f"bucket name {problem}")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not value.endswith("/"):
            raise ValueError("prefix must be empty or end with '/'")
        return check_key_path(value[:-1], "prefix") + "/" if value else value

    @property
    def credentials_file(self) -> Path | None:
        """The shared-credentials file named by ``credentials: file:<path>``, or None."""
        if not self.credentials.startswith("file:"):
            return None
        return Path(self.credentials.removeprefix("file:")).expanduser()

    def client_prefix(self, client: str) -> str:
        """Given a client, return the key prefix of its objects, without a trailing '/'."""
        return f"{self.prefix}{client}"

    def repository_location(self, client: str, host: str | None = None) -> str:
        """Given a client (and one of its hosts), return the restic repository of its copy,
        s3:<endpoint>/<bucket>/<prefix><client>[/<host>].

        The repository's password is the source repository's (see :func:`copy_snapshots`).
        """
        return f"s3:{self.endpoint}/{self.bucket}/{self.repository_prefix(client, host)}"

    def repository_prefix(self, client: str, host: str | None = None) -> str:
        """Given a client (and one of its hosts), return the key prefix of its copy's repository."""
        prefix = self.client_prefix(client)
        return f"{prefix}/{host}" if host else prefix


def parse_target(data: Mapping[str, Any]) -> OffsiteTarget:
    """Given offsite settings as data (from YAML), return the validated target.

    Raise BadInput listing every problem with its path; input values are not
    repeated in the message, since a misplaced key could be a secret.
    """
    try:
        return OffsiteTarget.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'offsite'}: {item['msg']}"
            for item in error.errors(include_input=False, include_url=False)
        )
        raise BadInput(f"invalid offsite settings: {problems}") from None
