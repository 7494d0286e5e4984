"""OpenSSH's argv as the controller builds it: a destination is never read as an option.

The attack is run against the real ``ssh``: a destination that starts with
``-oProxyCommand=`` would make ssh run that command on the controller. The
only address reached is loopback, on a port where nothing listens.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from webmg_ops.backups.repository import sftp_command
from webmg_ops.backups.scratchdb import free_port
from webmg_ops.config.repository_location import SftpLocation
from webmg_ops.remote.ssh import openssh_argv

SSH_TIMEOUT_S = 30


def _run_ssh(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*argv, "true"], capture_output=True, text=True, timeout=SSH_TIMEOUT_S, check=False
    )


def _hostile_argv(tmp_path: Path) -> tuple[list[str], str]:
    marker = tmp_path / "proxy-command-ran"
    # ssh splits USER@HOST at the last "@": the host is loopback, on a closed port.
    destination = f"-oProxyCommand=touch {marker}@127.0.0.1"
    argv = openssh_argv(
        tmp_path / "id_ed25519", tmp_path / "known_hosts", destination, port=free_port()
    )
    return argv, destination


def test_a_destination_starting_with_a_dash_comes_after_the_end_of_options(
    tmp_path: Path,
) -> None:
    argv, destination = _hostile_argv(tmp_path)
    assert argv[-2:] == ["--", destination]
    assert argv.count(destination) == 1


def test_real_ssh_never_runs_a_proxy_command_given_as_destination(tmp_path: Path) -> None:
    argv, _destination = _hostile_argv(tmp_path)

    done = _run_ssh(argv)

    assert done.returncode == 255, done
    assert not list(tmp_path.glob("proxy-command-ran*")), "ssh ran the destination as an option"


def test_without_the_end_of_options_the_same_destination_runs_the_command(tmp_path: Path) -> None:
    # The control: the attack is real against this ssh when "--" is missing.
    argv, _destination = _hostile_argv(tmp_path)
    argv.remove("--")

    _run_ssh(argv)

    assert list(tmp_path.glob("proxy-command-ran*"))


def test_restic_sftp_command_asks_for_the_subsystem_after_the_end_of_options(
    tmp_path: Path,
) -> None:
    location = SftpLocation(user="restic", host="198.18.0.5", path="/srv/restic/alpenhof")
    words = shlex.split(sftp_command(location, tmp_path / "key", tmp_path / "known_hosts"))
    end = words.index("--")
    assert words[end - 1] == "-s"
    assert words[end + 1 :] == ["restic@198.18.0.5", "sftp"]
    assert "StrictHostKeyChecking=yes" in words
