"""First contact with a client's server: its maintenance account, made with the
credentials the client gave.

On a server nobody has maintained from here yet, the login the client gave
(root, or an account that may use sudo, by password or by key) creates the
maintenance account named by the client's inventory (``ansible_user``), puts
the client's public key in its ``authorized_keys`` and gives it passwordless
sudo through a drop-in that ``visudo -c`` has accepted before it is installed.
Everything is done by one fixed script, idempotent: a second run finds each
piece in place and changes nothing.

The host is not trusted: its answers are read with a size bound, and only the
script's own ``name=value`` lines are believed. A password is written to
sudo's input, never onto a command line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from webmg_ops.remote.session import HostSession

#: A maintenance account's name: a portable POSIX user name, never root.
ACCOUNT_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
#: The base64 body of an ed25519 public key (32 bytes with its type prefix: 68 characters).
ED25519_BODY = re.compile(r"AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}")

#: Bytes read of the script's output, per stream: it prints a few short lines.
OUTPUT_LIMIT = 64 * 1024
#: Seconds the script may take (installing sudo from the host's mirror included).
SCRIPT_TIMEOUT_S = 300.0

#: Where the maintenance account's sudo rule goes (sudo ignores names with a dot).
SUDOERS_DIR = "/etc/sudoers.d"

# $1 the account, $2 the key's base64 body. Status 3: visudo refused the rule;
# 4: no sudo and no way to install it. Its last lines say what it did.
PREPARE_SCRIPT = r"""
set -eu
account=$1
body=$2
umask 077
sudo=present
if ! command -v visudo >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "sudo is not installed and this host has no apt-get to install it" >&2
        exit 4
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends sudo >&2
    sudo=installed
fi
created=present
if ! getent passwd "$account" >/dev/null; then
    useradd --create-home --user-group --shell /bin/bash -- "$account"
    created=created
fi
home=$(getent passwd "$account" | cut -d: -f6)
group=$(id -gn -- "$account")
install -d -m 0700 -o "$account" -g "$group" -- "$home/.ssh"
keys=$home/.ssh/authorized_keys
key=present
# The key is there when a line that is not a comment holds its body as a field.
has_key='$0 ~ /^[^#]/ { for (i = 1; i <= NF; i++) if ($i == k) f = 1 } END { exit !f }'
if ! { [ -f "$keys" ] && awk -v k="$body" "$has_key" "$keys"; }; then
    printf 'ssh-ed25519 %s webmg-ops\n' "$body" >> "$keys"
    key=added
fi
chown -- "$account:$group" "$keys"
chmod 0600 -- "$keys"
target=/etc/sudoers.d/$account
new=$(mktemp /etc/sudoers.d/.webmg-ops.XXXXXX)
trap 'rm -f -- "$new"' EXIT
{
    echo "# Maintenance account of webmg-ops, written by its bootstrap."
    echo "$account ALL=(ALL:ALL) NOPASSWD: ALL"
} > "$new"
chmod 0440 -- "$new"
if [ -f "$target" ] && cmp -s -- "$new" "$target"; then
    sudoers=unchanged
else
    if ! visudo -c -q -f "$new" >&2; then
        echo "visudo -c refused the sudo rule; nothing was installed" >&2
        exit 3
    fi
    mv -f -- "$new" "$target"
    sudoers=installed
fi
echo "sudo=$sudo"
echo "account=$created"
echo "key=$key"
echo "sudoers=$sudoers"
"""

#: What the verification runs as the maintenance account: sudo without a password.
READY_COMMAND = "sudo -n true"


@dataclass(frozen=True)
class Login:
    """The credentials a client gave for the first contact: a user, and its key file or
    its password (kept out of every ``repr``: it must reach no log)."""

    user: str
    key_file: Path | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def method(self) -> str:
        """Return how the login authenticates: ``password`` or ``key``."""
        return "password" if self.password is not None else "key"


@dataclass(frozen=True)
class Prepared:
    """What the script found or did on one host."""

    account_created: bool
    key_added: bool
    sudoers_installed: bool
    sudo_installed: bool

    @property
    def changed(self) -> bool:
        """Return whether the host was changed at all."""
        return (
            self.account_created or self.key_added or self.sudoers_installed or self.sudo_installed
        )


class FirstContactFailed(Exception):
    """The maintenance account could not be made or does not work; the message says why."""


def prepare_command(login: Login, account: str, body: str) -> str:
    """Given the login, the account's name and the key's base64 body, return the command
    that runs the script as root: directly for root, through ``sudo -S`` (password on
    its input) or ``sudo -n`` (no password to give) for any other user.

    Raise ValueError for an account name or key body that is not safe to pass.
    """
    if not ACCOUNT_NAME.fullmatch(account) or account == "root":
        raise ValueError(f"{account!r} cannot be a maintenance account")
    if not ED25519_BODY.fullmatch(body):
        raise ValueError("the client's key is not an ed25519 public key")
    script = shlex.join(["sh", "-c", PREPARE_SCRIPT, "webmg-ops-bootstrap", account, body])
    if login.user == "root":
        return script
    if login.password is not None:
        # -S reads the password from the input, -p '' prints no prompt into the output.
        return f"sudo -S -p '' -- {script}"
    return f"sudo -n -- {script}"


def _first_line(text: bytes) -> str:
    lines = [line.strip() for line in text.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no message)"


def prepare_account(session: HostSession, login: Login, account: str, body: str) -> Prepared:
    """Given a session opened with the client's login, the account's name and the client
    key's base64 body, make the account, its key and its sudo rule; return what changed.

    Raise FirstContactFailed (with the host's last message) if the script fails, stops
    answering, or answers more than it should; ValueError as :func:`prepare_command`.
    """
    command = prepare_command(login, account, body)
    secret = (login.password + "\n").encode() if login.password is not None else b""
    done = session.read_bounded(command, OUTPUT_LIMIT, SCRIPT_TIMEOUT_S, stdin=secret)
    if done.cut or done.timed_out:
        why = "printed more than expected" if done.cut else "did not finish in time"
        raise FirstContactFailed(f"the account's script {why}")
    if done.status != 0:
        message = _first_line(done.stderr)
        if login.user != "root" and login.password is None and "password" in message.lower():
            message += f" ({login.user} needs a password for sudo: give --ask-pass)"
        raise FirstContactFailed(f"the account's script failed ({done.status}): {message}")
    said = dict(
        line.partition("=")[::2] for line in done.stdout.decode(errors="replace").splitlines()
    )
    expected = {
        "sudo": ("present", "installed"),
        "account": ("present", "created"),
        "key": ("present", "added"),
        "sudoers": ("unchanged", "installed"),
    }
    if any(said.get(name) not in values for name, values in expected.items()):
        raise FirstContactFailed("the account's script did not say what it did")
    return Prepared(
        account_created=said["account"] == "created",
        key_added=said["key"] == "added",
        sudoers_installed=said["sudoers"] == "installed",
        sudo_installed=said["sudo"] == "installed",
    )


def check_ready(session: HostSession) -> None:
    """Given a session opened as the maintenance account with the client's key, check that
    it may use sudo without a password. Raise FirstContactFailed if not.
    """
    done = session.read_bounded(READY_COMMAND, OUTPUT_LIMIT)
    if done.status != 0:
        why = _first_line(done.stderr)
        raise FirstContactFailed(
            f"the maintenance account cannot use sudo without a password: {why}"
        )
