"""Hardening on rehearsal-lab hosts: real sshd, nftables and sysctl, checked with testinfra.

Lab hosts are containers: their kernel.* and fs.* settings are read-only,
so those controls end as residual risks (persisted, not applied).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lab_testing import Lab, edited_contract

from webmg_ops.errors import ExitCode

pytestmark = pytest.mark.lab

CLIENT = "atelier-nord"
WEB, DB = "atelier-web1", "atelier-db1"
ADDRESSES = {WEB: "198.18.0.41", DB: "198.18.0.42"}
SSHD_DROP_IN = "/etc/ssh/sshd_config.d/10-webmg-hardening.conf"


def compliance(lab: Lab, host: str) -> dict[str, Any]:
    done = lab.cli("compliance", CLIENT, "--limit", host, "--json")
    assert done.returncode == ExitCode.OK, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)["hosts"][host]
    return document


def harden(lab: Lab, host: str, *flags: str) -> tuple[int, dict[str, Any]]:
    lab.diagnosed(CLIENT)
    done = lab.cli("run", CLIENT, "harden", "--limit", host, "--reason", "test", *flags, "--json")
    return done.returncode, json.loads(done.stdout or done.stderr)


def evidence(lab: Lab, run_id: str) -> dict[str, Any]:
    (entry,) = [e for e in lab.entries("run-finished") if e.payload["run_id"] == run_id]
    found: dict[str, Any] = entry.payload["evidence"]
    return found


def checksum(lab: Lab, host: str, *paths: str, listing: str = "/etc/ssh/sshd_config.d") -> str:
    # A folder is listed too (sshd's drop-ins by default): files may appear in it.
    done = lab.ssh(ADDRESSES[host], f"sudo sha256sum {' '.join(paths)} && sudo ls -l {listing}")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_harden_a_bare_host_check_first_then_converge_idempotence_and_drift(lab: Lab) -> None:
    files = ("/etc/ssh/sshd_config", "/etc/nftables.conf", "/etc/login.defs")
    try:
        before = compliance(lab, WEB)
        # Check mode on a bare host changes nothing and lists what it would fix.
        sums = checksum(lab, WEB, *files)
        code, report = harden(lab, WEB, "--check")
        assert code == ExitCode.OK, report
        assert checksum(lab, WEB, *files) == sums
        dry = evidence(lab, report["run_id"])["hosts"][WEB]
        assert "SSH-01" in dry["would_fix"] and "FW-01" in dry["would_fix"]
        assert set(dry["changed_areas"]) >= {"ssh", "firewall"}

        code, report = harden(lab, WEB)
        assert code == ExitCode.OK, report
        after = compliance(lab, WEB)
        print(f"\ncompliance of a bare lab host: {before['score']} -> {after['score']}")
        assert after["score"]["passed"] > before["score"]["passed"]
        assert after["failed"] == []
        for control in after["residual_risk"]:
            assert after["controls"][control]["detail"], control
        recorded = evidence(lab, report["run_id"])
        assert recorded["score_after"]["passed"] > recorded["score_before"]["passed"]
        assert lab.ssh(ADDRESSES[WEB], "true").returncode == 0

        code, report = harden(lab, WEB)
        assert code == ExitCode.OK, report
        assert [host["changed"] for host in report["hosts"]] == [0]

        edit = "s/^PasswordAuthentication no/PasswordAuthentication yes/"
        drifted = lab.ssh(ADDRESSES[WEB], f"sudo sed -i '{edit}' {SSHD_DROP_IN}")
        assert drifted.returncode == 0, drifted.stderr
        code, report = harden(lab, WEB, "--check")
        assert code == ExitCode.OK, report
        assert evidence(lab, report["run_id"])["drift"] == {WEB: ["SSH-01"]}
        log = Path(report["run_log"]).read_text()
        assert "Drift since the last hardening" in log and "SSH-01" in log
    finally:
        lab.reset(WEB)


def test_root_login_refused_where_policy_says_so_and_lock_out_is_undone(lab: Lab) -> None:
    def institutional(data: dict[str, Any]) -> None:
        data["level"] = "institutional-sla"

    try:
        with edited_contract(lab.inventories, CLIENT, institutional):
            approved = lab.cli("approve", CLIENT, "harden", "--by", "I. Holm", "--note", "CHG-9")
            assert approved.returncode == ExitCode.OK, approved.stderr
            firewall = checksum(lab, DB, "/etc/nftables.conf", listing="/etc/nftables.conf")
            # A firewall without the management network would cut SSH: the guard undoes it.
            code, report = harden(
                lab, DB, "-e", "hardening_management_networks=203.0.113.0/24",
                "-e", "hardening_guard_timeout=15",
            )  # fmt: skip
            assert code == ExitCode.FAILED, report
            messages = " ".join(t["message"] for h in report["hosts"] for t in h["failed_tasks"])
            assert "lock-out guard" in messages
            assert checksum(lab, DB, "/etc/nftables.conf", listing="/etc/nftables.conf") == firewall
            assert lab.ssh(ADDRESSES[DB], "true").returncode == 0
            # The SSH part passed its own guard: root may not log in on institutional-sla.
            shown = lab.ssh(ADDRESSES[DB], "sudo /usr/sbin/sshd -T | grep -i '^permitrootlogin'")
            assert shown.stdout.split() == ["permitrootlogin", "no"]
            assert lab.ssh(ADDRESSES[DB], "true", user="root").returncode != 0
    finally:
        lab.reset(DB)
