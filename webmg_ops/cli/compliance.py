"""The ``compliance`` command: every hardening control on every host of a client."""

from __future__ import annotations

import click
from rich.table import Table

from webmg_ops.ansible.runner import ansible_cfg_for
from webmg_ops.ansible.vault import vault_password_file
from webmg_ops.config.clients import load_client
from webmg_ops.engine.plan import select_hosts
from webmg_ops.errors import ExitCode
from webmg_ops.hardening.compliance import percent, run_compliance, score, to_document
from webmg_ops.hardening.controls import CONTROLS
from webmg_ops.settings import Settings

from .common import console, emit_json, json_option, pass_settings, vault_option

_TITLES = {control.id: control.title for control in CONTROLS}
_COLOURS = {"pass": "green", "fail": "red", "residual-risk": "yellow", "not-applicable": "dim"}


@click.command("compliance")
@click.argument("client", metavar="CLIENT")
@click.option("--limit", metavar="PATTERN", help="Only these hosts (Ansible pattern).")
@vault_option
@json_option
@pass_settings
def compliance_command(
    settings: Settings, client: str, limit: str | None, vault_file: str | None, as_json: bool
) -> int:
    """Check every hardening control on CLIENT's hosts (read-only); print a score."""
    found = load_client(settings.inventories, client)
    hosts = run_compliance(
        found,
        select_hosts(found, limit),
        ansible_cfg_for(found.folder),
        vault_password_file(vault_file),
    )
    unchecked = any(host.error for host in hosts)
    code = ExitCode.FAILED if unchecked else ExitCode.OK
    if as_json:
        emit_json(to_document(found.name, hosts))
        return int(code)
    for host in hosts:
        if host.error:
            console.print(f"[red]{host.host}: not checked: {host.error}[/red]")
            continue
        table = Table("control", "title", "status", "detail", title=host.host)
        for result in host.results:
            colour = _COLOURS[str(result.status)]
            table.add_row(
                result.control,
                _TITLES[result.control],
                f"[{colour}]{result.status}[/{colour}]",
                result.detail[:90],
            )
        console.print(table)
        console.print(
            f"{host.host}: {host.passed}/{host.applicable} "
            f"({percent(host.passed, host.applicable)} %)"
        )
    passed, applicable = score(hosts)
    console.print(f"score: {passed}/{applicable} ({percent(passed, applicable)} %)")
    return int(code)
