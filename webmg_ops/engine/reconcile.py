"""Runs whose process died: found by the next command and closed as ``interrupted``.

A run keeps its hosts' progress in its folder and its PID (with the
process's start time, so that a reused PID is not mistaken for it) in
``run-started``; this module reads both back.
"""

from __future__ import annotations

import json
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path

from webmg_ops.errors import BadInput
from webmg_ops.ledger import Entry, Ledger, open_ledger
from webmg_ops.process import process_alive
from webmg_ops.runs.records import (
    RUN_FINISHED,
    RUN_STARTED,
    HostResult,
    HostStatus,
    Outcome,
    RunFinished,
    to_payload,
)
from webmg_ops.settings import Settings


def process_start_time(pid: int) -> int:
    """Given a PID, return its start time in clock ticks since boot (0 if gone).

    Stored with a PID so that a reused PID is not mistaken for the original process.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[19])


def _open_runs(ledger: Ledger, client: str | None = None) -> list[Entry]:
    started: dict[str, Entry] = {}
    for entry in ledger.entries(client=client, kinds=(RUN_STARTED, RUN_FINISHED)):
        run_id = str(entry.payload.get("run_id"))
        if entry.kind == RUN_STARTED:
            started[run_id] = entry
        else:
            started.pop(run_id, None)
    return list(started.values())


def run_dir(settings: Settings, run_id: str) -> Path:
    """Given the settings and a run id, return the run's folder under ``var/runs``."""
    return settings.var_dir / "runs" / run_id


def reconcile_runs(settings: Settings) -> list[str]:
    """Close every run whose process died as ``interrupted``; return their run ids.

    Ends what such a run left running (its ansible-playbook process group and
    SSH masters). Runs of other controllers, and runs whose process is alive,
    are left alone.
    """
    closed: list[str] = []
    with open_ledger(settings.ledger_url, create=False, missing_ok=True) as probe:
        if probe.head() is None:
            return closed
    with open_ledger(settings.ledger_url) as ledger:
        for entry in _open_runs(ledger):
            payload = entry.payload
            if payload.get("controller") != socket.gethostname():
                continue
            pid = int(payload.get("pid", 0))
            if process_alive(pid) and process_start_time(pid) == int(payload.get("pid_start", 0)):
                continue
            folder = run_dir(settings, str(payload["run_id"]))
            # Imported only to close a run: every command reconciles first, and these
            # (Ansible's adapter, the run log's templates) weigh on a short command's start.
            from webmg_ops.ansible.runner import end_run_processes

            end_run_processes(folder / "ansible")
            # A drill's restored copy of live data (secrets included) is never kept.
            shutil.rmtree(folder / "scratch", ignore_errors=True)
            completed = _completed_hosts(folder)
            hosts = tuple(
                HostResult(
                    host=host,
                    status=completed.get(host, HostStatus.UNKNOWN),
                    note=""
                    if host in completed
                    else "the run was interrupted before this host finished",
                )
                for host in payload.get("hosts", [])
            )
            finished = ledger.append(
                RUN_FINISHED,
                entry.client,
                to_payload(
                    RunFinished(
                        run_id=str(payload["run_id"]),
                        action=str(payload.get("action")),
                        check=bool(payload.get("check")),
                        outcome=Outcome.INTERRUPTED,
                        started_seq=entry.seq,
                        duration_s=round((datetime.now(UTC) - entry.at).total_seconds(), 3),
                        hosts=hosts,
                        summary=f"the orchestrator (pid {pid}) died during the run",
                        next_steps=("Check the hosts marked unknown, then run the action again.",),
                    )
                ),
            )
            _render_quietly(settings, entry, finished)
            closed.append(str(payload["run_id"]))
    return closed


def _render_quietly(settings: Settings, started: Entry, finished: Entry) -> Path | None:
    """Write the run log of a run closed on a client that may since have changed."""
    from webmg_ops.config.clients import load_client
    from webmg_ops.reports.runlog import render_run_log

    try:
        client = load_client(settings.inventories, str(started.client))
        return render_run_log(started, finished, client.contract, settings.var_dir).markdown
    except BadInput:
        return None


def _completed_hosts(folder: Path) -> dict[str, HostStatus]:
    progress = folder / "progress.json"
    if not progress.is_file():
        return {}
    try:
        data = json.loads(progress.read_text())
        return {host: HostStatus(status) for host, status in data.get("completed", {}).items()}
    except (ValueError, TypeError):
        return {}


def write_progress(folder: Path, hosts: tuple[HostResult, ...]) -> None:
    from webmg_ops.ansible.runner import write_private  # a run's, already imported

    completed = {host.host: host.status.value for host in hosts}
    write_private(folder / "progress.json", json.dumps({"completed": completed}))
