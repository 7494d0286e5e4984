"""The backup target's login banner never opens an error the tool reports.

A hardened target shows a banner before login; ssh prints it on standard error, and
restic used to put it at the head of each of its errors ("subprocess ssh: Authorised
access only..."). The test gives the lab's target a banner of its own, proves that a
plain ssh shows it, then makes restic fail through the controller's SFTP access and
checks the error. The banner is removed afterwards, whatever happens.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.lab import Lab
from support.waiting import wait_until

from webmg_ops.backups import restic
from webmg_ops.backups.repository import sftp_command, target_known_hosts
from webmg_ops.config.clients import load_client
from webmg_ops.config.repository_location import SftpLocation, parse_repository_location

# The client's controller key reaches the target once the agency has prepared it.
pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("prepared_target")]

TARGET = "198.18.0.5"
CLIENT = "atelier-nord"
#: Sorts before the lab's own drop-in: sshd keeps the first value it reads.
DROP_IN = "/etc/ssh/sshd_config.d/00-banner-test.conf"
BANNER_FILE = "/etc/webmg-banner-test"
RELOAD = 'sudo sshd -t && sudo kill -HUP "$(cat /run/sshd.pid)"'


@pytest.fixture
def banner(lab: Lab) -> Iterator[str]:
    """Give the target a login banner for the test; return its text."""
    text = "Authorised access only. banner-" + os.urandom(4).hex()
    command = (
        f"printf '%s\\n' {shlex.quote(text)} | sudo tee {BANNER_FILE} >/dev/null && "
        f"echo 'Banner {BANNER_FILE}' | sudo tee {DROP_IN} >/dev/null && {RELOAD}"
    )
    done = lab.ssh(TARGET, command)
    assert done.returncode == 0, done.stderr
    try:
        # sshd re-reads its configuration when it re-executes on SIGHUP.
        shown = wait_until(lambda: text in lab.ssh(TARGET, "true").stderr, 30, every_s=1)
        assert shown, "a plain ssh to the target shows its banner"
        yield text
    finally:
        lab.ssh(TARGET, f"sudo rm -f {DROP_IN} {BANNER_FILE} && {RELOAD}")
        wait_until(lambda: lab.ssh(TARGET, "true").returncode == 0, 30, every_s=1)


def test_the_targets_banner_never_opens_a_restic_error(
    lab: Lab, banner: str, tmp_path: Path
) -> None:
    client = load_client(lab.inventories, CLIENT)
    location = parse_repository_location(client.contract.backup.repository or "")
    assert isinstance(location, SftpLocation)
    command = sftp_command(
        location, client.folder / "ssh" / "id_ed25519", target_known_hosts(client)
    )
    # A folder of the client's own on the target that holds no repository: restic fails.
    repository = restic.Repository(
        f"sftp:{location.user}@{location.host}:{location.path}/no-such-host",
        password="any",
        cache_dir=tmp_path / "cache",
        options=(f"sftp.command={command}",),
    )
    with pytest.raises(restic.ResticError) as failed:
        restic.list_snapshots(repository)
    message = str(failed.value)
    # The tool's own words first, then restic's: no line of the banner between them.
    assert message.startswith("restic snapshots: "), message
    assert not failed.value.detail.startswith("subprocess ssh"), message
    assert banner not in message
    assert "Authorised access only" not in message
