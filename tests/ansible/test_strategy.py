"""Which strategy a run's plays use: Ansible's ``linear`` by default, Mitogen's on request.

The plays run for real (ansible-playbook on the controller itself, ``local``
connection, no SSH), with the environment the runner builds. What tells the two
strategies apart is Mitogen's promise itself: one interpreter kept for the
whole play, so two tasks' shells share a parent process, where Ansible's own
strategy starts a new interpreter per task.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from webmg_ops.ansible.runner import (
    ANSIBLE_CFG,
    Job,
    _environment,
    create_control_dir,
    remove_control_dir,
)
from webmg_ops.ansible.strategy import (
    STRATEGY_VARIABLE,
    mitogen_strategy_folder,
    strategy_in_force,
)
from webmg_ops.errors import EnvironmentProblem, ExitCode

CLIENT = "atelier-nord"
TOOLS = Path(sys.executable).parent

#: Two tasks, each printing the process that started its shell.
PLAY = """\
- name: Parent processes of two tasks
  hosts: all
  gather_facts: false
  tasks:
    - name: First task
      ansible.builtin.shell: echo "parent=$PPID"
      register: first
      changed_when: false
    - name: Second task
      ansible.builtin.shell: echo "parent=$PPID"
      register: second
      changed_when: false
    - name: Both parents
      ansible.builtin.debug:
        msg: "parents {{ first.stdout }} {{ second.stdout }}"
"""


def _parents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str | None) -> list[str]:
    """Run the two-task play on this machine with the runner's environment (STRATEGY in
    the variable, or none); return the parent process of each task's shell."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    controller:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
    )
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    job = Job(
        run_id="strategy",
        playbook=play,
        inventory=inventory,
        private_dir=tmp_path / "private",
        environment={"ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")},
    )
    # As a run makes it: Mitogen's socket lives there, and a socket's path must stay under
    # 108 bytes (a test's own folder, under a parallel worker's, is longer).
    job.private_dir.mkdir()
    control = create_control_dir(job.private_dir)
    if strategy is None:
        monkeypatch.delenv(STRATEGY_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(STRATEGY_VARIABLE, strategy)
    environment = _environment(job, control)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    try:
        done = subprocess.run(
            [str(TOOLS / "ansible-playbook"), "-i", str(inventory), str(play)],
            env={**clean, **environment},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        remove_control_dir(job.private_dir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if "parents parent=" in line)
    return [word.removeprefix("parent=").strip('"') for word in line.split() if "parent=" in word]


@pytest.mark.tools
def test_ansibles_own_strategy_starts_an_interpreter_per_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parents = _parents(tmp_path, monkeypatch, None)
    assert len(parents) == 2
    assert parents[0] != parents[1], parents


@pytest.mark.tools
def test_the_variable_switches_every_run_to_mitogen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parents = _parents(tmp_path, monkeypatch, "mitogen_linear")
    assert len(parents) == 2
    # One interpreter for the whole play: both tasks' shells have the same parent.
    assert parents[0] == parents[1], parents


def _bare_job(tmp_path: Path) -> Job:
    """Return a job whose files need not exist: enough for the runner's environment."""
    return Job(
        run_id="r",
        playbook=tmp_path / "p.yml",
        inventory=tmp_path / "h.yml",
        private_dir=tmp_path / "private",
    )


def test_the_default_is_ansibles_linear_and_names_no_plugin_folder(tmp_path: Path) -> None:
    job = _bare_job(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(STRATEGY_VARIABLE, raising=False)
        environment = _environment(job, tmp_path / "control")
    assert environment["ANSIBLE_STRATEGY"] == "linear"
    assert "ANSIBLE_STRATEGY_PLUGINS" not in environment
    assert "TMPDIR" not in environment


def test_mitogen_listens_in_the_runs_private_folder(tmp_path: Path) -> None:
    job = _bare_job(tmp_path)
    control = tmp_path / "control"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STRATEGY_VARIABLE, "mitogen_linear")
        environment = _environment(job, control)
    assert environment["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert environment["TMPDIR"] == str(control)
    folder = Path(environment["ANSIBLE_STRATEGY_PLUGINS"])
    assert (folder / "mitogen_linear.py").is_file()
    assert folder == mitogen_strategy_folder()


def test_the_variable_beats_the_ansible_cfg(tmp_path: Path) -> None:
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\nforks = 5\nstrategy = mitogen_linear\n")
    assert strategy_in_force(cfg, {}) == "mitogen_linear"
    assert strategy_in_force(cfg, {STRATEGY_VARIABLE: "linear"}) == "linear"
    assert strategy_in_force(ANSIBLE_CFG, {}) == "linear"


def test_an_unknown_strategy_in_the_variable_is_an_environment_problem() -> None:
    with pytest.raises(EnvironmentProblem, match=f"{STRATEGY_VARIABLE} is 'free'"):
        strategy_in_force(ANSIBLE_CFG, {STRATEGY_VARIABLE: "free"})


def test_a_run_with_an_unknown_strategy_writes_nothing(
    cli: Callable[..., object],
    ledger_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(STRATEGY_VARIABLE, "host_pinned")
    done = cli("run", CLIENT, "check", "--reason", "strategy")
    assert done.code == ExitCode.ENVIRONMENT, done  # type: ignore[attr-defined]
    assert f"{STRATEGY_VARIABLE} is 'host_pinned'" in done.err  # type: ignore[attr-defined]
    assert "Traceback" not in done.err  # type: ignore[attr-defined]
    assert not Path(ledger_url.removeprefix("sqlite:///")).exists()


def test_a_client_may_choose_mitogen_in_its_ansible_cfg(
    cli: Callable[..., object], inventories: Path
) -> None:
    (inventories / CLIENT / "ansible.cfg").write_text("[defaults]\nstrategy = mitogen_linear\n")
    done = cli("validate", CLIENT)
    assert done.code == ExitCode.OK, done  # type: ignore[attr-defined]
