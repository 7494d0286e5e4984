"""A real SSH server on loopback, in threads, for the controller's SSH sessions.

It is paramiko's server side: one host key, one accepted client key, and
every ``exec`` request answered with the same exit status and output. It
records each command it was asked to run, and counts the connections that
have ended, so a test waits on that instead of sleeping.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from webmg_ops.ansible.connection import Connection

#: Seconds a test waits for the server to see a connection end.
WAIT_S = 20.0


@dataclass(frozen=True)
class Answer:
    """What the server answers to every command."""

    status: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    #: Read the command's input to its end first (kept in ``CommandServer.inputs``).
    read_input: bool = False
    #: Send the output but never an exit status or an end of output: a command that runs on.
    hold: bool = False


@dataclass
class CommandServer:
    """A running server: where it listens, its host key, and what it was asked."""

    address: str
    port: int
    host_key: paramiko.PKey
    commands: list[str] = field(default_factory=list)
    inputs: list[bytes] = field(default_factory=list)
    _ended: threading.Condition = field(default_factory=threading.Condition)
    _ended_count: int = 0

    def known_hosts_line(self, key: paramiko.PKey | None = None) -> str:
        """Return the known_hosts line for this server with its key (or KEY instead)."""
        key = key or self.host_key
        return f"[{self.address}]:{self.port} {key.get_name()} {key.get_base64()}\n"

    def wait_for_ended(self, count: int = 1) -> None:
        """Wait until COUNT connections have ended on the server side."""
        with self._ended:
            if not self._ended.wait_for(lambda: self._ended_count >= count, timeout=WAIT_S):
                raise AssertionError(f"{count} connection(s) did not end within {WAIT_S} s")

    def _connection_ended(self) -> None:
        with self._ended:
            self._ended_count += 1
            self._ended.notify_all()


class _Interface(paramiko.ServerInterface):
    """Accept one user key; answer each exec request at once, before it is confirmed."""

    def __init__(self, server: CommandServer, client_key: paramiko.PKey, answer: Answer) -> None:
        self.server = server
        self.client_key = client_key
        self.answer = answer

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if key == self.client_key:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.server.commands.append(command.decode())
        if self.answer.read_input:
            # The client sends input only once the request is confirmed: answer after.
            threading.Thread(target=self._read_then_answer, args=(channel,), daemon=True).start()
            return True
        # Otherwise output, status and end of output go out before the request's
        # confirmation (all in this transport thread, in order); the channel stays
        # open, so the client never sees it closed before its request was confirmed.
        self._answer(channel)
        return True

    def _read_then_answer(self, channel: paramiko.Channel) -> None:
        received = bytearray()
        while chunk := channel.recv(65536):
            received += chunk
        self.server.inputs.append(bytes(received))
        self._answer(channel)

    def _answer(self, channel: paramiko.Channel) -> None:
        channel.sendall(self.answer.stdout)
        channel.sendall_stderr(self.answer.stderr)
        if not self.answer.hold:
            channel.send_exit_status(self.answer.status)
            channel.shutdown_write()


def new_key(path: Path) -> paramiko.Ed25519Key:
    """Write a fresh ed25519 private key at PATH (OpenSSH format, mode 600); return it."""
    # paramiko neither makes nor writes ed25519 keys: cryptography does both.
    private = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    path.write_bytes(private)
    path.chmod(0o600)
    return paramiko.Ed25519Key(filename=str(path))


@contextmanager
def command_server(
    host_key: paramiko.PKey, client_key: paramiko.PKey, answer: Answer
) -> Iterator[CommandServer]:
    """Run an SSH server on 127.0.0.1 with HOST_KEY, accepting CLIENT_KEY and answering
    ANSWER to every command; yield it.

    The server stops at the end of the block (its connections are then ended).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    server = CommandServer("127.0.0.1", listener.getsockname()[1], host_key)
    transports: list[paramiko.Transport] = []
    stopping = threading.Event()

    def serve(sock: socket.socket) -> None:
        transport = paramiko.Transport(sock)
        transports.append(transport)
        transport.add_server_key(server.host_key)
        # The client may go away during the handshake (a key it refused).
        with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
            transport.start_server(server=_Interface(server, client_key, answer))
        # The transport's thread ends when the client disconnects.
        if transport.is_alive():
            transport.join()
        server._connection_ended()

    def accept() -> None:
        while not stopping.is_set():
            try:
                sock, _peer = listener.accept()
            except OSError:
                return  # the listener was closed
            threading.Thread(target=serve, args=(sock,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        stopping.set()
        # Closing alone leaves accept() blocked on Linux; shutting down wakes it.
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        for transport in transports:
            transport.close()
        acceptor.join(WAIT_S)


def connection_to(
    server: CommandServer, key_file: Path, known_hosts: Path, name: str = "web1"
) -> Connection:
    """Return the connection settings of host NAME, reaching SERVER with KEY_FILE and
    checked against KNOWN_HOSTS."""
    return Connection(name, server.address, server.port, "webmg", key_file, known_hosts)
