"""``webmg-ops lab ...``: the rehearsal lab of real Debian hosts."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator

import click
from rich.table import Table

from webmg_ops.cli.common import console, emit_json, json_option, pass_settings
from webmg_ops.errors import EnvironmentProblem
from webmg_ops.lab import control, inbox
from webmg_ops.lab.control import LabStatus
from webmg_ops.service.enrol import snapshot_known_hosts
from webmg_ops.service.records import record_lab_enrolment
from webmg_ops.settings import Settings


@contextlib.contextmanager
def _progress(title: str) -> Iterator[Callable[[str], None]]:
    with console.status(title) as status:

        def on_step(message: str) -> None:
            console.print(f"[dim]•[/dim] {message}")
            status.update(message)

        yield on_step


def _show(status: LabStatus, as_json: bool) -> None:
    if as_json:
        emit_json(status.to_json())
        return
    table = Table(title=f"Rehearsal lab ({'up' if status.up else 'down'})")
    for column in ("host", "address", "role", "state", "pid", "systemd"):
        table.add_column(column)
    for host in status.hosts:
        systemd = host.systemd
        if host.failed_units:
            systemd += f" ({', '.join(host.failed_units)})"
        table.add_row(
            host.name,
            host.address,
            host.role,
            "up" if host.up else "down",
            str(host.pid or ""),
            systemd,
        )
    console.print(table)
    console.print(f"ssh key      {status.ssh_key} (user {status.ssh_user})")
    console.print(f"known_hosts  {status.known_hosts}")
    console.print(f"apt repo     {status.apt_repo} ({'up' if status.apt_repo_up else 'down'})")
    console.print(
        f"S3 endpoint  {status.s3_endpoint} ({'up' if status.s3_up else 'down'}), "
        f"credentials in {status.s3_credentials_file}"
    )
    console.print(
        f"signing key  {status.signing_key} (ledger checkpoints: --key; "
        f"public key {status.signing_public_key})"
    )


def _split_names(values: tuple[str, ...]) -> list[str] | None:
    names = [name for value in values for name in value.split(",") if name]
    return names or None


@click.group("lab")
def lab_group() -> None:
    """Start, inspect, reset and stop the rehearsal lab's hosts."""


@lab_group.command("up")
@click.option(
    "--hosts",
    "host_names",
    multiple=True,
    metavar="NAME[,NAME...]",
    help="Start only these hosts (repeatable; default: every lab host of the inventories).",
)
@json_option
@pass_settings
def up_command(settings: Settings, host_names: tuple[str, ...], as_json: bool) -> None:
    """Build (once) and start the lab hosts the clients' inventories name."""
    known = snapshot_known_hosts(settings)
    with _progress("Starting the rehearsal lab") as on_step:
        status = control.bring_up(settings, _split_names(host_names), on_step)
    for enrolled in record_lab_enrolment(settings, known, snapshot_known_hosts(settings)):
        console.print(f"enrolled {enrolled} (recorded in the ledger)")
    _show(status, as_json)


@lab_group.command("status")
@json_option
@pass_settings
def status_command(settings: Settings, as_json: bool) -> None:
    """Show each lab host (address, up or down, PID, systemd state) and how to connect."""
    _show(control.lab_status(settings), as_json)


@lab_group.command("reset")
@click.argument("host")
@json_option
@pass_settings
def reset_command(settings: Settings, host: str, as_json: bool) -> None:
    """Wipe HOST's changes and boot it bare again (same identity and host key)."""
    with _progress(f"Resetting {host}") as on_step:
        status = control.reset_host(settings, host, on_step)
    _show(status, as_json)


@lab_group.command(
    "ssh", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option("--user", help="Log in as this user (default: the maintenance account).")
@click.argument("host")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_settings
def ssh_command(settings: Settings, user: str | None, host: str, command: tuple[str, ...]) -> int:
    """Open a shell on HOST, or run COMMAND there (after --) and exit with its status.

    Host keys are checked strictly against the lab's known_hosts.
    """
    arguments = command[1:] if command[:1] == ("--",) else command
    return control.run_ssh(settings, host, arguments, user)


@lab_group.command("down")
@pass_settings
def down_command(settings: Settings) -> None:
    """Stop every lab host and remove what the lab made (keys and caches are kept)."""
    with _progress("Stopping the rehearsal lab") as on_step:
        removed = control.bring_down(settings, on_step)
    console.print("Lab stopped." if removed else "The lab was not up; nothing to do.")


@lab_group.command("inbox")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=inbox.DEFAULT_PORT,
    show_default=True,
    help="The port on 127.0.0.1 (0: any free one, printed).",
)
def inbox_command(port: int) -> None:
    """Print each notification delivered to the lab's inbox until interrupted (Ctrl-C).

    A contract's escalation step names it as json://127.0.0.1:PORT/PATH (or form://);
    `tick` delivers there. Listens on 127.0.0.1 only.
    """

    def show(delivery: inbox.Delivery) -> None:
        click.echo("\n".join(delivery.lines()))
        sys.stdout.flush()

    try:
        server = inbox.serve(port, show)
    except OSError as error:
        raise EnvironmentProblem(
            f"the inbox cannot listen on {inbox.ADDRESS}:{port}: {error.strerror or error}"
        ) from None
    bound = server.server_address[1]
    console.print(
        f"Inbox listening on {inbox.ADDRESS}:{bound}: name json://{inbox.ADDRESS}:{bound}/PATH "
        "in an escalation step's notify. Ctrl-C stops it."
    )
    stop = threading.Event()
    # Set here, not inherited: a parent that ignores SIGINT (a job control shell's
    # background job, a test runner's worker) would leave the inbox deaf to Ctrl-C.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda _number, _frame: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.shutdown()
        server.server_close()
    console.print("Inbox closed.")
