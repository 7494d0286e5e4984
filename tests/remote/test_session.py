"""Ad-hoc commands through fabric against a real SSH server on loopback: a host key is
accepted only when the client's own known_hosts holds it, and a refused host never
sees the command. The user's ~/.ssh is a decoy that would let the server in, or send
the connection elsewhere, if it were read."""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import fabric.runners
import paramiko
import pytest
from support.ssh_server import (
    WAIT_S,
    Answer,
    CommandServer,
    command_server,
    connection_to,
    new_key,
)

from webmg_ops.remote.session import BoundedResult, CommandTimedOut, host_session, run_on_hosts
from webmg_ops.remote.ssh import CommandResult, HostKeyProblem, Unreachable

ANSWER = Answer(status=3, stdout=b"out line\n", stderr=b"err line\n")


@dataclass(frozen=True)
class Keys:
    """The client's key (file and key), and a host key for the server."""

    client_file: Path
    client: paramiko.PKey
    host: paramiko.PKey


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    client_file = tmp_path / "id_ed25519"
    client = new_key(client_file)
    return Keys(client_file, client, new_key(tmp_path / "host_key"))


@pytest.fixture
def server(keys: Keys) -> Iterator[CommandServer]:
    with command_server(keys.host, keys.client, ANSWER) as running:
        yield running


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A decoy HOME, empty for now; a test fills its ~/.ssh."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def _known_hosts(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(text)
    return path


def test_a_known_host_key_connects_and_the_command_result_comes_back(
    server: CommandServer, keys: Keys, tmp_path: Path, home: Path
) -> None:
    known_hosts = _known_hosts(tmp_path, server.known_hosts_line())
    with host_session(connection_to(server, keys.client_file, known_hosts)) as session:
        result = session.run("uptime")
    assert result == CommandResult(status=3, stdout="out line\n", stderr="err line\n")
    assert server.commands == ["uptime"]


@pytest.mark.parametrize("enrolled", ["no-file", "other-host"])
def test_an_unknown_host_key_is_refused_before_the_command(
    server: CommandServer, keys: Keys, tmp_path: Path, home: Path, enrolled: str
) -> None:
    known_hosts = tmp_path / "known_hosts"
    if enrolled == "other-host":
        other = new_key(tmp_path / "other_host_key")
        _known_hosts(tmp_path, f"[{server.address}]:1 ssh-ed25519 {other.get_base64()}\n")
    before = known_hosts.read_bytes() if known_hosts.exists() else None
    with (
        pytest.raises(HostKeyProblem, match="is not enrolled") as refused,
        host_session(connection_to(server, keys.client_file, known_hosts)) as session,
    ):
        session.run("touch /should-not-run")
    assert refused.value.changed is False
    server.wait_for_ended()
    assert server.commands == []
    # Nothing was trusted on first use: the client's known_hosts is as it was.
    assert (known_hosts.read_bytes() if known_hosts.exists() else None) == before


def test_a_changed_host_key_is_refused_before_the_command(
    server: CommandServer, keys: Keys, tmp_path: Path, home: Path
) -> None:
    impostor = new_key(tmp_path / "enrolled_host_key")
    known_hosts = _known_hosts(tmp_path, server.known_hosts_line(impostor))
    with (
        pytest.raises(HostKeyProblem, match="CHANGED") as refused,
        host_session(connection_to(server, keys.client_file, known_hosts)) as session,
    ):
        session.run("touch /should-not-run")
    assert refused.value.changed is True
    server.wait_for_ended()
    assert server.commands == []
    assert known_hosts.read_text() == server.known_hosts_line(impostor)


def test_the_users_ssh_folder_is_never_read_or_written(
    server: CommandServer, keys: Keys, tmp_path: Path, home: Path
) -> None:
    # If read, the user's known_hosts would let the server in, and the user's SSH
    # config would run a proxy command leaving a marker in HOME.
    ssh = home / ".ssh"
    ssh.mkdir()
    (ssh / "known_hosts").write_text(server.known_hosts_line())
    marker = home / "proxy-command-ran"
    (ssh / "config").write_text(f"Host {server.address}\n  ProxyCommand touch {marker}\n")
    before = {path: path.read_bytes() for path in home.rglob("*") if path.is_file()}
    empty = _known_hosts(tmp_path, "")

    with pytest.raises(HostKeyProblem) as refused:
        host_session(connection_to(server, keys.client_file, empty)).__enter__()
    assert refused.value.changed is False
    known_hosts = _known_hosts(tmp_path, server.known_hosts_line())
    with host_session(connection_to(server, keys.client_file, known_hosts)) as session:
        assert session.run("id").status == 3

    server.wait_for_ended(2)
    assert server.commands == ["id"]
    after = {path: path.read_bytes() for path in home.rglob("*") if path.is_file()}
    assert after == before
    assert sorted(home.rglob("*")) == sorted([ssh, *before])
    assert not marker.exists()


def test_a_client_key_the_host_refuses_is_unreachable(
    server: CommandServer, tmp_path: Path, home: Path
) -> None:
    stranger = tmp_path / "stranger"
    new_key(stranger)
    known_hosts = _known_hosts(tmp_path, server.known_hosts_line())
    with pytest.raises(Unreachable, match=r"^web1 \(127\.0\.0\.1\): "):
        host_session(connection_to(server, stranger, known_hosts)).__enter__()
    assert server.commands == []


def test_without_a_client_key_the_login_is_refused(
    server: CommandServer, tmp_path: Path, home: Path
) -> None:
    known_hosts = _known_hosts(tmp_path, server.known_hosts_line())
    connection = replace(connection_to(server, tmp_path / "unused", known_hosts), key_file=None)
    with pytest.raises(Unreachable, match=r"^web1 \(127\.0\.0\.1\): "):
        host_session(connection).__enter__()
    assert server.commands == []


def test_a_command_past_its_timeout_is_stopped(keys: Keys, tmp_path: Path, home: Path) -> None:
    with command_server(keys.host, keys.client, Answer(hold=True)) as server:
        known_hosts = _known_hosts(tmp_path, server.known_hosts_line())
        with (
            host_session(connection_to(server, keys.client_file, known_hosts)) as session,
            pytest.raises(CommandTimedOut, match=r"within 0\.5 s"),
        ):
            session.run("sleep infinity", timeout=0.5)
    assert server.commands == ["sleep infinity"]


@pytest.fixture
def lingering_timer(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """fabric's runner tells a timeout by its timer's thread having ended; under load that
    thread may still be inside its close of the channel when the runner looks. This forces
    that schedule: the timer's thread closes the channel, then stays alive until the test
    sets the event yielded (when its commands have come back)."""
    came_back = threading.Event()
    close_channel = fabric.runners.Remote.kill

    def close_then_linger(runner: fabric.runners.Remote) -> None:
        close_channel(runner)
        came_back.wait(WAIT_S)

    monkeypatch.setattr(fabric.runners.Remote, "kill", close_then_linger)
    try:
        yield came_back
    finally:
        came_back.set()


def test_a_timeout_is_reported_when_the_runner_looks_before_its_timer_has_ended(
    keys: Keys, tmp_path: Path, home: Path, lingering_timer: threading.Event
) -> None:
    with command_server(keys.host, keys.client, Answer(hold=True)) as server:
        known_hosts = _known_hosts(tmp_path, server.known_hosts_line())
        with host_session(connection_to(server, keys.client_file, known_hosts)) as session:
            try:
                with pytest.raises(CommandTimedOut, match=r"within 0\.5 s"):
                    session.run("sleep infinity", timeout=0.5)
            finally:
                lingering_timer.set()


def test_timeouts_on_several_hosts_are_reported_when_the_runner_looks_too_early(
    keys: Keys, tmp_path: Path, home: Path, lingering_timer: threading.Event
) -> None:
    with (
        command_server(keys.host, keys.client, Answer(hold=True)) as first,
        command_server(keys.host, keys.client, Answer(hold=True)) as second,
    ):
        known_hosts = _known_hosts(tmp_path, first.known_hosts_line() + second.known_hosts_line())
        connections = [
            connection_to(running, keys.client_file, known_hosts, name=name)
            for name, running in (("first", first), ("second", second))
        ]
        try:
            outcomes = run_on_hosts(connections, "sleep infinity", timeout=0.5)
        finally:
            lingering_timer.set()
    for name in ("first", "second"):
        assert isinstance(outcomes[name], CommandTimedOut), outcomes[name]
        assert str(outcomes[name]) == f"{name}: the command did not finish within 0.5 s"


def test_input_is_streamed_to_the_command(keys: Keys, tmp_path: Path, home: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "app.db").write_bytes(bytes(range(256)) * 400)

    def feed(stdin: IO[bytes]) -> None:
        with tarfile.open(fileobj=stdin, mode="w|") as archive:
            archive.add(tmp_path / "data", arcname="data")

    answer = Answer(status=0, stdout=b"unpacked\n", read_input=True)
    with command_server(keys.host, keys.client, answer) as server:
        known_hosts = _known_hosts(tmp_path, server.known_hosts_line())
        with host_session(connection_to(server, keys.client_file, known_hosts)) as session:
            result = session.run_with_input("tar -x -C /tmp/x", feed)
    assert result == CommandResult(status=0, stdout="unpacked\n", stderr="")
    (sent,) = server.inputs
    with tarfile.open(fileobj=io.BytesIO(sent)) as archive:
        member = archive.extractfile("data/app.db")
        assert member is not None
        assert member.read() == bytes(range(256)) * 400


def test_a_started_command_gives_its_first_line(keys: Keys, tmp_path: Path, home: Path) -> None:
    answer = Answer(stdout=b"4242\nlistening\n", hold=True)
    with command_server(keys.host, keys.client, answer) as server:
        known_hosts = _known_hosts(tmp_path, server.known_hosts_line())
        with host_session(connection_to(server, keys.client_file, known_hosts)) as session:
            assert session.start("serve", timeout=5) == "4242"
    assert server.commands == ["serve"]


def test_one_command_on_several_hosts_at_once(
    server: CommandServer, keys: Keys, tmp_path: Path, home: Path
) -> None:
    impostor = new_key(tmp_path / "enrolled_host_key")
    with (
        command_server(keys.host, keys.client, ANSWER) as unknown,
        command_server(keys.host, keys.client, ANSWER) as changed,
    ):
        known_hosts = _known_hosts(
            tmp_path, server.known_hosts_line() + changed.known_hosts_line(impostor)
        )
        connections = [
            connection_to(running, keys.client_file, known_hosts, name=name)
            for name, running in (("good", server), ("unknown", unknown), ("changed", changed))
        ]
        outcomes = run_on_hosts(connections, "uptime", timeout=10)
        unknown.wait_for_ended()
        changed.wait_for_ended()
    assert list(outcomes) == ["good", "unknown", "changed"]
    assert outcomes["good"] == CommandResult(3, "out line\n", "err line\n")
    assert isinstance(outcomes["unknown"], HostKeyProblem)
    assert outcomes["unknown"].changed is False
    assert isinstance(outcomes["changed"], HostKeyProblem)
    assert outcomes["changed"].changed is True
    assert server.commands == ["uptime"]
    assert unknown.commands == changed.commands == []


def test_a_bounded_read_gives_the_raw_output_and_status(
    server: CommandServer, keys: Keys, tmp_path: Path, home: Path
) -> None:
    known_hosts = _known_hosts(tmp_path, server.known_hosts_line())
    with host_session(connection_to(server, keys.client_file, known_hosts)) as session:
        result = session.read_bounded("df -hP", limit=1000, timeout=10)
    assert result == BoundedResult(status=3, stdout=b"out line\n", stderr=b"err line\n")
    assert server.commands == ["df -hP"]


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_bounded_read_stops_a_command_past_its_limit(
    keys: Keys, tmp_path: Path, home: Path, stream: str
) -> None:
    """A host sending more than the limit on either stream: the command is stopped and
    no more than the limit is kept (the host may not fill the controller's memory)."""
    flood = Answer(stdout=b"z" * 300_000) if stream == "stdout" else Answer(stderr=b"z" * 300_000)
    with command_server(keys.host, keys.client, flood) as server:
        known_hosts = _known_hosts(tmp_path, server.known_hosts_line())
        with host_session(connection_to(server, keys.client_file, known_hosts)) as session:
            result = session.read_bounded("journalctl", limit=1000, timeout=10)
    assert (result.status, result.cut, result.timed_out) == (None, True, False)
    assert getattr(result, stream) == b"z" * 1000


def test_a_bounded_read_past_its_timeout_keeps_what_came(
    keys: Keys, tmp_path: Path, home: Path
) -> None:
    with command_server(keys.host, keys.client, Answer(stdout=b"so far\n", hold=True)) as server:
        known_hosts = _known_hosts(tmp_path, server.known_hosts_line())
        with host_session(connection_to(server, keys.client_file, known_hosts)) as session:
            result = session.read_bounded("sleep infinity", limit=1000, timeout=0.5)
            # The session stays usable for the next command.
            assert session.read_bounded("uptime", limit=1000, timeout=0.5).timed_out
    assert result == BoundedResult(status=None, stdout=b"so far\n", stderr=b"", timed_out=True)
    assert server.commands == ["sleep infinity", "uptime"]
