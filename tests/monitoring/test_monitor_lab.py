"""The monitor on the lab: stopping the demo app on a riverton web host opens one
availability incident after the policy's failures in a row, whose escalation reaches a
real SMTP server (aiosmtpd on loopback) once; starting the app again records the
recovery on that incident. The host's state is read from the host itself."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.lab import Lab, edited_contract
from support.mailbox import Mailbox, mailbox
from support.waiting import wait_until

from webmg_ops.config.contract import Level
from webmg_ops.config.policy import LEVEL_DEFAULTS

pytestmark = pytest.mark.lab
__all__ = ["mailbox"]

CLIENT = "riverton"
WEB1 = "198.18.0.31"
CHECK = "citizen portal (node 1)"
APP = "webmg-demo-app"
FAILURES_TO_OPEN = LEVEL_DEFAULTS[Level.INSTITUTIONAL_SLA]["monitoring.failures_to_open"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
FIRST_STEP_AFTER = timedelta(minutes=15)
ON_CALL = "oncall@riverton.example"
POSTMORTEM = (
    "# Portal node down\n\n## Summary\nStopped by a test.\n\n## Timeline\nStopped, started.\n\n"
    "## Root cause\nA test.\n\n## What went well\nDetection.\n\n## Actions\n- None\n"
)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def _no_window_now(data: dict[str, Any]) -> None:
    # Riverton's Sunday window would make the failures planned: one three days ahead.
    day = WEEKDAYS[(datetime.now(UTC) + timedelta(days=3)).weekday()]
    data["windows"] = [
        {"name": "later", "weekdays": [day], "start": "02:00", "duration": "1h", "timezone": "UTC"}
    ]


def _mail_first_step(port: int) -> Any:
    def change(data: dict[str, Any]) -> None:
        _no_window_now(data)
        # The on-call step mails a real SMTP server, 15 minutes after the incident opens.
        data["escalation"][0]["after"] = "15m"
        data["escalation"][0]["notify"] = [
            f"mailto://127.0.0.1:{port}?mode=insecure&from=webmg@agency.example&to={ON_CALL}"
        ]

    return change


def test_a_stopped_app_opens_one_incident_and_its_restart_records_recovery(
    lab: Lab, changed_hosts: list[str], tmp_path: Any, mailbox: tuple[Mailbox, int]
) -> None:
    box, smtp_port = mailbox
    changed_hosts.append("riverton-web1")
    since = max((entry.seq for entry in lab.entries()), default=0)
    with edited_contract(lab.inventories, CLIENT, _mail_first_step(smtp_port)):
        stopped = lab.ssh(WEB1, f"sudo systemctl stop {APP}")
        assert stopped.returncode == 0, stopped.stderr
        assert lab.ssh(WEB1, f"systemctl is-active {APP}").stdout.strip() != "active"
        for _ in range(FAILURES_TO_OPEN):
            done = lab.cli("monitor", CLIENT, "--once", "--json")
            assert done.returncode == 0, done.stderr
        opened = [
            entry
            for entry in lab.entries("incident-opened", CLIENT)
            if entry.seq > since and entry.payload.get("check") == CHECK
        ]
        assert len(opened) == 1
        incident = f"INC-{opened[0].seq}"
        try:
            # The SLA tick, twice past the first step's delay: its mail is sent once.
            at = (opened[0].at + FIRST_STEP_AFTER + timedelta(minutes=1)).isoformat()
            for _ in range(2):
                ticked = lab.cli("tick", CLIENT, "--at", at, "--json")
                assert ticked.returncode == 0, ticked.stderr
            step = [
                message
                for message in box.messages
                if incident in message["subject"] and "escalation step 1" in message["subject"]
            ]
            assert len(step) == 1, box.messages
            assert step[0]["to"] == [ON_CALL]
            started = lab.ssh(WEB1, f"sudo systemctl start {APP}")
            assert started.returncode == 0, started.stderr
            assert wait_until(lambda: _answers(f"http://{WEB1}/health"), 60)
            done = lab.cli("monitor", CLIENT, "--once", "--json")
            assert json.loads(done.stdout)["recoveries"] == [f"{CLIENT}/{CHECK}"]
            recovered = [
                entry
                for entry in lab.entries("incident-recovered", CLIENT)
                if entry.payload.get("incident") == opened[0].seq
            ]
            assert len(recovered) == 1
        finally:
            # The session's ledger keeps no open incident of this test.
            postmortem = tmp_path / "pm.md"
            postmortem.write_text(POSTMORTEM)
            lab.cli("incident", "ack", incident)
            lab.cli("incident", "fix", incident, "--note", "restarted by the test")
            lab.cli("incident", "postmortem", incident, "--file", str(postmortem))
            lab.cli("incident", "close", incident, "--note", "test done")
