"""PostgreSQL roles for the ledger: an owner that migrates, a writer that only appends.

The guard triggers refuse UPDATE, DELETE and TRUNCATE, but whoever owns the
table can drop them, rewrite rows and recompute the chain. So the role the
tool runs with (``WEBMG_LEDGER_URL``) must not own anything: the *owner*
role owns the tables and runs the migrations, and its credentials stay with
whoever administers the database; the *writer* role may only SELECT and
INSERT, and cannot drop a trigger, alter the table or grant itself more.

:func:`setup_roles` makes both from an administrator's connection, in one
transaction: it can be run again after an upgrade (it migrates as the owner
and grants again).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from webmg_ops.errors import BadInput, EnvironmentProblem, Refused
from webmg_ops.ledger.database import begin_write, describe_error, make_engine, parse_database_url
from webmg_ops.ledger.migrate import find_current_revision, upgrade_to_head
from webmg_ops.ledger.schema import ENTRIES_TABLE, SAMPLE_DAYS_TABLE, SAMPLES_TABLE

ADMIN_URL_VARIABLE = "WEBMG_LEDGER_ADMIN_URL"
"""Environment variable holding the administrator's URL (a secret: never an argument)."""
OWNER_PASSWORD_VARIABLE = "WEBMG_LEDGER_OWNER_PASSWORD"
WRITER_PASSWORD_VARIABLE = "WEBMG_LEDGER_WRITER_PASSWORD"
DEFAULT_OWNER = "webmg_ledger_owner"
DEFAULT_WRITER = "webmg_ledger_writer"

VERSION_TABLE = "alembic_version"
TRIGGER_FUNCTION = "ledger_entries_refuse_change()"

#: What the writer may do on each of the ledger's tables; anything else is revoked.
#: The monitor's samples are measurements, not records: the writer deletes them when
#: their retention ends, and replaces a day's aggregate.
WRITER_GRANTS: Mapping[str, str] = {
    ENTRIES_TABLE: "SELECT, INSERT",
    VERSION_TABLE: "SELECT",
    SAMPLES_TABLE: "SELECT, INSERT, DELETE",
    SAMPLE_DAYS_TABLE: "SELECT, INSERT, DELETE",
}

#: Privileges the writer must not hold on the entries; checked after granting.
FORBIDDEN_PRIVILEGES = ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")

# Neither role may create roles, databases or bypass anything; NOINHERIT keeps
# a membership granted later by mistake from lending the writer its privileges.
_ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT"
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# libpq's SCRAM verifier: base64, digits and separators only, so it can be quoted safely.
_VERIFIER = re.compile(r"SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+")


@dataclass(frozen=True)
class RolesReport:
    """What :func:`setup_roles` did: the roles, which were created, and the schema revision.

    ``writer_privileges`` lists the writer's privileges on the entries as the
    database reports them after the grants.
    """

    database: str
    schema: str
    owner: str
    writer: str
    created: tuple[str, ...]
    revision: str | None
    writer_privileges: tuple[str, ...]

    def to_document(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dictionary."""
        return {
            "database": self.database,
            "schema": self.schema,
            "owner": self.owner,
            "writer": self.writer,
            "created": list(self.created),
            "revision": self.revision,
            "writer_privileges": list(self.writer_privileges),
        }


def check_role_name(name: str, what: str) -> str:
    """Given a role name and what it is for, return it. Raise BadInput if it is not plain."""
    if not _ROLE_NAME.fullmatch(name):
        raise BadInput(
            f"{what} role {name!r} must be lowercase letters, digits and '_' "
            "(not starting with a digit, at most 63 characters)"
        )
    return name


def _quote(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote_identifier(name)


def _scram_verifier(connection: Connection, role: str, password: str) -> str:
    # libpq hashes the password on this side (as psql's \password does): the
    # server, and its statement log, only ever see the SCRAM verifier.
    pgconn = connection.connection.driver_connection.pgconn  # type: ignore[union-attr]
    verifier = bytes(pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256"))
    text_form = verifier.decode()
    if not _VERIFIER.fullmatch(text_form):
        raise EnvironmentProblem("the PostgreSQL client library returned no SCRAM verifier")
    return text_form


def _role_exists(connection: Connection, role: str) -> bool:
    found = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    return found.first() is not None


def _ensure_role(connection: Connection, role: str, password: str | None) -> bool:
    """Create or reset one role's attributes (and password if given); return whether created."""
    quoted = _quote(connection, role)
    created = not _role_exists(connection, role)
    connection.exec_driver_sql(
        f"{'CREATE' if created else 'ALTER'} ROLE {quoted} {_ROLE_ATTRIBUTES}"
    )
    if password:
        verifier = _scram_verifier(connection, role, password)
        connection.exec_driver_sql(f"ALTER ROLE {quoted} PASSWORD '{verifier}'")
    return created


def _refuse_administrator(connection: Connection, owner: str, writer: str) -> None:
    current = connection.execute(text("SELECT current_user")).scalar_one()
    if current in (owner, writer):
        raise Refused(
            f"the administrator's URL connects as {current!r}, one of the roles to set up: "
            "connect as a superuser (for example postgres)"
        )


def _refuse_membership(connection: Connection, owner: str, writer: str) -> None:
    member = connection.execute(
        text("SELECT pg_has_role(:w, :o, 'MEMBER')"), {"w": writer, "o": owner}
    ).scalar_one()
    if member:
        raise Refused(
            f"role {writer!r} is a member of {owner!r} and could act as the owner: "
            f"revoke that membership first"
        )


def _take_ownership(connection: Connection, schema: str, owner: str) -> None:
    # A ledger migrated before the roles existed is owned by whoever ran it.
    quoted_schema, quoted_owner = _quote(connection, schema), _quote(connection, owner)
    for table in (ENTRIES_TABLE, VERSION_TABLE, SAMPLES_TABLE, SAMPLE_DAYS_TABLE):
        connection.exec_driver_sql(
            f"ALTER TABLE IF EXISTS {quoted_schema}.{_quote(connection, table)} "
            f"OWNER TO {quoted_owner}"
        )
    has_function = connection.execute(
        text("SELECT to_regprocedure(:f) IS NOT NULL"), {"f": f"{schema}.{TRIGGER_FUNCTION}"}
    ).scalar_one()
    if has_function:
        connection.exec_driver_sql(
            f"ALTER FUNCTION {quoted_schema}.{TRIGGER_FUNCTION} OWNER TO {quoted_owner}"
        )


def _grant_schema(connection: Connection, schema: str, owner: str, writer: str) -> None:
    quoted_schema = _quote(connection, schema)
    # Only the owner creates objects here: a writer able to create a function
    # or a table in the ledger's schema could shadow what the tool reads.
    connection.exec_driver_sql(f"REVOKE CREATE ON SCHEMA {quoted_schema} FROM PUBLIC")
    connection.exec_driver_sql(
        f"GRANT USAGE, CREATE ON SCHEMA {quoted_schema} TO {_quote(connection, owner)}"
    )
    connection.exec_driver_sql(
        f"REVOKE CREATE ON SCHEMA {quoted_schema} FROM {_quote(connection, writer)}"
    )
    connection.exec_driver_sql(
        f"GRANT USAGE ON SCHEMA {quoted_schema} TO {_quote(connection, writer)}"
    )


def _grant_tables(connection: Connection, schema: str, writer: str) -> None:
    quoted_writer = _quote(connection, writer)
    for table, privileges in WRITER_GRANTS.items():
        name = f"{_quote(connection, schema)}.{_quote(connection, table)}"
        connection.exec_driver_sql(f"REVOKE ALL ON {name} FROM PUBLIC")
        connection.exec_driver_sql(f"REVOKE ALL ON {name} FROM {quoted_writer}")
        connection.exec_driver_sql(f"GRANT {privileges} ON {name} TO {quoted_writer}")


def _writer_privileges(connection: Connection, schema: str, writer: str) -> tuple[str, ...]:
    table = f"{_quote(connection, schema)}.{_quote(connection, ENTRIES_TABLE)}"
    held = [
        privilege
        for privilege in ("SELECT", "INSERT", *FORBIDDEN_PRIVILEGES)
        if connection.execute(
            text("SELECT has_table_privilege(:w, :t, :p)"),
            {"w": writer, "t": table, "p": privilege},
        ).scalar_one()
    ]
    owns = connection.execute(
        text(
            "SELECT pg_has_role(:w, tableowner, 'MEMBER') FROM pg_tables "
            "WHERE schemaname = :s AND tablename = :t"
        ),
        {"w": writer, "s": schema, "t": ENTRIES_TABLE},
    ).scalar_one()
    forbidden = [privilege for privilege in held if privilege in FORBIDDEN_PRIVILEGES]
    if forbidden or owns:
        raise EnvironmentProblem(
            f"role {writer!r} still holds {', '.join(forbidden) or 'the ownership'} on the "
            "ledger after the grants: check the roles it is a member of"
        )
    return tuple(held)


def setup_roles(
    admin_url: str,
    *,
    owner: str = DEFAULT_OWNER,
    writer: str = DEFAULT_WRITER,
    owner_password: str | None = None,
    writer_password: str | None = None,
) -> RolesReport:
    """Given an administrator's PostgreSQL URL and the two roles, set the ledger's roles up.

    In one transaction holding the ledger's write lock: create the roles
    (or reset their attributes), set the passwords given (sent as SCRAM
    verifiers), give the owner the tables (existing ones too) and run the
    migrations as the owner, then grant the writer SELECT and INSERT only.
    Running it again is harmless. Return what was done. Raise BadInput if a
    name is invalid or the URL is not PostgreSQL, Refused if the
    administrator is one of the roles or the writer is a member of the owner,
    EnvironmentProblem if the database refuses or fails.
    """
    check_role_name(owner, "owner")
    check_role_name(writer, "writer")
    if owner == writer:
        raise BadInput("the owner and the writer must be two different roles")
    url = parse_database_url(admin_url)
    if url.get_backend_name() != "postgresql":
        raise BadInput(
            "roles exist only on PostgreSQL: a SQLite ledger is guarded by its file's "
            "permissions and by the checkpoints published offsite"
        )
    engine = make_engine(url, writable=True)
    try:
        with begin_write(engine) as connection:
            _refuse_administrator(connection, owner, writer)
            created = tuple(
                role
                for role, password in ((owner, owner_password), (writer, writer_password))
                if _ensure_role(connection, role, password)
            )
            _refuse_membership(connection, owner, writer)
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
            database = connection.execute(text("SELECT current_database()")).scalar_one()
            _grant_schema(connection, schema, owner, writer)
            _take_ownership(connection, schema, owner)
            connection.exec_driver_sql(f"SET LOCAL ROLE {_quote(connection, owner)}")
            upgrade_to_head(connection)
            _grant_tables(connection, schema, writer)
            connection.exec_driver_sql("RESET ROLE")
            revision = find_current_revision(connection)
            privileges = _writer_privileges(connection, schema, writer)
    except SQLAlchemyError as error:
        raise describe_error(url, error) from None
    finally:
        engine.dispose()
    return RolesReport(database, schema, owner, writer, created, revision, privileges)
