"""A run may name the incident it works on (``--incident``): its run log names the
incident, and the incident's timeline lists the run, from its start to its end or its
refusal. A run naming an unknown, closed or other client's incident is refused before
anything is written.

The runs are real runs of the engine on a client whose one host nothing answers (the
run starts, then fails at its preflight), on a real ledger (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.engine import add_unreachable_client
from support.service import ledger_url, open_incident, service_postgres

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import Entry, open_ledger

# Fixtures of the service tests: every test here runs on SQLite and on PostgreSQL.
__all__ = ["ledger_url", "service_postgres"]

Cli = Callable[..., Any]

CLIENT = "local-shop"


@pytest.fixture
def client(inventories: Path) -> Path:
    return add_unreachable_client(inventories, CLIENT)


def entries(url: str) -> list[Entry]:
    with open_ledger(url, create=False, missing_ok=True) as ledger:
        return list(ledger.entries())


def run_json(cli: Cli, *args: str) -> dict[str, Any]:
    done = cli(*args, "--json")
    assert done.code == ExitCode.OK, done
    document: dict[str, Any] = json.loads(done.out)
    return document


def open_minor(cli: Cli, client: str = CLIENT) -> str:
    return str(open_incident(cli, client, title="disk full", criticality="minor")["id"])


def timeline(cli: Cli, incident: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = run_json(cli, "incident", "show", incident)["timeline"]
    return events


def test_a_run_naming_an_incident_joins_its_timeline_and_its_log_names_it(
    cli: Cli, ledger_url: str, client: Path, var: Path
) -> None:
    worked_on = open_minor(cli)
    other = open_minor(cli)
    # Typed as an operator might: the id is written as the incident's own.
    ran = cli(
        "run", CLIENT, "check", "--emergency", "--reason", "disk", "--incident", worked_on.lower()
    )
    assert ran.code == ExitCode.FAILED, ran  # nothing answers on the host

    recorded = entries(ledger_url)
    (started,) = [entry for entry in recorded if entry.kind == "run-started"]
    (finished,) = [entry for entry in recorded if entry.kind == "run-finished"]
    assert finished.payload["started_seq"] == started.seq
    assert started.payload["incident"] == worked_on
    run_id = started.payload["run_id"]

    events = timeline(cli, worked_on)
    assert [(event["seq"], event["kind"]) for event in events] == [
        (int(worked_on.removeprefix("INC-")), "incident-opened"),
        (started.seq, "run-started"),
        (finished.seq, "run-finished"),
    ]
    assert events[1]["run_id"] == events[2]["run_id"] == run_id
    assert (events[2]["action"], events[2]["outcome"]) == ("check", "failed")
    # A run joins the incident it names only, and moves none of its clocks or states.
    assert [event["kind"] for event in timeline(cli, other)] == ["incident-opened"]
    assert run_json(cli, "incident", "show", worked_on)["state"] == "triage"

    log = (var / "runs" / run_id / "run-log.md").read_text()
    assert f"**Incident:** {worked_on}" in log
    html = (var / "runs" / run_id / "run-log.html").read_text()
    assert f"<dt>Incident</dt><dd>{worked_on}" in html
    shown = cli("incident", "show", worked_on)
    assert shown.code == ExitCode.OK, shown
    assert f"run-finished by {finished.actor} check {run_id} failed" in shown.err


def test_a_refused_run_naming_an_incident_joins_its_timeline(
    cli: Cli, ledger_url: str, client: Path, var: Path
) -> None:
    incident = open_minor(cli)
    refused = cli("run", CLIENT, "update", "--reason", "patch", "--incident", incident, "--json")
    assert refused.code == ExitCode.REFUSED, refused  # every window of the client is closed
    (entry,) = [entry for entry in entries(ledger_url) if entry.kind == "run-refused"]
    assert entry.payload["incident"] == incident
    events = timeline(cli, incident)
    assert [(event["seq"], event["kind"]) for event in events][1:] == [(entry.seq, "run-refused")]
    assert events[1]["refusal"] == entry.payload["refusal"]
    # The refusal's log names the incident too (the one run folder the refusal wrote).
    (folder,) = (var / "runs").iterdir()
    assert f"**Incident:** {incident}" in (folder / "run-log.md").read_text()


def _closed(cli: Cli) -> str:
    incident = open_minor(cli)
    for step in ("ack", "mitigate", "fix", "close"):
        run_json(cli, "incident", step, incident, "--note", step)
    return incident


@pytest.mark.parametrize(
    ("make_incident", "said"),
    [
        (lambda cli: "INC-999999", "unknown incident INC-999999"),
        (lambda cli: "CHG-1", "not an incident id"),
        (lambda cli: open_minor(cli, "atelier-nord"), "is an incident of atelier-nord"),
        (_closed, "is closed: open a new incident"),
    ],
    ids=["unknown", "malformed", "another-clients", "closed"],
)
@pytest.mark.parametrize("command", ["run", "plan"])
def test_a_run_naming_an_incident_it_cannot_work_on_is_refused_and_writes_nothing(
    cli: Cli,
    ledger_url: str,
    client: Path,
    var: Path,
    make_incident: Callable[[Cli], str],
    said: str,
    command: str,
) -> None:
    with open_ledger(ledger_url):
        pass  # the ledger exists, as it does once anything was recorded
    incident = make_incident(cli)
    before = entries(ledger_url)
    done = cli(command, CLIENT, "check", "--emergency", "--reason", "r", "--incident", incident)
    assert done.code == ExitCode.BAD_INPUT, done
    assert said in done.err, done.err
    assert "Traceback" not in done.err
    assert entries(ledger_url) == before
    assert not (var / "runs").exists() or not list((var / "runs").iterdir())
