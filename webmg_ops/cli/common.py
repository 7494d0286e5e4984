"""Helpers shared by every command: settings, output and the ``--json`` flag.

Machine output (JSON) goes to stdout; human output (rich) and logs go to
stderr, so ``--json`` output can always be piped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from webmg_ops.errors import ExitCode
from webmg_ops.settings import Settings

if TYPE_CHECKING:
    from webmg_ops.yamlsource import SourceProblem

F = TypeVar("F", bound=Callable[..., Any])

#: Passes the resolved :class:`Settings` to a command.
pass_settings = click.make_pass_decorator(Settings)

#: Human output: tables, progress and messages.
console = Console(stderr=True, highlight=False)
#: Plain output meant for stdout (for example ``ledger head``).
stdout_console = Console(highlight=False, soft_wrap=True)


def json_option(function: F) -> F:
    """Add the shared ``--json`` flag to a command."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print one JSON document on stdout instead of tables.",
    )(function)


def emit_json(document: Any) -> None:
    """Given a JSON-serialisable document, print it on stdout, indented."""
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


def vault_option(function: F) -> F:
    """Add the shared ``--vault-password-file`` option (env WEBMG_VAULT_PASSWORD_FILE)."""
    return click.option(
        "--vault-password-file",
        "vault_file",
        metavar="FILE",
        help="Vault password file (env WEBMG_VAULT_PASSWORD_FILE).",
    )(function)


def record_options(function: F) -> F:
    """Add the shared ``--reason``, ``--ticket`` and ``--incident`` options, recorded with a run."""
    return _request_options(function, recorded=True)


def plan_record_options(function: F) -> F:
    """Add ``--reason``, ``--ticket`` and ``--incident`` to a command that records nothing
    (``plan``): the same options as a run's, said to be only checked."""
    return _request_options(function, recorded=False)


def _request_options(function: F, *, recorded: bool) -> F:
    said = " (recorded)" if recorded else " (checked as a run would; plan records nothing)"
    function = click.option(
        "--incident",
        metavar="ID",
        help="The incident this run works on (INC-N): run log and incident timeline link"
        + ("" if recorded else said)
        + ".",
    )(function)
    function = click.option("--ticket", metavar="ID", help=f"Ticket or change id{said}.")(function)
    return click.option("--reason", metavar="TEXT", help=f"Why this run{said}.")(function)


def by_option(help_text: str) -> Callable[[F], F]:
    """Return the ``--by`` option of a service command: who acts, the operator by default."""
    option: Callable[[F], F] = click.option(
        "--by",
        "by",
        metavar="WHO",
        default=None,
        help=f"{help_text} (default: the recorded operator).",
    )
    return option


def reconcile_before(settings: Settings) -> list[str]:
    """Close runs left open by a dead orchestrator before any command goes on."""
    # Imported here, not with the run commands: every command but a few reconciles first,
    # and the run commands' modules (the engine, Ansible's adapter, the actions) took
    # most of a short command's start.
    from webmg_ops.engine.reconcile import reconcile_runs

    closed = reconcile_runs(settings)
    for run_id in closed:
        console.print(f"[yellow]run {run_id} was interrupted (its process died); closed[/yellow]")
    return closed


def end_with_problems(problems: list[SourceProblem], code: int = ExitCode.OK) -> int:
    """Given the problems of the clients left out and the status of the work done on the
    others, return the command's status.

    Raise ContractInvalid (exit 2, each problem with its file and line) if any client
    was left out, unless ``code`` is already a status above it (refused, environment),
    which is kept and the problems printed.
    """
    if not problems:
        return int(code)
    # Imported only when a contract is broken: every command imports this module.
    from rich.markup import escape

    from webmg_ops.config.clients import ContractInvalid

    invalid = ContractInvalid(problems)
    if code > ExitCode.BAD_INPUT:
        console.print(f"Error: {escape(invalid.message)}", soft_wrap=True)
        return int(code)
    raise invalid
