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
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
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

# --- the monitor's samples (revision 0003_samples): not part of the hash chain ---

SAMPLES_TABLE = "samples"
SAMPLE_DAYS_TABLE = "sample_days"


def _big_integer() -> BigInteger:
    return BigInteger().with_variant(Integer(), "sqlite")


#: One probe of one health check: ``at_ms`` is the UTC instant in milliseconds since
#: the epoch (integers aggregate by day in portable SQL), ``up`` and ``planned`` are 0 or 1.
samples = Table(
    SAMPLES_TABLE,
    metadata,
    Column("client", String(128), nullable=False),
    Column("check_name", String(200), nullable=False),
    Column("at_ms", _big_integer(), nullable=False),
    Column("up", SmallInteger(), nullable=False),
    Column("status", Integer(), nullable=True),
    Column("latency_ms", Float(), nullable=True),
    Column("cert_days", Float(), nullable=True),
    Column("cause", String(32), nullable=True),
    Column("detail", Text(), nullable=True),
    Column("page_bytes", _big_integer(), nullable=True),
    Column("page_budget", _big_integer(), nullable=True),
    Column("planned", SmallInteger(), nullable=False),
    Column("planned_by", String(200), nullable=True),
    PrimaryKeyConstraint("client", "check_name", "at_ms", name="pk_samples"),
    Index("ix_samples_at_ms", "at_ms"),
)

#: One UTC day of one health check: ``day`` counts days since 1970-01-01.
sample_days = Table(
    SAMPLE_DAYS_TABLE,
    metadata,
    Column("client", String(128), nullable=False),
    Column("check_name", String(200), nullable=False),
    Column("day", Integer(), nullable=False),
    Column("probes", Integer(), nullable=False),
    Column("up", Integer(), nullable=False),
    Column("down_planned", Integer(), nullable=False),
    Column("down_unplanned", Integer(), nullable=False),
    Column("latency_avg_ms", Float(), nullable=True),
    Column("latency_max_ms", Float(), nullable=True),
    Column("cert_days_min", Float(), nullable=True),
    Column("page_bytes_max", _big_integer(), nullable=True),
    PrimaryKeyConstraint("client", "check_name", "day", name="pk_sample_days"),
)
