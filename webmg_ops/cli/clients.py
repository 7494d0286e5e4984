"""Client commands: clients, validate, schema, policy, due, note."""

from __future__ import annotations

import click

COMMANDS: tuple[click.Command, ...] = ()
