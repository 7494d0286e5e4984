"""Hardening on rehearsal-lab hosts: real sshd, nftables and sysctl, checked with testinfra.

Lab hosts are containers: their kernel.* and fs.* settings are read-only,
so those controls end as residual risks (persisted, not applied).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.lab import Lab, edited_contract, edited_file
from support.waiting import wait_until

from webmg_ops.engine.reconcile import reconcile_runs
from webmg_ops.errors import ExitCode
from webmg_ops.remote.ssh import openssh_argv

pytestmark = pytest.mark.lab

CLIENT = "atelier-nord"
WEB, DB = "atelier-web1", "atelier-db1"
TARGET = "backup1"
ADDRESSES = {WEB: "198.18.0.41", DB: "198.18.0.42", TARGET: "198.18.0.5"}
SSHD_DROP_IN = "/etc/ssh/sshd_config.d/10-webmg-hardening.conf"
#: A guard's unit: area, UTC time and a random part (unique per host, area and run).
GUARD_UNIT = re.compile(r"^webmg-guard-(ssh|firewall)-[0-9]{14}-[0-9a-f]{8}$")


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


def ssh_with(lab: Lab, host: str, command: str, *options: str) -> subprocess.CompletedProcess[str]:
    """Run COMMAND on a host as the maintenance account with more ssh OPTIONS (host keys
    checked strictly).
    """
    argv = openssh_argv(
        lab.lab_dir / "identity" / "id_ed25519",
        lab.lab_dir / "known_hosts",
        f"webmg@{ADDRESSES[host]}",
        options=("ConnectTimeout=10", *options),
    )
    return subprocess.run([*argv, command], capture_output=True, text=True, timeout=60, check=False)


def guards(lab: Lab, host: str, *options: str) -> list[str]:
    """Return the lock-out guards present on a host: their units and saved states."""
    done = ssh_with(
        lab,
        host,
        "sudo systemctl list-units --all --plain --no-legend 'webmg-guard-*' | cut -d' ' -f1;"
        " sudo ls -A /run/webmg-guard 2>/dev/null || true",
        *options,
    )
    assert done.returncode == 0, done.stderr
    return sorted(set(done.stdout.split()))


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Wait until CONDITION (an SSH probe, so looked at twice a second) holds; fail naming
    WHAT after SECONDS."""
    assert wait_until(condition, seconds, every_s=0.5), f"{what} not within {seconds} s"


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
        # Both guards (SSH, firewall) were disarmed once a new session got through.
        assert guards(lab, WEB) == []
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
                "-e", "hardening_guard_timeout=30", "-e", "hardening_guard_confirm_timeout=10",
            )  # fmt: skip
            assert code == ExitCode.FAILED, report
            messages = " ".join(t["message"] for h in report["hosts"] for t in h["failed_tasks"])
            assert "lock-out guard" in messages
            assert checksum(lab, DB, "/etc/nftables.conf", listing="/etc/nftables.conf") == firewall
            assert lab.ssh(ADDRESSES[DB], "true").returncode == 0
            assert guards(lab, DB) == []
            # The SSH part passed its own guard: root may not log in on institutional-sla.
            shown = lab.ssh(ADDRESSES[DB], "sudo /usr/sbin/sshd -T | grep -i '^permitrootlogin'")
            assert shown.stdout.split() == ["permitrootlogin", "no"]
            assert lab.ssh(ADDRESSES[DB], "true", user="root").returncode != 0
    finally:
        lab.reset(DB)


def test_a_drop_in_valid_alone_that_breaks_the_whole_sshd_configuration_never_lands(
    lab: Lab,
) -> None:
    # The host's main configuration asks for a key and a password: valid as it stands
    # (password authentication is on by default), and the baseline alone is valid too;
    # together the password is off and AuthenticationMethods cannot be satisfied.
    key_and_password = (
        "echo 'AuthenticationMethods publickey,password' | sudo tee -a /etc/ssh/sshd_config"
        " >/dev/null && sudo /usr/sbin/sshd -t"
    )
    try:
        prepared = lab.ssh(ADDRESSES[WEB], key_and_password)
        assert prepared.returncode == 0, prepared.stderr
        sums = checksum(lab, WEB, "/etc/ssh/sshd_config")
        code, report = harden(lab, WEB)
        assert code == ExitCode.FAILED, report
        messages = " ".join(t["message"] for h in report["hosts"] for t in h["failed_tasks"])
        assert "whole sshd configuration" in messages, messages
        assert "AuthenticationMethods cannot be satisfied" in messages, messages
        # Nothing installed, nothing reloaded: sshd still answers with a key alone, its
        # files are as they were, and what it would read at the next boot is valid.
        assert lab.ssh(ADDRESSES[WEB], "true").returncode == 0
        assert checksum(lab, WEB, "/etc/ssh/sshd_config") == sums
        assert lab.ssh(ADDRESSES[WEB], "sudo /usr/sbin/sshd -t").returncode == 0
        assert guards(lab, WEB) == []
    finally:
        lab.reset(WEB)


def test_a_clients_run_never_touches_the_backup_target(lab: Lab) -> None:
    # The shared backup target is in the agency's folder alone: the client's run, without
    # --limit, hardens the client's own host and leaves the target as it was.
    inventory = lab.inventories / CLIENT / "hosts.yml"
    data = yaml.safe_load(inventory.read_text())
    del data["all"]["children"]["db"]
    state = (
        "sudo nft list ruleset; sudo sha256sum /etc/nftables.conf /etc/ssh/sshd_config;"
        " sudo ls -l /etc/ssh/sshd_config.d; sudo /usr/sbin/sshd -T | sort"
    )
    lab.diagnosed(CLIENT)
    target_before = lab.ssh(ADDRESSES[TARGET], state)
    assert target_before.returncode == 0, target_before.stderr
    try:
        with edited_file(inventory, yaml.safe_dump(data)):
            done = lab.cli("run", CLIENT, "harden", "--reason", "test", "--json")
            report = json.loads(done.stdout or done.stderr)
            assert done.returncode == ExitCode.OK, report
        by_host = {host["host"]: host for host in report["hosts"]}
        assert by_host[WEB]["changed"] > 0
        assert TARGET not in by_host
        target_after = lab.ssh(ADDRESSES[TARGET], state)
        assert target_after.returncode == 0, target_after.stderr
        assert target_after.stdout == target_before.stdout
        assert guards(lab, WEB) == []
    finally:
        lab.reset(WEB)


def test_the_guard_gives_access_back_when_the_run_dies_during_a_lock_out(lab: Lab) -> None:
    # Rules without the controller's network cut SSH; the run is then killed while it
    # waits for a new session, so only the timer armed on the host can undo the change.
    firewall = ("/etc/nftables.conf",)
    lab.diagnosed(CLIENT)
    before = checksum(lab, WEB, *firewall, listing="/etc/nftables.conf")
    ruleset = lab.ssh(ADDRESSES[WEB], "sudo nft list ruleset").stdout
    run: subprocess.Popen[str] | None = None
    try:
        run = subprocess.Popen(
            [
                sys.executable, "-m", "webmg_ops.cli.main", "run", CLIENT, "harden",
                "--limit", WEB, "--reason", "test",
                "-e", "hardening_management_networks=203.0.113.0/24",
                "-e", "hardening_guard_timeout=40", "-e", "hardening_guard_confirm_timeout=600",
            ],
            env=lab.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            text=True, start_new_session=True,
        )  # fmt: skip

        def locked_out() -> bool:
            assert run is not None and run.poll() is None, "the run ended by itself"
            return lab.ssh(ADDRESSES[WEB], "true").returncode != 0

        wait_for(locked_out, 300, "the lock-out")
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=60)
        # The controller's own clean-up ends the dead run's ansible-playbook and SSH
        # masters: only the host's timer can end the lock-out now.
        reconcile_runs(lab.settings)
        wait_for(
            lambda: lab.ssh(ADDRESSES[WEB], "true").returncode == 0,
            40 + 60,
            "SSH access given back by the guard",
        )
        # The firewall's guard gave SSH back; the SSH area's guard fires on its own timer
        # and then removes itself: wait for every guard of the run to be done.
        wait_for(
            lambda: not [name for name in guards(lab, WEB) if not name.endswith(".timer")],
            40 + 60,
            "every guard of the dead run done and gone",
        )
        assert checksum(lab, WEB, *firewall, listing="/etc/nftables.conf") == before
        assert lab.ssh(ADDRESSES[WEB], "sudo nft list ruleset").stdout == ruleset
        # systemd logged each guard under its own name: one per area of this run.
        logged = lab.ssh(
            ADDRESSES[WEB],
            "sudo journalctl --no-pager -o cat | grep -o 'webmg-guard-[a-z]*-[0-9a-f-]*' | sort -u",
        ).stdout.split()
        assert {name.split("-")[2] for name in logged} == {"ssh", "firewall"}, logged
        assert all(GUARD_UNIT.match(name) for name in logged), logged
    finally:
        if run is not None and run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=60)
        reconcile_runs(lab.settings)
        lab.reset(WEB)
