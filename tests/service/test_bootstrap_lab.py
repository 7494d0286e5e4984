"""Bootstrap on a real server: the first contact makes the maintenance account from the
credentials a client gave, and the tool's own runs then work on it.

Each test turns a lab host into a server as a client hands it over (no maintenance
account, no sudo rule for it, its key not enrolled), bootstraps it, and proves the
result by logging in as the account with the real ssh. The host is reset and the
client's known_hosts restored afterwards, whatever happens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator

import pytest
from support.lab import Lab

pytestmark = pytest.mark.lab

CLIENT = "atelier-nord"
HOST = "atelier-web1"
ACCOUNT = "webmg"
#: What a server handed over by a client lacks: our account and its sudo rule.
STRIP = (
    f"pkill -KILL -u {ACCOUNT} || true; userdel -r {ACCOUNT} 2>/dev/null || true; "
    f"rm -f /etc/sudoers.d/{ACCOUNT}; ! id {ACCOUNT}"
)


def _fingerprint(lab: Lab, address: str) -> str:
    """Return the host key fingerprint the lab recorded for ADDRESS, computed here."""
    for line in (lab.lab_dir / "known_hosts").read_text().splitlines():
        name, kind, body = line.split()[:3]
        if name == address and kind == "ssh-ed25519":
            digest = hashlib.sha256(base64.b64decode(body)).digest()
            return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    raise AssertionError(f"the lab knows no key of {address}")


@pytest.fixture
def handed_over(lab: Lab) -> Iterator[str]:
    """Strip HOST of the maintenance account and unenrol it; return its address."""
    address = str(lab.host(HOST)["address"])
    known_hosts = lab.inventories / CLIENT / "known_hosts"
    original = known_hosts.read_text()
    try:
        done = lab.ssh(address, STRIP, user="root")
        assert done.returncode == 0, done.stderr
        assert lab.ssh(address, "true").returncode != 0, "the maintenance login is gone"
        kept = [line for line in original.splitlines() if line.split(" ", 1)[0] != address]
        known_hosts.write_text("".join(f"{line}\n" for line in kept))
        yield address
    finally:
        known_hosts.write_text(original)
        lab.reset(HOST)


def _bootstrap(
    lab: Lab, *args: str, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    return lab.cli(
        "bootstrap",
        CLIENT,
        HOST,
        *args,
        "--json",
        input="" if password is None else password + "\n",
    )


def test_bootstrap_from_root_credentials_makes_an_account_the_tool_then_runs_on(
    lab: Lab, handed_over: str
) -> None:
    address = handed_over
    root_key = str(lab.lab_dir / "identity" / "id_ed25519")
    before = len(lab.entries(client=CLIENT))

    # Without the fingerprint accepted, nothing is done to the host.
    refused = _bootstrap(lab, "--user", "root", "--key", root_key)
    assert refused.returncode == 3, refused.stderr
    assert json.loads(refused.stdout)[0]["status"] == "not accepted"
    assert lab.ssh(address, f"id {ACCOUNT}", user="root").returncode != 0
    assert len(lab.entries(client=CLIENT)) == before

    expected = _fingerprint(lab, address)
    done = _bootstrap(lab, "--user", "root", "--key", root_key, "--accept", expected)
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = json.loads(done.stdout)
    assert (result["status"], result["fingerprint"], result["changed"]) == (
        "bootstrapped", expected, True,
    )  # fmt: skip

    # The account logs in with the client's key and uses sudo without a password.
    assert lab.ssh(address, "sudo -n id -u").stdout.strip() == "0"
    modes = lab.ssh(
        address,
        f"stat -c '%a %U %G %n' /home/{ACCOUNT}/.ssh /home/{ACCOUNT}/.ssh/authorized_keys "
        f"/etc/sudoers.d/{ACCOUNT} && visudo -c -q && echo valid",
        user="root",
    ).stdout.splitlines()
    assert modes == [
        f"700 {ACCOUNT} {ACCOUNT} /home/{ACCOUNT}/.ssh",
        f"600 {ACCOUNT} {ACCOUNT} /home/{ACCOUNT}/.ssh/authorized_keys",
        f"440 root root /etc/sudoers.d/{ACCOUNT}",
        "valid",
    ]
    known = (lab.inventories / CLIENT / "known_hosts").read_text().split()
    assert address in known

    enrolled = [e for e in lab.entries("host-enrolled", CLIENT) if e.payload["host"] == HOST]
    assert enrolled[-1].payload["fingerprint"] == expected
    bootstrapped = lab.entries("host-bootstrapped", CLIENT)[-1].payload
    assert {k: bootstrapped[k] for k in ("host", "login_user", "login_method", "account",
                                          "account_created", "key_added", "sudoers_installed",
                                          "outcome")} == {
        "host": HOST, "login_user": "root", "login_method": "key", "account": ACCOUNT,
        "account_created": True, "key_added": True, "sudoers_installed": True,
        "outcome": "succeeded",
    }  # fmt: skip

    # A second bootstrap finds everything in place and changes nothing: no key to enrol.
    sudoers_before = lab.ssh(address, f"stat -c %Y /etc/sudoers.d/{ACCOUNT}", user="root").stdout
    enrolments = len(lab.entries("host-enrolled", CLIENT))
    again = _bootstrap(lab, "--user", "root", "--key", root_key)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)[0]["status"] == "already bootstrapped"
    assert lab.ssh(address, f"stat -c %Y /etc/sudoers.d/{ACCOUNT}", user="root").stdout == (
        sudoers_before
    )
    assert len(lab.entries("host-enrolled", CLIENT)) == enrolments
    second = lab.entries("host-bootstrapped", CLIENT)[-1].payload
    assert [second[k] for k in ("account_created", "key_added", "sudoers_installed")] == [
        False, False, False,
    ]  # fmt: skip

    # The tool's own runs work on the bootstrapped host.
    checked = lab.cli("run", CLIENT, "check", "--limit", HOST, "--reason", "after bootstrap")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_bootstrap_as_a_sudo_user_gives_the_password_to_sudo_and_never_records_it(
    lab: Lab, handed_over: str
) -> None:
    address = handed_over
    password = "pw-" + os.urandom(8).hex()
    # A login the client made for us: a password, and sudo that asks for it.
    made = subprocess.run(
        lab.ssh_argv(
            address,
            "useradd -m -s /bin/bash installer && chpasswd && "
            "echo 'installer ALL=(ALL:ALL) ALL' > /etc/sudoers.d/installer && "
            "chmod 0440 /etc/sudoers.d/installer",
            user="root",
        ),
        input=f"installer:{password}\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    expected = _fingerprint(lab, address)

    wrong = _bootstrap(lab, "--user", "installer", "--ask-pass", "--accept", expected,
                       password="not-" + password)  # fmt: skip
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert json.loads(wrong.stdout)[0]["status"].startswith("failed:")
    assert lab.ssh(address, f"id {ACCOUNT}", user="root").returncode != 0

    done = _bootstrap(lab, "--user", "installer", "--ask-pass", "--accept", expected,
                      password=password)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert lab.ssh(address, "sudo -n id -u").stdout.strip() == "0"
    payload = lab.entries("host-bootstrapped", CLIENT)[-1].payload
    assert (payload["login_user"], payload["login_method"]) == ("installer", "password")

    # The password is nowhere: output, the ledger's files, anything else in the var folder.
    assert password not in done.stdout + done.stderr + wrong.stdout + wrong.stderr
    kept = [file for file in (lab.root / "var").rglob("*") if file.is_file()]
    assert any(file.name == "ledger.db" for file in kept)
    for file in kept:
        assert password.encode() not in file.read_bytes(), file
