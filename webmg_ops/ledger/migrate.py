"""Bring a ledger database's schema to the newest revision with Alembic, in code.

The migration scripts ship inside the package (``migrations/``); no
alembic.ini is read, so the tool works from any directory.

Alembic is imported only to migrate or to read a revision its way: every
command opens the ledger writable once (to close runs whose process died),
and a ledger already at :data:`HEAD_REVISION` is recognised by one query
(:func:`is_at_head`), without importing Alembic (about 0.1 s).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, column, select, table
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

#: The newest revision among the migration scripts, as :func:`find_head_revision` reads
#: it (a test keeps them equal): a new migration script changes it.
HEAD_REVISION = "0003_samples"

#: Alembic's table of the schema's revision (its default name).
_VERSIONS = table("alembic_version", column("version_num"))


def _make_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@cache
def find_head_revision() -> str | None:
    """Return the newest revision among the packaged migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_make_config()).get_current_head()


def find_current_revision(connection: Connection) -> str | None:
    """Given a connection, return the database's schema revision (None: no schema yet)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def is_at_head(connection: Connection) -> bool:
    """Given a connection, return whether the database holds exactly one revision, and it
    is :data:`HEAD_REVISION`.

    False for anything else (no version table, another revision, several), which the
    caller then reads with Alembic. Never raises: a failed query is False (the caller's
    transaction is rolled back).
    """
    try:
        revisions = connection.execute(select(_VERSIONS.c.version_num)).scalars().all()
    except SQLAlchemyError:
        connection.rollback()
        return False
    return revisions == [HEAD_REVISION]


def upgrade_to_head(connection: Connection) -> None:
    """Given a connection inside a transaction holding the write lock, migrate to head.

    The caller commits; on an error the caller's transaction rolls everything back.
    """
    from alembic import command

    command.upgrade(_make_config(connection), "head")
