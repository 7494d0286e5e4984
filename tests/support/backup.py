"""What root on a client host can do with the backup secrets the role leaves there.

The attacks of the backup tests use what the backup role wrote on a client
host (the host's key, the pinned host key of the backup target and the
password file): restic run as root there, the way the role runs it, and
restic's REST protocol spoken by hand over the host key's SSH channel
(:func:`rest_over_ssh`), the way an attacker holding the key could.
"""

from __future__ import annotations

import os
import selectors
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import h2.config
import h2.connection
import h2.events

from support.lab import Lab
from webmg_ops.config.clients import load_client

#: The backup target of the lab's clients.
TARGET_ADDRESS = "198.18.0.5"
#: The role's root-only folder on every client host.
SECRET_DIR = "/var/lib/webmg-backup"
#: The host's key on the backup target: its own SSH host key.
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"
#: ssh's options as the role sets them up for restic: the host's key, the target's pinned key.
HOST_SSH_OPTIONS = (
    "-i",
    HOST_KEY,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    f"UserKnownHostsFile={SECRET_DIR}/known_hosts",
)
HOST_SSH = ("ssh", *HOST_SSH_OPTIONS)


def target_account(client: str) -> str:
    """Return CLIENT's account on the lab's backup target."""
    return f"restic-{client}@{TARGET_ADDRESS}"


def set_up_for_backups(lab: Lab, client: str) -> bool:
    """Return whether every host of CLIENT still holds what the backup role writes there.

    A lab reset wipes a host's backup password and pinned target key (its host key,
    and so its place on the target, is kept): a backup on record says nothing of the
    hosts after another test reset one of them.
    """
    return all(
        lab.ssh(host.address, f"sudo test -s {SECRET_DIR}/restic-password").returncode == 0
        for host in load_client(lab.inventories, client).hosts
    )


def target_clock(lab: Lab) -> str:
    """Return the backup target's clock, as journalctl's --since reads it."""
    done = lab.ssh(TARGET_ADDRESS, "date +@%s")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def target_sshd_log(lab: Lab, since: str) -> list[str]:
    """Return what the backup target's sshd logged since SINCE (a :func:`target_clock`)."""
    done = lab.ssh(
        TARGET_ADDRESS,
        f"sudo journalctl -q --no-pager -o cat _COMM=sshd --since={shlex.quote(since)}",
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def as_root_on(lab: Lab, address: str, command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run COMMAND (argv) as root on the host at ADDRESS; return what it did."""
    return lab.ssh(address, shlex.join(["sudo", *command]))


def restic_as_root_on(
    lab: Lab, address: str, client: str, *arguments: str, account: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run restic as root on the host at ADDRESS as the backup role does (rclone backend
    through ssh with the host's own key and password file), logging in as ACCOUNT
    (CLIENT's by default); return what it did."""
    login = account or target_account(client)
    command = ["sudo", *restic_as_the_role(f"/srv/restic/{client}", login, *arguments)]
    return lab.ssh(address, shlex.join(command))


def restic_as_the_role(folder: str, login: str, *arguments: str) -> list[str]:
    """Return the argv that runs restic on a host as the backup role does: the rclone
    backend through ssh to FOLDER on the target, logging in as LOGIN with the host's own
    key and pinned target key, and the host's password file."""
    return [
        "env",
        f"RESTIC_REPOSITORY=rclone:{folder}",
        f"RESTIC_PASSWORD_FILE={SECRET_DIR}/restic-password",
        "RESTIC_CACHE_DIR=/var/cache/webmg-backup",
        "restic",
        "-o",
        "rclone.program=ssh",
        "-o",
        f"rclone.args={shlex.join([*HOST_SSH_OPTIONS, '--', login])}",
        *arguments,
    ]


def stolen_backup_key(lab: Lab, address: str, folder: Path) -> Path:
    """Copy the SSH host key of the host at ADDRESS, as its root could, into FOLDER; return it."""
    done = as_root_on(lab, address, ["cat", HOST_KEY])
    assert done.returncode == 0, done.stderr
    key = folder / "stolen_id_ed25519"
    key.touch(mode=0o600)
    key.write_text(done.stdout)
    return key


@dataclass(frozen=True)
class Response:
    """One answer of the backup target's restic server: its status and body."""

    status: int
    body: bytes


def rest_over_ssh(
    key: Path,
    known_hosts: Path,
    account: str,
    requests: list[tuple[str, str, bytes]],
    timeout: float = 60.0,
) -> list[Response]:
    """Log in to ACCOUNT with KEY (the target's host key checked against KNOWN_HOSTS), speak
    restic's REST protocol (HTTP/2 on the SSH channel, as restic's rclone backend does) and
    send each request (method, path, body) in turn; return each response.

    Raise AssertionError if the server stops answering within TIMEOUT seconds.
    """
    argv = [
        "ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
        "--", account, "whatever the client asks",
    ]  # fmt: skip
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    responses = []
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        for method, path, body in requests:
            stream = connection.get_next_available_stream_id()
            headers = [(":method", method), (":path", path), (":scheme", "http"),
                       (":authority", "restic"), ("content-length", str(len(body)))]  # fmt: skip
            connection.send_headers(stream, headers, end_stream=not body)
            if body:
                connection.send_data(stream, body, end_stream=True)
            status, chunks, ended = 0, [], False
            while not ended:
                process.stdin.write(connection.data_to_send())
                process.stdin.flush()
                assert selector.select(timeout), f"no answer to {method} {path}"
                data = os.read(process.stdout.fileno(), 65536)
                assert data, f"the server closed the channel during {method} {path}"
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                        status = int(dict(event.headers)[b":status"])
                    elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                        chunks.append(event.data)
                        connection.acknowledge_received_data(event.flow_controlled_length, stream)
                    elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                        ended = ended or event.stream_id == stream
            responses.append(Response(status, b"".join(chunks)))
        process.stdin.close()
        process.kill()
    return responses
