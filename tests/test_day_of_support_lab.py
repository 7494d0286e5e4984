"""The README's "A day of support" runs as written, on the lab, for a new user.

Its commands are read from the README itself (the section's second ``sh`` block)
and run with bash, as a user pastes them, while the lab's inbox runs beside them
on the port riverton's contract names. What they did is then read independently:
the inbox's own output, the ledger, and the web hosts' packages through dpkg.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.lab import Lab

from webmg_ops.lab import inbox
from webmg_ops.ledger import Entry

pytestmark = pytest.mark.lab

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## A day of support"
CLIENT = "riverton"
WEB = {"riverton-web1": "198.18.0.31", "riverton-web2": "198.18.0.32"}
APP = "webmg-demo-app"


def walkthrough() -> str:
    """Return the commands of the README's walkthrough: its section's second sh block."""
    text = README.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    blocks = re.findall(r"```sh\n(.*?)```", text[start:end], re.S)
    assert len(blocks) == 2 and blocks[0].strip() == "webmg-ops lab inbox", blocks
    return str(blocks[1])


def test_the_walkthrough_runs_as_written_and_does_what_it_says(
    lab: Lab, changed_hosts: list[str]
) -> None:
    changed_hosts.extend(WEB)
    # The lab's ledger is the session's: what the walkthrough records comes after this.
    since = max((entry.seq for entry in lab.entries()), default=0)

    def recorded(kind: str) -> list[Entry]:
        return [entry for entry in lab.entries(kind, CLIENT) if entry.seq > since]

    env = {**lab.env, "PATH": f"{Path(sys.executable).parent}:{lab.env.get('PATH', '')}"}
    receiver = subprocess.Popen(
        [sys.executable, "-m", "webmg_ops.cli.main", "lab", "inbox"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert receiver.stderr is not None
        listening = receiver.stderr.readline()
        assert f"{inbox.ADDRESS}:{inbox.DEFAULT_PORT}" in listening, listening
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", walkthrough()],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    finally:
        receiver.send_signal(signal.SIGINT)
        delivered, _ = receiver.communicate(timeout=30)

    # The inbox heard the on-call step once: the 50 % of the P1's response clock.
    headings = [line for line in delivered.splitlines() if not line.startswith("    ")]
    assert len(headings) == 1, delivered
    assert "/oncall" in headings[0] and "response clock reached 50%" in headings[0]

    (opened,) = recorded("incident-opened")
    incident = f"INC-{opened.seq}"
    assert incident in headings[0]
    assert [e.payload["incident"] for e in recorded("incident-closed")] == [opened.seq]
    (deployed,) = recorded("change-deployed")
    assert deployed.payload["packages"] == {APP: "1.1"}
    (started,) = [
        e for e in recorded("run-started") if e.payload["run_id"] == deployed.payload["run_id"]
    ]
    assert (started.payload["incident"], started.payload["emergency"]) == (incident, True)
    assert [e.payload["change"] for e in recorded("change-accepted")] == [started.payload["change"]]
    for host, address in WEB.items():
        version = lab.ssh(address, f"dpkg-query -W -f '${{Version}}' {APP}")
        assert (version.returncode, version.stdout) == (0, "1.1"), host
    # The incident's timeline lists the deploy that fixed it.
    shown = lab.cli("incident", "show", incident, "--json")
    kinds = [event["kind"] for event in json.loads(shown.stdout)["timeline"]]
    assert "run-started" in kinds and "run-finished" in kinds and kinds[-1] == "incident-closed"
