"""Deploying a change on rehearsal-lab hosts: real apt, real health checks, real rollback.

A change of terre-solidaire (continuous-evolution) names ``webmg-demo-app`` 1.1 (a good
release) or 1.2 (its /health answers 500); every host starts at 1.0 and only the web
nodes run the app. ``run terre-solidaire deploy --change CHG-n`` installs exactly that
version in the update's health-gated rolling batches, canary first. Versions are read
from the hosts with dpkg-query, not from the tool's report.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from support.lab import Lab, edited_contract

from webmg_ops.errors import ExitCode

pytestmark = pytest.mark.lab

CLIENT = "terre-solidaire"
HOSTS = ("terre-web1", "terre-web2", "terre-db1")
ADDRESSES = {"terre-web1": "198.18.0.21", "terre-web2": "198.18.0.22", "terre-db1": "198.18.0.23"}
APP = "webmg-demo-app"
ALWAYS_OPEN = [{"name": "rehearsal", "always": True, "timezone": "UTC"}]


def always_open(data: dict[str, Any]) -> None:
    # Allowed: every host of terre-solidaire is a lab host.
    data["windows"] = ALWAYS_OPEN
    data["freezes"] = []


def packages(lab: Lab, host: str) -> dict[str, str]:
    """Return every installed package of a host and its version, as dpkg reads them."""
    done = lab.ssh(ADDRESSES[host], "dpkg-query -W -f '${Package}=${Version}\\n'")
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.split())


def health(address: str) -> int:
    # Straight to the lab host, as the client would reach it: no proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{address}/health", timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as answer:
        return int(answer.code)


def cli_json(lab: Lab, *args: str) -> Any:
    done = lab.cli(*args, "--json")
    assert done.returncode == ExitCode.OK, done.stderr
    return json.loads(done.stdout)


def scheduled_change(lab: Lab, version: str) -> str:
    """Return a change of terre-solidaire deploying the app at VERSION, scheduled."""
    created = cli_json(
        lab,
        "change",
        "request",
        CLIENT,
        "--title",
        f"Donation platform {version}",
        "--description",
        "release of the donation platform",
        "--deploys",
        f"{APP}={version}",
    )
    change_id: str = created["id"]
    cli_json(lab, "change", "scope", change_id, "--in", "donation platform")
    cli_json(lab, "change", "estimate", change_id, "--hours", "1", "--risk", "low")
    cli_json(lab, "change", "schedule", change_id, "--window", "rehearsal")
    return change_id


def deploy(lab: Lab, change_id: str) -> tuple[int, dict[str, Any], float]:
    """Deploy a change; return the exit status, the JSON report and the seconds taken."""
    lab.diagnosed(CLIENT)
    started = time.monotonic()
    done = lab.cli("run", CLIENT, "deploy", "--change", change_id, "--reason", "release", "--json")
    elapsed = time.monotonic() - started
    # A refused run prints its error, as JSON, on stderr only.
    return done.returncode, json.loads(done.stdout or done.stderr), elapsed


def deployed_entries(lab: Lab, change_id: str) -> list[Any]:
    return [e for e in lab.entries("change-deployed", CLIENT) if e.payload["change"] == change_id]


def test_deploying_a_good_version_reaches_every_web_node_and_is_then_accepted(
    lab: Lab, changed_hosts: list[str]
) -> None:
    """1.1 goes canary first, then the other batches; the db host, which does not run the
    app, is untouched; the change is deployed (run and versions recorded), then the
    client's acceptance is taken."""
    changed_hosts.extend(HOSTS)
    before = {host: packages(lab, host) for host in HOSTS}
    assert APP not in before["terre-db1"]
    with edited_contract(lab.inventories, CLIENT, always_open):
        change_id = scheduled_change(lab, "1.1")
        early = lab.cli("change", "accept", change_id, "--by", "Claire Dubois")
        assert early.returncode == ExitCode.BAD_INPUT, "accept before deploy is out of order"
        code, report, elapsed = deploy(lab, change_id)
    print(f"\ndeploy of {APP} 1.1 on 3 terre-solidaire hosts: {elapsed:.1f} s")
    assert code == ExitCode.OK, report
    after = {host: packages(lab, host) for host in HOSTS}
    for host in ("terre-web1", "terre-web2"):
        assert after[host][APP] == "1.1", host
        # Exactly the change's package: nothing else moved (webmg-demo-tools stays 1.0).
        assert {n: v for n, v in after[host].items() if n != APP} == {
            n: v for n, v in before[host].items() if n != APP
        }
        assert health(ADDRESSES[host]) == 200
    assert after["terre-db1"] == before["terre-db1"]
    (entry,) = deployed_entries(lab, change_id)
    assert entry.payload["run_id"] == report["run_id"]
    assert entry.payload["packages"] == {APP: "1.1"}
    for host in ("terre-web1", "terre-web2"):
        assert entry.payload["hosts"][host][APP] == {
            "before": before[host][APP],
            "after": after[host][APP],
        }
    assert entry.payload["hosts"]["terre-db1"][APP] == {"before": None, "after": None}
    assert report["change"]["deployed_seq"] == entry.seq
    (finished,) = [
        e for e in lab.entries("run-finished", CLIENT) if e.payload["run_id"] == report["run_id"]
    ]
    assert finished.payload["evidence"]["batches"] == [
        ["terre-web1"],
        ["terre-web2"],
        ["terre-db1"],
    ]
    shown = cli_json(lab, "change", "show", change_id)
    assert (shown["state"], shown["deployed_run"]) == ("deployed", report["run_id"])
    accepted = cli_json(lab, "change", "accept", change_id, "--by", "Claire Dubois")
    assert accepted["state"] == "accepted"


def test_deploying_a_broken_version_halts_at_the_canary_and_rolls_it_back(
    lab: Lab, changed_hosts: list[str]
) -> None:
    """1.2's health answers 500 on the canary: it is rolled back to the version it had,
    the other hosts never start, and the change is not deployed."""
    changed_hosts.extend(HOSTS)
    before = {host: packages(lab, host) for host in HOSTS}
    with edited_contract(lab.inventories, CLIENT, always_open):
        change_id = scheduled_change(lab, "1.2")
        code, report, elapsed = deploy(lab, change_id)
    print(f"\ndeploy of {APP} 1.2, halted at the canary: {elapsed:.1f} s")
    assert code == ExitCode.FAILED, report
    statuses = {host["host"]: host["status"] for host in report["hosts"]}
    assert statuses == {"terre-web1": "failed", "terre-web2": "excluded", "terre-db1": "excluded"}
    # The canary is back on its version and healthy; the others were never touched.
    assert {host: packages(lab, host) for host in HOSTS} == before
    assert packages(lab, "terre-web1")[APP] == "1.0"
    assert health(ADDRESSES["terre-web1"]) == 200
    (finished,) = [
        e for e in lab.entries("run-finished", CLIENT) if e.payload["run_id"] == report["run_id"]
    ]
    evidence = finished.payload["evidence"]
    assert evidence["halted"]["batch"] == 1
    assert evidence["halted"]["rolled_back"] is True
    assert evidence["halted"]["health_restored"] is True
    canary = evidence["hosts"]["terre-web1"]
    assert {(item["name"], item["new"]) for item in canary["packages"]} == {(APP, "1.2")}
    assert canary["health_after"]["checks"][0]["status"] == 500
    assert evidence["deployment"]["hosts"]["terre-web1"][APP] == {"before": "1.0", "after": "1.0"}
    assert deployed_entries(lab, change_id) == []
    assert report["change"] is None
    shown = cli_json(lab, "change", "show", change_id)
    assert shown["state"] == "scheduled"
    assert shown["deploy_runs"] == [report["run_id"]]
