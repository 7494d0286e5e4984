"""SIGINT closes a run as ``canceled``, as SIGTERM does, and leaves nothing running.

Ctrl-C at a terminal sends SIGINT to the foreground job's process group. The
test starts ``webmg-ops run`` in a process group of its own and signals that
group while the play holds: its host reached (the run's SSH master open), then
a command of the play waiting on the controller, so the play cannot end on its
own before the signal. The run's own process then closes the run in the ledger
as ``canceled`` (no later command is run, so nothing else could close it) and
exits with status 1, a run that did not succeed; no process of its play
(ansible-playbook, its workers and their commands, the SSH master) outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.lab import Lab
from support.processes import Process, listing, play_processes, processes
from support.waiting import wait_until

from webmg_ops.ansible.runner import CONTROL_DIR_FILE, PID_FILE
from webmg_ops.ansible.strategy import DEFAULT_STRATEGY, MITOGEN_STRATEGY, STRATEGY_VARIABLE
from webmg_ops.errors import ExitCode

pytestmark = pytest.mark.lab

CLIENT = "atelier-nord"
TESTS = Path(__file__).resolve().parents[1]
#: How long the run may take to reach its hold: preflight, then the play's first task.
HOLD_TIMEOUT_SECONDS = 180
#: How long a stopped run may take to close and exit, and its processes to end.
STOP_TIMEOUT_SECONDS = 120

#: ``webmg-ops`` with the read-only check's playbook replaced by the held one
#: (``install_test_action`` in the orchestrator's own process).
_HELD_RUN = """
import sys
sys.path.insert(0, sys.argv[1])
import pytest
from support.engine import install_test_action
from webmg_ops.cli.main import main

install_test_action(pytest.MonkeyPatch(), "check", "hold_on_controller.yml")
main(sys.argv[2:])
"""


def _new_run_folder(runs: Path, before: set[Path]) -> Path:
    (folder,) = set(runs.iterdir()) - before
    return folder


@pytest.mark.parametrize("strategy", [DEFAULT_STRATEGY, MITOGEN_STRATEGY])
def test_sigint_closes_the_run_as_canceled_and_leaves_nothing(
    lab: Lab, tmp_path: Path, strategy: str
) -> None:
    runs = lab.settings.var_dir / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    holding = tmp_path / "holding"
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        orchestrator = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _HELD_RUN,
                str(TESTS),
                "run",
                CLIENT,
                "check",
                "--limit",
                "atelier-web1",
                "--reason",
                "stopped with Ctrl-C",
                "-e",
                f"webmg_holding_file={holding}",
            ],
            env={**lab.env, STRATEGY_VARIABLE: strategy},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            # A job of its own, as a shell runs a command: Ctrl-C reaches its process group.
            start_new_session=True,
        )
    play: list[Process] = []
    code: int | None = None
    try:
        held = wait_until(
            lambda: holding.exists() or orchestrator.poll() is not None, HOLD_TIMEOUT_SECONDS
        )
        assert held and orchestrator.poll() is None, errors.read_text()[-3000:]
        run_dir = _new_run_folder(runs, before)
        private = run_dir / "ansible"
        control = Path((private / CONTROL_DIR_FILE).read_text().strip())
        play = play_processes(int((private / PID_FILE).read_text()), control)
        # A search that cannot see the run's processes proves nothing: it sees them now,
        # the held command and the SSH connection among them (Ansible's own strategy
        # keeps a master in the run's control folder; Mitogen starts ssh itself).
        assert any(p.command == "sleep 300" for p in play), listing(processes())
        if strategy == DEFAULT_STRATEGY:
            assert any(str(control) in p.command for p in play), listing(processes())
        else:
            assert any(p.command.startswith("ssh ") for p in play), listing(processes())

        os.killpg(orchestrator.pid, signal.SIGINT)
        code = orchestrator.wait(timeout=STOP_TIMEOUT_SECONDS)

        # The play's processes end with the run: wait for that, then say which are left.
        wait_until(lambda: not any(p.alive() for p in play), 30)
    finally:
        # Whatever went wrong, nothing the test started outlives it.
        if orchestrator.poll() is None:
            orchestrator.kill()
            orchestrator.wait(timeout=STOP_TIMEOUT_SECONDS)
        left = [p for p in play if p.alive()]
        for item in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(item.pid, signal.SIGKILL)

    assert code == ExitCode.FAILED, errors.read_text()[-3000:]
    assert "Traceback" not in errors.read_text()
    # Read straight from the ledger: no command ran since, so the run closed itself.
    closed = [
        entry.payload["outcome"]
        for entry in lab.entries("run-finished", CLIENT)
        if entry.payload["run_id"] == run_dir.name
    ]
    assert closed == ["canceled"]
    assert left == [], listing(left)
    assert not control.exists(), "the run's SSH control folder is left"
