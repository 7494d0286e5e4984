"""The NGO's donor-export check on the lab: terre-solidaire's backup of terre-web1 reads
its donor export back from the new snapshot, and the month's report counts it.

The test writes the export on the host as the NGO's accounting job would (a header and
rows counted here by hand), backs up, then ages the export past the contract's
``max_age`` and backs up again. The export's folder is removed afterwards, whatever
happens: no other test expects it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.lab import Lab

from webmg_ops.config.clients import load_client
from webmg_ops.errors import ExitCode
from webmg_ops.reports.runlog import contract_timezone

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("prepared_target")]

CLIENT = "terre-solidaire"
HOST = "terre-web1"
ADDRESS = "198.18.0.21"
#: A header and four donors (one name holds a comma): four data rows.
CONTENT = 'id,name,amount\n1,Ada,50\n2,"Martin, Sophie",120\n3,Karim,35\n4,Claire,80\n'
ROWS = 4


def _export_path(lab: Lab) -> str:
    export = load_client(lab.inventories, CLIENT).contract.backup.donor_export
    assert export is not None, "terre-solidaire's contract names its donor export"
    return export.path


@pytest.fixture
def write_export(lab: Lab) -> Iterator[Callable[[str], None]]:
    """Return a function writing the export on terre-web1 (extra ``touch`` arguments
    date it); its folder is removed afterwards."""
    path = _export_path(lab)
    folder = str(Path(path).parent)

    def write(touch: str = "") -> None:
        command = (
            f"sudo mkdir -p {shlex.quote(folder)} && printf %s {shlex.quote(CONTENT)} | "
            f"sudo tee {shlex.quote(path)} >/dev/null"
        )
        if touch:
            command += f" && sudo touch {touch} {shlex.quote(path)}"
        done = lab.ssh(ADDRESS, command)
        assert done.returncode == 0, done.stderr

    try:
        yield write
    finally:
        lab.ssh(ADDRESS, f"sudo rm -rf {shlex.quote(folder)}")


def _backup(lab: Lab) -> dict[str, Any]:
    done = lab.cli(
        "run", CLIENT, "backup", "--reason", "donor export test", "--limit", HOST, "--json",
        timeout=600,
    )  # fmt: skip
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    (entry,) = [e for e in lab.entries("run-finished", CLIENT) if e.payload["run_id"] == run_id]
    return entry.payload


def _export_risks(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in payload["residual_risks"] if r["risk"] == "donor export not verified"]


def test_a_backup_reads_the_donor_export_back_and_the_report_counts_it(
    lab: Lab, write_export: Callable[[str], None]
) -> None:
    path = _export_path(lab)
    before = datetime.now(UTC)
    write_export("")
    after = datetime.now(UTC)

    fresh = _backup(lab)

    checked = fresh["evidence"]["donor_export"]
    assert (checked["ok"], checked["path"], checked["reason"]) == (True, path, None)
    assert list(checked["hosts"]) == [HOST]
    result = checked["hosts"][HOST]
    assert (result["ok"], result["reason"], result["rows"], result["bytes"]) == (
        True,
        None,
        ROWS,
        len(CONTENT.encode()),
    )
    assert before - timedelta(seconds=1) <= datetime.fromisoformat(result["modified"]) <= after
    assert _export_risks(fresh) == []

    # Three days old: past the contract's max_age of 2d.
    write_export("-d '3 days ago'")
    stale = _backup(lab)

    checked = stale["evidence"]["donor_export"]
    assert checked["ok"] is False
    result = checked["hosts"][HOST]
    assert (result["ok"], result["rows"]) == (False, None)
    assert result["reason"] == (
        f"{path} was last written 72 h before the backup, longer than the 2d allowed"
    )
    assert [(r["host"], r["reason"]) for r in _export_risks(stale)] == [(HOST, result["reason"])]

    zone = contract_timezone(load_client(lab.inventories, CLIENT).contract)
    month = datetime.now(UTC).astimezone(zone).strftime("%Y-%m")
    done = lab.cli("report", CLIENT, "--period", month, "--json")
    assert done.returncode == 0, done.stderr
    section = json.loads(done.stdout)["figures"]["sector_section"]["donor_export"]
    shown = {item["run_id"]: item["verified"] for item in section["backups"]}
    assert shown[fresh["run_id"]] is True
    assert shown[stale["run_id"]] is False
    assert stale["run_id"] in section["missing"]
