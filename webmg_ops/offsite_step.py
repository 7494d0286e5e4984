"""The offsite step after a run: what the client's policy asks to copy to S3.

After a successful real run, a client whose contract names an offsite
target (``backup.offsite``) gets either its snapshots copied into an S3
restic repository (``restic-copy``, after a backup: each host's own
repository into an S3 repository of its own) or the run's reports
uploaded (``reports``, after any run). The run is already recorded when
this starts: whatever happens here is recorded on its own, as
``offsite-published`` or ``offsite-unpublished`` (with the item kept in the
pending file for ``webmg-ops offsite publish``), and never undoes the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmg_ops import restic
from webmg_ops.backup_repository import host_repositories
from webmg_ops.clients import Client, load_client
from webmg_ops.errors import BadInput, WebmgError
from webmg_ops.offsite.copy import CopyResult, copy_snapshots, mask_location
from webmg_ops.offsite.credentials import OffsiteCredentials, resolve_credentials
from webmg_ops.offsite.pending import PendingItem
from webmg_ops.offsite.record import record_copy, record_publication
from webmg_ops.offsite.target import OffsiteTarget
from webmg_ops.offsite.upload import FilePublication, PublishResult, publish_files
from webmg_ops.reports.runlog import HTML_FILE, MARKDOWN_FILE
from webmg_ops.settings import Settings
from webmg_ops.vault import client_vault_variables, read_vault_password


@dataclass(frozen=True)
class OffsiteStep:
    """What the offsite step did: ``published`` or not, and the pending id if not."""

    kind: str
    published: bool
    pending_id: str | None
    detail: str


def _vault_values(client: Client, vault_password_file: Path | None) -> dict[str, Any]:
    return client_vault_variables(client.folder, read_vault_password(vault_password_file))


def credentials_for(
    client: Client, target: OffsiteTarget, vault_password_file: Path | None
) -> OffsiteCredentials:
    """Given a client, its target and the vault password file, return the S3 keys.

    Raise BadInput or EnvironmentProblem when they cannot be had.
    """
    vault = (
        {key: str(value) for key, value in _vault_values(client, vault_password_file).items()}
        if target.credentials == "vault"
        else None
    )
    return resolve_credentials(target, vault=vault)


def _sources(
    settings: Settings,
    client: Client,
    vault_file: Path | None,
    hosts: tuple[str, ...] | None = None,
) -> dict[str, restic.Repository]:
    return host_repositories(
        client, vault_file, hosts=hosts, cache_dir=settings.var_dir / "restic-cache"
    )


def _copy_host(
    settings: Settings,
    client: Client,
    target: OffsiteTarget,
    run_id: str,
    vault: Path | None,
    host: str,
    source: restic.Repository,
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
    return result, record_copy(settings, result, run_id, source)


def _copy(
    settings: Settings, client: Client, target: OffsiteTarget, run_id: str, vault: Path | None
) -> OffsiteStep:
    done = {
        host: _copy_host(settings, client, target, run_id, vault, host, source)
        for host, source in sorted(_sources(settings, client, vault).items())
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
    vault: Path | None,
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
    pending = record_publication(settings, result, run_id)
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
    vault_password_file: Path | None,
) -> OffsiteStep | None:
    """Given a successful real run, do the offsite copy its client's policy asks for.

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
        return _copy(settings, client, target, run_id, vault_password_file)
    return _reports(settings, client, target, run_id, run_folder, vault_password_file)


def pending_source(settings: Settings, vault_password_file: Path | None) -> Any:
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
        return _sources(settings, client, vault_password_file, (item.host,))[item.host]

    return source_for


def pending_vault(settings: Settings, vault_password_file: Path | None) -> Any:
    """Return a ``vault_for`` for retries: a client's decrypted vault variables by name."""

    def vault_for(name: str) -> dict[str, str]:
        client = load_client(settings.inventories, name)
        values = _vault_values(client, vault_password_file)
        return {key: str(value) for key, value in values.items()}

    return vault_for
