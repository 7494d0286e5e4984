"""SSH from the controller with paramiko, host keys always verified.

Sessions load only the client's own known_hosts and use paramiko's
``RejectPolicy``: an unknown or changed host key ends the connection
before anything is sent. Host keys are read, fingerprinted and written
here for enrolment.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from webmg_ops.ansible.connection import Connection

CONNECT_TIMEOUT_S = 10.0


class HostKeyProblem(Exception):
    """The host's key is unknown to the client's known_hosts, or differs from it."""

    def __init__(self, host: str, message: str, changed: bool) -> None:
        super().__init__(message)
        self.host = host
        self.changed = changed


class Unreachable(Exception):
    """The host could not be reached or refused the login."""


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one remote command."""

    status: int
    stdout: str
    stderr: str


def openssh_argv(
    key: Path,
    known_hosts: Path,
    destination: str,
    *,
    port: int = 22,
    options: tuple[str, ...] = (),
    subsystem: str | None = None,
) -> list[str]:
    """Given a private key, a known_hosts file and USER@HOST, return the argv of OpenSSH
    reaching it with that key alone, no prompt, and host keys checked strictly against
    ``known_hosts`` (nothing trusted on first use). ``options`` are more ``-o`` settings;
    ``subsystem`` (``sftp``) asks for that subsystem instead of a command.

    ``--`` ends the options before the destination, so a destination that
    starts with ``-`` is never read as an option; a command the caller
    appends after the argv is the remote command, never an option.
    """
    settings = (
        "IdentitiesOnly=yes",
        "BatchMode=yes",
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={known_hosts}",
        *options,
    )
    return [
        "ssh",
        "-i",
        str(key),
        *(part for setting in settings for part in ("-o", setting)),
        "-p",
        str(port),
        *(("-s",) if subsystem is not None else ()),
        "--",
        destination,
        *((subsystem,) if subsystem is not None else ()),
    ]


def fingerprint(key: paramiko.PKey) -> str:
    """Given a public key, return its OpenSSH SHA256 fingerprint (``SHA256:...``)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_host_name(address: str, port: int) -> str:
    """Given an address and port, return the name known_hosts files use for them."""
    return address if port == 22 else f"[{address}]:{port}"


def known_host_keys(known_hosts: Path, address: str, port: int) -> dict[str, str]:
    """Given a known_hosts file, a host's address and SSH port, return the host's keys
    there as key type -> base64 (empty if the file or the host is missing; hashed
    entries are read too, lines that are not a key are skipped).
    """
    if not known_hosts.is_file():
        return {}
    keys = paramiko.HostKeys(str(known_hosts)).lookup(known_host_name(address, port))
    if not keys:
        return {}
    return {kind: key.get_base64() for kind, key in keys.items()}


def load_known_key(known_hosts: Path, address: str, port: int) -> paramiko.PKey | None:
    """Given a known_hosts file and a host, return its enrolled ed25519 key (or any key)."""
    if not known_hosts.is_file():
        return None
    keys = paramiko.HostKeys(str(known_hosts)).lookup(known_host_name(address, port))
    if not keys:
        return None
    return keys.get("ssh-ed25519") or next(iter(keys.values()))


def scan_host_key(address: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> paramiko.PKey:
    """Given a host, return the ed25519 host key it presents (nothing is authenticated).

    Raise Unreachable if it cannot be reached.
    """
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as error:
        raise Unreachable(f"{address}:{port}: {error.strerror or error}") from error
    transport = paramiko.Transport(sock)
    try:
        transport.get_security_options().key_types = ("ssh-ed25519",)
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, OSError) as error:
        raise Unreachable(f"{address}:{port}: {error}") from error
    finally:
        transport.close()


def add_known_host(known_hosts: Path, address: str, port: int, key: paramiko.PKey) -> None:
    """Given a known_hosts file, a host and its key, record the key (replacing an old one)."""
    name = known_host_name(address, port)
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    lines = known_hosts.read_text().splitlines() if known_hosts.is_file() else []
    kept = [line for line in lines if line.split(" ", 1)[0] != name]
    kept.append(f"{name} {key.get_name()} {key.get_base64()}")
    known_hosts.write_text("\n".join(kept) + "\n")


def client_options(connection: Connection, timeout: float) -> dict[str, Any]:
    """Given a connection and a timeout, return the settings of paramiko's
    ``SSHClient.connect`` (besides host, port and user) every session uses: the client's
    key alone (no agent, no default key) and every wait bounded by ``timeout``.
    """
    return {
        "key_filename": str(connection.key_file) if connection.key_file else None,
        "timeout": timeout,
        "banner_timeout": timeout,
        "auth_timeout": timeout,
        "allow_agent": False,
        "look_for_keys": False,
        "disabled_algorithms": {"keys": ["rsa-sha2-256", "rsa-sha2-512"]},
    }


def connect_failure(connection: Connection, error: Exception) -> HostKeyProblem | Unreachable:
    """Given a connection and what paramiko raised while connecting to it, return the
    exception to raise instead: HostKeyProblem for a changed key (``changed`` set) or an
    unknown one (what ``RejectPolicy`` refuses), Unreachable for anything else.
    """
    if isinstance(error, paramiko.BadHostKeyException):
        return HostKeyProblem(
            connection.host,
            f"{connection.host} ({connection.address}) presented host key "
            f"{fingerprint(error.key)}, but {connection.known_hosts} holds "
            f"{fingerprint(error.expected_key)}: the key CHANGED (re-installed host, or "
            "someone in the middle); re-enrol it only after checking why",
            changed=True,
        )
    # RejectPolicy says so only in its message: it raises a plain SSHException.
    if isinstance(error, paramiko.SSHException) and "not found in known_hosts" in str(error):
        return HostKeyProblem(
            connection.host,
            f"{connection.host} ({connection.address}) is not enrolled in "
            f"{connection.known_hosts}: run webmg-ops bootstrap (a new server) or "
            "webmg-ops enroll (its account exists) first",
            changed=False,
        )
    if isinstance(error, OSError):
        return Unreachable(f"{connection.host} ({connection.address}): {error.strerror or error}")
    return Unreachable(f"{connection.host} ({connection.address}): {error}")


def open_session(connection: Connection, timeout: float = CONNECT_TIMEOUT_S) -> paramiko.SSHClient:
    """Given a connection, return an authenticated SSH client with a verified host key.

    Raise HostKeyProblem if the key is unknown or changed (nothing was sent),
    Unreachable if the host cannot be reached or refuses the login.
    """
    client = paramiko.SSHClient()
    if connection.known_hosts.is_file():
        client.load_host_keys(str(connection.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            connection.address,
            port=connection.port,
            username=connection.user,
            **client_options(connection, timeout),
        )
    except (paramiko.SSHException, OSError) as error:
        client.close()
        raise connect_failure(connection, error) from error
    return client


def run_command(client: paramiko.SSHClient, command: str, timeout: float = 30.0) -> CommandResult:
    """Given an open session and a fixed command string, run it and return its result.

    The command is a constant of the caller, never built from user input.
    """
    _stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
    status = stdout.channel.recv_exit_status()
    return CommandResult(
        status=status,
        stdout=stdout.read().decode(errors="replace"),
        stderr=stderr.read().decode(errors="replace"),
    )
