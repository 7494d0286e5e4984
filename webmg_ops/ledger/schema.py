"""The ledger's table, described once for queries (migrations keep their own snapshot).

``at`` is stored as the exact UTC text that was hashed (fixed width, so text
order is time order) and ``payload`` as its canonical JSON text: verifying
the chain then hashes stored columns as they are, on any database, without
parsing dates or JSON. ``format`` names the canonical form the entry was
hashed in (see :mod:`webmg_ops.ledger.canonical`); entries from before the
column existed are format 1.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)

ENTRIES_TABLE = "ledger_entries"

metadata = MetaData()

ledger_entries = Table(
    ENTRIES_TABLE,
    metadata,
    # INTEGER (not BIGINT) on SQLite makes seq the rowid: no second index.
    Column(
        "seq",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("kind", String(64), nullable=False),
    Column("client", String(128), nullable=True),
    Column("at", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("format", SmallInteger(), nullable=False, server_default=text("1")),
    CheckConstraint("seq >= 1", name="ck_ledger_entries_seq_positive"),
    Index("ix_ledger_entries_client_kind_seq", "client", "kind", "seq"),
)
