"""A run whose process died: the next command closes it and removes what it restored."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from webmg_ops.engine.reconcile import reconcile_runs, run_dir
from webmg_ops.ledger import open_ledger
from webmg_ops.runs.records import RUN_FINISHED, RUN_STARTED
from webmg_ops.settings import Settings

RUN_ID = "20261130T040000Z-alpenhof-drill-dead01"


def _died_mid_drill(settings: Settings) -> Path:
    """Record a drill started by a process that is gone, with live data restored in its
    scratch folder and one host done; return the run's folder."""
    with open_ledger(settings.ledger_url) as ledger:
        ledger.append(
            RUN_STARTED,
            "alpenhof",
            {
                "run_id": RUN_ID,
                "action": "drill",
                "check": False,
                "hosts": ["alpenhof-web", "alpenhof-db"],
                "controller": socket.gethostname(),
                # This very process, but not the one that started: its start time differs.
                "pid": os.getpid(),
                "pid_start": 1,
            },
        )
    folder = run_dir(settings, RUN_ID)
    (folder / "scratch" / "etc").mkdir(parents=True)
    (folder / "scratch" / "etc" / "shadow").write_text("root:$6$restored-hash:19000::::::\n")
    (folder / "progress.json").write_text(json.dumps({"completed": {"alpenhof-web": "ok"}}))
    return folder


def test_a_drill_whose_process_died_is_closed_and_its_restored_data_removed(
    inventories: Path, tmp_path: Path
) -> None:
    var = tmp_path / "var"
    settings = Settings(inventories, f"sqlite:///{var / 'ledger.db'}", var)
    folder = _died_mid_drill(settings)

    assert reconcile_runs(settings) == [RUN_ID]

    assert not (folder / "scratch").exists()
    with open_ledger(settings.ledger_url, create=False) as ledger:
        (finished,) = ledger.entries(kinds=(RUN_FINISHED,))
    assert finished.payload["run_id"] == RUN_ID
    assert finished.payload["outcome"] == "interrupted"
    hosts = {host["host"]: host["status"] for host in finished.payload["hosts"]}
    assert hosts == {"alpenhof-web": "ok", "alpenhof-db": "unknown"}
    # Closed once: the next command finds nothing left to close.
    assert reconcile_runs(settings) == []
