"""``webmg-ops lab ...``: the rehearsal lab of real Debian hosts."""

from __future__ import annotations

import click


@click.group("lab")
def lab_group() -> None:
    """Start, inspect, reset and stop the rehearsal lab's hosts."""
