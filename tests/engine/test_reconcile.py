"""A run whose process died: the next command closes it and removes what it restored."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from webmg_ops.engine.reconcile import (
    _ledger_key,
    _open_runs,
    _read_mark,
    reconcile_runs,
    run_dir,
)
from webmg_ops.ledger import Entry, open_ledger
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


def _started(settings: Settings, run_id: str, controller: str) -> int:
    """Record a run started by a process of CONTROLLER that is gone; return its seq."""
    with open_ledger(settings.ledger_url) as ledger:
        entry = ledger.append(
            RUN_STARTED,
            "alpenhof",
            {
                "run_id": run_id,
                "action": "check",
                "check": False,
                "hosts": [],
                "controller": controller,
                "pid": os.getpid(),
                "pid_start": 1,
            },
        )
    return entry.seq


def _mark(settings: Settings) -> dict[str, object]:
    return dict(json.loads((settings.var_dir / "cache" / "finished-runs.json").read_text()))


def test_the_mark_never_passes_a_run_still_open_and_is_ignored_when_it_cannot_be_trusted(
    inventories: Path, tmp_path: Path
) -> None:
    var = tmp_path / "var"
    var.mkdir()
    settings = Settings(inventories, f"sqlite:///{var / 'ledger.db'}", var)
    with open_ledger(settings.ledger_url) as ledger:
        ledger.append("note", "alpenhof", {"text": "before the run"})
    # A run of another controller stays open: no command here may close it.
    elsewhere = _started(settings, "20261130T040000Z-alpenhof-check-other1", "other-host")
    with open_ledger(settings.ledger_url) as ledger:
        for index in range(3):
            ledger.append("note", "alpenhof", {"text": f"note {index}"})
    assert reconcile_runs(settings) == []
    # The mark stops just before it, so every later look still reads it.
    assert _mark(settings)["seq"] == elsewhere - 1

    # Once it is closed, the mark moves to the head.
    with open_ledger(settings.ledger_url) as ledger:
        ledger.append(
            RUN_FINISHED, "alpenhof", {"run_id": "20261130T040000Z-alpenhof-check-other1"}
        )
        head = ledger.head()
    assert head is not None
    assert reconcile_runs(settings) == []
    assert _mark(settings) == {**_mark(settings), "seq": head.seq, "hash": head.hash}

    # A run of this controller started after the mark is read and closed.
    mine = "20261130T050000Z-alpenhof-check-mine01"
    _started(settings, mine, socket.gethostname())
    assert reconcile_runs(settings) == [mine]


def test_a_mark_of_another_ledger_or_a_rewritten_entry_is_not_trusted(
    inventories: Path, tmp_path: Path
) -> None:
    var = tmp_path / "var"
    var.mkdir()
    settings = Settings(inventories, f"sqlite:///{var / 'ledger.db'}", var)
    mine = "20261130T050000Z-alpenhof-check-mine02"
    _started(settings, mine, socket.gethostname())
    with open_ledger(settings.ledger_url) as ledger:
        ledger.append("note", "alpenhof", {"text": "after the run"})
        head = ledger.head()
    assert head is not None
    mark = var / "cache" / "finished-runs.json"
    mark.parent.mkdir()
    other = Settings(inventories, f"sqlite:///{tmp_path / 'other.db'}", var)
    forged = [
        # Past the open run, but of another ledger.
        {"ledger": _ledger_key(other.ledger_url), "seq": head.seq, "hash": head.hash},
        # Past the open run, with a hash its entry does not have.
        {"ledger": _ledger_key(settings.ledger_url), "seq": head.seq, "hash": "0" * 64},
        # Not a mark at all.
        {"seq": "all"},
    ]
    for document in forged:
        mark.write_text(json.dumps(document))
        # Read in full, the open run is found (its process is gone: closed on the last).
        assert mine in [entry.payload["run_id"] for entry in _open_with_mark(settings)]
    mark.write_text("{not json")
    assert reconcile_runs(settings) == [mine]


def _open_with_mark(settings: Settings) -> list[Entry]:
    with open_ledger(settings.ledger_url) as ledger:
        return _open_runs(ledger, _read_mark(settings, ledger))
