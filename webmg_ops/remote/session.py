"""Ad-hoc commands on hosts through fabric, host keys always verified.

fabric's own ``Connection`` trusts a host key it has never seen (its client
carries paramiko's ``AutoAddPolicy``) and reads the user's and the system's
SSH and fabric configuration. Every connection made here instead comes from
a configuration that loads no file, offers the client's key alone, and has
its client given ``RejectPolicy`` and the client's own known_hosts only,
before it is opened: an unknown or changed host key ends the connection
before the login, and no known_hosts file is read besides the client's or
ever written.

A :class:`HostSession` runs commands on one host; :func:`run_on_hosts` runs
one command on several hosts at once (fabric's ``ThreadingGroup``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, cast

import fabric
import paramiko
from fabric.exceptions import GroupException
from invoke.exceptions import CommandTimedOut as RunnerTimedOut
from invoke.exceptions import ThreadException
from invoke.runners import Result

from webmg_ops.ansible.connection import Connection
from webmg_ops.remote.ssh import (
    CONNECT_TIMEOUT_S,
    CommandResult,
    HostKeyProblem,
    Unreachable,
    client_options,
    connect_failure,
)

#: Seconds a command may run unless its caller says otherwise.
COMMAND_TIMEOUT_S = 30.0

# What fabric's runner is told for every command: nothing echoed or printed
# (the caller decides what to show), a non-zero exit is a result rather than
# an exception, nothing read from the controller's own stdin, no terminal.
_RUN_OPTIONS: dict[str, Any] = {
    "hide": True,
    "warn": True,
    "in_stream": False,
    "pty": False,
    "encoding": "utf-8",
}

#: paramiko's exit status of a channel that closed without sending one.
_NO_EXIT_STATUS = -1

#: What ends a session once it is open: the host or the network went away.
_SESSION_LOST = (paramiko.SSHException, EOFError, OSError, ThreadException)


class CommandTimedOut(Exception):
    """A command on a host did not finish within its timeout (its channel was closed)."""


#: Seconds between two looks at a bounded command's channel (see :meth:`HostSession.read_bounded`).
_POLL_S = 0.1
#: Bytes asked of a channel at once.
_CHUNK = 65536


@dataclass(frozen=True)
class BoundedResult:
    """What a command read with bounds gave: its raw output, as much as was read.

    ``status`` is its exit status (-1 when the host sent none), None when it did not
    end: it ran past its timeout (``timed_out``) or printed more than the limit on one
    stream (``cut``), and its channel was then closed.
    """

    status: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    cut: bool = False


def _verified(connection: Connection, timeout: float, password: str | None = None) -> Any:
    """Given a host's connection settings (and the login's password, for a first contact
    with the credentials a client gave), return a fabric ``Connection`` to it, not yet
    open, that will only accept the host key enrolled in the client's known_hosts.
    """
    # lazy=True loads no /etc/fabric.yaml or ~/.fabric.yaml; load_ssh_configs=False no
    # ~/.ssh/config or /etc/ssh/ssh_config (either could redirect the host, add a
    # proxy command or another key).
    config = fabric.Config(lazy=True, overrides={"load_ssh_configs": False})
    options = client_options(connection, timeout)
    if options["key_filename"] is None:
        del options["key_filename"]  # fabric takes a list of files, never None
    if password is not None:
        options["password"] = password
    link = fabric.Connection(
        connection.address,
        user=connection.user,
        port=connection.port,
        config=config,
        forward_agent=False,
        connect_kwargs=options,
    )
    # fabric made the client with AutoAddPolicy, which would trust and record any
    # key; replace it before anything is opened. Only the client's known_hosts is
    # loaded: never load_system_host_keys (the user's ~/.ssh/known_hosts).
    link.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if connection.known_hosts.is_file():
        link.client.load_host_keys(str(connection.known_hosts))
    return link


def _closed_by_the_timer(done: Result, started: float, timeout: float) -> bool:
    """Given a command's result, when it was started (``time.monotonic``) and its timeout,
    return whether fabric's timer closed its channel though the runner returned a result.

    The runner tells a timeout by its timer's thread having ended, which races with that
    thread closing the channel: under load the result comes back with paramiko's "no exit
    status" instead. Before the timeout, no exit status means the host sent none (a
    command killed by a signal): that stays the command's result.
    """
    return done.exited == _NO_EXIT_STATUS and time.monotonic() - started >= timeout


def _run(link: Any, host: str, command: str, timeout: float) -> CommandResult:
    """Run COMMAND over an open or openable fabric connection; return its result.

    Raise CommandTimedOut past TIMEOUT seconds, Unreachable if the session is lost.
    """
    timed_out = f"{host}: the command did not finish within {timeout:g} s"
    started = time.monotonic()
    try:
        done = link.run(command, timeout=timeout, **_RUN_OPTIONS)
    except RunnerTimedOut as error:
        raise CommandTimedOut(timed_out) from error
    except _SESSION_LOST as error:
        raise Unreachable(f"{host}: session lost: {error}") from error
    if _closed_by_the_timer(done, started, timeout):
        raise CommandTimedOut(timed_out)
    return CommandResult(status=done.exited, stdout=done.stdout, stderr=done.stderr)


class HostSession:
    """An open, authenticated session to one host whose key was verified.

    Commands given to it are constants of the caller (or quoted with
    ``shlex``), never text from a host or a user.
    """

    def __init__(self, connection: Connection, link: Any) -> None:
        self.host = connection.host
        self._link = link
        # Channels of commands started with :meth:`start`: held so that each
        # command keeps its channel (and so keeps running) until the session closes.
        self._started: list[paramiko.Channel] = []

    def run(self, command: str, timeout: float = COMMAND_TIMEOUT_S) -> CommandResult:
        """Given a command, run it and return its exit status and output.

        Raise CommandTimedOut if it runs longer than ``timeout`` seconds,
        Unreachable if the session is lost.
        """
        return _run(self._link, self.host, command, timeout)

    def run_with_input(
        self,
        command: str,
        feed: Callable[[IO[bytes]], None],
        timeout: float = COMMAND_TIMEOUT_S,
    ) -> CommandResult:
        """Given a command and a function writing its input, run the command with what
        ``feed`` writes (binary, streamed: nothing is kept in memory or on disk), then
        return its result once it exits.

        ``timeout`` bounds each wait on the host (sending, reading). Raise Unreachable
        if the session is lost, TimeoutError if the host stops answering.
        """
        # fabric's runner reads its input stream a byte at a time and decodes it as
        # text, which would mangle binary input: write to the command's channel.
        channel: paramiko.Channel | None = None
        try:
            channel = self._link.create_session()
            channel.settimeout(timeout)
            channel.exec_command(command)
            with channel.makefile_stdin("wb") as stdin:
                # A paramiko file object: it writes bytes as IO[bytes] does.
                feed(cast(IO[bytes], stdin))
                stdin.flush()
            channel.shutdown_write()
            stdout = channel.makefile("rb").read()
            stderr = channel.makefile_stderr("rb").read()
            status = channel.recv_exit_status()
        except TimeoutError:
            raise
        except _SESSION_LOST as error:
            raise Unreachable(f"{self.host}: session lost: {error}") from error
        finally:
            if channel is not None:
                with contextlib.suppress(*_SESSION_LOST):
                    channel.close()
        return CommandResult(
            status=status,
            stdout=stdout.decode(errors="replace"),
            stderr=stderr.decode(errors="replace"),
        )

    def read_bounded(
        self, command: str, limit: int, timeout: float = COMMAND_TIMEOUT_S, stdin: bytes = b""
    ) -> BoundedResult:
        """Given a command, a size in bytes, a timeout and what to write to the command's
        input (a short secret such as a sudo password: it never reaches a command line),
        run the command and return what it printed, its raw bytes, never more than
        ``limit`` bytes per stream.

        For a command whose output is not trusted: fabric's runner keeps everything a
        command prints until it ends, so a host could fill the controller's memory.
        Here the command is stopped (its channel closed) once it printed more than
        ``limit`` bytes on one stream, or ran past ``timeout`` seconds; what was read
        until then is returned (``cut`` or ``timed_out``). SSH's flow control keeps
        the host from sending much more than is read. Raise Unreachable if the session
        is lost.
        """
        deadline = time.monotonic() + timeout
        stdout = bytearray()
        stderr = bytearray()
        channel: paramiko.Channel | None = None
        try:
            channel = self._link.create_session()
            channel.exec_command(command)
            if stdin:
                channel.sendall(stdin)
                # The command then reads an end of input, not a wait for more.
                channel.shutdown_write()
            stdout_ended = False
            while True:
                # stderr has no wait of its own: take what came each time round.
                while channel.recv_stderr_ready():
                    stderr += channel.recv_stderr(_CHUNK)
                ended = stdout_ended and channel.exit_status_ready()
                if ended:
                    # The last of stderr came before the exit status.
                    while channel.recv_stderr_ready():
                        stderr += channel.recv_stderr(_CHUNK)
                if len(stdout) > limit or len(stderr) > limit:
                    return BoundedResult(
                        None, bytes(stdout[:limit]), bytes(stderr[:limit]), cut=True
                    )
                if ended:
                    return BoundedResult(channel.recv_exit_status(), bytes(stdout), bytes(stderr))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return BoundedResult(None, bytes(stdout), bytes(stderr), timed_out=True)
                wait = min(_POLL_S, remaining)
                if stdout_ended:
                    channel.status_event.wait(wait)
                    continue
                channel.settimeout(wait)
                try:
                    chunk = channel.recv(_CHUNK)
                except TimeoutError:
                    continue
                if chunk:
                    stdout += chunk
                else:
                    stdout_ended = True
        except _SESSION_LOST as error:
            raise Unreachable(f"{self.host}: session lost: {error}") from error
        finally:
            if channel is not None:
                with contextlib.suppress(*_SESSION_LOST):
                    channel.close()

    def start(self, command: str, timeout: float = COMMAND_TIMEOUT_S) -> str:
        """Given a command, start it and return the first line it prints (without the
        line end; "" if it printed none). The command keeps running until it exits or
        the session is closed.

        Raise TimeoutError if no line comes within ``timeout`` seconds, Unreachable
        if the session is lost.
        """
        try:
            channel = self._link.create_session()
            self._started.append(channel)
            channel.settimeout(timeout)
            channel.exec_command(command)
            line: bytes = channel.makefile("rb").readline()
        except TimeoutError:
            raise
        except _SESSION_LOST as error:
            raise Unreachable(f"{self.host}: session lost: {error}") from error
        return line.decode(errors="replace").rstrip("\r\n")

    def close(self) -> None:
        """End the session and every command it started that is still attached to it."""
        try:
            for channel in self._started:
                channel.close()
        finally:
            self._started.clear()
            # fabric closes its client only when the transport is up; a failed
            # open leaves one to close as well.
            self._link.close()
            self._link.client.close()

    def __enter__(self) -> HostSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_host_session(
    connection: Connection, timeout: float = CONNECT_TIMEOUT_S, password: str | None = None
) -> HostSession:
    """Given a host's connection settings (and a password, when the login takes one
    rather than the connection's key), return an open session to it whose host key
    matched the client's known_hosts (use it as a context manager, or close it).

    Raise HostKeyProblem if the key is unknown or changed (``changed`` set; nothing
    was sent, no login tried), Unreachable if the host cannot be reached or refuses
    the login.
    """
    try:
        link = _verified(connection, timeout, password)
    except ValueError as error:  # fabric refuses an address it would read as user@host:port
        raise Unreachable(f"{connection.host} ({connection.address}): {error}") from error
    try:
        link.open()
    except (paramiko.SSHException, OSError) as error:
        link.client.close()
        raise connect_failure(connection, error) from error
    return HostSession(connection, link)


@contextlib.contextmanager
def host_session(
    connection: Connection, timeout: float = CONNECT_TIMEOUT_S, password: str | None = None
) -> Iterator[HostSession]:
    """Given a host's connection settings (and the login's password, if it takes one),
    yield an open session to it (closed after).

    Raise as :func:`open_host_session` does.
    """
    session = open_host_session(connection, timeout, password)
    with session:
        yield session


#: What one host of :func:`run_on_hosts` gave: its result, or why there is none.
HostOutcome = CommandResult | HostKeyProblem | Unreachable | CommandTimedOut


def run_on_hosts(
    connections: Iterable[Connection],
    command: str,
    timeout: float = COMMAND_TIMEOUT_S,
    connect_timeout: float = CONNECT_TIMEOUT_S,
) -> dict[str, HostOutcome]:
    """Given several hosts' connection settings and one command, run it on all of them at
    once and return, by host name, its result or the exception that kept it from one
    (never raises for a host): HostKeyProblem, Unreachable or CommandTimedOut.
    """
    chosen = list(connections)
    outcomes: dict[str, HostOutcome] = {}
    links: dict[Any, Connection] = {}
    for connection in chosen:
        try:
            links[_verified(connection, connect_timeout)] = connection
        except ValueError as error:
            outcomes[connection.host] = Unreachable(
                f"{connection.host} ({connection.address}): {error}"
            )
    group = fabric.ThreadingGroup.from_connections(list(links))
    # Each host's command starts once its connection is open, a little after this: a
    # command killed by a signal in the last moment before its timeout (the connection's
    # time) is counted as timed out, rather than a timeout ever passing for a result.
    started = time.monotonic()
    try:
        results = group.run(command, timeout=timeout, **_RUN_OPTIONS)
    except GroupException as error:
        # Some hosts failed: the group's result holds an exception in their place.
        results = error.result
    finally:
        for link in links:
            link.close()
            link.client.close()
    for link, connection in links.items():
        outcomes[connection.host] = _outcome(connection, results[link], started, timeout)
    return {connection.host: outcomes[connection.host] for connection in chosen}


def _outcome(connection: Connection, value: object, started: float, timeout: float) -> HostOutcome:
    """Given a host, what fabric's group gave for it, and when (``time.monotonic``) and
    with which timeout its command started, return its outcome."""
    timed_out = CommandTimedOut(
        f"{connection.host}: the command did not finish within {timeout:g} s"
    )
    if isinstance(value, RunnerTimedOut):
        return timed_out
    if isinstance(value, paramiko.SSHException | OSError):
        # Raised by opening the connection (a refused key, no route, a refused login).
        return connect_failure(connection, value)
    if isinstance(value, Result):
        if _closed_by_the_timer(value, started, timeout):
            return timed_out
        return CommandResult(status=value.exited, stdout=value.stdout, stderr=value.stderr)
    return Unreachable(f"{connection.host}: session lost: {value}")
