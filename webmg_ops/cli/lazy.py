"""A command group that imports each command's module only when that command runs.

The commands of ``webmg-ops`` pull in heavy libraries (SQLAlchemy, Ansible, pydantic,
Jinja2, boto3...). Importing every one of them before any command runs would make
``webmg-ops --help`` and each short command pay for all the others. The group knows
each command by its name, the module that defines it and its one-line help, and
imports the module only when the command is looked up; ``--help`` lists the commands
from their one-line help alone. A test checks that the names and lines kept here are
the commands' own. The garbage collector is paused while a command's modules import,
and what they made is frozen for it while the command runs: the import makes objects
that all live on, and collecting walked them again and again.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click


@contextmanager
def collector_paused(*, freeze: bool = False) -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block, then restore it; with
    ``freeze``, freeze every object alive at the block's end for the collector first.

    For blocks that make many objects which all outlive the block (a command's modules
    as they are imported, a fleet's clients as they load): collecting there frees
    nothing, yet each full collection walks every object made so far again (a quarter
    of due's CPU over 1,000 clients). What the block leaves as garbage is collected after.
    Frozen, what the block made is not walked by the first collection after it either
    (every object made in the block is still in the youngest generation: a tenth of
    due's CPU); the command's end unfreezes it (:meth:`LazyGroup.invoke`), and until
    then garbage in cycles among it waits.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


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
        with collector_paused():
            module = importlib.import_module(entry.module)
        command = getattr(module, entry.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Return the command the arguments name, as click resolves it (importing its
        module), then freeze every object made so far for the collector.

        The modules just imported live as long as the command: the collections that
        follow skip them (walking them again was about 0.1 s of plan's 0.95 s of CPU).
        The command's end unfreezes them (:meth:`invoke`).
        """
        resolved = super().resolve_command(ctx, args)
        gc.freeze()
        return resolved

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command line as click does; when it ends, give the collector back the
        objects :meth:`resolve_command` froze (for a caller that runs commands in its own
        process, as the tests do)."""
        try:
            return super().invoke(ctx)
        finally:
            gc.unfreeze()

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
