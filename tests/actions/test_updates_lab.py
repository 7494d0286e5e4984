"""Controlled updates on rehearsal-lab hosts: real apt, real health checks, real rollbacks.

The lab's apt repository serves ``webmg-demo-app`` 1.1 in the security suite
(a good update) and 1.2 in the updates suite (its /health answers 500), and
``webmg-demo-tools`` 1.1 in the updates suite; every host starts at 1.0.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from support.lab import Lab, edited_contract
from support.updates import show_failed_run

from webmg_ops.errors import ExitCode

pytestmark = pytest.mark.lab

ALWAYS_OPEN = [{"name": "rehearsal", "always": True, "timezone": "UTC"}]
ADDRESSES = {
    "alpenhof-web1": "198.18.0.11",
    "alpenhof-db1": "198.18.0.12",
    "terre-web1": "198.18.0.21",
    "terre-web2": "198.18.0.22",
    "terre-db1": "198.18.0.23",
    "riverton-web1": "198.18.0.31",
    "riverton-web2": "198.18.0.32",
    "riverton-db1": "198.18.0.33",
}
TERRE = ("terre-web1", "terre-web2", "terre-db1")
RIVERTON = ("riverton-web1", "riverton-web2", "riverton-db1")


def always_open(data: dict[str, Any]) -> None:
    # Allowed: every host of the demo clients is a lab host.
    data["windows"] = ALWAYS_OPEN
    data["freezes"] = []


def packages(lab: Lab, host: str) -> dict[str, str]:
    """Return every installed package of a host and its version, as dpkg reads them."""
    done = lab.ssh(ADDRESSES[host], "dpkg-query -W -f '${Package}=${Version}\\n'")
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.split())


def update(lab: Lab, client: str, hosts: tuple[str, ...], *flags: str) -> tuple[int, dict, float]:
    """Run ``update`` on some hosts of a client; return its exit status, report and seconds."""
    lab.diagnosed(client)
    started = time.monotonic()
    done = lab.cli(
        "run", client, "update", "--limit", ",".join(hosts), "--reason", "test", *flags, "--json"
    )
    elapsed = time.monotonic() - started
    # A refused run prints its error, as JSON, on stderr only.
    report = json.loads(done.stdout or done.stderr)
    show_failed_run(done.returncode, report)
    return done.returncode, report, elapsed


def finished(lab: Lab, run_id: str) -> dict[str, Any]:
    (entry,) = [e for e in lab.entries("run-finished") if e.payload["run_id"] == run_id]
    return entry.payload


def health(address: str) -> int:
    # Straight to the lab host, as the client would reach it: no proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{address}/health", timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as answer:
        return int(answer.code)


def test_check_mode_changes_nothing_and_reports_what_would_change(lab: Lab) -> None:
    before = {host: packages(lab, host) for host in TERRE}
    code, report, elapsed = update(lab, "terre-solidaire", TERRE, "--check")
    print(f"\ncheck-mode update of 3 terre-solidaire hosts: {elapsed:.1f} s")
    assert code == ExitCode.OK, report
    assert {host: packages(lab, host) for host in TERRE} == before
    evidence = finished(lab, report["run_id"])["evidence"]
    web1 = evidence["hosts"]["terre-web1"]
    assert web1["check"] is True
    assert web1["outcome"] == "would update"
    assert {(item["name"], item["old"], item["new"]) for item in web1["planned"]} == {
        ("webmg-demo-app", "1.0", "1.2"),
        ("webmg-demo-tools", "1.0", "1.1"),
    }
    assert web1["packages"] == []
    assert [item["name"] for item in evidence["hosts"]["terre-db1"]["planned"]] == [
        "webmg-demo-tools"
    ]
    log = Path(report["run_log"]).read_text()
    assert "Would be updated (dry run, nothing was changed)" in log
    assert "| webmg-demo-app | 1.0 | 1.2 | Debian/bookworm-updates |" in log


def test_security_mode_installs_only_security_updates_then_changes_nothing(
    lab: Lab, changed_hosts: list[str]
) -> None:
    hosts = ("alpenhof-web1", "alpenhof-db1")
    changed_hosts.extend(hosts)
    before = {host: packages(lab, host) for host in hosts}
    # A pending reboot must come out as a residual risk: no level allows reboots yet.
    assert lab.ssh(ADDRESSES["alpenhof-web1"], "sudo touch /run/reboot-required").returncode == 0
    with edited_contract(lab.inventories, "alpenhof", always_open):
        code, report, _ = update(lab, "alpenhof", hosts)
        assert code == ExitCode.OK, report
        again, second, _ = update(lab, "alpenhof", hosts)
    after = {host: packages(lab, host) for host in hosts}
    assert after["alpenhof-web1"]["webmg-demo-app"] == "1.1"  # security suite, not 1.2
    assert after["alpenhof-web1"]["webmg-demo-tools"] == "1.0"  # updates suite: not security
    assert after["alpenhof-db1"] == before["alpenhof-db1"]
    evidence = finished(lab, report["run_id"])["evidence"]
    assert evidence["mode"] == "security"
    for host in hosts:
        changed = {name for name, version in after[host].items() if before[host][name] != version}
        recorded = evidence["hosts"][host]["packages"]
        assert {item["name"] for item in recorded} == changed
        for item in recorded:
            assert (item["old"], item["new"]) == (
                before[host][item["name"]],
                after[host][item["name"]],
            )
    (app,) = evidence["hosts"]["alpenhof-web1"]["packages"]
    assert app["origin"] == "Debian-Security/bookworm-security"
    assert "webmg-demo-app.service" in evidence["hosts"]["alpenhof-web1"]["services_restarted"]
    assert [
        check["status"] for check in evidence["hosts"]["alpenhof-web1"]["health_after"]["checks"]
    ] == [200]
    risks = finished(lab, report["run_id"])["residual_risks"]
    assert {
        "host": "alpenhof-web1",
        "risk": "a reboot is required to finish the update",
    }.items() <= next(risk for risk in risks if risk["host"] == "alpenhof-web1").items()
    # Idempotent: a second run right after changes nothing anywhere.
    assert again == ExitCode.OK, second
    assert {host["host"]: host["changed"] for host in second["hosts"]} == dict.fromkeys(hosts, 0)
    assert {host: packages(lab, host) for host in hosts} == after


def test_rolling_window_halts_at_a_failed_canary_and_rolls_it_back(
    lab: Lab, changed_hosts: list[str]
) -> None:
    changed_hosts.extend(TERRE)
    before = {host: packages(lab, host) for host in TERRE}
    with edited_contract(lab.inventories, "terre-solidaire", always_open):
        code, report, elapsed = update(lab, "terre-solidaire", TERRE)
    print(f"\nrolling update of 3 terre-solidaire hosts, halted at the canary: {elapsed:.1f} s")
    assert code == ExitCode.FAILED, report
    assert report["outcome"] == "failed"
    statuses = {host["host"]: host["status"] for host in report["hosts"]}
    assert statuses == {"terre-web1": "failed", "terre-web2": "excluded", "terre-db1": "excluded"}
    # The canary is back to its recorded versions and healthy; the others were never touched.
    assert {host: packages(lab, host) for host in TERRE} == before
    assert health(ADDRESSES["terre-web1"]) == 200
    assert lab.ssh(ADDRESSES["terre-web1"], "systemctl is-active webmg-demo-app").returncode == 0
    evidence = finished(lab, report["run_id"])["evidence"]
    assert evidence["batches"] == [["terre-web1"]]
    assert evidence["halted"]["batch"] == 1
    assert evidence["halted"]["rolled_back"] is True
    assert evidence["halted"]["health_restored"] is True
    assert sorted(evidence["not_started"]) == ["terre-db1", "terre-web2"]
    canary = evidence["hosts"]["terre-web1"]
    assert {(item["name"], item["new"]) for item in canary["packages"]} >= {
        ("webmg-demo-app", "1.2")
    }
    assert canary["health_after"]["checks"][0]["status"] == 500
    assert {(item["name"], item["to"]) for item in canary["rollback"]["packages"]} == {
        ("webmg-demo-app", "1.0"),
        ("webmg-demo-tools", "1.0"),
    }
    assert canary["rollback"]["restored"] is True
    assert canary["rollback"]["health"]["ok"] is True


def test_approved_mode_needs_an_approval_and_installs_exactly_the_approved_versions(
    lab: Lab, changed_hosts: list[str]
) -> None:
    changed_hosts.extend(RIVERTON)
    before = {host: packages(lab, host) for host in RIVERTON}
    with edited_contract(lab.inventories, "riverton", always_open):
        code, refused, _ = update(lab, "riverton", RIVERTON)
        assert code == ExitCode.REFUSED, refused
        assert "requires an approval" in refused["error"]
        assert lab.entries("run-refused", "riverton")[-1].payload["refusal"] == "approval"
        approved = lab.cli("approve", "riverton", "update", "--by", "M. Reed", "--note", "CHG-7")
        assert approved.returncode == ExitCode.OK, approved.stderr
        code, report, elapsed = update(lab, "riverton", RIVERTON)
    print(f"\nrolling approved update of 3 riverton hosts: {elapsed:.1f} s")
    assert code == ExitCode.OK, report
    after = {host: packages(lab, host) for host in RIVERTON}
    for host in RIVERTON:
        expected = dict(before[host])
        if "webmg-demo-app" in expected:
            expected["webmg-demo-app"] = "1.1"  # the approved version, not the newest (1.2)
        assert after[host] == expected, host
    evidence = finished(lab, report["run_id"])["evidence"]
    assert evidence["batches"] == [[host] for host in RIVERTON]
    assert evidence["hosts"]["riverton-web2"]["packages"] == [
        {
            "name": "webmg-demo-app",
            "old": "1.0",
            "new": "1.1",
            "origin": "Debian-Security/bookworm-security",
        }
    ]


def test_held_packages_are_never_upgraded(lab: Lab, changed_hosts: list[str]) -> None:
    changed_hosts.append("terre-web2")

    def hold_app(data: dict[str, Any]) -> None:
        always_open(data)
        data["updates"] = {"holds": ["webmg-demo-app"]}

    with edited_contract(lab.inventories, "terre-solidaire", hold_app):
        code, report, _ = update(lab, "terre-solidaire", ("terre-web2",))
    assert code == ExitCode.OK, report
    versions = packages(lab, "terre-web2")
    assert versions["webmg-demo-app"] == "1.0"  # held: 1.2 stays out
    assert versions["webmg-demo-tools"] == "1.1"  # all mode still updates the rest
    web2 = finished(lab, report["run_id"])["evidence"]["hosts"]["terre-web2"]
    assert [(item["name"], item["new"]) for item in web2["held"]] == [("webmg-demo-app", "1.2")]
