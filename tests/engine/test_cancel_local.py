"""A play stopped on request leaves none of its processes, on this machine (no lab).

A real ansible-runner run of the held playbook on a host that is this machine
(local connection, as the engine's runner is given it here directly): once the
play holds, a command of its own waiting, the run is asked to stop. Ansible's
workers sit in sessions of their own, so killing ansible-playbook's process
group alone would leave them, and the commands of their tasks, running on.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest
from support.engine import LOCAL_INVENTORY, PLAYBOOKS
from support.processes import Process, listing, play_processes
from support.waiting import wait_until

from webmg_ops.ansible.runner import PID_FILE, Job, run_playbook
from webmg_ops.secrets import SecretSet

#: A real Ansible play on this machine: not in the fast inner loop.
pytestmark = pytest.mark.tools


def test_a_stopped_play_leaves_none_of_its_processes(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(LOCAL_INVENTORY)
    holding = tmp_path / "holding"
    private_dir = tmp_path / "var" / "runs" / "run-stopped" / "ansible"
    play: list[Process] = []

    def stop_once_held() -> bool:
        if not holding.exists():
            return False
        if not play:
            # What the play runs at the moment it is asked to stop.
            play.extend(play_processes(int((private_dir / PID_FILE).read_text())))
        return True

    result = run_playbook(
        Job(
            run_id="run-stopped",
            playbook=PLAYBOOKS / "hold_on_controller.yml",
            inventory=inventory,
            private_dir=private_dir,
            extra_vars={"webmg_holding_file": str(holding)},
        ),
        ["local1"],
        SecretSet(),
        should_cancel=stop_once_held,
    )

    try:
        assert result.canceled
        # A search that cannot see the play's processes proves nothing: it saw the held
        # command.
        assert any(item.command == "sleep 300" for item in play), listing(play)
        wait_until(lambda: not any(item.alive() for item in play), 30)
        left = [item for item in play if item.alive()]
        assert left == [], listing(left)
    finally:
        # Whatever went wrong, nothing the test started outlives it.
        for item in play:
            if item.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(item.pid, signal.SIGKILL)
