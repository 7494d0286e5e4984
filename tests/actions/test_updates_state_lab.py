"""The update role's reading of a host's services, on a rehearsal-lab host: which of the
running services an update must leave running.

The role's own script (``roles/updates/files/updates_state.py``) runs on the host over
real SSH, as the role runs it. A service started on demand (systemd-timedated: a D-Bus
call starts it and it exits when idle) is not expected back after an update, since its
absence is no fault of the update. A service the host starts at boot (cron, ssh: both
enabled) is, and one of them missing is reported.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.lab import COMMAND_TIMEOUT_SECONDS, Lab

pytestmark = pytest.mark.lab

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "updates" / "files" / "updates_state.py"
#: A database host: its services are the lab's own, and no demo site runs there.
ADDRESS = "198.18.0.23"
ON_DEMAND = "systemd-timedated.service"


def read_state(lab: Lab, request: dict[str, Any]) -> dict[str, Any]:
    """Run the role's state script on the host with REQUEST; return what it printed."""
    command = f"sudo -n /usr/bin/python3 - {shlex.quote(json.dumps(request))}"
    done = subprocess.run(
        lab.ssh_argv(ADDRESS, command),
        input=SCRIPT.read_text(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    state: dict[str, Any] = json.loads(done.stdout)
    return state


def test_a_service_started_on_demand_is_not_expected_back_and_a_stopped_lasting_one_is(
    lab: Lab,
) -> None:
    # A D-Bus call starts timedated, as fact gathering or a login may.
    started = lab.ssh(
        ADDRESS, f"sudo -n timedatectl show >/dev/null && systemctl is-active {ON_DEMAND}"
    )
    assert started.stdout.strip() == "active", started.stderr
    try:
        before = read_state(lab, {})
        assert ON_DEMAND in before["services"]
        assert ON_DEMAND not in before["lasting_services"]
        assert {"cron.service", "ssh.service"} <= set(before["lasting_services"])
        assert set(before["lasting_services"]) <= set(before["services"])

        # The on-demand service ends (as it does when idle), and so does cron.
        stopped = lab.ssh(ADDRESS, f"sudo -n systemctl stop {ON_DEMAND} cron.service")
        assert stopped.returncode == 0, stopped.stderr
        after = read_state(lab, {"expect_running": before["lasting_services"]})
        assert after["services_stopped"] == ["cron.service"]
    finally:
        restarted = lab.ssh(ADDRESS, "sudo -n systemctl start cron.service")
        assert restarted.returncode == 0, restarted.stderr
