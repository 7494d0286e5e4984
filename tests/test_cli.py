"""The command line as a whole: help on every command, exit codes, JSON shape, README."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from webmg_ops.cli.main import cli as root_group
from webmg_ops.config.reference import replace_reference
from webmg_ops.errors import ExitCode

REPO = Path(__file__).resolve().parent.parent


def _all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, f"{prefix}{name} is listed but cannot be loaded"
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found.extend(_all_commands(command, f"{prefix}{name} "))
    return found


def test_every_command_and_option_has_help() -> None:
    for name, command in _all_commands(root_group):
        assert command.help, f"command {name!r} has no help text"
        for parameter in command.params:
            if isinstance(parameter, click.Option):
                assert parameter.help, f"option {parameter.name!r} of {name!r} has no help"


def test_exit_codes_are_the_designed_ones() -> None:
    assert [int(code) for code in ExitCode] == [0, 1, 2, 3, 4]


def test_usage_error_exits_2(cli) -> None:
    result = cli("policy")
    assert result.code == ExitCode.BAD_INPUT
    assert "Missing argument" in result.err


def test_unknown_command_exits_2(cli) -> None:
    assert cli("frobnicate").code == ExitCode.BAD_INPUT


def test_json_error_is_a_json_document_on_stderr(cli) -> None:
    result = cli("policy", "nobody", "--json")
    assert result.code == ExitCode.BAD_INPUT
    assert result.out == ""
    document = json.loads(result.err)
    assert document["exit_code"] == 2
    assert "unknown client 'nobody'" in document["error"]


def test_clients_json(cli) -> None:
    result = cli("clients", "--json")
    assert result.code == ExitCode.OK
    rows = {row["client"]: row for row in json.loads(result.out)}
    assert rows["riverton"]["level"] == "institutional-sla"
    assert rows["terre-solidaire"]["hosts"] == ["terre-db1", "terre-web1", "terre-web2"]
    assert rows["agency"]["hosts"] == ["backup1"]


def test_missing_inventories_folder(tmp_path: Path) -> None:
    from webmg_ops.cli.main import main

    with pytest.raises(SystemExit) as done:
        main(["--inventories", str(tmp_path / "none"), "validate"])
    assert done.value.code == ExitCode.BAD_INPUT


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "webmg_ops.cli.main",
            "--inventories",
            str(REPO / "inventories"),
            "--ledger",
            f"sqlite:///{tmp_path / 'l.db'}",
            "policy",
            "../etc",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == ExitCode.BAD_INPUT
    assert done.stderr.startswith("Error: invalid client name '../etc'")
    assert "Traceback" not in done.stderr


def test_readme_contract_reference_is_current() -> None:
    readme = (REPO / "README.md").read_text()
    assert replace_reference(readme) == readme, (
        "README's contract reference is out of date: regenerate it with `make reference`"
    )


def test_readme_starts_with_the_two_commands() -> None:
    head = (REPO / "README.md").read_text().split("\n## ", 1)[0]
    assert "make demo" in head
    assert "make test" in head


def test_an_unexpected_error_shows_a_traceback_only_with_debug(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webmg_ops.cli import clients

    def broken(_inventories: Path) -> list[str]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(clients, "list_client_names", broken)
    quiet = cli("clients")
    assert quiet.code == ExitCode.FAILED, quiet
    assert "internal error: RuntimeError: disk on fire (run with --debug for details)" in quiet.err
    assert "Traceback" not in quiet.err
    loud = cli("--debug", "clients")
    assert loud.code == ExitCode.FAILED, loud
    assert "Traceback (most recent call last)" in loud.err
    assert 'raise RuntimeError("disk on fire")' in loud.err
