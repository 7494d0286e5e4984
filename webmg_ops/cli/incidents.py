"""Incident commands: ``incident open|ack|mitigate|fix|close|wait|resume|raise|lower|
postmortem|collect|evidence|list|show``.

Each command that changes an incident records one ledger entry and prints the
incident as it then stands (``--json``: one document with its ``id``,
``severity`` and each clock's due time and state). ``collect`` records the
evidence read on the incident's hosts and prints it; ``evidence`` prints what
was collected. Text read on a host is printed as plain text, never as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from webmg_ops.ansible.vault import vault_password_file
from webmg_ops.config.contract import CRITICALITIES, IMPACTS, PRIORITIES
from webmg_ops.config.instants import parse_instant
from webmg_ops.errors import ExitCode
from webmg_ops.remote.session import COMMAND_TIMEOUT_S
from webmg_ops.service import evidence, incidents
from webmg_ops.service.collect import collect_evidence, list_evidence
from webmg_ops.service.incident_commands import (
    act_on_incident,
    list_incidents,
    open_incident,
    read_postmortem,
    show_incident,
)
from webmg_ops.settings import Settings

from .common import by_option, console, emit_json, json_option, pass_settings, vault_option

F = Callable[..., Any]

_CLOCK_STYLE = {"running": "cyan", "paused": "yellow", "met": "green", "breached": "red"}
_HOST_STYLE = {evidence.COLLECTED: "green", evidence.INCOMPLETE: "yellow"}


def _at_option(function: F) -> F:
    return click.option(
        "--at",
        "at_text",
        metavar="ISO-TIME",
        help="Show the clocks at this instant, with its offset (default: now).",
    )(function)


def parse_at(text: str | None) -> datetime | None:
    """Given ``--at`` as typed (None: not given), return it in UTC (:func:`parse_instant`)."""
    return None if text is None else parse_instant("--at", text)


def _clock_cell(clock: Mapping[str, Any]) -> str:
    style = _CLOCK_STYLE.get(clock["state"], "white")
    if clock["state"] in ("met", "breached") and clock["stopped_at"]:
        when = f"stopped {clock['stopped_at'][:16]}"
    elif clock["due_at"]:
        when = f"due {clock['due_at'][:16]}, {clock['remaining']} left"
    else:
        when = f"{clock['remaining']} left"
    return f"[{style}]{clock['state']}[/{style}] ({when})"


def _report(document: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(document)
        return
    waiting = " [yellow]waiting on the client[/yellow]" if document["waiting_on"] else ""
    console.print(
        f"{document['id']} {document['client']} {document['severity']} "
        f"{document['state']}{waiting}: {document['title']}"
    )
    table = Table("clock", "state", "budget", "due at", "remaining", title=document["timezone"])
    for name, clock in document["clocks"].items():
        style = _CLOCK_STYLE.get(clock["state"], "white")
        table.add_row(
            name,
            f"[{style}]{clock['state']}[/{style}]",
            clock["budget"],
            (clock["due_at"] or "paused")[:16],
            clock["remaining"],
        )
    console.print(table)
    if document["postmortem"] is not None:
        actions = document["postmortem"]["actions"]
        console.print(f"post-mortem {document['postmortem']['file']}: {len(actions)} action(s)")


@click.group("incident")
def incident_group() -> None:
    """Incidents: severity, triage -> mitigation -> fix -> close, SLA clocks."""


@incident_group.command("open")
@click.argument("client", metavar="CLIENT")
@click.option("--title", required=True, help="What is wrong, in one line.")
@click.option(
    "--impact", type=click.Choice(IMPACTS), required=True, help="What the incident harms."
)
@click.option("--criticality", type=click.Choice(CRITICALITIES), required=True, help="How badly.")
@click.option("--host", metavar="HOST", help="The inventory host concerned.")
@click.option("--reported-by", metavar="WHO", help="Who reported the incident.")
@click.option("--ticket", metavar="ID", help="The client's or the agency's ticket id.")
@by_option("Who does this")
@json_option
@pass_settings
def open_command(
    settings: Settings,
    client: str,
    title: str,
    impact: str,
    criticality: str,
    host: str | None,
    reported_by: str | None,
    ticket: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Open an incident for CLIENT; its severity comes from the policy's table."""
    document = open_incident(
        settings,
        client,
        title=title,
        impact=impact,
        criticality=criticality,
        host=host,
        reported_by=reported_by,
        ticket=ticket,
        by=by,
    )
    _report(document, as_json)


def _step_command(command: str, summary: str, note_help: str) -> click.Command:
    @click.command(command, help=summary)
    @click.argument("incident_id", metavar="ID")
    @click.option("--note", help=note_help)
    @by_option("Who does this")
    @json_option
    @pass_settings
    def step(
        settings: Settings, incident_id: str, note: str | None, by: str | None, as_json: bool
    ) -> None:
        def decide(
            rules: incidents.IncidentRules, incident: incidents.Incident, now: datetime
        ) -> Any:
            return incidents.decide_step(rules, incident, command, note=note, by=by, now=now)

        _report(act_on_incident(settings, incident_id, decide), as_json)

    return step


for _command, _summary, _note_help in (
    (
        "ack",
        "Acknowledge incident ID: triage is done (stops the response clock).",
        "What was seen (optional).",
    ),
    (
        "mitigate",
        "Record that incident ID's service is restored (stops the restore clock).",
        "How the service was restored (required).",
    ),
    (
        "fix",
        "Record that incident ID's cause is fixed (stops the resolution clock).",
        "What was fixed (required).",
    ),
    (
        "close",
        "Close incident ID (refused without a post-mortem where the policy needs one).",
        "Why it can close (required).",
    ),
):
    incident_group.add_command(_step_command(_command, _summary, _note_help))


@incident_group.command("wait")
@click.argument("incident_id", metavar="ID")
@click.option(
    "--on",
    "party",
    type=click.Choice(incidents.WAIT_PARTIES),
    required=True,
    help="Whom the incident waits on.",
)
@click.option("--note", help="What is awaited (required).")
@by_option("Who does this")
@json_option
@pass_settings
def wait_command(
    settings: Settings,
    incident_id: str,
    party: str,
    note: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Pause incident ID's clocks while it waits on the client."""

    def decide(rules: incidents.IncidentRules, incident: incidents.Incident, now: datetime) -> Any:
        return incidents.decide_wait(incident, on=party, note=note, by=by, now=now)

    _report(act_on_incident(settings, incident_id, decide), as_json)


@incident_group.command("resume")
@click.argument("incident_id", metavar="ID")
@click.option("--note", help="What the client answered (optional).")
@by_option("Who does this")
@json_option
@pass_settings
def resume_command(
    settings: Settings, incident_id: str, note: str | None, by: str | None, as_json: bool
) -> None:
    """Start incident ID's clocks again after waiting on the client."""

    def decide(rules: incidents.IncidentRules, incident: incidents.Incident, now: datetime) -> Any:
        return incidents.decide_resume(incident, note=note, by=by, now=now)

    _report(act_on_incident(settings, incident_id, decide), as_json)


@incident_group.command("raise")
@click.argument("incident_id", metavar="ID")
@click.option("--to", "target", required=True, metavar="P1|P2", help="The more urgent priority.")
@click.option("--note", help="Why (optional).")
@by_option("Who does this")
@json_option
@pass_settings
def raise_command(
    settings: Settings,
    incident_id: str,
    target: str,
    note: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Raise incident ID's severity (its clocks then follow the new priority)."""

    def decide(rules: incidents.IncidentRules, incident: incidents.Incident, now: datetime) -> Any:
        return incidents.decide_raise(incident, to=target, note=note, by=by, now=now)

    _report(act_on_incident(settings, incident_id, decide), as_json)


@incident_group.command("lower")
@click.argument("incident_id", metavar="ID")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="|".join(PRIORITIES[1:]),
    help="The less urgent priority.",
)
@click.option("--reason", help="Why the severity is lowered (required: a recorded decision).")
@by_option("Who does this")
@json_option
@pass_settings
def lower_command(
    settings: Settings,
    incident_id: str,
    target: str,
    reason: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Lower incident ID's severity: a decision recorded with its reason."""

    def decide(rules: incidents.IncidentRules, incident: incidents.Incident, now: datetime) -> Any:
        return incidents.decide_lower(incident, to=target, reason=reason, by=by, now=now)

    _report(act_on_incident(settings, incident_id, decide), as_json)


@incident_group.command("postmortem")
@click.argument("incident_id", metavar="ID")
@click.option(
    "--file",
    "file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Markdown with the sections summary, timeline, root cause, what went well, actions.",
)
@by_option("Who does this")
@json_option
@pass_settings
def postmortem_command(
    settings: Settings, incident_id: str, file: Path, by: str | None, as_json: bool
) -> None:
    """Record incident ID's post-mortem; its actions are kept as a list."""
    text = read_postmortem(file)

    def decide(rules: incidents.IncidentRules, incident: incidents.Incident, now: datetime) -> Any:
        return incidents.decide_postmortem(incident, text=text, name=file.name, by=by, now=now)

    _report(act_on_incident(settings, incident_id, decide), as_json)


def _host_line(host: Mapping[str, Any]) -> Text:
    """One host's state, as plain text with its style: names and reasons may come from
    the host, so none of it is read as markup."""
    line = Text(f"  {host['host']}: ")
    line.append(host["state"], style=_HOST_STYLE.get(host["state"], "red"))
    if host["reason"]:
        line.append(f" ({host['reason']})")
    return line


@incident_group.command("collect")
@click.argument("incident_id", metavar="ID")
@click.option(
    "--timeout",
    type=float,
    default=COMMAND_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    help="How long each command may run on a host.",
)
@vault_option
@by_option("Who collects")
@json_option
@pass_settings
def collect_command(
    settings: Settings,
    incident_id: str,
    timeout: float,
    vault_file: str | None,
    by: str | None,
    as_json: bool,
) -> int:
    """Read evidence on incident ID's hosts and attach it to the incident.

    Runs a fixed set of read-only commands (failed units, error journal, disk, memory,
    load, package log, listening ports) on the incident's host, or on every host of
    the client when it names none, all hosts at once, host keys strictly checked.
    Outputs are masked and bounded. Exits 0 when every host gave every output, 1 when
    some host or command gave none (what was read is recorded all the same).
    """

    def done(host: Mapping[str, Any]) -> None:
        console.print(_host_line(host))

    document = collect_evidence(
        settings,
        incident_id,
        by=by,
        vault_password_file=vault_password_file(vault_file),
        timeout=timeout,
        on_host=done,
    )
    if as_json:
        emit_json(document)
    else:
        console.print(
            Text(
                f"{document['id']}: evidence recorded (entry {document['evidence']}): "
                f"{document['summary']}"
            )
        )
        console.print(f"Outputs: webmg-ops incident evidence {document['id']}")
    return int(ExitCode.OK if document["complete"] else ExitCode.FAILED)


def _print_evidence(document: Mapping[str, Any]) -> None:
    console.print(
        Text(
            f"{document['id']} evidence {document['evidence']} at {document['at'][:19]} "
            f"by {document['by']}: {document['summary']}"
        )
    )
    for host in document["hosts"]:
        console.print(_host_line(host))
        for command in host["commands"]:
            status = "" if command["exit_status"] is None else f", exit {command['exit_status']}"
            console.print(Text(f"  --- {command['name']}: {command['state']}{status}"))
            console.print(Text(f"  $ {command['command']}", style="dim"))
            for note in command["notes"]:
                console.print(Text(f"  ({note})", style="yellow"))
            for stream in ("stdout", "stderr"):
                if command[stream]:
                    console.print(Text(command[stream].rstrip("\n")))


@incident_group.command("evidence")
@click.argument("incident_id", metavar="ID")
@json_option
@pass_settings
def evidence_command(settings: Settings, incident_id: str, as_json: bool) -> None:
    """Show the evidence collected on incident ID's hosts, oldest first, in full."""
    documents = list_evidence(settings, incident_id)
    if as_json:
        emit_json(documents)
        return
    if not documents:
        console.print(f"{incident_id}: no evidence collected ('incident collect {incident_id}')")
    for document in documents:
        _print_evidence(document)


@incident_group.command("list")
@click.argument("client", metavar="[CLIENT]", required=False)
@click.option("--open", "open_only", is_flag=True, help="Only incidents not closed yet.")
@_at_option
@json_option
@pass_settings
def list_command(
    settings: Settings, client: str | None, open_only: bool, at_text: str | None, as_json: bool
) -> None:
    """List incidents (of CLIENT, or every client) with each SLA clock: due at, remaining,
    met or breached."""
    documents = list_incidents(settings, client, open_only=open_only, now=parse_at(at_text))
    if as_json:
        emit_json(documents)
        return
    table = Table("id", "client", "sev", "state", "title", "response", "restore", "resolution")
    for document in documents:
        clocks = document["clocks"]
        table.add_row(
            document["id"],
            document["client"],
            document["severity"],
            document["state"] + (" (waiting)" if document["waiting_on"] else ""),
            document["title"],
            _clock_cell(clocks["response"]),
            _clock_cell(clocks["restore"]),
            _clock_cell(clocks["resolution"]),
        )
    console.print(table)


@incident_group.command("show")
@click.argument("incident_id", metavar="ID")
@_at_option
@json_option
@pass_settings
def show_command(settings: Settings, incident_id: str, at_text: str | None, as_json: bool) -> None:
    """Show incident ID: its state, clocks and timeline."""
    document = show_incident(settings, incident_id, now=parse_at(at_text))
    _report(document, as_json)
    if not as_json:
        for event in document["timeline"]:
            # Notes and summaries are recorded text: printed as such, never as markup.
            line = f"  {event['at'][:16]} {event['kind']} by {event['by']} {_said(event)}"
            console.print(Text(line))


def _said(event: Mapping[str, Any]) -> str:
    """Given a timeline event, return what its line says after who acted: a step's note,
    which run worked on the incident and how it ended (its log: ``show RUN_ID``), which
    clock was breached, or which step was notified where."""
    if "clock" in event:
        return f"{event['clock']} clock breached (due {event.get('due')})"
    if "target" in event:
        words = [event.get("step"), event["target"], event.get("error")]
    elif event["kind"] in incidents.RUN_KINDS:
        words = [event.get("action"), event.get("run_id"), event.get("outcome")]
        words.append(event.get("refusal"))
    else:
        return str(event.get("note") or event.get("reason") or event.get("summary") or "")
    return " ".join(str(word) for word in words if word)
