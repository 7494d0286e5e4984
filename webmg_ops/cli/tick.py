"""``tick``: evaluate every open incident's clocks, record breaches, send what is due.

Idempotent and safe to run every minute: a second tick right after the first
sends nothing. Exits 1 when a notification could not be sent (it is recorded as
pending and retried by the next tick).
"""

from __future__ import annotations

from typing import Any

import click

from webmg_ops.ansible.vault import Vault, vault_password_file
from webmg_ops.errors import ExitCode
from webmg_ops.service.tick import tick
from webmg_ops.settings import Settings

from .common import console, emit_json, json_option, pass_settings, vault_option
from .incidents import parse_at


@click.command("tick")
@click.argument("client", metavar="[CLIENT]", required=False)
@click.option(
    "--at",
    "at_text",
    metavar="ISO-TIME",
    help="Evaluate the clocks at this instant, with its offset (default: now).",
)
@vault_option
@json_option
@pass_settings
def tick_command(
    settings: Settings,
    client: str | None,
    at_text: str | None,
    vault_file: str | None,
    as_json: bool,
) -> int:
    """Evaluate every open incident (of CLIENT only, if given): record each clock's breach
    once and send each due escalation notification exactly once."""
    at = parse_at(at_text)
    vault = Vault(vault_password_file(vault_file))
    result: dict[str, Any] = tick(settings, client_name=client, now=at, vault=vault)
    pending = [item for item in result["notifications"] if item["outcome"] == "pending"]
    if as_json:
        emit_json(result)
    else:
        console.print(
            f"tick at {result['at']}: {result['incidents_evaluated']} open incident(s), "
            f"{len(result['breaches'])} breach(es) recorded, "
            f"{len(result['notifications']) - len(pending)} notification(s) sent, "
            f"{len(pending)} pending"
        )
        for breach in result["breaches"]:
            console.print(f"  breach {breach['incident']} {breach['clock']} ({breach['client']})")
        for item in result["notifications"]:
            detail = f": {item['error']}" if item["error"] else ""
            console.print(f"  {item['outcome']} {item['key']} -> {item['target']}{detail}")
    return int(ExitCode.FAILED) if pending else int(ExitCode.OK)
