"""Copying a client's restic snapshots into an S3 restic repository.

:func:`copy_snapshots` runs ``restic copy`` from the source repository into
``s3:<endpoint>/<bucket>/<prefix><client>``, creating it if needed, and
checks that every snapshot arrived; a network, storage or restic failure is
a result with a masked reason, never an exception.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from webmg_ops.backups import restic
from webmg_ops.config.offsite_target import OffsiteTarget
from webmg_ops.config.s3_credentials import OffsiteCredentials
from webmg_ops.ledger.records import validate_client
from webmg_ops.offsite.retry import DEFAULT_RETRY, RetryPolicy
from webmg_ops.offsite.s3 import describe_error, is_s3_failure, make_s3_client
from webmg_ops.secrets import MASK, SecretSet


@dataclass(frozen=True)
class CopyResult:
    """What :func:`copy_snapshots` did.

    ``source`` is the source's location (any URL password masked),
    ``repository`` the S3 repository's; ``snapshot_ids`` those asked for
    (empty: all). ``snapshots`` are the source snapshots now present in the
    S3 repository, ``copied`` the ids of the snapshots this copy created
    there, ``missing`` the source snapshots still absent. ``reason`` (masked)
    says why the copy is unpublished; None when it is published.
    """

    client: str
    target: OffsiteTarget
    source: str
    repository: str
    snapshot_ids: tuple[str, ...] = ()
    #: The backed-up host whose own repository is copied (None: a client-wide repository).
    host: str | None = None
    snapshots: tuple[str, ...] = ()
    copied: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    initialised: bool = False
    checked: bool = False
    seconds: float = 0.0
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the copy is published: every source snapshot is in the S3 repository."""
        return self.reason is None


def _s3_options(target: OffsiteTarget) -> tuple[str, ...]:
    # restic otherwise asks the server for the bucket's region, and picks the
    # addressing style from the host name; say both, as boto3 does.
    return (f"s3.region={target.region}", "s3.bucket-lookup=path")


def mask_location(location: str) -> str:
    """Given a restic repository location, return it with any password in a URL masked."""
    _scheme, separator, rest = location.partition(":")
    url = rest if separator and "://" in rest else location
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return location
    if not password:
        return location
    return location.replace(f":{password}@", f":{MASK}@")


def _snapshot_origins(repository: restic.Repository) -> dict[str, str]:
    """Return each snapshot's id mapped to the id of the snapshot it was copied from (or itself)."""
    done = restic.run_restic(repository, ["snapshots", "--json"], command="snapshots")
    return {
        str(item["id"]): str(item.get("original") or item["id"])
        for item in json.loads(done.stdout or "[]")
    }


def _repository_exists(
    target: OffsiteTarget,
    credentials: OffsiteCredentials,
    client: str,
    retry: RetryPolicy,
    host: str | None = None,
) -> bool:
    """Return whether the client's (host's) S3 repository has its config.

    Raise botocore's errors.
    """
    from botocore.exceptions import ClientError

    s3 = make_s3_client(target, credentials, retry)
    try:
        s3.head_object(Bucket=target.bucket, Key=f"{target.repository_prefix(client, host)}/config")
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(error.response.get("Error", {}).get("Code", ""))
        if status == 404 or code in ("404", "NoSuchKey", "NoSuchBucket"):
            return False
        raise
    return True


def copy_snapshots(
    source: restic.Repository,
    target: OffsiteTarget,
    credentials: OffsiteCredentials,
    client: str,
    *,
    snapshot_ids: Sequence[str] = (),
    check: bool = True,
    timeout: float = restic.DEFAULT_TIMEOUT_S,
    retry: RetryPolicy = DEFAULT_RETRY,
    host: str | None = None,
) -> CopyResult:
    """Given a source repository, a target and its keys, copy the client's snapshots to S3.

    The S3 repository is ``s3:<endpoint>/<bucket>/<prefix><client>``, or
    ``.../<client>/<host>`` for a host's own repository, and has
    the same password as the source (same password file, or same password);
    if it does not exist yet it is created with the source's chunker
    parameters, so that copies deduplicate. All snapshots are copied, or
    only ``snapshot_ids``; restic skips those already there. Then every
    source snapshot must be found in the S3 repository (by restic's
    ``original`` id), and with ``check`` the S3 repository's structure is
    checked. The source's ``environment`` and ``options`` (``-o``, such as
    ``sftp.command``) are passed on; the target's keys override the source's
    AWS variables, since restic 0.14 reads one set for both repositories.

    Return the result; a network, storage or restic failure is a result
    with a reason, not an exception. Raise BadInput if the client is
    invalid, EnvironmentProblem if restic is missing or the source has no
    password.
    """
    validate_client(client)
    started = time.monotonic()
    location = target.repository_location(client, host)
    mask = credentials.secret_set().union(SecretSet.of((source.password,)))
    source_env = source.env()  # EnvironmentProblem when the source has no password
    from_environment = {"RESTIC_FROM_REPOSITORY": source.location}
    if source.password_file is not None:
        from_environment["RESTIC_FROM_PASSWORD_FILE"] = source_env["RESTIC_PASSWORD_FILE"]
    else:
        from_environment["RESTIC_FROM_PASSWORD"] = source_env["RESTIC_PASSWORD"]
    destination = restic.Repository(
        location,
        password_file=source.password_file,
        password=source.password,
        environment={**source.environment, **credentials.environment()},
        cache_dir=source.cache_dir,
        # restic applies -o options to both repositories of a copy.
        options=(*source.options, *_s3_options(target)),
    )
    with_source = replace(destination, environment={**destination.environment, **from_environment})
    result = CopyResult(
        client, target, mask_location(source.location), location, tuple(snapshot_ids), host=host
    )
    initialised = False
    checked = False
    try:
        if not _repository_exists(target, credentials, client, retry, host):
            restic.run_restic(with_source, ["init", "--copy-chunker-params"], command="init")
            initialised = True
        source_origins = _snapshot_origins(source)
        wanted = [
            snapshot
            for snapshot in source_origins
            if not snapshot_ids or any(snapshot.startswith(given) for given in snapshot_ids)
        ]
        unknown = [
            given for given in snapshot_ids if not any(s.startswith(given) for s in source_origins)
        ]
        # A repository just created holds nothing: spare restic's key derivation.
        before = {} if initialised else _snapshot_origins(destination)
        if wanted:
            restic.run_restic(with_source, ["copy", *wanted], command="copy", timeout=timeout)
        after = _snapshot_origins(destination)
        present_origins = set(after.values())
        present = tuple(s for s in wanted if source_origins[s] in present_origins)
        missing = tuple(s for s in wanted if source_origins[s] not in present_origins)
        if check:
            restic.run_restic(destination, ["check"], command="check", timeout=timeout)
            checked = True
    except restic.ResticError as error:
        return replace(
            result,
            initialised=initialised,
            seconds=round(time.monotonic() - started, 3),
            reason=mask.mask_text(str(error)),
        )
    except Exception as error:
        if not is_s3_failure(error):
            raise
        return replace(
            result,
            initialised=initialised,
            seconds=round(time.monotonic() - started, 3),
            reason=mask.mask_text(describe_error(error, target)),
        )
    reason: str | None = None
    if unknown:
        reason = f"snapshots not found in the source repository: {unknown}"
    elif missing:
        reason = f"snapshots missing from the S3 repository after the copy: {list(missing)}"
    return replace(
        result,
        snapshots=present,
        copied=tuple(sorted(set(after) - set(before))),
        missing=missing + tuple(unknown),
        initialised=initialised,
        checked=checked,
        seconds=round(time.monotonic() - started, 3),
        reason=reason,
    )
