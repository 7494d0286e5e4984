"""Runs read back from the ledger: listing, finding, approvals, run logs.

The ledger is the only source: run lists, ``show`` and run logs are built
from its entries, never from Ansible's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from webmg_ops.config.clients import Client
from webmg_ops.errors import BadInput
from webmg_ops.ledger import Entry, open_ledger
from webmg_ops.reports.runlog import render_run_log, run_log_dir
from webmg_ops.runs.records import RUN_FINISHED, RUN_REFUSED, RUN_STARTED
from webmg_ops.settings import Settings


def list_runs(settings: Settings, client: str | None = None) -> list[dict[str, Any]]:
    """Given the settings (and optionally a client), return the recorded runs, newest first."""
    runs: dict[str, dict[str, Any]] = {}
    with open_ledger(settings.ledger_url, create=False) as ledger:
        for entry in ledger.entries(client=client, kinds=(RUN_STARTED, RUN_FINISHED, RUN_REFUSED)):
            payload = entry.payload
            if entry.kind == RUN_REFUSED:
                runs[f"refused-{entry.seq}"] = {
                    "run_id": f"refused-{entry.seq}",
                    "client": entry.client,
                    "action": payload.get("action"),
                    "check": bool(payload.get("check")),
                    "outcome": f"refused ({payload.get('refusal')})",
                    "started": entry.at.isoformat(),
                    "actor": entry.actor,
                    "seq": entry.seq,
                }
                continue
            run_id = str(payload.get("run_id"))
            if entry.kind == RUN_STARTED:
                runs[run_id] = {
                    "run_id": run_id,
                    "client": entry.client,
                    "action": payload.get("action"),
                    "check": bool(payload.get("check")),
                    "outcome": "running",
                    "started": entry.at.isoformat(),
                    "actor": entry.actor,
                    "seq": entry.seq,
                }
            elif run_id in runs:
                runs[run_id]["outcome"] = payload.get("outcome")
                runs[run_id]["finished_seq"] = entry.seq
    return sorted(runs.values(), key=lambda row: int(row["seq"]), reverse=True)


def find_run_entries(settings: Settings, run_id: str) -> tuple[Entry, Entry | None]:
    """Given a run id, return its run-started entry and its run-finished entry (or None).

    Raise BadInput if no such run is recorded.
    """
    started: Entry | None = None
    finished: Entry | None = None
    with open_ledger(settings.ledger_url, create=False) as ledger:
        for entry in ledger.entries(kinds=(RUN_STARTED, RUN_FINISHED)):
            if entry.payload.get("run_id") != run_id:
                continue
            if entry.kind == RUN_STARTED:
                started = entry
            else:
                finished = entry
    if started is None:
        raise BadInput(f"no run {run_id!r} in the ledger")
    return started, finished


def _entry_document(entry: Entry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "kind": entry.kind,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "hash": entry.hash,
        "payload": entry.payload,
    }


def find_run(settings: Settings, run_id: str) -> dict[str, Any]:
    """Given a run id, return a document with its entries and run log paths.

    Raise BadInput if no such run is recorded.
    """
    started, finished = find_run_entries(settings, run_id)
    folder = run_log_dir(settings.var_dir, run_id)
    return {
        "run_id": run_id,
        "client": started.client,
        "outcome": finished.payload.get("outcome") if finished else "running",
        "started": _entry_document(started),
        "finished": _entry_document(finished) if finished else None,
        "run_log": {
            "markdown": str(folder / "run-log.md"),
            "html": str(folder / "run-log.html"),
        },
    }


def render_recorded_run(
    settings: Settings, started: Entry, finished: Entry | None, client: Client
) -> Path:
    """Given a run's entries and its client, write its run log; return the Markdown file."""
    files = render_run_log(started, finished, client.contract, settings.var_dir)
    return files.markdown
