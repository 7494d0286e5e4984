"""Publishing the pending offsite items again, and the command that does it.

:func:`retry_pending` tries every item of the pending file again and records
each outcome; nothing is lost: an item leaves the pending file only after
its publication is in the ledger. :func:`publish_pending_command` reports
item by item and returns the exit status.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from webmg_ops.backups import restic
from webmg_ops.config.s3_credentials import OffsiteCredentials, resolve_credentials
from webmg_ops.errors import BadInput, ExitCode, WebmgError
from webmg_ops.ledger.records import parse_checkpoint
from webmg_ops.offsite.checkpoints import publish_checkpoint
from webmg_ops.offsite.copy import copy_snapshots
from webmg_ops.offsite.pending import (
    PendingItem,
    PendingKind,
    change_pending,
    locked,
    pending_path,
    read_pending,
    utc_now,
)
from webmg_ops.offsite.record import (
    PUBLISHED,
    UNPUBLISHED,
    Recorder,
    checkpoint_payload,
    copy_payload,
    record_drafts,
    summary,
    upload_payloads,
)
from webmg_ops.offsite.retry import DEFAULT_RETRY, RetryPolicy
from webmg_ops.offsite.upload import publish_files
from webmg_ops.secrets import MASK
from webmg_ops.settings import Settings

CredentialsFor = Callable[[PendingItem], OffsiteCredentials]
"""Given a pending item, return its target's keys (raise a WebmgError if there are none)."""
SourceFor = Callable[[PendingItem], restic.Repository]
"""Given a pending copy, return its source repository, password included."""


@dataclass(frozen=True)
class RetryOutcome:
    """What one retry of a pending item did; ``reason`` (masked) when it is still pending."""

    id: str
    client: str
    kind: PendingKind
    run_id: str
    published: bool
    reason: str | None = None


@dataclass(frozen=True)
class RetryReport:
    """What :func:`retry_pending` did, item by item."""

    outcomes: tuple[RetryOutcome, ...]

    @property
    def published(self) -> tuple[RetryOutcome, ...]:
        """The items now published."""
        return tuple(item for item in self.outcomes if item.published)

    @property
    def still_pending(self) -> tuple[RetryOutcome, ...]:
        """The items still pending, each with its reason."""
        return tuple(item for item in self.outcomes if not item.published)

    @property
    def ok(self) -> bool:
        """Whether nothing is left pending."""
        return not self.still_pending


def default_credentials(item: PendingItem) -> OffsiteCredentials:
    """Given a pending item, return its keys from the environment or the credentials file.

    Raise BadInput for a target whose keys are in the vault (the caller must
    decrypt it), and as :func:`resolve_credentials` otherwise.
    """
    return resolve_credentials(item.target)


def default_source(item: PendingItem) -> restic.Repository:
    """Given a pending copy, return its source repository from its location and password file.

    Raise BadInput if the source's password was not in a file, or its
    location held a password: the caller must give the repository.
    """
    if item.source is None or MASK in item.source or item.source_password_file is None:
        raise BadInput(
            f"pending copy {item.id}: the source repository's password is not in a file; "
            "give the repository to retry it"
        )
    return restic.Repository(
        item.source,
        password_file=Path(item.source_password_file),
        cache_dir=Path(item.source_cache_dir) if item.source_cache_dir else None,
        options=item.source_options,
    )


def _retry_upload(
    settings: Settings,
    item: PendingItem,
    credentials: OffsiteCredentials,
    retry: RetryPolicy,
    record: Recorder,
) -> RetryOutcome:
    result = publish_files(
        item.target,
        credentials,
        item.client,
        [Path(path) for path in item.files],
        item.key_prefix,
        retry=retry,
    )
    extra = {"pending_id": item.id, "attempt": item.attempts + 1}
    published, unpublished = upload_payloads(result, item.run_id, extra)
    # The ledger first: the item leaves the pending file only once its
    # publication is recorded.
    record_drafts(record, item.client, [(PUBLISHED, published), (UNPUBLISHED, unpublished)])
    if result.ok:
        change_pending(settings, lambda items: [each for each in items if each.id != item.id])
        return RetryOutcome(item.id, item.client, item.kind, item.run_id, True)
    reason = summary([file.reason for file in result.unpublished])
    remaining = replace(
        item,
        files=tuple(file.path for file in result.unpublished),
        reason=reason,
        last_attempt_at=utc_now(),
        attempts=item.attempts + 1,
    )
    change_pending(
        settings, lambda items: [remaining if each.id == item.id else each for each in items]
    )
    return RetryOutcome(item.id, item.client, item.kind, item.run_id, False, reason)


def _retry_copy(
    settings: Settings,
    item: PendingItem,
    credentials: OffsiteCredentials,
    source: restic.Repository,
    retry: RetryPolicy,
    record: Recorder,
) -> RetryOutcome:
    result = copy_snapshots(
        source,
        item.target,
        credentials,
        item.client,
        snapshot_ids=item.snapshot_ids,
        retry=retry,
        host=item.host,
    )
    extra = {"pending_id": item.id, "attempt": item.attempts + 1}
    record_drafts(
        record,
        item.client,
        [(PUBLISHED if result.ok else UNPUBLISHED, copy_payload(result, item.run_id, extra))],
    )
    if result.ok:
        change_pending(settings, lambda items: [each for each in items if each.id != item.id])
        return RetryOutcome(item.id, item.client, item.kind, item.run_id, True)
    return _still_pending(settings, item, result.reason or "unknown")


def _retry_checkpoint(
    settings: Settings,
    item: PendingItem,
    credentials: OffsiteCredentials,
    retry: RetryPolicy,
    record: Recorder,
) -> RetryOutcome:
    try:
        checkpoint = parse_checkpoint(item.checkpoint or "")
    except BadInput as error:
        return _still_pending(settings, item, f"the pending checkpoint is unreadable: {error}")
    result = publish_checkpoint(
        item.target,
        credentials,
        checkpoint,
        at=item.checkpoint_at or item.first_failed_at,
        client=item.client,
        run_id=item.run_id,
        retry=retry,
    )
    extra = {"pending_id": item.id, "attempt": item.attempts + 1}
    record_drafts(
        record,
        item.client,
        [
            (
                PUBLISHED if result.published else UNPUBLISHED,
                checkpoint_payload(result, item.run_id, extra),
            )
        ],
    )
    if result.published:
        change_pending(settings, lambda items: [each for each in items if each.id != item.id])
        return RetryOutcome(item.id, item.client, item.kind, item.run_id, True)
    return _still_pending(settings, item, result.reason or "unknown")


def _still_pending(settings: Settings, item: PendingItem, reason: str) -> RetryOutcome:
    updated = replace(item, reason=reason, last_attempt_at=utc_now(), attempts=item.attempts + 1)
    change_pending(
        settings, lambda items: [updated if each.id == item.id else each for each in items]
    )
    return RetryOutcome(item.id, item.client, item.kind, item.run_id, False, reason)


def retry_pending(
    settings: Settings,
    *,
    record: Recorder,
    credentials_for: CredentialsFor = default_credentials,
    source_for: SourceFor = default_source,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> RetryReport:
    """Given the settings, try every pending item again and record each outcome through
    ``record`` (the service module's recorder).

    An item published is written to the ledger as ``offsite-published``
    (with its ``pending_id``) and then leaves the pending file; an item
    still failing is written as ``offsite-unpublished`` and stays, with its
    new reason and attempt count. An item whose keys or source cannot be
    had (``credentials_for`` / ``source_for`` raise a WebmgError) stays
    pending with that message, and is not written to the ledger. Items
    added while this runs are kept for the next retry. Return the report.
    Raise Refused if another retry is running, Failed if the pending file is
    unreadable, EnvironmentProblem if the ledger fails.
    """
    file = pending_path(settings)
    outcomes: list[RetryOutcome] = []
    with locked(file.with_name("retry.lock"), wait=False):
        for item in read_pending(settings):
            try:
                credentials = credentials_for(item)
                source = source_for(item) if item.kind == "restic-copy" else None
            except WebmgError as error:
                outcomes.append(_still_pending(settings, item, error.message))
                continue
            if item.kind == "checkpoint":
                outcomes.append(_retry_checkpoint(settings, item, credentials, retry, record))
            elif source is None:
                outcomes.append(_retry_upload(settings, item, credentials, retry, record))
            else:
                outcomes.append(_retry_copy(settings, item, credentials, source, retry, record))
    return RetryReport(tuple(outcomes))


def publish_pending_command(
    settings: Settings,
    *,
    record: Recorder,
    vault_for: Callable[[str], Mapping[str, str] | None] | None = None,
    source_for: SourceFor = default_source,
    echo: Callable[[str], None] | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> int:
    """Given the settings, publish the pending offsite items; return the exit status.

    ``vault_for`` returns a client's decrypted vault variables by name (for
    targets whose keys are in the vault); ``echo`` receives one human line
    per item (default: stderr). Return ``ExitCode.OK`` when nothing is left
    pending, ``ExitCode.FAILED`` otherwise (each attempt is in the ledger).
    Raise Refused if another retry is running, Failed if the pending file is
    unreadable, EnvironmentProblem if the ledger fails.
    """
    say = echo or (lambda line: print(line, file=sys.stderr))

    def credentials_for(item: PendingItem) -> OffsiteCredentials:
        vault = vault_for(item.client) if vault_for is not None else None
        return resolve_credentials(item.target, vault=vault)

    report = retry_pending(
        settings,
        record=record,
        credentials_for=credentials_for,
        source_for=source_for,
        retry=retry,
    )
    if not report.outcomes:
        say("no offsite item is pending")
    for outcome in report.outcomes:
        what = f"{outcome.client} {outcome.kind} of run {outcome.run_id} (pending {outcome.id})"
        say(f"published {what}" if outcome.published else f"still pending {what}: {outcome.reason}")
    return int(ExitCode.OK if report.ok else ExitCode.FAILED)
