"""``webmg-ops incident collect ID``: evidence read on the incident's hosts over real SSH
(paramiko's server side on loopback, see :mod:`support.ssh_server`), recorded in a real
ledger (SQLite and PostgreSQL) as one ``incident-evidence`` entry.

Promises proved here: only host keys enrolled in the client's known_hosts are accepted,
and a refused host never sees a command; a host that fails or hangs is recorded as such
and never stops the others; the client's secrets never reach the entry or the screen;
text from a host reaches neither as terminal control; a closed incident, an unknown id
or a host gone from the inventory is refused (exit 2) before any connection, with
nothing written.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml
from support.service import ledger_url, service_postgres
from support.ssh_server import Answer, CommandServer, command_server, new_key

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import Entry, open_ledger
from webmg_ops.secrets import MASK

# Fixtures of the service tests: every test here runs on SQLite and on PostgreSQL.
__all__ = ["ledger_url", "service_postgres"]

Cli = Callable[..., Any]

CLIENT = "alpenhof"
WEB = "alpenhof-web1"
DB = "alpenhof-db1"

#: A secret of the client: a secret-named variable in its group_vars.
SECRET = "Canary-Db-Passw0rd-7731"

#: What each host is asked, written out here: read-only commands, nothing else.
READ_ONLY_COMMANDS = [
    "systemctl --failed --no-legend --plain --no-pager",
    "sudo -n journalctl -p err -n 200 --no-pager --since -24h -o short-iso",
    "df -hP",
    "free -m",
    "cat /proc/loadavg; uptime",
    "tail -n 50 /var/log/dpkg.log",
    "sudo -n ss -tlnpH",
]

ANSWER = Answer(status=0, stdout=b"/dev/sda1 20G 19G 1G 95% /\n", stderr=b"")


@dataclass
class Hosts:
    """The client's two hosts, each reached at its own loopback SSH server."""

    inventories: Path
    client_key_file: Path
    client_key: paramiko.PKey
    host_key: paramiko.PKey
    servers: dict[str, CommandServer]
    stack: ExitStack

    @property
    def known_hosts(self) -> Path:
        return self.inventories / CLIENT / "known_hosts"

    def serve(self, name: str, answer: Answer = ANSWER, enrolled: str = "same") -> None:
        """Run host NAME's server answering ANSWER; its key enrolled in the client's
        known_hosts as it is (``same``), another key (``changed``) or not at all
        (``none``). Point the inventory at it."""
        server = self.stack.enter_context(command_server(self.host_key, self.client_key, answer))
        self.servers[name] = server
        if enrolled != "none":
            key = (
                self.host_key
                if enrolled == "same"
                else new_key(self.client_key_file.parent / f"{name}-impostor")
            )
            with self.known_hosts.open("a") as file:
                file.write(server.known_hosts_line(key))
        self._point(name, server.port)

    def unreachable(self, name: str) -> None:
        """Point host NAME at a loopback port nothing listens on."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._point(name, port)

    def _point(self, name: str, port: int) -> None:
        file = self.inventories / CLIENT / "hosts.yml"
        data = yaml.safe_load(file.read_text())
        group = "web" if name == WEB else "db"
        data["all"]["children"][group]["hosts"][name] = {
            "ansible_host": "127.0.0.1",
            "ansible_port": port,
        }
        file.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def hosts(inventories: Path, tmp_path: Path) -> Iterator[Hosts]:
    """The client alpenhof with the agency's key for it, a secret in its variables, and
    its hosts served on loopback by the test (``hosts.serve``)."""
    folder = inventories / CLIENT
    (folder / "ssh").mkdir()
    key_file = folder / "ssh" / "id_ed25519"
    client_key = new_key(key_file)
    host_key = new_key(tmp_path / "host_key")
    (folder / "group_vars" / "all" / "app.yml").write_text(
        yaml.safe_dump({"app_db_password": SECRET})
    )
    with ExitStack() as stack:
        yield Hosts(inventories, key_file, client_key, host_key, {}, stack)


def open_incident(cli: Cli, *extra: str) -> str:
    done = cli(
        "incident",
        "open",
        CLIENT,
        "--title",
        "booking site slow",
        "--impact",
        "availability",
        "--criticality",
        "minor",
        *extra,
        "--json",
    )
    assert done.code == ExitCode.OK, done
    incident_id: str = json.loads(done.out)["id"]
    return incident_id


def entries(url: str) -> list[Entry]:
    with open_ledger(url, create=False) as ledger:
        return list(ledger.entries())


def evidence_entries(url: str) -> list[Entry]:
    return [entry for entry in entries(url) if entry.kind == "incident-evidence"]


def by_host(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {host["host"]: host for host in document["hosts"]}


def test_evidence_from_verified_hosts_is_attached_to_the_incident(
    cli: Cli, ledger_url: str, hosts: Hosts
) -> None:
    """An incident naming no host: every host of the inventory runs the read-only
    commands, once each; one entry holds every output; the timeline shows it."""
    hosts.serve(WEB)
    hosts.serve(DB)
    incident_id = open_incident(cli)

    done = cli("incident", "collect", incident_id, "--by", "Anna Gruber", "--json")

    assert done.code == ExitCode.OK, done
    for name in (WEB, DB):
        assert hosts.servers[name].commands == READ_ONLY_COMMANDS
        # Progress: each host's line on stderr as it finished.
        assert f"{name}: collected" in done.err
    document = json.loads(done.out)
    assert (document["id"], document["complete"]) == (incident_id, True)
    assert document["summary"] == "2 of 2 host(s) collected"
    assert document["at"].endswith(("+01:00", "+02:00"))  # the client's zone: Vienna
    for host in (by_host(document)[WEB], by_host(document)[DB]):
        assert host["state"] == "collected"
        assert [command["command"] for command in host["commands"]] == READ_ONLY_COMMANDS
        assert {command["stdout"] for command in host["commands"]} == {ANSWER.stdout.decode()}
        assert {command["state"] for command in host["commands"]} == {"ok"}
        assert {command["exit_status"] for command in host["commands"]} == {0}

    (entry,) = evidence_entries(ledger_url)
    assert entry.seq == document["evidence"]
    assert entry.actor == "Anna Gruber"
    assert f"INC-{entry.payload['incident']}" == incident_id
    assert entry.payload["hosts"] == document["hosts"]

    shown = cli("incident", "show", incident_id, "--json")
    assert shown.code == ExitCode.OK, shown
    timeline = json.loads(shown.out)["timeline"]
    assert [event["kind"] for event in timeline] == ["incident-opened", "incident-evidence"]
    assert timeline[1]["summary"] == "2 of 2 host(s) collected"
    human = cli("incident", "show", incident_id)
    assert "incident-evidence by Anna Gruber 2 of 2 host(s) collected" in human.err

    kept = cli("incident", "evidence", incident_id, "--json")
    assert kept.code == ExitCode.OK, kept
    assert json.loads(kept.out) == [document]
    printed = cli("incident", "evidence", incident_id)
    assert printed.code == ExitCode.OK, printed
    assert "--- disk: ok, exit 0" in printed.err
    assert "/dev/sda1 20G 19G 1G 95% /" in printed.err


def test_only_the_incidents_host_is_read(cli: Cli, ledger_url: str, hosts: Hosts) -> None:
    """An incident naming a host reads that host alone."""
    hosts.serve(WEB)
    hosts.serve(DB)
    incident_id = open_incident(cli, "--host", DB)

    done = cli("incident", "collect", incident_id, "--json")

    assert done.code == ExitCode.OK, done
    assert [host["host"] for host in json.loads(done.out)["hosts"]] == [DB]
    assert hosts.servers[DB].commands == READ_ONLY_COMMANDS
    assert hosts.servers[WEB].commands == []


def test_secrets_and_terminal_controls_from_a_host_never_reach_the_entry_or_the_screen(
    cli: Cli, ledger_url: str, hosts: Hosts
) -> None:
    """A host printing the client's secret (plain and base64), terminal escapes, rich
    markup and undecodable bytes: the secret is masked in the entry and in every output;
    no control character is printed; markup is shown as text."""
    import base64

    hostile = (
        f"DB_PASSWORD={SECRET}\n".encode()
        + b"encoded "
        + base64.b64encode(SECRET.encode())
        + b"\n"
        + b"\x1b[2J\x1b]0;owned\x07clear screen\n"
        + b"[bold red]not markup[/bold red] :smile:\n"
        + b"bad bytes \xff\xfe end\n"
    )
    hosts.serve(WEB, Answer(status=0, stdout=hostile, stderr=f"err {SECRET}\n".encode()))
    incident_id = open_incident(cli, "--host", WEB)

    collected = cli("incident", "collect", incident_id, "--json")
    shown = cli("incident", "evidence", incident_id)
    shown_json = cli("incident", "evidence", incident_id, "--json")

    assert collected.code == shown.code == shown_json.code == ExitCode.OK, collected
    (entry,) = evidence_entries(ledger_url)
    stored = entry.payload_json
    encoded = base64.b64encode(SECRET.encode()).decode()
    for text in (stored, collected.out, collected.err, shown.err, shown.out, shown_json.out):
        assert SECRET not in text
        assert encoded not in text
    command = entry.payload["hosts"][0]["commands"][0]
    assert command["stdout"].startswith(f"DB_PASSWORD={MASK}\nencoded {MASK}\n")
    assert command["stderr"] == f"err {MASK}\n"
    # Undecodable bytes and control characters are replaced; the rest is kept as text.
    assert "bad bytes \ufffd\ufffd end" in command["stdout"]
    assert "\ufffd[2J\ufffd]0;owned\ufffdclear screen" in command["stdout"]
    for text in (collected.out, collected.err, shown.err, shown_json.out):
        assert "\x1b" not in text and "\x07" not in text
    assert "[bold red]not markup[/bold red] :smile:" in shown.err
    assert f"DB_PASSWORD={MASK}" in shown.err


@pytest.mark.parametrize("enrolled", ["none", "changed"])
def test_a_host_key_not_enrolled_is_refused_before_any_command(
    cli: Cli, ledger_url: str, hosts: Hosts, enrolled: str
) -> None:
    """A host whose key is unknown, or differs from the enrolled one, gets no command and
    is recorded with the reason; the other host is collected; the exit status is 1."""
    hosts.serve(WEB)
    hosts.serve(DB, enrolled=enrolled)
    before = hosts.known_hosts.read_text()
    incident_id = open_incident(cli)

    done = cli("incident", "collect", incident_id, "--json")

    assert done.code == ExitCode.FAILED, done
    hosts.servers[DB].wait_for_ended()
    assert hosts.servers[DB].commands == []
    assert hosts.servers[WEB].commands == READ_ONLY_COMMANDS
    # Nothing trusted on first use: the client's known_hosts is as it was.
    assert hosts.known_hosts.read_text() == before
    state = "host-key-unknown" if enrolled == "none" else "host-key-changed"
    (entry,) = evidence_entries(ledger_url)
    recorded = by_host(entry.payload)
    assert recorded[DB]["state"] == state
    assert recorded[DB]["commands"] == []
    assert ("is not enrolled" if enrolled == "none" else "CHANGED") in recorded[DB]["reason"]
    assert recorded[WEB]["state"] == "collected"
    assert entry.payload["complete"] is False
    assert entry.payload["summary"] == f"1 of 2 host(s) collected; {DB} {state}"
    assert f"{DB}: {state}" in done.err


def test_a_host_that_hangs_or_cannot_be_reached_does_not_stop_the_others(
    cli: Cli, ledger_url: str, hosts: Hosts, inventories: Path
) -> None:
    """One host's commands never end: each is stopped at its timeout and recorded as
    timed out, with what it printed so far; another host cannot be reached; the third
    is collected in full. One entry, exit status 1."""
    hosts.serve(WEB)
    # The hung command's last line is unfinished: it begins with the client's secret.
    hosts.serve(DB, Answer(stdout=b"partial line\n" + SECRET[:12].encode(), hold=True))
    incident_id = open_incident(cli)

    done = cli("incident", "collect", incident_id, "--timeout", "0.5", "--json")

    assert done.code == ExitCode.FAILED, done
    document = json.loads(done.out)
    hung = by_host(document)[DB]
    assert hung["state"] == "incomplete"
    # Every command was tried, each stopped at its timeout: none aborted the others.
    assert hosts.servers[DB].commands == READ_ONLY_COMMANDS
    assert {command["state"] for command in hung["commands"]} == {"timed-out"}
    assert {command["stdout"] for command in hung["commands"]} == {"partial line\n"}
    assert {command["exit_status"] for command in hung["commands"]} == {None}
    assert {tuple(command["notes"]) for command in hung["commands"]} == {
        (
            "did not finish within its timeout: stopped, output so far kept",
            "its unfinished last line was dropped",
        )
    }
    assert by_host(document)[WEB]["state"] == "collected"
    (entry,) = evidence_entries(ledger_url)
    assert entry.payload["hosts"] == document["hosts"]
    assert SECRET[:12] not in entry.payload_json


def test_an_unreachable_host_is_recorded_with_its_reason(
    cli: Cli, ledger_url: str, hosts: Hosts
) -> None:
    hosts.serve(WEB)
    hosts.unreachable(DB)
    incident_id = open_incident(cli)

    done = cli("incident", "collect", incident_id, "--json")

    assert done.code == ExitCode.FAILED, done
    recorded = by_host(evidence_entries(ledger_url)[0].payload)
    assert recorded[DB]["state"] == "unreachable"
    assert recorded[DB]["reason"].startswith(f"{DB} (127.0.0.1):")
    assert recorded[WEB]["state"] == "collected"
    assert hosts.servers[WEB].commands == READ_ONLY_COMMANDS


def test_long_outputs_are_cut_and_the_cut_is_said(cli: Cli, ledger_url: str, hosts: Hosts) -> None:
    """An output longer than what is kept: its first lines are kept (its last for the
    journal and the package log, whose newest lines come last), and a note says so."""
    lines = [f"line {number:05d} {'x' * 40}" for number in range(1000)]  # ~47 000 characters
    sent = "\n".join(lines) + "\n"
    hosts.serve(WEB, Answer(status=0, stdout=sent.encode()))
    incident_id = open_incident(cli, "--host", WEB)

    done = cli("incident", "collect", incident_id, "--json")

    assert done.code == ExitCode.OK, done
    commands = {
        command["name"]: command for command in json.loads(done.out)["hosts"][0]["commands"]
    }
    disk, errors = commands["disk"], commands["errors"]
    assert disk["state"] == errors["state"] == "ok"
    assert sent.startswith(disk["stdout"]) and disk["stdout"].startswith("line 00000 ")
    assert sent.endswith(errors["stdout"]) and errors["stdout"].endswith(
        "line 00999 " + "x" * 40 + "\n"
    )
    for command in (disk, errors):
        assert 0 < len(command["stdout"]) <= 16_000
        # Whole lines only.
        assert all(line in lines for line in command["stdout"].splitlines())
    assert disk["notes"] == [f"output cut: the first {len(disk['stdout'])} characters kept"]
    assert errors["notes"] == [f"output cut: the last {len(errors['stdout'])} characters kept"]


def test_an_endless_output_is_stopped(cli: Cli, ledger_url: str, hosts: Hosts) -> None:
    """A host sending far more than any probe prints: each command is stopped once it
    passes the read limit, and recorded as cut."""
    line = b"y" * 99 + b"\n"
    hosts.serve(WEB, Answer(status=0, stdout=line * 4100))  # 410 000 bytes
    incident_id = open_incident(cli, "--host", WEB)

    done = cli("incident", "collect", incident_id, "--json")

    assert done.code == ExitCode.FAILED, done
    (host,) = json.loads(done.out)["hosts"]
    assert host["state"] == "incomplete"
    for command in host["commands"]:
        assert command["state"] == "cut"
        assert command["exit_status"] is None
        # What is kept: whole lines, no more than the entry keeps.
        assert 15_000 < len(command["stdout"]) <= 16_000
        assert set(command["stdout"].splitlines()) == {"y" * 99}
        assert "printed more than 262144 bytes: stopped, output so far kept" in command["notes"]


def test_an_unknown_incident_is_refused(cli: Cli, ledger_url: str, hosts: Hosts) -> None:
    hosts.serve(WEB)
    open_incident(cli)
    before = entries(ledger_url)

    done = cli("incident", "collect", "INC-999", "--json")

    assert done.code == ExitCode.BAD_INPUT, done
    assert "unknown incident INC-999" in done.err
    assert "Traceback" not in done.err
    assert done.out == ""
    assert entries(ledger_url) == before
    assert hosts.servers[WEB].commands == []


def test_a_closed_incident_is_refused(cli: Cli, ledger_url: str, hosts: Hosts) -> None:
    """Evidence read after the close would not be the incident's: refused, nothing read."""
    hosts.serve(WEB)
    incident_id = open_incident(cli, "--host", WEB)
    for step, note in (
        ("ack", "seen"),
        ("mitigate", "restarted"),
        ("fix", "fixed"),
        ("close", "done"),
    ):
        assert cli("incident", step, incident_id, "--note", note).code == ExitCode.OK
    before = entries(ledger_url)

    done = cli("incident", "collect", incident_id)

    assert done.code == ExitCode.BAD_INPUT, done
    assert f"{incident_id} is closed: evidence read now would not be the incident's" in done.err
    assert entries(ledger_url) == before
    assert hosts.servers[WEB].commands == []


def test_a_host_gone_from_the_inventory_is_refused(
    cli: Cli, ledger_url: str, hosts: Hosts, inventories: Path
) -> None:
    hosts.serve(WEB)
    hosts.serve(DB)
    incident_id = open_incident(cli, "--host", DB)
    file = inventories / CLIENT / "hosts.yml"
    data = yaml.safe_load(file.read_text())
    del data["all"]["children"]["db"]
    file.write_text(yaml.safe_dump(data, sort_keys=False))
    before = entries(ledger_url)

    done = cli("incident", "collect", incident_id)

    assert done.code == ExitCode.BAD_INPUT, done
    assert (
        f"{incident_id} names host '{DB}', which is no longer in {CLIENT}'s inventory" in done.err
    )
    assert entries(ledger_url) == before
    assert hosts.servers[WEB].commands == hosts.servers[DB].commands == []


def test_a_timeout_that_is_not_positive_is_refused(cli: Cli, ledger_url: str, hosts: Hosts) -> None:
    hosts.serve(WEB)
    incident_id = open_incident(cli, "--host", WEB)
    before = entries(ledger_url)

    done = cli("incident", "collect", incident_id, "--timeout", "0")

    assert done.code == ExitCode.BAD_INPUT, done
    assert "--timeout must be a positive number of seconds" in done.err
    assert entries(ledger_url) == before
    assert hosts.servers[WEB].commands == []


def test_the_evidence_of_an_unknown_incident_is_refused(cli: Cli, ledger_url: str) -> None:
    open_incident(cli)
    done = cli("incident", "evidence", "INC-999")
    assert done.code == ExitCode.BAD_INPUT, done
    assert "unknown incident INC-999" in done.err
