"""The ``backup`` action: verified restic backups of a client's hosts.

The contract names what is saved (``backup.paths``, ``backup.databases``)
and where (``backup.repository``: a folder on the agency's backup target
over SFTP, or an S3 bucket, in which each host has a repository of its own
with a password of its own); the policy decides how long snapshots are kept
(``backup.retention``) and how fast the repository's data is re-read
(``cadence.backup`` and ``cadence.drill``). All of it travels to
``playbooks/backup.yml`` as extra vars; the repository password stays in
the client's vault. This module plans those vars, applies the retention
and checks each host's repository from the controller after the play (a
host can only add snapshots: see :mod:`webmg_ops.backups.maintenance`),
and turns it all into snapshots per host, the retention applied and the
check of the repositories.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from webmg_ops.actions.base import Action, ActionOutcome, RunContext, ungoverned_vars
from webmg_ops.ansible.runner import PlaybookResult
from webmg_ops.ansible.vault import Vault
from webmg_ops.backups.export_check import check_exports
from webmg_ops.backups.maintenance import (
    MaintenancePlan,
    maintain_repositories,
    repository_evidence,
)
from webmg_ops.backups.repository import host_repositories, target_known_hosts
from webmg_ops.backups.restic import Repository
from webmg_ops.config.contract import RETENTION_PERIODS, DonorExport, Retention
from webmg_ops.config.repository_location import SftpLocation, parse_repository_location
from webmg_ops.errors import BadInput, WebmgError
from webmg_ops.remote.preflight import HostPreflight
from webmg_ops.runs.records import ResidualRisk, RunRequest

if TYPE_CHECKING:
    from webmg_ops.config.clients import Client

PLAYBOOK = "backup.yml"

#: The tag of every snapshot the action takes; forget only touches snapshots carrying it.
SNAPSHOT_TAG = "webmg"

#: Each client's account on the backup target is this prefix and the client's name (the
#: role's backup_target_user_prefix): an account shared by two clients would let one
#: client's hosts reach the other's repositories.
TARGET_USER_PREFIX = "restic-"

#: Extra vars that the contract and policy set; a run may not set them itself (retention
#: and the check's subset are applied from the controller, and refused here all the same).
GOVERNED_VARS = frozenset(
    {
        "backup_client",
        "backup_repository",
        "backup_target_known_hosts",
        "backup_paths",
        "backup_databases",
        "backup_retention",
        "backup_forget_arguments",
        "backup_check_subset",
        "backup_tag",
        "backup_timer",
        "backup_restic_password",
    }
)


# --- planning -----------------------------------------------------------


def forget_arguments(retention: Retention, tag: str = SNAPSHOT_TAG) -> list[str]:
    """Given a retention, return the arguments of ``restic forget`` that apply it.

    Snapshots are grouped by host only (a path added later does not start
    a new group that would never be pruned), and only snapshots carrying
    ``tag`` are considered. Raise BadInput for a retention that keeps nothing.
    """
    arguments: list[str] = []
    for period in RETENTION_PERIODS:
        count = int(getattr(retention, period))
        if count > 0:
            arguments += [f"--keep-{period}", str(count)]
    if not arguments:
        raise BadInput("the backup retention keeps no snapshot")
    return [*arguments, "--group-by", "host", "--tag", tag]


def check_subset(
    backup_every: timedelta | None, drill_every: timedelta | None, now: datetime
) -> str:
    """Given the backup and drill cadences and the time, return ``restic check``'s data subset.

    With N = ceil(drill cadence / backup cadence) subsets, a backup at
    ``now`` reads subset i = floor(now / backup cadence) mod N + 1, so
    consecutive backups read consecutive subsets and every pack is read at
    least once within a drill cadence. "1/1" (all data) without cadences.
    """
    if not backup_every or not drill_every or backup_every <= timedelta(0):
        return "1/1"
    total = max(1, math.ceil(drill_every / backup_every))
    slot = math.floor(now.timestamp() / backup_every.total_seconds())
    return f"{slot % total + 1}/{total}"


def make_extra_vars(
    client: Client,
    hosts: Sequence[str],
    request: RunRequest,
    now: datetime | None = None,
    *,
    vault: Vault | None = None,
) -> dict[str, Any]:
    """Given a client, the run's hosts and the request, return the play's extra vars.

    Paths, databases, repository and timer come from the contract (the
    retention and the check are the controller's: :func:`maintenance_plan`).
    Raise BadInput if the request
    sets a governed var, or the contract names no paths, no repository
    restic can reach (SFTP or S3), or an SFTP account not the client's own.
    """
    requested = ungoverned_vars(request, GOVERNED_VARS)
    backup = client.contract.backup
    if not backup.repository:
        raise BadInput(f"{client.name}: the contract names no backup.repository")
    try:
        location = parse_repository_location(backup.repository)
    except ValueError as error:
        raise BadInput(f"{client.name}: {error}") from None
    account = f"{TARGET_USER_PREFIX}{client.name}"
    if isinstance(location, SftpLocation) and location.user != account:
        raise BadInput(
            f"{client.name}: backup.repository logs in as {location.user!r} on the backup "
            f"target; each client has an account of its own there: {account!r}"
        )
    if not backup.paths:
        raise BadInput(f"{client.name}: the contract names no backup.paths")
    return {
        **requested,
        "backup_client": client.name,
        # The agency's known_hosts: the target's host key, pinned on each host.
        "backup_target_known_hosts": str(target_known_hosts(client).resolve()),
        "backup_repository": backup.repository,
        "backup_paths": list(backup.paths),
        "backup_databases": [
            {
                "name": database.name,
                "engine": database.engine,
                "host_group": database.host_group,
                **({"path": database.path} if database.path else {}),
            }
            for database in backup.databases
        ],
        "backup_tag": SNAPSHOT_TAG,
        "backup_timer": backup.timer or "",
    }


def maintenance_plan(client: Client, now: datetime | None = None) -> MaintenancePlan:
    """Given a client (and the time), return what the controller applies to each host's
    repository after a backup: the policy's retention and this run's data subset to check.

    Raise BadInput for a retention that keeps nothing.
    """
    return MaintenancePlan(
        forget_arguments=tuple(forget_arguments(client.policy.retention)),
        check_subset=check_subset(
            client.policy.cadence("backup"),
            client.policy.cadence("drill"),
            now or datetime.now(UTC),
        ),
    )


#: Given hosts, return each one's repository as the controller opens it (WebmgError if it cannot).
RepositoryOpener = Callable[[tuple[str, ...]], Mapping[str, Repository]]


@dataclass(frozen=True)
class Before:
    """What the action knows before the play: which run hosts are backed up, and how the
    controller maintains their repositories afterwards (no plan: nothing is maintained).
    """

    client: str
    check: bool
    backed_up: tuple[str, ...]
    repository: str
    plan: MaintenancePlan | None = None
    open_repositories: RepositoryOpener | None = None
    #: Whether the backup checks the contract's export (policy ``checks.donor_export``, or a
    #: contract that names one), which export, and the backed-up hosts that must hold it.
    export_checked: bool = False
    export: DonorExport | None = None
    export_hosts: tuple[str, ...] = ()


def before_play(context: RunContext, hosts: tuple[str, ...]) -> Before:
    """Given the run and the hosts it backs up, return them and the plan and access with
    which their repositories are maintained.
    """
    client, request = context.client, context.request

    def open_repositories(names: tuple[str, ...]) -> Mapping[str, Repository]:
        return host_repositories(
            client,
            context.vault,
            hosts=names,
            cache_dir=context.settings.var_dir / "restic-cache",
        )

    export = client.contract.backup.donor_export
    return Before(
        client=client.name,
        check=request.check,
        backed_up=tuple(hosts),
        repository=client.contract.backup.repository or "",
        plan=None if request.check else maintenance_plan(client),
        open_repositories=open_repositories,
        export_checked=export is not None or bool(client.policy.get("checks.donor_export")),
        export=export,
        export_hosts=export_hosts(client, hosts),
    )


def export_hosts(client: Client, hosts: Sequence[str]) -> tuple[str, ...]:
    """Given a client and the hosts a run backs up, return those that must hold the
    contract's export: the hosts of its ``host_group`` among them (all without a group)."""
    export = client.contract.backup.donor_export
    if export is None or export.host_group is None:
        return tuple(hosts)
    groups = {host.name: host.groups for host in client.hosts}
    return tuple(host for host in hosts if export.host_group in groups.get(host, ()))


# --- evidence -----------------------------------------------------------


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int | float):
        return value
    try:
        number = float(str(value))
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def host_evidence(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Shape one host's raw play output as the run log and the restore drill read it."""
    files = raw.get("files") or {}
    databases = [
        {
            "name": item.get("name"),
            "engine": item.get("engine"),
            "dump": item.get("dump"),
            "bytes": _number(item.get("bytes")),
            "row_counts": {
                str(table): _number(count)
                for table, count in (item.get("row_counts") or {}).items()
            },
        }
        for item in raw.get("databases") or []
        if isinstance(item, Mapping)
    ]
    return {
        "check": bool(raw.get("check")),
        "snapshot_id": raw.get("snapshot_id") or None,
        "tag": raw.get("tag") or SNAPSHOT_TAG,
        "partial": bool(raw.get("partial")),
        "paths": list(raw.get("paths") or []),
        "missing_paths": list(raw.get("missing_paths") or []),
        "files": {
            key: _number(files.get(key)) for key in ("new", "changed", "unmodified", "total")
        },
        "bytes_added": _number(raw.get("bytes_added")),
        "total_bytes": _number(raw.get("total_bytes")),
        "duration_s": _number(raw.get("duration_s")),
        "manifest": raw.get("manifest") or None,
        "manifest_files": _number(raw.get("manifest_files")),
        "manifest_bytes": _number(raw.get("manifest_bytes")),
        "databases": databases,
        "initialized": bool(raw.get("initialized")),
        "stale_locks_removed": list(raw.get("stale_locks_removed") or []),
        "timer": timer_evidence(raw.get("timer")),
    }


def timer_evidence(raw: Any) -> dict[str, Any]:
    """Shape what the play says of the host's timer: its schedule, and the runs it made
    since the last backup run (each: when, snapshot, whether it succeeded, error)."""
    timer = raw if isinstance(raw, Mapping) else {}
    runs = [
        {
            "at": run.get("at"),
            "ok": bool(run.get("ok")),
            "skipped": bool(run.get("skipped")),
            "snapshot_id": run.get("snapshot_id") or None,
            "bytes_added": _number(run.get("bytes_added")),
            "duration_s": _number(run.get("duration_s")),
            "error": run.get("error") or None,
        }
        for run in timer.get("runs") or []
        if isinstance(run, Mapping)
    ]
    return {"schedule": timer.get("schedule") or None, "runs": runs}


def combined_repository_evidence(
    repositories: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any] | None:
    """Given each host's shaped repository evidence, return the client's in the same shape:
    snapshots kept and removed summed, the check ok only if every host's check is, its
    errors named by host, the longest check's duration.
    """
    if not repositories:
        return None
    ordered = sorted(repositories.items())
    kept = [item for _, evidence in ordered for item in evidence["forget"]["kept_ids"]]
    removed = [item for _, evidence in ordered for item in evidence["forget"]["removed_ids"]]
    durations = [e["check"]["duration_s"] for _, e in ordered if e["check"]["duration_s"]]
    return {
        "initialized": any(evidence["initialized"] for _, evidence in ordered),
        "forget": {
            "arguments": ordered[0][1]["forget"]["arguments"],
            "kept": len(kept),
            "removed": len(removed),
            "kept_ids": kept,
            "removed_ids": removed,
        },
        "check": {
            "ok": all(evidence["check"]["ok"] for _, evidence in ordered),
            "subset": ordered[0][1]["check"]["subset"],
            "duration_s": max(durations) if durations else None,
            "errors": [
                f"{host}: {error}"
                for host, evidence in ordered
                for error in evidence["check"]["errors"]
            ],
        },
    }


def full_snapshot_id(snapshot_id: str | None, known: Sequence[str]) -> str | None:
    """Given a snapshot id (short or full) and full ids, return the full id it names (or itself)."""
    if not snapshot_id:
        return None
    return next((item for item in known if item.startswith(snapshot_id)), snapshot_id)


def _risks(
    before: Before, hosts: Mapping[str, Mapping[str, Any]], repository: Mapping[str, Any] | None
) -> list[ResidualRisk]:
    risks = []
    for host in before.backed_up:
        evidence = hosts.get(host)
        if evidence is None or not evidence["snapshot_id"]:
            risks.append(ResidualRisk(host, "no backup taken", "the host's backup did not finish"))
            continue
        if evidence["partial"]:
            risks.append(
                ResidualRisk(host, "partial backup", "some files could not be read (restic exit 3)")
            )
    if repository is None:
        if before.backed_up:
            risks.append(
                ResidualRisk(None, "repository not checked", "retention and check did not run")
            )
    elif not repository["check"]["ok"]:
        risks.append(
            ResidualRisk(
                None,
                "repository check failed",
                "; ".join(repository["check"]["errors"]) or "restic check failed",
            )
        )
    return risks


def _summary(
    before: Before, hosts: Mapping[str, Mapping[str, Any]], repository: Mapping[str, Any] | None
) -> str:
    taken = [host for host in before.backed_up if (hosts.get(host) or {}).get("snapshot_id")]
    added = sum(int(evidence["bytes_added"] or 0) for evidence in hosts.values())
    text = (
        f"{len(taken)}/{len(before.backed_up)} host(s) backed up, "
        f"{added / 1e6:.1f} MB added to {before.repository}"
    )
    if repository is not None:
        check = repository["check"]
        text += (
            f"; check {check['subset'] or 'structure'} {'ok' if check['ok'] else 'FAILED'}; "
            f"{repository['forget']['kept']} snapshot(s) kept, "
            f"{repository['forget']['removed']} removed"
        )
    removed = sum(len(evidence["stale_locks_removed"]) for evidence in hosts.values())
    if removed:
        text += f"; {removed} stale lock(s) removed"
    return text


@dataclass(frozen=True)
class Opened:
    """The repositories of the hosts that took a snapshot, as the controller opened them
    (``error``: why they could not be opened; then ``repositories`` is empty)."""

    names: tuple[str, ...]
    repositories: Mapping[str, Repository]
    error: str | None = None


def open_snapshot_repositories(before: Before, hosts: Mapping[str, Mapping[str, Any]]) -> Opened:
    """Given what was known before the play and each host's evidence, open the repository
    of every host that took a snapshot (none in a dry run). Never raises: a repository the
    controller cannot open is an error in the result.
    """
    if before.check or before.open_repositories is None:
        return Opened((), {})
    names = tuple(host for host in before.backed_up if (hosts.get(host) or {}).get("snapshot_id"))
    if not names:
        return Opened((), {})
    try:
        return Opened(names, before.open_repositories(names))
    except WebmgError as error:
        return Opened(names, {}, str(error))


def maintain(
    before: Before, hosts: Mapping[str, Mapping[str, Any]], opened: Opened
) -> dict[str, dict[str, Any]]:
    """Given what was known before the play, each host's evidence and their opened
    repositories, apply the retention to and check the repository of every host that took
    a snapshot; return each one's evidence.

    A repository the controller cannot open is a failed check, never an exception.
    """
    if before.plan is None or not opened.names:
        return {}
    initialized = {host: bool(hosts[host].get("initialized")) for host in opened.names}
    if opened.error is not None:
        return {
            host: repository_evidence(
                before.plan,
                initialized=initialized[host],
                errors=[f"repository not opened: {opened.error}"],
            )
            for host in opened.names
        }
    return maintain_repositories(opened.repositories, before.plan, initialized=initialized)


def export_risks(evidence: Mapping[str, Any]) -> list[ResidualRisk]:
    """Given the export check's evidence, return a residual risk per host whose export is
    not verified, or one for the client when nothing could be checked."""
    if evidence["reason"]:
        return [ResidualRisk(None, "donor export not verified", evidence["reason"])]
    return [
        ResidualRisk(host, "donor export not verified", result["reason"])
        for host, result in evidence["hosts"].items()
        if not result["ok"]
    ]


def make_outcome(
    result: PlaybookResult, preflight: Mapping[str, HostPreflight], before: Before
) -> ActionOutcome:
    """Given the play's result, preflight and the hosts backed up, return the backup evidence:
    a snapshot per host, the retention applied and the repository check; missing or partial
    snapshots and a failed check are residual risks.
    """
    raw_hosts = {
        host: data
        for host, data in result.evidence.items()
        if not host.startswith("_") and isinstance(data, Mapping)
    }
    hosts = {host: host_evidence(raw) for host, raw in sorted(raw_hosts.items())}
    opened = open_snapshot_repositories(before, hosts)
    repositories = maintain(before, hosts, opened)
    repository = combined_repository_evidence(repositories)
    for host, evidence in hosts.items():
        own = repositories.get(host)
        evidence["repository"] = raw_hosts[host].get("repository") or None
        if own is not None:
            # restic 0.14 reports a backup's short id; forget lists the full ids it kept.
            evidence["snapshot_id"] = full_snapshot_id(
                evidence["snapshot_id"], own["forget"]["kept_ids"]
            )
    if before.check:
        return ActionOutcome(
            evidence={"check": True, "repository": before.repository, "hosts": hosts},
            summary=f"dry run: {len(hosts)} host(s) prepared for backup, nothing saved",
        )
    risks = _risks(before, hosts, repository)
    steps: list[str] = []
    if any(risk.risk == "no backup taken" for risk in risks):
        steps.append("Fix the failed hosts' backups and run backup again.")
    if repository is not None and not repository["check"]["ok"]:
        steps.append("Investigate the repository (restic check) before the next backup or drill.")
    snapshots = {
        host: evidence["snapshot_id"] for host, evidence in hosts.items() if evidence["snapshot_id"]
    }
    extra: dict[str, Any] = {}
    if before.export_checked:
        exported = check_exports(
            before.export,
            before.export_hosts,
            snapshots,
            opened.repositories,
            backed_up_at=datetime.now(UTC),
            unopened=opened.error,
        )
        extra["donor_export"] = exported
        risks += export_risks(exported)
        if not exported["ok"]:
            steps.append(
                "Have the donor export produced where the contract names it "
                "(backup.donor_export), then run backup again."
            )
    return ActionOutcome(
        evidence={
            "check": False,
            "repository": before.repository,
            "tag": SNAPSHOT_TAG,
            "hosts": hosts,
            "snapshots": snapshots,
            "repository_maintenance": repository,
            **extra,
        },
        residual_risks=tuple(risks),
        next_steps=tuple(steps),
        summary=_summary(before, hosts, repository),
    )


ACTION = Action(
    "backup",
    PLAYBOOK,
    make_outcome=make_outcome,
    make_extra_vars=make_extra_vars,
    before_play=before_play,
)
