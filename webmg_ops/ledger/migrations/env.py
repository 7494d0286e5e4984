"""Alembic environment: runs on the connection that :mod:`webmg_ops.ledger.migrate` passes in.

There is no alembic.ini: the caller builds the configuration in code and
holds the write lock while the migrations run.
"""

from __future__ import annotations

from alembic import context

from webmg_ops.ledger.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
