"""Run commands: ``run``, ``plan``, ``runs``, ``show``, ``approve``, ``enroll``."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from webmg_ops.ansible.vault import vault_password_file
from webmg_ops.config.clients import load_client
from webmg_ops.engine.governance import PolicyRefusal, check_approvable
from webmg_ops.engine.plan import plan_run
from webmg_ops.errors import BadInput, ExitCode, WebmgError
from webmg_ops.runs.records import ACTIONS, Outcome, RunRequest
from webmg_ops.service.records import record_approval
from webmg_ops.settings import Settings

if TYPE_CHECKING:
    # Imported where a run is carried out, not for plan: the engine's run half (SSH,
    # the run log's templates, the offsite step) was a third of plan's start.
    from webmg_ops.ansible.runner import Progress as RunProgress
    from webmg_ops.engine.execute import RunReport
    from webmg_ops.remote.preflight import HostPreflight

from .common import (
    console,
    emit_json,
    json_option,
    pass_settings,
    plan_record_options,
    reconcile_before,
    record_options,
    vault_option,
)

_OUTCOME_CODES: dict[Outcome, ExitCode] = {
    Outcome.SUCCEEDED: ExitCode.OK,
    Outcome.FAILED: ExitCode.FAILED,
    Outcome.CANCELED: ExitCode.FAILED,
    Outcome.INTERRUPTED: ExitCode.FAILED,
}


def _request(
    client: str,
    action: str,
    check: bool,
    limit: str | None,
    reason: str | None,
    ticket: str | None,
    emergency: bool,
    vault_file: str | None,
    verbose: int = 0,
    extra: tuple[str, ...] = (),
    *,
    incident: str | None = None,
    change: str | None = None,
    job: int | None = None,
) -> RunRequest:
    return RunRequest(
        job=job,
        extra_vars=_extra_vars(extra),
        change=change,
        client=client,
        action=action,
        check=check,
        limit=limit,
        reason=reason or "",
        ticket=ticket,
        incident=incident,
        emergency=emergency,
        vault_password_file=vault_password_file(vault_file),
        verbosity=verbose,
    )


def _extra_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise BadInput(f"--extra-var {pair.split('=')[0]!r}...: expected KEY=VALUE")
        found[name.strip()] = value
    return found


def run_options(function: Any) -> Any:
    """Add the options of ``run``."""
    return _request_options(function, recorded=True)


def plan_options(function: Any) -> Any:
    """Add the options of ``plan``: a run's, said to be checked, since a plan records nothing."""
    return _request_options(function, recorded=False)


#: The help of ``--check`` and ``--emergency``: a run records them, a plan records nothing.
_RUN_FLAG_HELP = {
    "check": "Dry run: Ansible --check --diff, recorded.",
    "emergency": "Allowed outside windows and in freezes; needs --reason; recorded.",
}
_PLAN_FLAG_HELP = {
    "check": "Plan a dry run (Ansible --check --diff); plan records nothing.",
    "emergency": "Plan an emergency run (allowed outside windows and in freezes; needs "
    "--reason); plan records nothing.",
}


def _request_options(function: Any, *, recorded: bool) -> Any:
    flag_help = _RUN_FLAG_HELP if recorded else _PLAN_FLAG_HELP
    for option in reversed(
        [
            click.option("--check", is_flag=True, help=flag_help["check"]),
            click.option("--limit", metavar="PATTERN", help="Only these hosts (Ansible pattern)."),
            record_options if recorded else plan_record_options,
            click.option("--emergency", is_flag=True, help=flag_help["emergency"]),
            vault_option,
            click.option(
                "--change",
                metavar="CHG-n",
                help="deploy: the change whose version it installs (scheduled; approved "
                "where the policy requires it).",
            ),
        ]
    ):
        function = option(function)
    return function


@click.command("plan")
@click.argument("client", metavar="CLIENT")
@click.argument("action", type=click.Choice(ACTIONS), metavar="ACTION")
@plan_options
@json_option
@pass_settings
def plan_command(
    settings: Settings,
    client: str,
    action: str,
    check: bool,
    limit: str | None,
    reason: str | None,
    ticket: str | None,
    incident: str | None,
    emergency: bool,
    vault_file: str | None,
    change: str | None,
    as_json: bool,
) -> int:
    """Show what a run would do, without touching a host: hosts, batches, window, policy.

    Names every reason the run would be refused (exit 3), the first being the one a run
    reports. Records nothing.
    """
    request = _request(
        client,
        action,
        check,
        limit,
        reason,
        ticket,
        emergency,
        vault_file,
        incident=incident,
        change=change,
    )
    plan = plan_run(settings, request)
    document = {
        "client": plan.client.name,
        "action": plan.action,
        "playbook": str(plan.playbook) if plan.playbook else None,
        "hosts": list(plan.hosts),
        "batches": [list(batch) for batch in plan.batches],
        "window": plan.clearance.window if plan.clearance else None,
        "emergency": request.emergency,
        "approval_seq": plan.clearance.approval_seq if plan.clearance else None,
        "policy": dict(plan.policy),
        "change": request.change,
        "deploys": dict(plan.deploys),
        "would_be_refused": plan.refusal is not None,
        "refusal": plan.refusal.message if plan.refusal else None,
        "refusals": [
            {"kind": refused.refusal.value, "message": refused.message} for refused in plan.refusals
        ],
    }
    if as_json:
        emit_json(document)
    else:
        console.print(
            f"[bold]{plan.client.contract.display_name}[/bold]: {action} with "
            f"{plan.playbook.name if plan.playbook else 'the controller (no playbook)'}"
        )
        for name, version in plan.deploys.items():
            console.print(f"  deploys {name} {version} ({request.change})")
        for index, batch in enumerate(plan.batches, 1):
            console.print(f"  batch {index}: {', '.join(batch)}")
        console.print(f"  window: {document['window'] or '-'}")
        for name, value in plan.policy.items():
            console.print(f"  {name}: {value}")
        if plan.refusals:
            console.print("[red]would be refused:[/red]")
            for refused in plan.refusals:
                console.print(f"  {refused.refusal.value}: {refused.message}")
        else:
            console.print("[green]would run[/green]")
    return int(ExitCode.REFUSED if plan.refusal else ExitCode.OK)


class _ProgressView:
    """A rich progress bar on stderr fed by the engine's callbacks."""

    def __init__(self, enabled: bool) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]{task.fields[label]}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console,
            transient=True,
            disable=not enabled,
        )
        self.task = self.progress.add_task("run", total=1, label="preflight", detail="")

    def preflight(self, results: Mapping[str, HostPreflight]) -> None:
        for host, check in results.items():
            if not check.ready:
                console.print(f"[yellow]{host} excluded:[/yellow] {check.message}")
        self.progress.update(self.task, total=max(1, len(results)), label="running")

    def update(self, state: RunProgress) -> None:
        failures = f", {state.failures} failed" if state.failures else ""
        self.progress.update(
            self.task,
            total=max(1, state.hosts_total),
            completed=state.hosts_done,
            detail=f"{state.task[:60]}{failures}",
        )


@click.command("run")
@click.argument("client", metavar="CLIENT")
@click.argument("action", type=click.Choice(ACTIONS), metavar="ACTION")
@run_options
@click.option(
    "-v", "--verbose", count=True, help="Ansible verbosity (-v to -vvvv); output is masked."
)
@click.option(
    "-e",
    "--extra-var",
    "extra",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra variable for the playbook (never on a command line; secret names are masked).",
)
@click.option(
    "--job",
    type=click.IntRange(min=1),
    hidden=True,
    help="Set by a worker: the queued job this run carries out (recorded in run-started).",
)
@json_option
@pass_settings
def run_command(
    settings: Settings,
    client: str,
    action: str,
    check: bool,
    limit: str | None,
    reason: str | None,
    ticket: str | None,
    incident: str | None,
    emergency: bool,
    vault_file: str | None,
    change: str | None,
    verbose: int,
    extra: tuple[str, ...],
    job: int | None,
    as_json: bool,
) -> int:
    """Run ACTION for CLIENT on its hosts, recorded in the ledger with a run log.

    A deploy installs the version its change names (--change CHG-n) and, when it
    succeeds, records the change deployed.
    """
    request = _request(
        client,
        action,
        check,
        limit,
        reason,
        ticket,
        emergency,
        vault_file,
        verbose,
        extra,
        incident=incident,
        change=change,
        job=job,
    )
    return _run_and_report(settings, request, as_json)


def _run_and_report(settings: Settings, request: RunRequest, as_json: bool) -> int:
    """Run the request with progress, print its result (table or JSON), return the exit code.

    A diagnostic's verdict, level and plan are shown with it.
    """
    from webmg_ops.engine.cancel import CancelFlag, cancel_on_signals
    from webmg_ops.engine.execute import execute_run

    action, check = request.action, request.check
    view = _ProgressView(enabled=not as_json)
    flag = CancelFlag()
    with view.progress, cancel_on_signals(flag):
        report = execute_run(
            settings,
            request,
            on_progress=view.update,
            on_preflight=view.preflight,
            cancel=flag,
        )
    host_key_refused = any(check.host_key_problem for check in report.preflight.values())
    code = ExitCode.REFUSED if host_key_refused else _OUTCOME_CODES[report.outcome]
    if as_json:
        emit_json(
            {
                "run_id": report.run_id,
                "client": report.client.name,
                "action": action,
                "check": check,
                "outcome": report.outcome.value,
                "exit_code": int(code),
                "hosts": report.finished.payload["hosts"],
                "residual_risks": report.finished.payload["residual_risks"],
                "ledger": {
                    "started": str(report.started.checkpoint),
                    "finished": str(report.finished.checkpoint),
                },
                "run_log": str(report.run_log) if report.run_log else None,
                "diagnostic": report.outcome_detail.evidence.get("diagnostic"),
                "offsite": asdict(report.offsite) if report.offsite else None,
                "checkpoint": asdict(report.checkpoint) if report.checkpoint else None,
                "change": _deployed(report),
            }
        )
        return int(code)
    table = Table("host", "status", "ok", "changed", "failed", "note")
    for host in report.hosts:
        table.add_row(
            host.host,
            host.status.value,
            str(host.ok),
            str(host.changed),
            str(host.failed),
            (host.failed_tasks[0].message if host.failed_tasks else host.note)[:80],
        )
    console.print(table)
    colour = "green" if report.outcome is Outcome.SUCCEEDED else "red"
    console.print(f"[{colour}]{report.outcome.value}[/{colour}] run {report.run_id}")
    console.print(f"ledger: {report.started.checkpoint} .. {report.finished.checkpoint}")
    show_diagnostic(report.outcome_detail.evidence.get("diagnostic"))
    for step in (report.offsite, report.checkpoint):
        if step is None:
            continue
        state = "published" if step.published else f"unpublished (pending {step.pending_id})"
        console.print(f"offsite {step.kind}: {state}: {step.detail}")
    if report.deployed is not None:
        console.print(
            f"{report.deployed.payload['change']} deployed (ledger entry {report.deployed.seq})"
        )
    elif request.change and not check and report.outcome is Outcome.SUCCEEDED:
        console.print(
            f"[yellow]{request.change} is not recorded deployed:[/yellow] the run covered only "
            "some of the client's hosts (--limit)"
        )
    if report.run_log:
        console.print(f"run log: {report.run_log}")
    return int(code)


def _deployed(report: RunReport) -> dict[str, Any] | None:
    """Given a run's report, return the change it deployed (None: none)."""
    if report.deployed is None:
        return None
    return {"deployed_seq": report.deployed.seq, **report.deployed.payload}


def show_diagnostic(document: Mapping[str, Any] | None) -> None:
    """Print a diagnostic's verdict, recommended level and action plan (nothing if absent)."""
    if not document:
        return
    verdict = str(document["verdict"])
    colour = {"fit": "green", "to clarify": "yellow"}.get(verdict, "red")
    console.print(f"verdict: [{colour}]{verdict}[/{colour}]")
    for reason in document["not_fit_reasons"]:
        console.print(f"  not a fit: {reason}")
    for reason in document["fit_reasons"]:
        console.print(f"  fit: {reason}")
    for question in document["open_questions"]:
        console.print(f"  to clarify: {question}")
    console.print(
        f"recommended level: {document['recommended_level']} ({document['budget_marker']}); "
        f"contracted: {document['contracted_level']}"
    )
    for reason in document["level_reasons"]:
        console.print(f"  because {reason}")
    if document.get("level_note"):
        console.print(f"  note: {document['level_note']}")
    table = Table("P", "area", "finding", "action", "hosts", title="action plan")
    for item in document["action_plan"]:
        table.add_row(
            str(item["priority"]),
            item["area"],
            item["finding"],
            item["action"],
            ", ".join(item["hosts"]),
        )
    console.print(table)


@click.command("drill")
@click.argument("client", metavar="CLIENT")
@click.option("--snapshot", metavar="ID", help="Drill this snapshot (default: each host's latest).")
@vault_option
@record_options
@json_option
@pass_settings
def drill_command(
    settings: Settings,
    client: str,
    snapshot: str | None,
    vault_file: str | None,
    reason: str | None,
    ticket: str | None,
    incident: str | None,
    as_json: bool,
) -> int:
    """Restore CLIENT's backups into scratch space and prove them (files, databases, RPO/RTO).

    Never restores over live data; recorded in the ledger with a drill report (the run log).
    """
    extra = (f"drill_snapshot={snapshot}",) if snapshot else ()
    request = _request(
        client,
        "drill",
        False,
        None,
        reason or "restore drill",
        ticket,
        False,
        vault_file,
        0,
        extra,
        incident=incident,
    )
    return _run_and_report(settings, request, as_json)


def run_due_drills(settings: Settings, names: list[str], as_json: bool) -> int:
    """Given the settings and the clients whose drill is due, drill each one in turn.

    Return 0 if every drill passed, else the worst exit code; one client's
    failure does not stop the others.
    """
    from webmg_ops.engine.execute import execute_run

    worst = ExitCode.OK
    results: list[dict[str, Any]] = []
    for name in names:
        request = RunRequest(
            client=name,
            action="drill",
            reason="scheduled restore drill: the level's cadence has elapsed",
            vault_password_file=vault_password_file(None),
        )
        try:
            report = execute_run(settings, request)
        except WebmgError as error:
            code, outcome, log = error.exit_code, "not run", None
            detail = error.message
        else:
            code = _OUTCOME_CODES[report.outcome]
            outcome, log = report.outcome.value, report.run_log
            detail = str(report.finished.payload.get("summary", ""))
        worst = max(worst, code)
        results.append(
            {
                "client": name,
                "outcome": outcome,
                "exit_code": int(code),
                "summary": detail,
                "run_log": str(log) if log else None,
            }
        )
    if as_json:
        emit_json(results)
    else:
        table = Table("client", "outcome", "summary", "drill report", title="drills run")
        for row in results:
            table.add_row(row["client"], row["outcome"], row["summary"], row["run_log"] or "-")
        console.print(table)
    return int(worst)


@click.command("diagnose")
@click.argument("client", metavar="CLIENT")
@vault_option
@record_options
@json_option
@pass_settings
def diagnose_command(
    settings: Settings,
    client: str,
    vault_file: str | None,
    reason: str | None,
    ticket: str | None,
    incident: str | None,
    as_json: bool,
) -> int:
    """Diagnose CLIENT (or a prospect): fit or not, recommended level, action plan.

    Read-only, allowed at any time; recorded in the ledger with a run log.
    """
    request = _request(
        client, "diagnose", False, None, reason, ticket, False, vault_file, incident=incident
    )
    return _run_and_report(settings, request, as_json)


@click.command("runs")
@click.argument("client", required=False, metavar="[CLIENT]")
@json_option
@pass_settings
def runs_command(settings: Settings, client: str | None, as_json: bool) -> None:
    """List recorded runs (newest first), with their outcome."""
    # The history reads run logs (Jinja2's templates): imported here, not for plan.
    from webmg_ops.engine.history import list_runs

    if client is not None:
        load_client(settings.inventories, client)
    rows = list_runs(settings, client)
    if as_json:
        emit_json(rows)
        return
    table = Table("run", "client", "action", "outcome", "started (UTC)", "by")
    for row in rows:
        table.add_row(
            row["run_id"],
            row["client"],
            row["action"] + (" (dry run)" if row["check"] else ""),
            row["outcome"],
            row["started"],
            row["actor"],
        )
    console.print(table)


@click.command("show")
@click.argument("run_id", metavar="RUN")
@json_option
@pass_settings
def show_command(settings: Settings, run_id: str, as_json: bool) -> None:
    """Show one run: its ledger entries and where its run log is."""
    from webmg_ops.engine.history import find_run

    found = find_run(settings, run_id)
    if as_json:
        emit_json(found)
        return
    click.echo(json.dumps(found, indent=2, sort_keys=True, default=str))


@click.command("approve")
@click.argument("client", metavar="CLIENT")
@click.argument("action", type=click.Choice(ACTIONS), metavar="ACTION")
@click.option("--by", "approver", required=True, help="Who approves (name and role).")
@click.option("--note", required=True, help="What is approved, and any conditions.")
@json_option
@pass_settings
def approve_command(
    settings: Settings, client: str, action: str, approver: str, note: str, as_json: bool
) -> None:
    """Record an approval that the next run of ACTION for CLIENT consumes.

    Only an action whose runs consume an approval under CLIENT's policy is accepted.
    """
    if not approver.strip() or not note.strip():
        raise BadInput("--by and --note must not be empty")
    check_approvable(load_client(settings.inventories, client), action)
    entry = record_approval(settings, client, action, approver, note)
    if as_json:
        emit_json({"seq": entry.seq, "client": entry.client, **entry.payload})
        return
    console.print(f"approval recorded as ledger entry {entry.seq} ({entry.checkpoint})")


@click.command("enroll")
@click.argument("client", metavar="CLIENT")
@click.argument("hosts", nargs=-1, metavar="[HOST]...")
@click.option(
    "--accept",
    "accepted",
    multiple=True,
    metavar="SHA256:...",
    help="Accept this fingerprint without asking (repeat per host).",
)
@vault_option
@json_option
@pass_settings
def enroll_command(
    settings: Settings,
    client: str,
    hosts: tuple[str, ...],
    accepted: tuple[str, ...],
    vault_file: str | None,
    as_json: bool,
) -> int:
    """Read hosts' SSH host keys, show their fingerprints and store them once confirmed."""
    from webmg_ops.service.enrol import enrol_hosts

    results = enrol_hosts(
        settings,
        client,
        hosts,
        accepted=set(accepted),
        confirm=None if as_json else confirm_host_key,
        vault_password_file=vault_password_file(vault_file),
    )
    if as_json:
        emit_json([result.document() for result in results])
    else:
        for result in results:
            console.print(f"{result.host} ({result.address}) {result.fingerprint}: {result.status}")
    refused = [
        result for result in results if not result.stored and result.status != "already enrolled"
    ]
    return int(ExitCode.REFUSED if refused else ExitCode.OK)


def confirm_host_key(host: str, address: str, fingerprint: str, changed: bool) -> bool:
    """Show a host's key fingerprint (and whether it changed); return whether the person at
    the terminal accepts it (never without a terminal: then ``--accept`` is the way)."""
    warning = " [red]THE KEY CHANGED[/red]" if changed else ""
    console.print(f"{host} ({address}) presents {fingerprint}{warning}")
    if not sys.stdin.isatty():
        return False
    return click.confirm("Store this key?", default=False, err=True)


__all__ = ["PolicyRefusal", "reconcile_before"]
