"""Give each ledger entry the format of its canonical form; existing entries are format 1.

Entries appended from now on are hashed with RFC 8785 (format 2). An entry
keeps its format forever, so the entries written before still verify.

Revision ID: 0002_entry_format
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_entry_format"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: neither SQLite nor PostgreSQL rewrites or updates the
    # existing rows (no UPDATE trigger fires), they read as format 1.
    op.add_column(
        "ledger_entries",
        sa.Column("format", sa.SmallInteger(), nullable=False, server_default=sa.text("1")),
    )


def downgrade() -> None:
    # SQLite drops a column only by rebuilding the table, which the guard
    # triggers and the append-only promise forbid: a ledger is not downgraded.
    raise RuntimeError("the ledger's entry formats cannot be removed: restore a backup instead")
