"""Create the append-only ledger_entries table and its guard triggers.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The database itself refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL),
# so a slip in code or a hand-typed SQL statement cannot rewrite the record.
GUARD_SQL: dict[str, tuple[str, ...]] = {
    "sqlite": (
        """
        CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
        BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE refused'); END
        """,
        """
        CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
        BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE refused'); END
        """,
    ),
    "postgresql": (
        """
        CREATE FUNCTION ledger_entries_refuse_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ledger is append-only: % refused', TG_OP;
        END;
        $$
        """,
        """
        CREATE TRIGGER ledger_entries_no_update_delete
        BEFORE UPDATE OR DELETE ON ledger_entries
        FOR EACH ROW EXECUTE FUNCTION ledger_entries_refuse_change()
        """,
        """
        CREATE TRIGGER ledger_entries_no_truncate
        BEFORE TRUNCATE ON ledger_entries
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_refuse_change()
        """,
    ),
}

UNGUARD_SQL: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "DROP TRIGGER ledger_entries_no_update",
        "DROP TRIGGER ledger_entries_no_delete",
    ),
    "postgresql": (
        "DROP TRIGGER ledger_entries_no_truncate ON ledger_entries",
        "DROP TRIGGER ledger_entries_no_update_delete ON ledger_entries",
        "DROP FUNCTION ledger_entries_refuse_change()",
    ),
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect not in GUARD_SQL:
        raise RuntimeError(f"no append-only triggers for {dialect}: refusing an unguarded ledger")
    op.create_table(
        "ledger_entries",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("client", sa.String(128), nullable=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("seq >= 1", name="ck_ledger_entries_seq_positive"),
    )
    op.create_index(
        "ix_ledger_entries_client_kind_seq", "ledger_entries", ["client", "kind", "seq"]
    )
    for statement in GUARD_SQL[dialect]:
        op.execute(statement)


def downgrade() -> None:
    for statement in UNGUARD_SQL[op.get_bind().dialect.name]:
        op.execute(statement)
    op.drop_index("ix_ledger_entries_client_kind_seq", table_name="ledger_entries")
    op.drop_table("ledger_entries")
