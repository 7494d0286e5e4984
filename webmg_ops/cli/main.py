"""Entry point of ``webmg-ops``: global options, command groups, exit codes.

This is the one place where exceptions become exit statuses: a
:class:`~webmg_ops.errors.WebmgError` prints ``Error: <message>`` on stderr
(or a JSON error document when ``--json`` was given) and exits with its
class's status; anything else is an internal error, shown with a traceback
only under ``--debug``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from webmg_ops import __version__
from webmg_ops.cli.lazy import LazyCommand, LazyGroup
from webmg_ops.errors import ExitCode, WebmgError
from webmg_ops.settings import UMASK, resolve_settings, secure_var_dir

#: Commands that never touch the ledger (help, schema) or manage it themselves.
_NO_RECONCILE = frozenset({"schema", "lab", "validate", "client", None})

#: Commands whose files must stay readable by other accounts, with the umask they use.
#: The lab writes the root file systems of its hosts, where services run as their own
#: users; its keys and passwords are written 0600 explicitly.
_UMASK_EXCEPTIONS: dict[str | None, int] = {"lab": 0o022}


#: Every command: its name, where it is defined and its one-line help (the command's own:
#: a test compares them). Its module is imported only when the command is looked up.
COMMANDS: dict[str, LazyCommand] = {
    "approve": LazyCommand(
        "webmg_ops.cli.runs",
        "approve_command",
        "Record an approval that the next run of ACTION for CLIENT consumes.",
    ),
    "backlog": LazyCommand(
        "webmg_ops.cli.backlog",
        "backlog_group",
        (
            "The backlog: open changes, incident follow-ups and post-mortem actions, by "
            "priority, with caps on work in progress and open items (`backlog CLIENT` lists "
            "it)."
        ),
    ),
    "bootstrap": LazyCommand(
        "webmg_ops.cli.clients",
        "bootstrap_command",
        "First contact with CLIENT's servers: their maintenance account, from the client's login.",
    ),
    "cancel": LazyCommand(
        "webmg_ops.cli.queue",
        "cancel_command",
        "Cancel a queued job, or ask a running one to stop (its run is recorded canceled).",
    ),
    "change": LazyCommand(
        "webmg_ops.cli.changes",
        "change_group",
        "Changes: request, scope, estimate, schedule, approve, deploy, client acceptance.",
    ),
    "client": LazyCommand(
        "webmg_ops.cli.clients",
        "client_group",
        "Take on a client: `client new` writes its folder.",
    ),
    "clients": LazyCommand(
        "webmg_ops.cli.clients",
        "clients_command",
        "List the clients, their sector, level and hosts.",
    ),
    "compliance": LazyCommand(
        "webmg_ops.cli.compliance",
        "compliance_command",
        "Check every hardening control on CLIENT's hosts (read-only); print a score.",
    ),
    "decision": LazyCommand(
        "webmg_ops.cli.decisions",
        "decision_group",
        "Decisions: the client's or the agency's recorded arbitration.",
    ),
    "diagnose": LazyCommand(
        "webmg_ops.cli.runs",
        "diagnose_command",
        "Diagnose CLIENT (or a prospect): fit or not, recommended level, action plan.",
    ),
    "drill": LazyCommand(
        "webmg_ops.cli.runs",
        "drill_command",
        ("Restore CLIENT's backups into scratch space and prove them (files, databases, RPO/RTO)."),
    ),
    "drills-due": LazyCommand(
        "webmg_ops.cli.schedule",
        "drills_due_command",
        "List (or run, with --run) the restore drills due by each client's level cadence.",
    ),
    "due": LazyCommand(
        "webmg_ops.cli.schedule",
        "due_command",
        "Show each client's next window, window/freeze state and the actions due.",
    ),
    "enroll": LazyCommand(
        "webmg_ops.cli.runs",
        "enroll_command",
        ("Read hosts' SSH host keys, show their fingerprints and store them once confirmed."),
    ),
    "incident": LazyCommand(
        "webmg_ops.cli.incidents",
        "incident_group",
        "Incidents: severity, triage -> mitigation -> fix -> close, SLA clocks.",
    ),
    "lab": LazyCommand(
        "webmg_ops.cli.lab",
        "lab_group",
        "Start, inspect, reset and stop the rehearsal lab's hosts.",
    ),
    "ledger": LazyCommand(
        "webmg_ops.cli.ledger",
        "ledger_group",
        "Verify, checkpoint and export the tamper-evident ledger.",
    ),
    "monitor": LazyCommand(
        "webmg_ops.cli.monitor",
        "monitor_command",
        (
            "Probe the health checks of CLIENT (every monitored client when none is named) at"
            " each client's policy interval: status, latency, certificate, page weight."
        ),
    ),
    "note": LazyCommand(
        "webmg_ops.cli.clients",
        "note_command",
        "Record a note (a decision or observation) for a client in the ledger.",
    ),
    "offsite": LazyCommand(
        "webmg_ops.cli.offsite",
        "offsite_group",
        "Offsite copies on S3 that wait to be published.",
    ),
    "plan": LazyCommand(
        "webmg_ops.cli.runs",
        "plan_command",
        ("Show what a run would do, without touching a host: hosts, batches, window, policy."),
    ),
    "policy": LazyCommand(
        "webmg_ops.cli.clients",
        "policy_command",
        "Print a client's effective policy and where each value came from.",
    ),
    "queue": LazyCommand(
        "webmg_ops.cli.queue",
        "queue_command",
        "List the queue's runs: queued, running, failed and done, newest first.",
    ),
    "report": LazyCommand(
        "webmg_ops.cli.report",
        "report_command",
        (
            "Write CLIENT's report for a period from the ledger and the samples: "
            "availability, incidents and SLA clocks, maintenance runs, risks and decisions, "
            "and the proof of record (the ledger's checkpoint at the period's end, signed "
            "with the agency's key when there is one)."
        ),
    ),
    "risk": LazyCommand(
        "webmg_ops.cli.risks",
        "risk_group",
        "The risk register: risks added by hand and the residual risks runs report.",
    ),
    "run": LazyCommand(
        "webmg_ops.cli.runs",
        "run_command",
        "Run ACTION for CLIENT on its hosts, recorded in the ledger with a run log.",
    ),
    "runs": LazyCommand(
        "webmg_ops.cli.runs",
        "runs_command",
        "List recorded runs (newest first), with their outcome.",
    ),
    "s3-policies": LazyCommand(
        "webmg_ops.cli.clients",
        "s3_policies_command",
        (
            "Print, as JSON by host, the IAM policy to attach to each host's own S3 key (the "
            "vault's webmg_s3_host_keys) when CLIENT's repositories are in an S3 bucket."
        ),
    ),
    "schedule": LazyCommand(
        "webmg_ops.cli.queue",
        "schedule_command",
        "Queue the runs every contract makes due (updates and hardening in the next window).",
    ),
    "schema": LazyCommand(
        "webmg_ops.cli.clients",
        "schema_command",
        ("Print the JSON Schema of client.yml (every field with a description and an example)."),
    ),
    "show": LazyCommand(
        "webmg_ops.cli.runs",
        "show_command",
        "Show one run: its ledger entries and where its run log is.",
    ),
    "submit": LazyCommand(
        "webmg_ops.cli.queue",
        "submit_command",
        "Queue a run of ACTION for CLIENT, for a worker to carry out; recorded as run-requested.",
    ),
    "tick": LazyCommand(
        "webmg_ops.cli.tick",
        "tick_command",
        (
            "Evaluate every open incident (of CLIENT only, if given): record each clock's "
            "breach once and send each due escalation notification exactly once."
        ),
    ),
    "validate": LazyCommand(
        "webmg_ops.cli.clients",
        "validate_command",
        "Validate client contracts and inventories (all clients when none named).",
    ),
    "worker": LazyCommand(
        "webmg_ops.cli.queue",
        "worker_command",
        "Take queued runs and carry them out until SIGINT or SIGTERM (running runs finish).",
    ),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--inventories",
    metavar="DIR",
    help="Folder of client inventories (env WEBMG_INVENTORIES; default ./inventories).",
)
@click.option(
    "--ledger",
    "ledger_url",
    metavar="URL",
    help="SQLAlchemy URL of the ledger (env WEBMG_LEDGER_URL; default sqlite:///var/ledger.db).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.version_option(__version__, prog_name="webmg-ops")
@click.pass_context
def cli(ctx: click.Context, inventories: str | None, ledger_url: str | None, debug: bool) -> None:
    """Governed maintenance of client servers: updates, hardening, backups and
    restore drills, each run recorded in a tamper-evident ledger."""
    os.umask(_UMASK_EXCEPTIONS.get(ctx.invoked_subcommand, UMASK))
    ctx.obj = resolve_settings(inventories=inventories, ledger_url=ledger_url)
    previous_mode = secure_var_dir(ctx.obj.var_dir)
    if previous_mode is not None:
        click.echo(
            f"Notice: {ctx.obj.var_dir} was open to group or others (mode {previous_mode:04o}); "
            "it is now private (0700).",
            err=True,
        )
    if ctx.invoked_subcommand not in _NO_RECONCILE:
        # Any command first closes runs whose orchestrator died (the ledger's modules
        # are imported here, not for --help or a command that never reads it).
        from webmg_ops.cli.common import reconcile_before

        reconcile_before(ctx.obj)


def _wants_json(argv: Sequence[str]) -> bool:
    return "--json" in argv


def _report_error(
    message: str, code: ExitCode, argv: Sequence[str], run_log: Path | None = None
) -> None:
    if _wants_json(argv):
        document: dict[str, object] = {"error": message, "exit_code": int(code)}
        if run_log is not None:
            document["run_log"] = str(run_log)
        click.echo(json.dumps(document), err=True)
    else:
        click.echo(f"Error: {message}", err=True)
        if run_log is not None:
            click.echo(f"run log: {run_log}", err=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and exit.

    Every file the command writes is private to its owner (umask
    :data:`~webmg_ops.settings.UMASK`). Exits with the command's :class:`ExitCode`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    # Private from the first file written; the caller's umask is back when main returns
    # (it matters to a caller that runs main in its own process, as the tests do).
    previous_umask = os.umask(UMASK)
    try:
        _run(args)
    finally:
        os.umask(previous_umask)


def _run(args: list[str]) -> None:
    debug = "--debug" in args or os.environ.get("WEBMG_DEBUG") == "1"
    try:
        result = cli.main(args=args, prog_name="webmg-ops", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(ExitCode.REFUSED)
    except click.ClickException as usage:
        usage.show()
        sys.exit(ExitCode.BAD_INPUT)
    except WebmgError as error:
        if debug:
            traceback.print_exc()
        # A refused run is recorded with a short log of what was refused and why.
        _report_error(error.message, error.exit_code, args, getattr(error, "run_log", None))
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as error:  # the one place where unexpected errors end
        if debug:
            traceback.print_exc()
        _report_error(
            f"internal error: {type(error).__name__}: {error} (run with --debug for details)",
            ExitCode.FAILED,
            args,
        )
        sys.exit(ExitCode.FAILED)
    sys.exit(int(result) if isinstance(result, int) else ExitCode.OK)


if __name__ == "__main__":
    main()
