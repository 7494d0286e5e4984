"""Ledger checkpoints published to S3, and read back to catch a rewritten history.

Whoever can write the ledger's database (or its SQLite file) can rewrite an
entry and recompute every later hash: the chain alone then looks intact. A
checkpoint (``seq`` and ``hash`` of the head) published off the controller
after every run is what such a rewrite cannot change. Each checkpoint is one
small object, ``<prefix>_ledger/checkpoints/<seq>-<hash>.json`` (a client's
name cannot begin with ``_``, so this never falls inside a client's objects),
written under S3 Object Lock when the bucket has it enabled: then not even
the keys that wrote it can delete or replace it until its retention ends.
Where the endpoint has no object lock, the checkpoint is published all the
same and the result says it is not locked.

:func:`publish_checkpoint` and :func:`fetch_checkpoints` return results; a
network or storage failure is a result, never an exception.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from webmg_ops.config.offsite_target import OffsiteTarget
from webmg_ops.config.s3_credentials import OffsiteCredentials
from webmg_ops.ledger.records import Checkpoint
from webmg_ops.offsite.retry import DEFAULT_RETRY, RetryPolicy
from webmg_ops.offsite.s3 import describe_error, is_permanent, is_s3_failure, make_s3_client
from webmg_ops.offsite.upload import verification_problem

CHECKPOINTS_FOLDER = "_ledger/checkpoints/"
"""Where checkpoints go, under the target's prefix."""
CHECKPOINT_FORMAT = "webmg-ops ledger checkpoint 1"
LOCK_MODE = "COMPLIANCE"
"""Retention mode set when the bucket locks objects but sets no default retention."""
LOCK_RETENTION = timedelta(days=400)
"""How long such a checkpoint is kept locked: past a yearly audit of the previous year."""
MAX_CHECKPOINT_BYTES = 4096
"""A checkpoint object is a few hundred bytes; anything larger is not read."""

_KEY_NAME = re.compile(r"(?P<seq>[0-9]{12})-(?P<hash>[0-9a-f]{64})\.json")
# Answers of get_object_lock_configuration meaning "this bucket or endpoint has no lock".
_NO_LOCK_CODES = frozenset(
    {
        "ObjectLockConfigurationNotFoundError",
        "NotImplemented",
        "InvalidRequest",
        "MethodNotAllowed",
        "XNotImplemented",
    }
)


@dataclass(frozen=True)
class ObjectLock:
    """Whether a bucket locks objects: ``enabled``, with its default rule if it has one."""

    enabled: bool
    default_retention: bool = False
    note: str = ""


@dataclass(frozen=True)
class CheckpointPublication:
    """What publishing one checkpoint did.

    ``locked_until`` and ``lock_mode`` are the retention the server reports
    for the stored object (None: not locked); ``reason`` says why it is not
    published (masked).
    """

    checkpoint: Checkpoint
    at: str
    client: str
    run_id: str
    target: OffsiteTarget
    key: str
    published: bool
    lock_mode: str | None = None
    locked_until: str | None = None
    lock_note: str = ""
    reason: str | None = None
    attempts: int = 0


@dataclass(frozen=True)
class PublishedCheckpoint:
    """A checkpoint read back from S3, and where it was read (``source``, for messages)."""

    checkpoint: Checkpoint
    at: str
    source: str


@dataclass(frozen=True)
class FetchedCheckpoints:
    """The checkpoints read from one target, and the objects that could not be read."""

    target: OffsiteTarget
    checkpoints: tuple[PublishedCheckpoint, ...]
    problems: tuple[str, ...]
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the target was listed (unreadable objects are in ``problems``)."""
        return self.reason is None


def folder_of(target: OffsiteTarget) -> str:
    """Given a target, return the key prefix of its checkpoints."""
    return f"{target.prefix}{CHECKPOINTS_FOLDER}"


def checkpoint_key(target: OffsiteTarget, checkpoint: Checkpoint) -> str:
    """Given a target and a checkpoint, return its object key (seq zero-padded, so keys sort)."""
    return f"{folder_of(target)}{checkpoint.seq:012d}-{checkpoint.hash}.json"


def checkpoint_body(checkpoint: Checkpoint, at: str, client: str, run_id: str) -> bytes:
    """Return the object's content: canonical JSON of the checkpoint and the run it follows."""
    document = {
        "format": CHECKPOINT_FORMAT,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "at": at,
        "client": client,
        "run_id": run_id,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def find_object_lock(s3: Any, bucket: str) -> ObjectLock:
    """Given an S3 client and a bucket, return whether the bucket locks new objects.

    An endpoint that does not know object lock answers like a bucket without
    it; keys not allowed to read the setting are told so, and the object is
    then sent without retention of its own (a bucket's default retention
    still applies, and ``head_object`` reports it). Raise the S3 error for
    anything else (unreachable, server errors).
    """
    from botocore.exceptions import ClientError

    try:
        answer = s3.get_object_lock_configuration(Bucket=bucket)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _NO_LOCK_CODES or status in (404, 405, 501):
            return ObjectLock(False, note=f"the bucket has no object lock ({code or status})")
        if status == 403:
            return ObjectLock(False, note="the keys may not read the bucket's object lock setting")
        raise
    configuration = answer.get("ObjectLockConfiguration") or {}
    if configuration.get("ObjectLockEnabled") != "Enabled":
        return ObjectLock(False, note="object lock is not enabled on the bucket")
    default = bool((configuration.get("Rule") or {}).get("DefaultRetention"))
    return ObjectLock(True, default_retention=default)


def _lock_arguments(lock: ObjectLock, now: datetime) -> dict[str, Any]:
    # A bucket's default retention applies by itself; without one, ask for ours.
    if not lock.enabled or lock.default_retention:
        return {}
    return {"ObjectLockMode": LOCK_MODE, "ObjectLockRetainUntilDate": now + LOCK_RETENTION}


def _put_once(
    s3: Any, target: OffsiteTarget, key: str, body: bytes
) -> tuple[dict[str, Any], ObjectLock]:
    md5 = hashlib.md5(body, usedforsecurity=False)
    sha256 = hashlib.sha256(body)
    lock = find_object_lock(s3, target.bucket)
    s3.put_object(
        Bucket=target.bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        ContentMD5=base64.b64encode(md5.digest()).decode(),
        ChecksumSHA256=base64.b64encode(sha256.digest()).decode(),
        Metadata={"sha256": sha256.hexdigest()},
        **_lock_arguments(lock, datetime.now(UTC)),
    )
    head = s3.head_object(Bucket=target.bucket, Key=key, ChecksumMode="ENABLED")
    problem = verification_problem(head, len(body), md5.hexdigest(), sha256.hexdigest())
    if problem is not None:
        raise _Unverified(problem)
    return head, lock


class _Unverified(Exception):
    """The stored checkpoint is not what was sent."""


def publish_checkpoint(
    target: OffsiteTarget,
    credentials: OffsiteCredentials,
    checkpoint: Checkpoint,
    *,
    at: str,
    client: str,
    run_id: str,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> CheckpointPublication:
    """Given a target, its keys, a checkpoint and the run it follows, publish the checkpoint.

    The object is sent with its Content-MD5 and SHA-256, under object lock
    when the bucket has it, and verified with ``head_object``; a failure is
    tried again (``retry``). Return the publication; a network or storage
    failure leaves it unpublished with a masked reason, never raised.
    """
    key = checkpoint_key(target, checkpoint)
    body = checkpoint_body(checkpoint, at, client, run_id)
    mask = credentials.secret_set()
    s3 = make_s3_client(target, credentials, retry)
    publication = functools.partial(
        CheckpointPublication, checkpoint, at, client, run_id, target, key
    )
    reason = "not tried"
    attempt = 0
    for attempt in range(1, retry.attempts + 1):
        try:
            head, lock = _put_once(s3, target, key, body)
        except _Unverified as problem:
            reason = str(problem)
        except Exception as error:
            if not is_s3_failure(error):
                raise
            reason = describe_error(error, target)
            if is_permanent(error):
                break
        else:
            until = head.get("ObjectLockRetainUntilDate")
            return publication(
                True,
                lock_mode=head.get("ObjectLockMode"),
                locked_until=until.astimezone(UTC).isoformat() if until is not None else None,
                lock_note=lock.note,
                attempts=attempt,
            )
        if attempt < retry.attempts:
            time.sleep(retry.delay(attempt))
    return publication(False, reason=mask.mask_text(reason), attempts=attempt)


def _read_one(s3: Any, target: OffsiteTarget, key: str, version: str | None) -> PublishedCheckpoint:
    """Read one checkpoint object (one version of it); raise ValueError if it is not one."""
    name = key.removeprefix(folder_of(target))
    match = _KEY_NAME.fullmatch(name)
    if match is None:
        raise ValueError("its name is not <seq>-<hash>.json")
    which = {"VersionId": version} if version else {}
    answer = s3.get_object(
        Bucket=target.bucket, Key=key, Range=f"bytes=0-{MAX_CHECKPOINT_BYTES}", **which
    )
    document = json.loads(answer["Body"].read(MAX_CHECKPOINT_BYTES + 1))
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise ValueError("it is not a webmg-ops ledger checkpoint")
    seq, hash_ = document.get("seq"), document.get("hash")
    # The name and the content must agree: either alone could have been forged.
    if seq != int(match["seq"]) or hash_ != match["hash"]:
        raise ValueError("its content names another checkpoint than its key")
    return PublishedCheckpoint(
        Checkpoint(seq, hash_), str(document.get("at", "")), f"s3://{target.bucket}/{key}"
    )


#: (key, version id or None) of each stored object, and the keys a delete marker hides.
_Listing = tuple[list[tuple[str, str | None]], list[str]]


def _list_versions(s3: Any, target: OffsiteTarget) -> _Listing | None:
    """List every version under the checkpoints folder; None if the endpoint has no versions.

    Versions matter: on a versioned (object-locked) bucket a plain DELETE
    only adds a delete marker, which hides the locked checkpoint from a
    plain listing though it is still there.
    """
    from botocore.exceptions import ClientError

    objects: list[tuple[str, str | None]] = []
    hidden: list[str] = []
    try:
        pages = s3.get_paginator("list_object_versions").paginate(
            Bucket=target.bucket, Prefix=folder_of(target)
        )
        for page in pages:
            for item in page.get("Versions") or ():
                version = item.get("VersionId")
                objects.append((str(item["Key"]), None if version in (None, "null") else version))
            hidden.extend(
                str(item["Key"]) for item in page.get("DeleteMarkers") or () if item.get("IsLatest")
            )
    except ClientError as error:
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if status in (400, 404, 405, 501):
            return None
        raise
    return objects, hidden


def _list_objects(s3: Any, target: OffsiteTarget) -> _Listing:
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=target.bucket, Prefix=folder_of(target)
    )
    return [(str(item["Key"]), None) for page in pages for item in page.get("Contents") or ()], []


def fetch_checkpoints(
    target: OffsiteTarget, credentials: OffsiteCredentials, *, retry: RetryPolicy = DEFAULT_RETRY
) -> FetchedCheckpoints:
    """Given a target and its keys, return every checkpoint published there, in seq order.

    Every version of every object is read where the endpoint keeps
    versions. An object that is not a valid checkpoint, and a checkpoint
    hidden by a delete marker, is listed in ``problems`` (each is itself a
    finding). A target that cannot be listed gives a result with a masked
    ``reason``, never an exception.
    """
    mask = credentials.secret_set()
    s3 = make_s3_client(target, credentials, retry)
    found: list[PublishedCheckpoint] = []
    problems: list[str] = []
    try:
        objects, hidden = _list_versions(s3, target) or _list_objects(s3, target)
        problems.extend(
            f"s3://{target.bucket}/{key}: a delete marker hides this checkpoint "
            "(someone tried to delete it)"
            for key in sorted(set(hidden))
        )
        for key, version in objects:
            try:
                found.append(_read_one(s3, target, key, version))
            except (ValueError, TypeError, UnicodeDecodeError) as problem:
                problems.append(f"s3://{target.bucket}/{key}: {problem}")
    except Exception as error:
        if not is_s3_failure(error):
            raise
        return FetchedCheckpoints(target, (), (), mask.mask_text(describe_error(error, target)))
    found.sort(key=lambda item: item.checkpoint.seq)
    return FetchedCheckpoints(target, tuple(found), tuple(problems))
