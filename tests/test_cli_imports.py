"""The command line imports a command's modules only when that command runs.

``webmg-ops --help`` and the group's listing come from the names and one-line helps
kept in ``webmg_ops.cli.main.COMMANDS``; each command's module (and the heavy
libraries behind it) is imported when the command is looked up. The budget is a set
of modules, not a time: which packages a bare ``--help`` may load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from webmg_ops.actions.registry import ACTION_MODULES, action_named
from webmg_ops.cli.main import COMMANDS, cli
from webmg_ops.errors import BadInput

#: Packages that the commands need and that ``--help`` must not import.
HEAVY = frozenset(
    {
        "alembic", "ansible", "ansible_runner", "apprise", "boto3", "botocore", "cryptography",
        "jinja2", "matplotlib", "paramiko", "psycopg", "pydantic", "rich", "sqlalchemy",
        "testinfra", "weasyprint", "yaml", "webmg_ops.ledger", "webmg_ops.config",
        "webmg_ops.engine", "webmg_ops.service",
    }
)  # fmt: skip

_LOADED = """
import contextlib, io, json, sys
from webmg_ops.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(*argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, *argv], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def _heavy(modules: set[str]) -> set[str]:
    return {
        name
        for name in modules
        if any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY)
    }


def test_help_lists_every_command_without_importing_any_of_them() -> None:
    assert _heavy(_modules_after("--help")) == set()
    assert _heavy(_modules_after("--version")) == set()


def test_a_command_imports_what_it_needs_when_it_runs() -> None:
    # The control: the budget test can fail, a real command does load its libraries.
    loaded = _modules_after("schema")
    assert "webmg_ops.cli.clients" in loaded
    assert "pydantic" in loaded


#: What carries a run out, and what plan, which reaches no host, must not import.
RUN_ONLY = frozenset(
    {
        "paramiko", "webmg_ops.engine.execute", "webmg_ops.reports", "webmg_ops.remote.ssh",
        "webmg_ops.actions.diagnose", "webmg_ops.actions.backup", "webmg_ops.actions.drill",
        "webmg_ops.hardening", "webmg_ops.service.incidents",
    }
)  # fmt: skip


def test_plan_imports_its_action_alone_and_nothing_that_reaches_a_host(
    inventories: Path, ledger_url: str
) -> None:
    loaded = _modules_after(
        "--inventories", str(inventories), "--ledger", ledger_url, "plan", "alpenhof", "update"
    )
    # The control: plan did plan, with the update action and Ansible's inventory.
    assert {"webmg_ops.engine.plan", "webmg_ops.actions.update", "ansible"} <= loaded
    assert {
        name
        for name in loaded
        if any(name == heavy or name.startswith(heavy + ".") for heavy in RUN_ONLY)
    } == set()


@pytest.mark.parametrize("name", sorted(ACTION_MODULES))
def test_each_action_is_found_by_its_name(name: str) -> None:
    assert action_named(name).name == name


def test_an_unknown_action_names_those_there_are() -> None:
    with pytest.raises(BadInput) as raised:
        action_named("reboot")
    assert "available: backup, check, deploy, diagnose, drill, harden, target, update" in str(
        raised.value
    )


def test_each_kept_name_and_line_is_the_commands_own() -> None:
    context = click.Context(cli)
    for name, entry in COMMANDS.items():
        command = cli.get_command(context, name)
        assert command is not None, name
        assert command.name == name
        assert entry.short_help == command.get_short_help_str(limit=10_000), name


def test_the_listing_is_the_one_click_writes_with_every_command_loaded() -> None:
    context = click.Context(cli)
    loaded = click.Group("webmg-ops")
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None
        loaded.add_command(command, name)
    lazy_listing, plain_listing = click.HelpFormatter(), click.HelpFormatter()
    cli.format_commands(context, lazy_listing)
    loaded.format_commands(click.Context(loaded), plain_listing)
    assert lazy_listing.getvalue() == plain_listing.getvalue()
    assert len(lazy_listing.getvalue().splitlines()) == len(COMMANDS) + 1
