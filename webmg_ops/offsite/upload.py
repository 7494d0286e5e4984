"""Uploading files to S3: each checksummed, verified, and tried again on failure.

:func:`publish_files` uploads a client's files (the drill and run reports)
to ``<prefix><client>/<key_prefix>/<name>`` and returns the result file by
file; a network or storage failure is a result (unpublished, with a masked
reason), never an exception.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import mimetypes
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmg_ops.config.offsite_target import OffsiteTarget, check_key_path
from webmg_ops.config.s3_credentials import OffsiteCredentials
from webmg_ops.errors import BadInput
from webmg_ops.ledger.records import validate_client
from webmg_ops.offsite.retry import DEFAULT_RETRY, RetryPolicy
from webmg_ops.offsite.s3 import (
    describe_error,
    is_permanent,
    is_s3_failure,
    is_unreachable,
    make_s3_client,
)
from webmg_ops.secrets import SecretSet

# The package's logger: every offsite log line under one name.
logger = logging.getLogger("webmg_ops.offsite")


MAX_SINGLE_UPLOAD_BYTES = 5 * 1024**3
"""S3's limit for one PUT; larger files would need a multipart upload, whose ETag is no MD5."""


_MD5_ETAG = re.compile(r"[0-9a-f]{32}")
_HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class _Digest:
    size: int
    md5_hex: str
    sha256_hex: str

    @property
    def md5_base64(self) -> str:
        return base64.b64encode(bytes.fromhex(self.md5_hex)).decode()

    @property
    def sha256_base64(self) -> str:
        return base64.b64encode(bytes.fromhex(self.sha256_hex)).decode()


def _digest(path: Path) -> _Digest:
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return _Digest(size, md5.hexdigest(), sha256.hexdigest())


def verification_problem(
    head: Mapping[str, Any], digest_size: int, md5_hex: str, sha256_hex: str
) -> str | None:
    """Given a ``head_object`` answer and the local file's size and hashes, return the mismatch.

    The size must match, and so must every checksum the server returns: an
    ETag that is a plain MD5, ``x-amz-meta-sha256``, ``ChecksumSHA256``.
    Return None if all match and at least one checksum was compared, else a
    reason.
    """
    stored_size = head.get("ContentLength")
    if stored_size != digest_size:
        return f"verification failed: stored size {stored_size} differs from {digest_size}"
    compared = 0
    etag = str(head.get("ETag", "")).strip('"').lower()
    if _MD5_ETAG.fullmatch(etag):
        if etag != md5_hex:
            return "verification failed: the stored MD5 (ETag) differs from the file's"
        compared += 1
    metadata = {str(key).lower(): str(value) for key, value in (head.get("Metadata") or {}).items()}
    if "sha256" in metadata:
        if metadata["sha256"].lower() != sha256_hex:
            return "verification failed: the stored sha256 metadata differs from the file's"
        compared += 1
    checksum = head.get("ChecksumSHA256")
    # A composite checksum (multipart, "...-N") is not the file's SHA-256.
    if checksum and "-" not in str(checksum):
        if checksum != base64.b64encode(bytes.fromhex(sha256_hex)).decode():
            return "verification failed: the stored SHA-256 checksum differs from the file's"
        compared += 1
    if compared == 0:
        return "verification failed: the server returned no MD5 ETag nor SHA-256 to compare"
    return None


@dataclass(frozen=True)
class FilePublication:
    """One file's upload: where it went, its hash, and whether it is published.

    ``reason`` says why an unpublished file is not (masked); ``attempts``
    counts uploads tried.
    """

    path: str
    key: str
    size: int
    sha256: str
    published: bool
    reason: str | None = None
    attempts: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish_files` did for one client's files."""

    client: str
    target: OffsiteTarget
    key_prefix: str
    files: tuple[FilePublication, ...]

    @property
    def ok(self) -> bool:
        """Whether every file is published."""
        return all(item.published for item in self.files)

    @property
    def published(self) -> tuple[FilePublication, ...]:
        """The files published and verified."""
        return tuple(item for item in self.files if item.published)

    @property
    def unpublished(self) -> tuple[FilePublication, ...]:
        """The files left unpublished, each with its reason."""
        return tuple(item for item in self.files if not item.published)

    @property
    def bytes_published(self) -> int:
        """The bytes of the files published."""
        return sum(item.size for item in self.published)


def object_key(target: OffsiteTarget, client: str, key_prefix: str, name: str) -> str:
    """Given a target, client, key prefix (may be empty) and file name, return the object key."""
    middle = f"/{key_prefix}" if key_prefix else ""
    return f"{target.client_prefix(client)}{middle}/{name}"


def _upload_one(
    s3: Any,
    target: OffsiteTarget,
    path: Path,
    key: str,
    retry: RetryPolicy,
    mask: SecretSet,
) -> tuple[FilePublication, bool]:
    """Upload and verify one file; return its publication and whether the endpoint is down."""
    started = time.monotonic()
    try:
        digest = _digest(path)
    except OSError as error:
        reason = f"cannot read {path}: {error.strerror or error}"
        return FilePublication(str(path), key, 0, "", False, reason), False
    if digest.size > MAX_SINGLE_UPLOAD_BYTES:
        reason = f"{path} is larger than a single S3 upload ({MAX_SINGLE_UPLOAD_BYTES} bytes)"
        return FilePublication(str(path), key, digest.size, digest.sha256_hex, False, reason), False
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    reason = ""
    unreachable = False
    permanent = False
    attempt = 0
    for attempt in range(1, retry.attempts + 1):
        try:
            with path.open("rb") as body:
                s3.put_object(
                    Bucket=target.bucket,
                    Key=key,
                    Body=body,
                    ContentLength=digest.size,
                    ContentType=content_type,
                    # The server checks these on receipt (BadDigest otherwise);
                    # head_object below checks what it stored.
                    ContentMD5=digest.md5_base64,
                    ChecksumSHA256=digest.sha256_base64,
                    Metadata={"sha256": digest.sha256_hex},
                )
            head = s3.head_object(Bucket=target.bucket, Key=key, ChecksumMode="ENABLED")
            problem = verification_problem(head, digest.size, digest.md5_hex, digest.sha256_hex)
            if problem is None:
                return FilePublication(
                    str(path),
                    key,
                    digest.size,
                    digest.sha256_hex,
                    True,
                    None,
                    attempt,
                    round(time.monotonic() - started, 3),
                ), False
            reason, unreachable, permanent = problem, False, False
        except Exception as error:
            if not is_s3_failure(error):
                raise
            reason = describe_error(error, target)
            unreachable, permanent = is_unreachable(error), is_permanent(error)
        logger.info(
            "offsite upload of %s failed (attempt %d/%d): %s",
            key,
            attempt,
            retry.attempts,
            mask.mask_text(reason),
        )
        if permanent:
            break
        if attempt < retry.attempts:
            time.sleep(retry.delay(attempt))
    return FilePublication(
        str(path),
        key,
        digest.size,
        digest.sha256_hex,
        False,
        mask.mask_text(reason),
        attempt,
        round(time.monotonic() - started, 3),
    ), unreachable


def _check_names(client: str, key_prefix: str, files: Sequence[Path]) -> None:
    validate_client(client)
    if key_prefix:
        try:
            check_key_path(key_prefix, "key prefix")
        except ValueError as error:
            raise BadInput(str(error)) from None
    names = [path.name for path in files]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BadInput(f"files to publish share names (their keys would clash): {duplicates}")


def publish_files(
    target: OffsiteTarget,
    credentials: OffsiteCredentials,
    client: str,
    files: Sequence[Path],
    key_prefix: str,
    *,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> PublishResult:
    """Given a target, its keys, a client, files and a key prefix (a run id), upload the files.

    Each file goes to ``<prefix><client>/<key_prefix>/<name>`` with its
    Content-MD5, SHA-256 checksum and ``sha256`` metadata, and is verified
    with ``head_object``; a failed upload or verification is tried again
    (``retry``). Return the result, file by file. A network or storage
    failure, or an unreadable file, leaves the file unpublished with a
    reason: it is not raised. Once the endpoint is found unreachable, the
    remaining files are not tried. Raise BadInput if the client or key prefix
    is invalid or two files share a name (nothing is uploaded).
    """
    _check_names(client, key_prefix, files)
    mask = credentials.secret_set()
    s3 = make_s3_client(target, credentials, retry)
    results: list[FilePublication] = []
    unreachable_reason: str | None = None
    for path in files:
        key = object_key(target, client, key_prefix, path.name)
        if unreachable_reason is not None:
            results.append(
                FilePublication(str(path), key, 0, "", False, f"not tried: {unreachable_reason}")
            )
            continue
        publication, unreachable = _upload_one(s3, target, path, key, retry, mask)
        results.append(publication)
        if unreachable:
            unreachable_reason = publication.reason
    return PublishResult(client, target, key_prefix, tuple(results))
