"""The diagnostic end to end on rehearsal-lab hosts: real SSH, real compliance checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.lab import Lab, edited_contract, edited_file

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger

pytestmark = pytest.mark.lab

#: No test hardens its hosts: the diagnostic finds them as a prospect's would be.
CLIENT = "terre-solidaire"


def diagnose(lab: Lab, client: str, *options: str) -> tuple[int, dict[str, Any]]:
    done = lab.cli(*options, "diagnose", client, "--reason", "scoping call", "--json")
    return done.returncode, json.loads(done.stdout or done.stderr)


def finished(lab: Lab, run_id: str) -> dict[str, Any]:
    (entry,) = [e for e in lab.entries("run-finished") if e.payload["run_id"] == run_id]
    return entry.payload


def make_prospect(data: dict[str, Any]) -> None:
    for key in ("level", "business_owner", "windows", "escalation", "cadences", "targets"):
        data.pop(key, None)
    data["fit"]["stabilized"] = False


def test_diagnose_reports_fit_level_plan_and_what_the_hosts_show(lab: Lab, tmp_path: Path) -> None:
    # A ledger of its own: whatever other tests recorded, no backup is on record here.
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    # The client tunes its Ansible runs: the diagnostic's checks use that tuning too.
    own_cfg = lab.inventories / CLIENT / "ansible.cfg"
    with edited_file(own_cfg, "[defaults]\nforks = 7\n"):
        code, report = diagnose(lab, CLIENT, "--ledger", ledger_url)
    assert code == ExitCode.OK, report
    diagnostic = report["diagnostic"]
    assert diagnostic["verdict"] == "fit"
    assert diagnostic["recommended_level"] == "continuous-evolution"
    assert diagnostic["budget_marker"] == "from $500 / month"
    assert diagnostic["contracted_level"] == "continuous-evolution"
    with open_ledger(ledger_url, create=False) as ledger:
        (entry,) = ledger.entries(kinds=("run-finished",))
    assert entry.payload["run_id"] == report["run_id"]
    evidence = entry.payload["evidence"]
    hosts = evidence["hosts"]
    assert set(hosts) == {"terre-db1", "terre-web1", "terre-web2"}
    for facts in hosts.values():
        assert facts["os"].startswith("Debian 12")
        assert facts["os_support"]["codename"] == "bookworm"
    # A bare lab host is not hardened: the plan says so, with its score.
    assert evidence["compliance"]["ansible_cfg"] == str(own_cfg)
    scores = {host: data["score"] for host, data in evidence["compliance"]["hosts"].items()}
    assert all(0 < score["passed"] < score["applicable"] for score in scores.values()), scores
    plan = diagnostic["action_plan"]
    assert any(item["action"] == "Harden: webmg-ops harden" for item in plan)
    # Backups are read from the ledger, which holds none: the plan asks for them.
    assert evidence["backups"]["last_backup"] is None
    assert any(item["finding"] == "no verified backup on record" for item in plan)
    assert any("served without TLS" in item["finding"] for item in plan)
    # Nothing changed on any host, and the run log carries the verdict and the plan.
    assert all(host["changed"] == 0 for host in report["hosts"])
    log = Path(report["run_log"]).read_text()
    assert "**Verdict:** fit" in log
    assert "### Action plan" in log
    assert "from $500 / month" in log


def test_a_prospect_not_stabilized_is_not_a_fit_and_update_is_refused(lab: Lab) -> None:
    with edited_contract(lab.inventories, CLIENT, make_prospect):
        code, report = diagnose(lab, CLIENT)
        assert code == ExitCode.OK, report
        diagnostic = report["diagnostic"]
        assert diagnostic["verdict"] == "not a fit"
        assert "The project is not stabilized" in diagnostic["not_fit_reasons"]
        assert "There is no business owner" in diagnostic["not_fit_reasons"]
        assert diagnostic["contracted_level"] == "prospect"
        refused = lab.cli("run", CLIENT, "update", "--reason", "test", "--json")
        assert refused.returncode == ExitCode.REFUSED
        assert "is a prospect" in refused.stderr
    assert lab.entries("run-refused", CLIENT)[-1].payload["refusal"] == "prospect"


def test_a_client_not_stabilized_is_refused_update_until_an_emergency(lab: Lab) -> None:
    lab.diagnosed(CLIENT)

    def not_stabilized(data: dict[str, Any]) -> None:
        data["fit"]["stabilized"] = False
        # Lab-only hosts may have an always-open window: only the diagnostic gate is left.
        data["windows"] = [{"name": "test", "always": True, "timezone": "UTC"}]
        data["freezes"] = []

    with edited_contract(lab.inventories, CLIENT, not_stabilized):
        refused = lab.cli("run", CLIENT, "update", "--reason", "test", "--json")
        assert refused.returncode == ExitCode.REFUSED
        assert "is not stabilized" in refused.stderr
        plan = lab.cli("plan", CLIENT, "update", "--emergency", "--reason", "zero-day", "--json")
        assert plan.returncode == ExitCode.OK, plan.stderr
    assert lab.entries("run-refused", CLIENT)[-1].payload["refusal"] == "diagnostic"
