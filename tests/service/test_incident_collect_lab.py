"""``incident collect`` on rehearsal-lab hosts: real SSH with the client's enrolled host
keys, real systemd, journal, dpkg and sockets. The evidence recorded matches what the
host shows when read independently (the lab's own ssh), and collecting changes nothing
on the host."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from support.lab import Lab

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger

pytestmark = pytest.mark.lab

CLIENT = "alpenhof"
HOST = "alpenhof-web1"
ADDRESS = "198.18.0.11"

#: What "nothing changed" is read from, as root: installed packages, every file under
#: /etc, dpkg's database, the failed units and the listening sockets.
STATE = (
    "dpkg-query -W -f '${Package}=${Version}\\n' | sort; "
    "sudo -n find /etc -xdev -type f -exec sha256sum {} + | sort; "
    "sha256sum /var/lib/dpkg/status; "
    "systemctl --failed --no-legend --plain --no-pager | sort; "
    "sudo -n ss -tlnH | awk '{print $4}' | sort"
)


def host_state(lab: Lab) -> str:
    done = lab.ssh(ADDRESS, STATE)
    assert done.returncode == 0, done.stderr
    return done.stdout


def read(lab: Lab, command: str) -> tuple[int, str]:
    """Run COMMAND on the host with the lab's own ssh; return its status and output."""
    done = lab.ssh(ADDRESS, command)
    return done.returncode, done.stdout


def mount_points(df_output: str) -> set[str]:
    """Given ``df -P`` output, return its mount points (sizes move between two reads)."""
    return {line.split()[-1] for line in df_output.splitlines()[1:] if line.split()}


def listening(ss_output: str) -> set[str]:
    """Given ``ss -tlnH`` output, return its local addresses."""
    return {line.split()[3] for line in ss_output.splitlines() if len(line.split()) > 3}


def cli_json(lab: Lab, ledger_url: str, *args: str) -> tuple[int, Any, str]:
    done = lab.cli("--ledger", ledger_url, *args, "--json")
    return done.returncode, json.loads(done.stdout) if done.stdout else None, done.stderr


def test_collect_reads_the_incidents_host_as_it_is_and_changes_nothing(
    lab: Lab, tmp_path: Path
) -> None:
    # A ledger of its own: the shared lab ledger keeps no incident of this test.
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    code, opened, err = cli_json(
        lab,
        ledger_url,
        "incident",
        "open",
        CLIENT,
        "--title",
        "booking site slow",
        "--impact",
        "operations",
        "--criticality",
        "minor",
        "--host",
        HOST,
    )
    assert code == ExitCode.OK, err
    before = host_state(lab)

    code, document, err = cli_json(lab, ledger_url, "incident", "collect", opened["id"])

    assert code == ExitCode.OK, err
    assert before == host_state(lab)
    assert f"{HOST}: collected" in err
    (host,) = document["hosts"]
    assert (host["host"], host["state"]) == (HOST, "collected")
    commands = {command["name"]: command for command in host["commands"]}

    # Read again, independently: what does not move between two reads is the same.
    status, packages = read(lab, "tail -n 50 /var/log/dpkg.log")
    assert (commands["packages"]["exit_status"], commands["packages"]["stdout"]) == (
        status,
        packages,
    )
    _status, failed = read(lab, "systemctl --failed --no-legend --plain --no-pager")
    assert commands["failed-units"]["stdout"] == failed
    _status, df = read(lab, "df -hP")
    assert commands["disk"]["state"] == "ok"
    assert mount_points(commands["disk"]["stdout"]) == mount_points(df)
    _status, ports = read(lab, "sudo -n ss -tlnH")
    assert commands["ports"]["state"] == "ok"
    assert listening(commands["ports"]["stdout"]) == listening(ports)
    # The load moves between two reads; its shape does not: the five fields of
    # /proc/loadavg, then uptime's line.
    loadavg, uptime = commands["load"]["stdout"].splitlines()
    assert re.fullmatch(r"[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+/[0-9]+ [0-9]+", loadavg)
    assert "load average" in uptime
    _status, memory = read(lab, "free -m | awk 'NR==2 {print $2}'")  # total MiB: fixed
    assert commands["memory"]["stdout"].splitlines()[1].split()[1] == memory.strip()
    assert commands["errors"]["state"] == "ok", commands["errors"]

    # Recorded once, attached to the incident, and shown on its timeline.
    with open_ledger(ledger_url, create=False) as ledger:
        (entry,) = ledger.entries(kinds=("incident-evidence",))
    assert entry.seq == document["evidence"]
    assert entry.payload["hosts"] == document["hosts"]
    code, shown, err = cli_json(lab, ledger_url, "incident", "show", opened["id"])
    assert code == ExitCode.OK, err
    assert [event["kind"] for event in shown["timeline"]] == [
        "incident-opened",
        "incident-evidence",
    ]
