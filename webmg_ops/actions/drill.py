"""The ``drill`` action: restore each host's latest backup into scratch space and prove it.

A controller action (no playbook): it needs only the backup repository,
which is what a real restore would have, and, for a restore check, the
hosts that run the application. For
each backed-up host it opens that host's own repository (its own
password; a snapshot is the host's because it is in the host's
repository, never because of its hostname label), restores the latest
snapshot (or ``--snapshot``)
into a private scratch folder under the run's folder, checks every file of
the snapshot's own manifest by size and SHA-256, restores each database
dump into a scratch PostgreSQL server and compares the row counts with
those recorded at backup time, and measures RPO and RTO against the
policy's targets. Where the contract declares a ``backup.restore_check``,
the application itself is started on a copy of the restored data on one of
its hosts (in a scratch folder, never over live data) and must answer its
health check. The restored data is removed at the end; the evidence names
every mismatch file by file.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

from webmg_ops.actions.base import Action, ActionOutcome, ControllerDone, RunContext
from webmg_ops.ansible.connection import Connection, read_inventory_variables
from webmg_ops.ansible.vault import Vault
from webmg_ops.backups.manifest import UnsafePath, restored_path
from webmg_ops.backups.repository import host_repositories
from webmg_ops.backups.restic import (
    CheckResult,
    Repository,
    ResticError,
    Snapshot,
    check_repository,
    list_snapshots,
)
from webmg_ops.backups.restore import DrillResult, run_drill
from webmg_ops.backups.restore_check import check_restored_copy
from webmg_ops.backups.scratchdb import ScratchServer, scratch_server
from webmg_ops.config.clients import Client
from webmg_ops.config.contract import RestoreCheck
from webmg_ops.config.durations import format_duration
from webmg_ops.errors import BadInput, Failed
from webmg_ops.runs.records import HostResult, HostStatus, ResidualRisk, RunRequest

#: A controller action: no playbook, no preflight of the client's hosts.
PLAYBOOK = None

#: The extra var naming the snapshot to drill (``drill --snapshot ID``).
SNAPSHOT_VAR = "drill_snapshot"

#: The scratch folder of a run, removed when the drill ends (and by reconciliation).
SCRATCH = "scratch"


def choose_snapshots(
    snapshots: Mapping[str, list[Snapshot]], snapshot_id: str | None
) -> dict[str, Snapshot]:
    """Given each host's snapshots from its own repository (oldest first) and an optional
    snapshot id, return host -> snapshot to drill: the latest of each host's repository,
    or the one asked, in the repository that holds it. Hostname labels are not read:
    whatever a host wrote into its repository is that host's.

    Raise BadInput if the asked snapshot is in no host's repository.
    """
    if snapshot_id:
        for host, listed in sorted(snapshots.items()):
            for snapshot in listed:
                if snapshot.id.startswith(snapshot_id) or snapshot.short_id == snapshot_id:
                    return {host: snapshot}
        raise BadInput(f"no snapshot {snapshot_id!r} in the hosts' repositories")
    return {host: listed[-1] for host, listed in snapshots.items() if listed}


def open_repositories(
    repositories: Mapping[str, Repository],
) -> tuple[dict[str, list[Snapshot]], dict[str, str], float]:
    """Given each host's repository, list its snapshots and check its structure.

    Return the snapshots by host, why each host's repository could not be
    used (restic failed, or its structure check did), and the seconds of the
    longest structure check.
    """
    snapshots: dict[str, list[Snapshot]] = {}
    problems: dict[str, str] = {}
    longest = 0.0
    for host, repository in sorted(repositories.items()):
        try:
            listed = list_snapshots(repository)
            structure: CheckResult = check_repository(repository)
        except ResticError as error:
            problems[host] = error.message
            continue
        longest = max(longest, structure.duration_s)
        if not structure.ok:
            problems[host] = f"repository check failed: {'; '.join(structure.errors)}"
            continue
        snapshots[host] = listed
    return snapshots, problems, longest


def table_of(key: str) -> tuple[str, str]:
    """Given a manifest's row-count key (``db.table``, or ``db.schema.table`` outside
    ``public``), return the schema and table. Raise Failed for any other shape.
    """
    parts = key.split(".")
    if len(parts) == 2:
        return "public", parts[1]
    if len(parts) == 3:
        return parts[1], parts[2]
    raise Failed(f"row-count key {key!r} is not db.table or db.schema.table")


class _Databases:
    """Restores a manifest's database dumps into one scratch server, started on first use."""

    def __init__(self, stack: ExitStack, host: str) -> None:
        self._stack = stack
        self._server: ScratchServer | None = None
        self._host = host

    def _started(self) -> ScratchServer:
        if self._server is None:
            self._server = self._stack.enter_context(scratch_server())
        return self._server

    def __call__(
        self, restored: Path, manifest: Mapping[str, Any]
    ) -> tuple[Mapping[str, Any], tuple[str, ...]]:
        found: dict[str, Any] = {}
        failures: list[str] = []
        for index, database in enumerate(manifest.get("databases") or []):
            name = str(database.get("name"))
            try:
                dump = restored_path(restored, str(database.get("dump", "")))
            except UnsafePath as error:
                failures.append(f"database {name}: dump refused: {error}")
                continue
            expected: Mapping[str, int] = database.get("row_counts") or {}
            counts: dict[str, Any] = {}
            found[name] = {"engine": database.get("engine"), "tables": counts}
            if database.get("engine") != "postgresql":
                failures.append(f"database {name}: engine {database.get('engine')!r} unsupported")
                continue
            if not dump.is_file():
                failures.append(f"database {name}: dump {database.get('dump')} not restored")
                continue
            scratch_name = f"drill_{index}_{self._host.replace('-', '_')}"[:60]
            try:
                server = self._started()
                server.restore_dump(dump, scratch_name)
                for table, rows in sorted(expected.items()):
                    schema, name_in_schema = table_of(table)
                    restored_rows = server.count_rows(scratch_name, schema, name_in_schema)
                    counts[table] = {"expected": rows, "restored": restored_rows}
                    if restored_rows != rows:
                        failures.append(
                            f"database {name}: {table} has {restored_rows} rows, "
                            f"{rows} were backed up"
                        )
            except Failed as error:
                failures.append(f"database {name}: {error.message}")
        return found, tuple(failures)


class _Verifications:
    """What a host's drill proves beyond its files: its databases, and the application
    starting on the restored copy where the contract declares how."""

    def __init__(
        self,
        databases: _Databases,
        restore_check: RestoreCheck | None,
        connection: Connection | None,
    ) -> None:
        self._databases = databases
        self._restore_check = restore_check
        self._connection = connection

    def __call__(
        self, restored: Path, manifest: Mapping[str, Any]
    ) -> tuple[Mapping[str, Any], tuple[str, ...]]:
        databases, failures = self._databases(restored, manifest)
        found: dict[str, Any] = {"databases": databases}
        if self._restore_check is not None and self._connection is not None:
            checked = check_restored_copy(self._connection, restored, self._restore_check)
            found["restore_check"] = checked.as_evidence()
            if not checked.ok:
                failures += (f"application on the restored copy: {checked.detail}",)
        return found, failures


def _restore_check_hosts(
    client: Client, vault: Vault
) -> tuple[RestoreCheck | None, Mapping[str, Connection]]:
    """Return the contract's restore check and the connections of the hosts it runs on.

    Raise BadInput if the inventory cannot be read (its vault needs the password).
    """
    check = client.contract.backup.restore_check
    if check is None:
        return None, {}
    connections = read_inventory_variables(client.folder, vault).connections
    members = {host.name for host in client.hosts if check.host_group in host.groups}
    return check, {name: c for name, c in connections.items() if name in members}


def _host_evidence(result: DrillResult, snapshot: Snapshot) -> dict[str, Any]:
    return {
        "snapshot": result.snapshot_id[:8] if result.snapshot_id else snapshot.short_id,
        "snapshot_time": result.snapshot_time.isoformat(),
        "files_checked": result.files_checked,
        "bytes_checked": result.bytes_checked,
        "mismatches": [
            {
                "path": item.path,
                "kind": item.kind.value,
                "expected": item.expected,
                "found": item.found,
            }
            for item in result.mismatches
        ],
        "databases": dict(result.extra.get("databases") or {}),
        "restore_check": result.extra.get("restore_check"),
        "restore_s": result.restore_s,
        "verify_s": result.verify_s,
        "rpo": format_duration(result.rpo),
        "rto": format_duration(result.rto),
        "rpo_s": round(result.rpo.total_seconds(), 3),
        "rto_s": round(result.rto.total_seconds(), 3),
        "rpo_target": format_duration(result.rpo_target),
        "rto_target": format_duration(result.rto_target),
        "mb_per_s": result.mb_per_s,
        "failures": list(result.failures),
        "ok": result.ok,
    }


def _failed_hosts(hosts: tuple[str, ...], cause: str) -> ControllerDone:
    return ControllerDone(
        hosts=tuple(HostResult(host=host, status=HostStatus.FAILED, note=cause) for host in hosts),
        outcome=ActionOutcome(
            evidence={"repository_error": cause},
            residual_risks=(ResidualRisk("", "backups could not be restored", cause),),
            next_steps=("Repair the repository, take a new backup, and drill again.",),
            summary=f"drill failed: {cause}",
        ),
    )


def make_extra_vars(
    client: Client, hosts: Sequence[str], request: RunRequest, *, vault: Vault | None = None
) -> dict[str, Any]:
    """Given the client, hosts and request, check before anything is written that the
    repository can be opened (contract, key, known_hosts, vault password); return the vars.

    Raise BadInput naming what is missing.
    """
    host_repositories(client, vault or Vault(request.vault_password_file))
    return dict(request.extra_vars)


def run_on_controller(run: RunContext) -> ControllerDone:
    """Given the run's context, drill every backed-up host of the client; return each
    host's result and the evidence. Failures are results, not exceptions, except
    BadInput (no repository, no vault password, unknown snapshot).
    """
    client = run.client
    hosts = tuple(run.hosts)
    repositories = host_repositories(
        client,
        run.vault,
        hosts=hosts,
        cache_dir=run.settings.var_dir / "restic-cache",
    )
    restore_check, check_connections = _restore_check_hosts(client, run.vault)
    rpo_target: timedelta = client.policy.get("targets.rpo")
    rto_target: timedelta = client.policy.get("targets.rto")
    snapshots, problems, structure_s = open_repositories(repositories)
    if hosts and not snapshots:
        return _failed_hosts(hosts, "; ".join(sorted(set(problems.values()))))
    asked = run.request.extra_vars.get(SNAPSHOT_VAR)
    chosen = choose_snapshots(snapshots, asked)
    scratch = run.folder / SCRATCH
    results: list[HostResult] = []
    evidence: dict[str, Any] = {}
    risks: list[ResidualRisk] = []
    try:
        with ExitStack() as stack:
            for host in hosts:
                if run.cancel():
                    break
                snapshot = chosen.get(host)
                if host in problems and not asked:
                    results.append(HostResult(host, HostStatus.FAILED, note=problems[host]))
                    risks.append(
                        ResidualRisk(host, "backups could not be restored", problems[host])
                    )
                    continue
                if snapshot is None:
                    if asked:
                        continue
                    results.append(
                        HostResult(host, HostStatus.FAILED, note="no snapshot of this host")
                    )
                    risks.append(ResidualRisk(host, "no backup to restore", "no snapshot"))
                    continue
                folder = scratch / host
                folder.mkdir(parents=True, mode=0o700)
                result = run_drill(
                    repositories[host],
                    folder,
                    rpo_target=rpo_target,
                    rto_target=rto_target,
                    # Listed and checked once above for every host.
                    snapshot=snapshot,
                    check_structure=False,
                    verify_more=_Verifications(
                        _Databases(stack, host), restore_check, check_connections.get(host)
                    ),
                )
                evidence[host] = _host_evidence(result, snapshot)
                # Restored data is a copy of live data (secrets included): never kept.
                shutil.rmtree(folder, ignore_errors=True)
                status = HostStatus.OK if result.ok else HostStatus.FAILED
                note = "; ".join(result.failures[:3])
                results.append(
                    HostResult(
                        host, status, duration_s=round(result.rto.total_seconds(), 3), note=note
                    )
                )
                risks.extend(
                    ResidualRisk(host, "restore drill failed", failure)
                    for failure in result.failures
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    drilled = list(evidence.values())
    passed = sum(1 for item in drilled if item["ok"])
    summary = (
        f"{passed}/{len(drilled)} host(s) restored and verified; "
        f"{sum(item['files_checked'] for item in drilled)} files, "
        f"{sum(item['bytes_checked'] for item in drilled)} bytes checked"
    )
    steps = (
        ()
        if passed == len(drilled) and drilled
        else ("Find the cause named for each failed host, repair, back up again and drill again.",)
    )
    return ControllerDone(
        hosts=tuple(results),
        outcome=ActionOutcome(
            evidence={
                "hosts": evidence,
                "repository": client.contract.backup.repository,
                "repositories": {host: repositories[host].location for host in hosts},
                "structure_check_s": structure_s,
                "targets": {"rpo": format_duration(rpo_target), "rto": format_duration(rto_target)},
            },
            residual_risks=tuple(risks),
            next_steps=steps,
            summary=summary,
        ),
    )


ACTION = Action(
    "drill",
    PLAYBOOK,
    make_extra_vars=make_extra_vars,
    run_on_controller=run_on_controller,
)
