"""Runs whose process died: found by the next command and closed as ``interrupted``.

A run keeps its hosts' progress in its folder and its PID (with the
process's start time, so that a reused PID is not mistaken for it) in
``run-started``; this module reads both back.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path

from webmg_ops.errors import BadInput
from webmg_ops.ledger import Checkpoint, Entry, Ledger, open_ledger
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
from webmg_ops.settings import CACHE_DIR, Settings, write_cache_file


def process_start_time(pid: int) -> int:
    """Given a PID, return its start time in clock ticks since boot (0 if gone).

    Stored with a PID so that a reused PID is not mistaken for the original process.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[19])


def _open_runs(ledger: Ledger, after_seq: int | None = None) -> list[Entry]:
    """Given a ledger and the seq before which every run has finished (None: read all),
    return the run-started entries after it that no run-finished entry closes."""
    started: dict[str, Entry] = {}
    for entry in ledger.entries(kinds=(RUN_STARTED, RUN_FINISHED), after_seq=after_seq):
        run_id = str(entry.payload.get("run_id"))
        if entry.kind == RUN_STARTED:
            started[run_id] = entry
        else:
            started.pop(run_id, None)
    return list(started.values())


#: Where, under the var folder, the controller keeps the seq up to which every run had
#: finished at its last look (with that entry's hash, and which ledger): the ledger is
#: append-only, so the next look reads only the runs since. Without it every command
#: would read every run ever recorded (a year of a large fleet: tens of gigabytes).
OPEN_RUNS_MARK = CACHE_DIR / "finished-runs.json"


def _ledger_key(url: str) -> str:
    # The URL may hold a password: only its digest is kept.
    return hashlib.sha256(url.encode()).hexdigest()


def _read_mark(settings: Settings, ledger: Ledger) -> int | None:
    """Return the seq up to which every run of this ledger had finished, or None (read
    every run) when the mark is missing, unreadable, of another ledger, or its entry no
    longer holds the hash it was taken at (a ledger replaced or restored)."""
    try:
        mark = json.loads((settings.var_dir / OPEN_RUNS_MARK).read_text())
        seq, digest, ledger_key = mark["seq"], mark["hash"], mark["ledger"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if type(seq) is not int or seq < 1 or ledger_key != _ledger_key(settings.ledger_url):
        return None
    entry = ledger.get(seq)
    return seq if entry is not None and entry.hash == digest else None


def _write_mark(settings: Settings, seq: int, digest: str) -> None:
    """Keep SEQ (whose entry has DIGEST) as the seq up to which every run had finished.
    A var folder that cannot take it only costs a longer read next time."""
    document = {"ledger": _ledger_key(settings.ledger_url), "seq": seq, "hash": digest}
    write_cache_file(settings.var_dir, OPEN_RUNS_MARK.name, json.dumps(document))


def _open_runs_since_mark(settings: Settings, ledger: Ledger, head: Checkpoint) -> list[Entry]:
    """Given the settings, the ledger and its head read before, return the open runs,
    reading only the runs after the controller's mark, and move the mark on: to just
    before the oldest run still open, or to HEAD when none is."""
    open_runs = _open_runs(ledger, _read_mark(settings, ledger))
    oldest = min((entry.seq for entry in open_runs), default=None)
    if oldest is None or oldest > head.seq:
        _write_mark(settings, head.seq, head.hash)
    elif oldest > 1:
        before = ledger.get(oldest - 1)
        if before is not None:
            _write_mark(settings, before.seq, before.hash)
    return open_runs


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
        head = probe.head()
        if head is None:
            return closed
    with open_ledger(settings.ledger_url) as ledger:
        for entry in _open_runs_since_mark(settings, ledger, head):
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
