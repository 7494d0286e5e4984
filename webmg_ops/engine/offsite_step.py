"""The offsite step after a run: what the client's policy asks to copy to S3.

After a successful real run, a client whose contract names an offsite
target (``backup.offsite``) gets either its snapshots copied into an S3
restic repository (``restic-copy``, after a backup: each host's own
repository into an S3 repository of its own) or the run's reports
uploaded (``reports``, after any run). The run is already recorded when
this starts: whatever happens here is recorded on its own, as
``offsite-published`` or ``offsite-unpublished`` (with the item kept in the
pending file for ``webmg-ops offsite publish``), and never undoes the run.

After every real run, a client with an offsite target also gets the
ledger's checkpoint published there (:func:`checkpoint_after_run`), and
``ledger verify --against-published`` reads back every target's
checkpoints (:func:`read_published_checkpoints`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from webmg_ops.ansible.vault import Vault
from webmg_ops.backups import restic
from webmg_ops.backups.repository import host_repositories
from webmg_ops.config.clients import Client, list_client_names, load_client
from webmg_ops.config.offsite_target import OffsiteTarget
from webmg_ops.config.s3_credentials import OffsiteCredentials, resolve_credentials
from webmg_ops.errors import BadInput, WebmgError
from webmg_ops.ledger import LedgerReader, format_utc
from webmg_ops.offsite.checkpoints import (
    CheckpointPublication,
    PublishedCheckpoint,
    checkpoint_key,
    fetch_checkpoints,
    folder_of,
    publish_checkpoint,
)
from webmg_ops.offsite.copy import CopyResult, copy_snapshots, mask_location
from webmg_ops.offsite.pending import PendingItem
from webmg_ops.offsite.record import Recorder, record_checkpoint, record_copy, record_publication
from webmg_ops.offsite.retry import DEFAULT_RETRY, RetryPolicy
from webmg_ops.offsite.upload import FilePublication, PublishResult, publish_files
from webmg_ops.reports.runlog import HTML_FILE, MARKDOWN_FILE
from webmg_ops.settings import Settings


@dataclass(frozen=True)
class OffsiteStep:
    """What the offsite step did: ``published`` or not, and the pending id if not."""

    kind: str
    published: bool
    pending_id: str | None
    detail: str


def credentials_for(client: Client, target: OffsiteTarget, vault: Vault) -> OffsiteCredentials:
    """Given a client, its target and the command's vault, return the S3 keys.

    Raise BadInput or EnvironmentProblem when they cannot be had.
    """
    held = (
        {key: str(value) for key, value in vault.variables(client.folder).items()}
        if target.credentials == "vault"
        else None
    )
    return resolve_credentials(target, vault=held)


def _sources(
    settings: Settings,
    client: Client,
    vault: Vault,
    hosts: tuple[str, ...] | None = None,
) -> dict[str, restic.Repository]:
    return host_repositories(
        client, vault, hosts=hosts, cache_dir=settings.var_dir / "restic-cache"
    )


def _copy_host(
    settings: Settings,
    client: Client,
    target: OffsiteTarget,
    run_id: str,
    vault: Vault,
    host: str,
    source: restic.Repository,
    record: Recorder,
) -> tuple[CopyResult, str | None]:
    """Copy one host's repository to its S3 repository and record the copy; return the
    result and the id of its pending item (None when it was copied).
    """
    try:
        credentials = credentials_for(client, target, vault)
    except WebmgError as error:
        result = CopyResult(
            client=client.name,
            target=target,
            source=mask_location(source.location),
            repository=target.repository_location(client.name, host),
            reason=error.message,
            host=host,
        )
    else:
        result = copy_snapshots(source, target, credentials, client.name, host=host)
    return result, record_copy(settings, result, run_id, source, record=record)


def _copy(
    settings: Settings,
    client: Client,
    target: OffsiteTarget,
    run_id: str,
    vault: Vault,
    record: Recorder,
    hosts: tuple[str, ...] | None,
) -> OffsiteStep:
    done = {
        host: _copy_host(settings, client, target, run_id, vault, host, source, record)
        for host, source in sorted(_sources(settings, client, vault, hosts).items())
    }
    failed = {host: pair for host, pair in done.items() if not pair[0].ok}
    if not failed:
        copied = sum(len(result.snapshots) for result, _ in done.values())
        detail = f"{copied} snapshot(s) of {len(done)} host(s) in {target.endpoint}"
        return OffsiteStep("restic-copy", True, None, detail)
    return OffsiteStep(
        "restic-copy",
        False,
        ", ".join(str(pending) for _, pending in failed.values()),
        "; ".join(f"{host}: {result.reason}" for host, (result, _) in failed.items()),
    )


def _reports(
    settings: Settings,
    client: Client,
    target: OffsiteTarget,
    run_id: str,
    run_folder: Path,
    vault: Vault,
    record: Recorder,
) -> OffsiteStep:
    files = [run_folder / name for name in (MARKDOWN_FILE, HTML_FILE)]
    files = [file for file in files if file.is_file()]
    try:
        credentials = credentials_for(client, target, vault)
    except WebmgError as error:
        result = PublishResult(
            client=client.name,
            target=target,
            key_prefix=run_id,
            files=tuple(
                FilePublication(str(file), "", 0, "", published=False, reason=error.message)
                for file in files
            ),
        )
    else:
        result = publish_files(target, credentials, client.name, files, run_id)
    pending = record_publication(settings, result, run_id, record=record)
    detail = (
        f"{len(result.published)} report file(s) uploaded"
        if result.ok
        else "; ".join(sorted({str(item.reason) for item in result.unpublished}))
    )
    return OffsiteStep("reports", result.ok, pending, detail)


def offsite_after_run(
    settings: Settings,
    client: Client,
    action: str,
    run_id: str,
    run_folder: Path,
    vault: Vault,
    *,
    record: Recorder,
    hosts: tuple[str, ...] | None = None,
) -> OffsiteStep | None:
    """Given a successful real run, do the offsite copy its client's policy asks for;
    ``record`` writes what was done to the ledger (the engine's).

    ``hosts`` are the hosts the run backed up: a backup copies their repositories
    alone (None: every host's), since another host's may not exist yet, and a copy
    of it would wait in pending for a backup this run never took.
    Return what was done (None when nothing is asked for this action).
    Failures are recorded and returned, not raised; BadInput is raised only
    when the client's repository cannot be opened at all (no vault password).
    """
    target = client.contract.backup.offsite
    if target is None:
        return None
    if target.kind == "restic-copy":
        if action != "backup":
            return None
        return _copy(settings, client, target, run_id, vault, record, hosts)
    return _reports(settings, client, target, run_id, run_folder, vault, record)


def pending_source(settings: Settings, vault: Vault) -> Any:
    """Return a ``source_for`` for retries: a pending copy's client repository, from its
    contract and vault.
    """

    def source_for(item: PendingItem) -> restic.Repository:
        client = load_client(settings.inventories, item.client)
        if item.host is None:
            raise BadInput(
                f"pending copy {item.id}: it names no host, and a client's backups are in "
                "one repository per host; take a new backup, whose copy replaces it"
            )
        return _sources(settings, client, vault, (item.host,))[item.host]

    return source_for


def pending_vault(settings: Settings, vault: Vault) -> Any:
    """Return a ``vault_for`` for retries: a client's decrypted vault variables by name."""

    def vault_for(name: str) -> dict[str, str]:
        client = load_client(settings.inventories, name)
        return {key: str(value) for key, value in vault.variables(client.folder).items()}

    return vault_for


def checkpoint_after_run(
    settings: Settings,
    client: Client,
    run_id: str,
    vault: Vault,
    *,
    history: LedgerReader,
    record: Recorder,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> OffsiteStep | None:
    """Given a run just recorded, publish the ledger's head (read from ``history``) to its
    client's offsite target; ``record`` writes the publication to the ledger.

    Return what was done (None when the client has no offsite target or the
    ledger is empty). A failure to publish is recorded
    (``offsite-unpublished``, the checkpoint kept in the pending file) and
    returned, not raised. Raise EnvironmentProblem if the ledger fails.
    """
    target = client.contract.backup.offsite
    if target is None:
        return None
    head = history.head()
    if head is None:
        return None
    at = format_utc(datetime.now(UTC))
    try:
        credentials = credentials_for(client, target, vault)
    except WebmgError as error:
        key = checkpoint_key(target, head)
        result = CheckpointPublication(
            head, at, client.name, run_id, target, key, False, reason=error.message
        )
    else:
        result = publish_checkpoint(
            target, credentials, head, at=at, client=client.name, run_id=run_id, retry=retry
        )
    pending = record_checkpoint(settings, result, run_id, record=record)
    lock = (
        f"locked ({result.lock_mode}) until {result.locked_until}"
        if result.lock_mode
        else f"not locked: {result.lock_note or 'the server reports no retention'}"
    )
    detail = f"checkpoint {head} at {result.key}, {lock}" if result.published else result.reason
    return OffsiteStep("checkpoint", result.published, pending, str(detail))


@dataclass(frozen=True)
class PublishedCheckpoints:
    """Every checkpoint read back from the offsite targets, and what could not be read.

    ``targets`` describes each target; ``unreadable`` names each target that
    could not be read, and why; ``invalid`` each object of a checkpoints
    folder that is not a valid checkpoint (itself a finding: something else
    wrote there).
    """

    checkpoints: tuple[PublishedCheckpoint, ...]
    targets: tuple[str, ...]
    unreadable: tuple[str, ...]
    invalid: tuple[str, ...]


def _describe(target: OffsiteTarget) -> str:
    return f"{target.endpoint}/{target.bucket}/{folder_of(target)}"


def read_published_checkpoints(
    settings: Settings, vault: Vault, *, retry: RetryPolicy = DEFAULT_RETRY
) -> PublishedCheckpoints:
    """Given the settings, return the checkpoints published on every client's offsite target.

    Targets shared by several clients are read once. A target whose keys
    cannot be had or that cannot be listed is named in ``unreadable``. Raise
    BadInput if a client's contract is invalid.
    """
    targets: dict[str, tuple[Client, OffsiteTarget]] = {}
    for name in list_client_names(settings.inventories):
        client = load_client(settings.inventories, name)
        target = client.contract.backup.offsite
        if target is not None:
            targets.setdefault(_describe(target), (client, target))
    found: list[PublishedCheckpoint] = []
    unreadable: list[str] = []
    invalid: list[str] = []
    for where, (client, target) in sorted(targets.items()):
        try:
            credentials = credentials_for(client, target, vault)
        except WebmgError as error:
            unreadable.append(f"{where}: {error.message}")
            continue
        fetched = fetch_checkpoints(target, credentials, retry=retry)
        if not fetched.ok:
            unreadable.append(f"{where}: {fetched.reason}")
        found.extend(fetched.checkpoints)
        invalid.extend(fetched.problems)
    found.sort(key=lambda item: item.checkpoint.seq)
    return PublishedCheckpoints(
        tuple(found), tuple(sorted(targets)), tuple(unreadable), tuple(invalid)
    )
