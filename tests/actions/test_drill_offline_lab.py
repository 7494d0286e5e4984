"""The drill needs none of the client's hosts up without a restore check.

A drill works from the backups alone: each host's repository on the backup
target, restored and verified on the controller. With every host of the client
cut off the network (running, but unreachable from the controller) and the
contract's restore check taken out, the drill still restores and verifies each
host's latest snapshot, succeeds and records its verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.lab import Lab, edited_contract
from support.outage import answers_ssh, unreachable
from test_drill_lab import backed_up, drill, finished

from webmg_ops.errors import ExitCode

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("prepared_target")]

CLIENT = "atelier-nord"
HOSTS = ("atelier-db1", "atelier-web1")


def _without_restore_check(contract: dict[str, Any]) -> None:
    contract["backup"].pop("restore_check")


def test_a_drill_without_restore_check_succeeds_with_every_host_unreachable(lab: Lab) -> None:
    backed_up(lab, CLIENT)
    with (
        edited_contract(lab.inventories, CLIENT, _without_restore_check),
        unreachable(lab, *HOSTS) as addresses,
    ):
        # The outage is real: no host of the client answers the controller.
        assert not any(answers_ssh(address) for address in addresses.values())
        code, report = drill(lab, CLIENT)
    assert code == ExitCode.OK, report
    payload = finished(lab, report["run_id"])
    assert payload["outcome"] == "succeeded"
    assert {host["host"]: host["status"] for host in payload["hosts"]} == dict.fromkeys(HOSTS, "ok")
    verdicts = payload["evidence"]["hosts"]
    assert sorted(verdicts) == list(HOSTS)
    for verdict in verdicts.values():
        assert verdict["ok"] is True, verdict["failures"]
        assert verdict["files_checked"] > 0
        assert verdict["mismatches"] == []
        assert verdict["restore_check"] is None
    rows = verdicts["atelier-db1"]["databases"]["demo"]["tables"]
    assert rows and all(count["restored"] == count["expected"] for count in rows.values())
    # The drill report (the run log) carries the verdict too.
    assert Path(report["run_log"]).is_file()
