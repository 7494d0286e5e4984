"""Bring a ledger database's schema to the newest revision with Alembic, in code.

The migration scripts ship inside the package (``migrations/``); no
alembic.ini is read, so the tool works from any directory.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _make_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@cache
def find_head_revision() -> str | None:
    """Return the newest revision among the packaged migration scripts."""
    return ScriptDirectory.from_config(_make_config()).get_current_head()


def find_current_revision(connection: Connection) -> str | None:
    """Given a connection, return the database's schema revision (None: no schema yet)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(connection: Connection) -> None:
    """Given a connection inside a transaction holding the write lock, migrate to head.

    The caller commits; on an error the caller's transaction rolls everything back.
    """
    command.upgrade(_make_config(connection), "head")
