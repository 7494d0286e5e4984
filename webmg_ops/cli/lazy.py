"""A command group that imports each command's module only when that command runs.

The commands of ``webmg-ops`` pull in heavy libraries (SQLAlchemy, Ansible, pydantic,
Jinja2, boto3...). Importing every one of them before any command runs would make
``webmg-ops --help`` and each short command pay for all the others. The group knows
each command by its name, the module that defines it and its one-line help, and
imports the module only when the command is looked up; ``--help`` lists the commands
from their one-line help alone. A test checks that the names and lines kept here are
the commands' own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import click


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives: ``module`` and the attribute holding it, and its one-line help."""

    module: str
    attribute: str
    short_help: str


class LazyGroup(click.Group):
    """A click group whose subcommands are :class:`LazyCommand` entries, imported on use."""

    def __init__(self, *args: object, lazy: dict[str, LazyCommand], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return every command's name, sorted, without importing any of them."""
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the command called ``cmd_name``, importing its module (None if unknown)."""
        entry = self.lazy.get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        command = getattr(importlib.import_module(entry.module), entry.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Write the commands section of ``--help`` from the one-line helps kept here."""
        names = self.list_commands(ctx)
        # As click's own listing: each line cut to the width left beside the longest name.
        limit = formatter.width - 6 - max((len(name) for name in names), default=0)
        rows = [
            (
                name,
                # click's own cut, on a stand-in that carries only the help.
                click.Command(name, help=self.lazy[name].short_help).get_short_help_str(limit)
                if name in self.lazy
                else self._loaded_help(ctx, name, limit),
            )
            for name in names
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _loaded_help(self, ctx: click.Context, name: str, limit: int) -> str:
        command = super().get_command(ctx, name)
        return command.get_short_help_str(limit) if command is not None else ""
