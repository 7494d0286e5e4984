"""Hardening never installs a file its validator refuses, and the SSH lock-out guard puts the
previous sshd files back: real sshd, nft and visudo on rehearsal-lab hosts.

The inputs come in as a client's do: a file in its inventory's ``group_vars``.
Each test switches off the areas it does not exercise, to stay quick. A file
that is "unchanged" is compared byte for byte, and by inode: the role writes
a file by renaming a new one into place, the guard puts saved bytes back into
the file that is there, so an unchanged inode shows that the refused file was
never renamed into place (and then undone).
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from support.lab import Lab, edited_file
from support.updates import write_host_file

from webmg_ops.errors import ExitCode

pytestmark = pytest.mark.lab

CLIENT = "atelier-nord"
WEB, DB = "atelier-web1", "atelier-db1"
ADDRESSES = {WEB: "198.18.0.41", DB: "198.18.0.42"}
SSHD_DROP_IN = "/etc/ssh/sshd_config.d/10-webmg-hardening.conf"
SSHD_MAIN = "/etc/ssh/sshd_config"
NFTABLES = "/etc/nftables.conf"
SUDOERS_DROP_IN = "/etc/sudoers.d/50-webmg-hardening"
AREAS = ("ssh", "sysctl", "firewall", "updates", "accounts")

#: A drop-in from before this baseline, as a host that was hardened earlier has one.
PREVIOUS_DROP_IN = "# The previous SSH settings of this host.\nPasswordAuthentication no\n"
PREVIOUS_SUDOERS = (
    "# The previous sudo settings of this host.\nDefaults logfile=/var/log/sudo-previous.log\n"
)
#: Stands for a visudo that finds the file it is given invalid. Found first through sudo's
#: secure_path (/usr/local/sbin), as the role's ``visudo -cf`` finds visudo.
REFUSING_VISUDO = """\
#!/bin/sh
echo ">>> $2: syntax error near line 2 <<<" >&2
echo "parse error in $2 near line 2" >&2
exit 1
"""


@dataclass(frozen=True)
class FileState:
    """A file on a host: its bytes and its inode (None and 0 when it is missing)."""

    content: bytes | None
    inode: int


def file_state(lab: Lab, host: str, path: str) -> FileState:
    """Return a file's bytes and inode, read on the host as root."""
    quoted = shlex.quote(path)
    done = lab.ssh(
        ADDRESSES[host],
        f"if sudo test -e {quoted}; then sudo stat -c %i {quoted}; sudo base64 -w0 {quoted};"
        " else echo missing; fi",
    )
    assert done.returncode == 0, done.stderr
    first, _, rest = done.stdout.partition("\n")
    if first == "missing":
        return FileState(None, 0)
    return FileState(base64.b64decode(rest.strip()), int(first))


def listing(lab: Lab, host: str, folder: str) -> str:
    """Return the names, modes and owners of a folder's files on a host."""
    done = lab.ssh(ADDRESSES[host], f"sudo ls -ln --time-style=+ {shlex.quote(folder)}")
    assert done.returncode == 0, done.stderr
    return done.stdout


def guards(lab: Lab, host: str) -> list[str]:
    """Return the lock-out guards left on a host: their units and saved states."""
    done = lab.ssh(
        ADDRESSES[host],
        "sudo systemctl list-units --all --plain --no-legend 'webmg-guard-*' | cut -d' ' -f1;"
        " sudo ls -A /run/webmg-guard 2>/dev/null || true",
    )
    assert done.returncode == 0, done.stderr
    return sorted(set(done.stdout.split()))


def effective_sshd(lab: Lab, host: str) -> str:
    """Return the configuration sshd would run with now, as ``sshd -T`` prints it."""
    done = lab.ssh(ADDRESSES[host], "sudo /usr/sbin/sshd -T | sort")
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def hardening_inputs(lab: Lab, area: str, values: dict[str, Any]) -> Iterator[None]:
    """Within the block, the client's inventory gives its hosts VALUES and hardens AREA alone."""
    switches = {f"hardening_{name}_enabled": name == area for name in AREAS}
    file = lab.inventories / CLIENT / "group_vars" / "all" / "test-inputs.yml"
    with edited_file(file, yaml.safe_dump({**switches, **values})):
        yield


def harden(lab: Lab, host: str) -> tuple[int, dict[str, Any], str]:
    """Run ``harden`` on one host; return its exit status, its report and, from its record
    in the ledger, the messages of its failed tasks.
    """
    lab.diagnosed(CLIENT)
    done = lab.cli("run", CLIENT, "harden", "--limit", host, "--reason", "test", "--json")
    report: dict[str, Any] = json.loads(done.stdout or done.stderr)
    if "run_id" not in report:
        return done.returncode, report, ""
    (entry,) = [e for e in lab.entries("run-finished") if e.payload["run_id"] == report["run_id"]]
    assert entry.payload["outcome"] == ("succeeded" if done.returncode == 0 else "failed")
    messages = " ".join(
        task["message"] for result in entry.payload["hosts"] for task in result["failed_tasks"]
    )
    return done.returncode, report, messages


def test_sshd_t_refuses_a_drop_in_with_an_unknown_cipher_before_it_is_installed(
    lab: Lab,
) -> None:
    try:
        write_host_file(lab, ADDRESSES[WEB], SSHD_DROP_IN, PREVIOUS_DROP_IN, mode="0600")
        before = file_state(lab, WEB, SSHD_DROP_IN)
        main = file_state(lab, WEB, SSHD_MAIN)
        sshd = effective_sshd(lab, WEB)
        # A cipher that does not exist: the rendered drop-in is no valid sshd configuration.
        with hardening_inputs(lab, "ssh", {"hardening_ssh_ciphers": ["aes1024-ctr"]}):
            code, report, messages = harden(lab, WEB)
        assert code == ExitCode.FAILED, report
        assert file_state(lab, WEB, SSHD_DROP_IN) == before
        assert "failed to validate" in messages, messages
        assert "aes1024-ctr" in messages, messages
        assert file_state(lab, WEB, SSHD_MAIN).content == main.content
        assert effective_sshd(lab, WEB) == sshd
        assert lab.ssh(ADDRESSES[WEB], "true").returncode == 0
        assert guards(lab, WEB) == []
    finally:
        lab.reset(WEB)


def test_nft_c_refuses_firewall_rules_with_a_port_out_of_range_before_they_are_installed(
    lab: Lab,
) -> None:
    try:
        before = file_state(lab, WEB, NFTABLES)
        assert before.content is not None  # Debian's own rules, from the nftables package
        ruleset = lab.ssh(ADDRESSES[WEB], "sudo nft list ruleset").stdout
        # A mistyped port: the rendered rules are no valid nftables file.
        services = [{"port": 80443, "proto": "tcp", "from": []}]
        with hardening_inputs(lab, "firewall", {"hardening_firewall_services": services}):
            code, report, messages = harden(lab, WEB)
        assert code == ExitCode.FAILED, report
        assert file_state(lab, WEB, NFTABLES) == before
        assert "failed to validate" in messages, messages
        assert "80443" in messages, messages
        assert lab.ssh(ADDRESSES[WEB], "sudo nft list ruleset").stdout == ruleset
        assert lab.ssh(ADDRESSES[WEB], "true").returncode == 0
        assert guards(lab, WEB) == []
    finally:
        lab.reset(WEB)


def test_visudo_c_refuses_a_sudoers_file_before_it_is_installed(lab: Lab) -> None:
    # The role's sudoers drop-in is fixed text that no input changes: the host's visudo
    # refuses it instead, as it would refuse a file with a syntax error.
    try:
        write_host_file(lab, ADDRESSES[DB], SUDOERS_DROP_IN, PREVIOUS_SUDOERS, mode="0440")
        write_host_file(lab, ADDRESSES[DB], "/usr/local/sbin/visudo", REFUSING_VISUDO, "0755")
        before = file_state(lab, DB, SUDOERS_DROP_IN)
        with hardening_inputs(lab, "accounts", {}):
            code, report, messages = harden(lab, DB)
        assert code == ExitCode.FAILED, report
        assert file_state(lab, DB, SUDOERS_DROP_IN) == before
        assert "failed to validate" in messages, messages
        assert "syntax error" in messages, messages
        # sudo still reads what it read before, and the agency still gets root.
        assert lab.ssh(ADDRESSES[DB], "sudo -n true").returncode == 0
    finally:
        lab.reset(DB)


def test_the_sshd_guard_puts_the_previous_files_back_after_a_change_that_locks_the_agency_out(
    lab: Lab,
) -> None:
    # A CBC cipher alone: sshd accepts it, the agency's OpenSSH never offers it, so no new
    # session gets through once sshd reloads with it.
    inputs = {
        "hardening_ssh_ciphers": ["aes256-cbc"],
        "hardening_guard_timeout": 30,
        "hardening_guard_confirm_timeout": 10,
    }
    try:
        write_host_file(lab, ADDRESSES[DB], SSHD_DROP_IN, PREVIOUS_DROP_IN, mode="0600")
        files = {path: file_state(lab, DB, path).content for path in (SSHD_DROP_IN, SSHD_MAIN)}
        folder = listing(lab, DB, "/etc/ssh/sshd_config.d")
        sshd = effective_sshd(lab, DB)
        with hardening_inputs(lab, "ssh", inputs):
            code, report, messages = harden(lab, DB)
        assert code == ExitCode.FAILED, report
        # The change did reach sshd and locked the new session out; the guard undid it.
        assert "Open a new SSH session" in messages, messages
        assert "lock-out guard" in messages, messages
        assert {path: file_state(lab, DB, path).content for path in files} == files
        assert listing(lab, DB, "/etc/ssh/sshd_config.d") == folder
        assert effective_sshd(lab, DB) == sshd
        assert lab.ssh(ADDRESSES[DB], "true").returncode == 0
        assert guards(lab, DB) == []
    finally:
        lab.reset(DB)
