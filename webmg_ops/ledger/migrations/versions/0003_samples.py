"""Create the monitor's tables: probe samples and their daily aggregates.

Samples are measurements, not records of decisions: they are not hash-chained and
they are deleted when their retention ends (the raw samples after a few weeks, the
daily aggregates after more than a year), so these tables carry no guard triggers.

Revision ID: 0003_samples
Revises: 0002_entry_format
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_samples"
down_revision = "0002_entry_format"
branch_labels = None
depends_on = None


def _big_integer() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "samples",
        sa.Column("client", sa.String(128), nullable=False),
        sa.Column("check_name", sa.String(200), nullable=False),
        sa.Column("at_ms", _big_integer(), nullable=False),
        sa.Column("up", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cert_days", sa.Float(), nullable=True),
        sa.Column("cause", sa.String(32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("page_bytes", _big_integer(), nullable=True),
        sa.Column("page_budget", _big_integer(), nullable=True),
        sa.Column("planned", sa.SmallInteger(), nullable=False),
        sa.Column("planned_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("client", "check_name", "at_ms", name="pk_samples"),
        sa.CheckConstraint("up IN (0, 1) AND planned IN (0, 1)", name="ck_samples_flags"),
    )
    op.create_index("ix_samples_at_ms", "samples", ["at_ms"])
    op.create_table(
        "sample_days",
        sa.Column("client", sa.String(128), nullable=False),
        sa.Column("check_name", sa.String(200), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("probes", sa.Integer(), nullable=False),
        sa.Column("up", sa.Integer(), nullable=False),
        sa.Column("down_planned", sa.Integer(), nullable=False),
        sa.Column("down_unplanned", sa.Integer(), nullable=False),
        sa.Column("latency_avg_ms", sa.Float(), nullable=True),
        sa.Column("latency_max_ms", sa.Float(), nullable=True),
        sa.Column("cert_days_min", sa.Float(), nullable=True),
        sa.Column("page_bytes_max", _big_integer(), nullable=True),
        sa.PrimaryKeyConstraint("client", "check_name", "day", name="pk_sample_days"),
    )


def downgrade() -> None:
    op.drop_table("sample_days")
    op.drop_index("ix_samples_at_ms", table_name="samples")
    op.drop_table("samples")
