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
from webmg_ops.cli import (
    backlog,
    changes,
    clients,
    compliance,
    decisions,
    incidents,
    lab,
    ledger,
    monitor,
    offsite,
    report,
    risks,
    runs,
    tick,
)
from webmg_ops.errors import ExitCode, WebmgError
from webmg_ops.settings import UMASK, resolve_settings, secure_var_dir

#: Commands that never touch the ledger (help, schema) or manage it themselves.
_NO_RECONCILE = frozenset({"schema", "lab", "validate", "client", None})

#: Commands whose files must stay readable by other accounts, with the umask they use.
#: The lab writes the root file systems of its hosts, where services run as their own
#: users; its keys and passwords are written 0600 explicitly.
_UMASK_EXCEPTIONS: dict[str | None, int] = {"lab": 0o022}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
        # Any command first closes runs whose orchestrator died.
        runs.reconcile_before(ctx.obj)


for command in (
    clients.client_group,
    *clients.COMMANDS,
    *runs.COMMANDS,
    *compliance.COMMANDS,
    ledger.ledger_group,
    *offsite.COMMANDS,
    *incidents.COMMANDS,
    lab.lab_group,
    *decisions.COMMANDS,
    *changes.COMMANDS,
    *risks.COMMANDS,
    *tick.COMMANDS,
    *backlog.COMMANDS,
    *monitor.COMMANDS,
    *report.COMMANDS,
):
    cli.add_command(command)


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
