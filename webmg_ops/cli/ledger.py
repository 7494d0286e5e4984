"""``webmg-ops ledger ...``: verify, head and export the ledger."""

from __future__ import annotations

import click


@click.group("ledger")
def ledger_group() -> None:
    """Verify, checkpoint and export the tamper-evident ledger."""
