"""``webmg-ops ledger setup-roles`` on a real PostgreSQL: the writer can only append.

Each test makes its own database and its own two roles, and drops them at
the end. The attacks are made as the writer role, over its own connection,
the way someone holding the controller's WEBMG_LEDGER_URL would.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from support.ledger import POSTGRES_VARIABLE, postgres_database

from webmg_ops.cli.main import main
from webmg_ops.errors import EnvironmentProblem, ExitCode
from webmg_ops.ledger import NewEntry, open_ledger, verify_ledger
from webmg_ops.ledger.roles import ADMIN_URL_VARIABLE, WRITER_PASSWORD_VARIABLE
from webmg_ops.ledger.samples import Sample, prune, roll_up, store_samples


@dataclass(frozen=True)
class Roles:
    """A database set up with its roles: the administrator's, owner's and writer's URLs."""

    admin_url: str
    owner: str
    writer: str

    def url_as(self, role: str) -> str:
        """Return the database's URL for ``role`` (the test server trusts loopback)."""
        return make_url(self.admin_url).set(username=role).render_as_string(hide_password=False)


def run_cli(*args: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    return int(done.value.code or 0)


def drop_roles(*names: str) -> None:
    base = os.environ[POSTGRES_VARIABLE]
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
    finally:
        engine.dispose()


@pytest.fixture
def roles(monkeypatch: pytest.MonkeyPatch) -> Iterator[Roles]:
    """Yield a new database whose roles were set up by the command, as an administrator would."""
    suffix = uuid.uuid4().hex[:8]
    owner, writer = f"ledger_owner_{suffix}", f"ledger_writer_{suffix}"
    try:
        with postgres_database() as admin_url:
            monkeypatch.setenv(ADMIN_URL_VARIABLE, admin_url)
            monkeypatch.setenv(WRITER_PASSWORD_VARIABLE, f"writer-canary-{suffix}")
            assert run_cli("ledger", "setup-roles", "--owner", owner, "--writer", writer) == 0
            yield Roles(admin_url, owner, writer)
    finally:
        drop_roles(owner, writer)


def attempt(url: str, statements: str) -> str | None:
    """Given a URL and statements (';'-separated), run them in one transaction.

    Return the first error, None if they all ran.
    """
    engine = create_engine(url)
    try:
        with engine.connect() as connection, connection.begin():
            for statement in statements.split(";"):
                connection.execute(text(statement))
    except DBAPIError as error:
        return str(error.orig)
    finally:
        engine.dispose()
    return None


ATTACKS = {
    "update": "UPDATE ledger_entries SET payload = '{}' WHERE seq = 1",
    "delete": "DELETE FROM ledger_entries WHERE seq = 1",
    "truncate": "TRUNCATE ledger_entries",
    "drop trigger": "DROP TRIGGER ledger_entries_no_update_delete ON ledger_entries",
    "disable trigger": "ALTER TABLE ledger_entries DISABLE TRIGGER ALL",
    "alter table": "ALTER TABLE ledger_entries ADD COLUMN note text",
    "drop table": "DROP TABLE ledger_entries",
    # PostgreSQL only warns on a GRANT without the right to grant: the UPDATE tells.
    "grant itself": "GRANT UPDATE ON ledger_entries TO CURRENT_USER;"
    "UPDATE ledger_entries SET actor = 'mallory'",
    "rewrite the version": "UPDATE alembic_version SET version_num = '0000'",
    "create a function": "CREATE FUNCTION public.forged() RETURNS int LANGUAGE sql AS 'SELECT 1'",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_writer_cannot_change_what_is_recorded(roles: Roles, attack: str) -> None:
    with open_ledger(roles.url_as(roles.writer)) as ledger:
        ledger.append("note", "alpenhof", {"text": "before the attack"}, actor="ana")
        head_before = ledger.head()
    error = attempt(roles.url_as(roles.writer), ATTACKS[attack])
    assert error is not None, f"the writer could {attack}"
    assert "permission denied" in error or "must be owner" in error
    with open_ledger(roles.url_as(roles.writer), create=False) as ledger:
        assert ledger.head() == head_before
        assert verify_ledger(ledger).ok


def test_the_writer_appends_and_verifies_as_the_tool_does(roles: Roles) -> None:
    with open_ledger(roles.url_as(roles.writer)) as ledger:
        ledger.append_many(
            [NewEntry("run-started", "alpenhof", {"action": "backup"}, actor="ana")] * 3
        )
        ledger.correct(2, {"action": "backup", "note": "fixed"}, reason="typo", actor="ana")
    with open_ledger(roles.url_as(roles.writer), create=False) as ledger:
        report = verify_ledger(ledger)
    assert (report.ok, report.entries_checked) == (True, 4)


def test_the_writer_stores_rolls_up_and_prunes_samples_and_still_cannot_delete_entries(
    roles: Roles,
) -> None:
    # The monitor's samples are measurements with a retention: the writer deletes them.
    day = datetime(2026, 3, 2, tzinfo=UTC)
    taken = [
        Sample("alpenhof", "site", day + timedelta(minutes=minute), up=True, latency_ms=1.0)
        for minute in range(3)
    ]
    with open_ledger(roles.url_as(roles.writer)) as ledger:
        ledger.append("note", "alpenhof", {"text": "an entry"}, actor="ana")
        assert store_samples(ledger, taken) == 3
        assert roll_up(ledger, day + timedelta(days=2)) == 1
        assert prune(
            ledger, "alpenhof", samples_before=day + timedelta(days=1), days_before=day
        ) == (3, 0)
    for attack in ("DELETE FROM ledger_entries", "ALTER TABLE samples ADD COLUMN note text"):
        error = attempt(roles.url_as(roles.writer), attack)
        assert error is not None and ("permission denied" in error or "must be owner" in error)


def test_the_owner_owns_the_tables_and_the_writer_nothing(roles: Roles) -> None:
    engine = create_engine(roles.admin_url)
    try:
        with engine.connect() as connection:
            owners = dict(
                connection.execute(
                    text(
                        "SELECT tablename, tableowner FROM pg_tables "
                        "WHERE tablename IN ('ledger_entries', 'alembic_version')"
                    )
                ).all()
            )
            attributes = connection.execute(
                text(
                    "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, "
                    "rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = :r"
                ),
                {"r": roles.writer},
            ).one()
    finally:
        engine.dispose()
    assert owners == {"ledger_entries": roles.owner, "alembic_version": roles.owner}
    # No power beyond its grants; its password reached the server only as a SCRAM verifier.
    assert tuple(attributes) == (False, False, False, False, True)


def test_setting_up_again_keeps_the_entries_and_the_limits(roles: Roles) -> None:
    with open_ledger(roles.url_as(roles.writer)) as ledger:
        ledger.append("note", None, {"text": "kept"}, actor="ana")
    again = ("ledger", "setup-roles", "--owner", roles.owner, "--writer", roles.writer)
    assert run_cli(*again) == 0
    assert attempt(roles.url_as(roles.writer), ATTACKS["delete"]) is not None
    with open_ledger(roles.url_as(roles.writer), create=False) as ledger:
        assert [entry.payload["text"] for entry in ledger.entries()] == ["kept"]


def test_a_ledger_migrated_by_hand_is_handed_to_the_owner() -> None:
    suffix = uuid.uuid4().hex[:8]
    owner, writer = f"ledger_owner_{suffix}", f"ledger_writer_{suffix}"
    try:
        with postgres_database() as admin_url:
            with open_ledger(admin_url) as ledger:  # migrated as the administrator
                ledger.append("note", None, {"text": "old"}, actor="ana")
            os.environ[ADMIN_URL_VARIABLE] = admin_url
            try:
                assert run_cli("ledger", "setup-roles", "--owner", owner, "--writer", writer) == 0
            finally:
                del os.environ[ADMIN_URL_VARIABLE]
            writer_url = make_url(admin_url).set(username=writer).render_as_string(False)
            assert attempt(writer_url, ATTACKS["drop trigger"]) is not None
            assert attempt(writer_url, ATTACKS["update"]) is not None
    finally:
        drop_roles(owner, writer)


@pytest.mark.parametrize(
    ("environment", "args", "code"),
    [
        ({}, (), ExitCode.BAD_INPUT),
        ({ADMIN_URL_VARIABLE: "sqlite:////tmp/never.db"}, (), ExitCode.BAD_INPUT),
        ({ADMIN_URL_VARIABLE: "postgresql+psycopg://x@127.0.0.1/x"}, ("--owner", "Bad;"), 2),
    ],
)
def test_bad_input_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    environment: dict[str, str],
    args: tuple[str, ...],
    code: int,
) -> None:
    monkeypatch.delenv(ADMIN_URL_VARIABLE, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert run_cli("ledger", "setup-roles", *args) == code
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "Traceback" not in err


def test_a_writer_meeting_a_migration_is_told_who_migrates(roles: Roles) -> None:
    engine = create_engine(roles.admin_url)
    try:
        with engine.connect() as connection, connection.begin():
            # As if this webmg-ops were newer than the schema: the writer must not migrate.
            connection.execute(text("DELETE FROM alembic_version"))
    finally:
        engine.dispose()
    with pytest.raises(EnvironmentProblem) as refused:
        open_ledger(roles.url_as(roles.writer))
    assert "ledger setup-roles" in refused.value.message
    assert "schema revision none" in refused.value.message
    assert roles.writer in refused.value.message  # the URL names the role, never a password


def test_a_writer_that_is_a_member_of_the_owner_is_refused(
    roles: Roles, capsys: pytest.CaptureFixture[str]
) -> None:
    # A membership granted by mistake would lend the writer the owner's rights.
    admin = create_engine(roles.admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'GRANT "{roles.owner}" TO "{roles.writer}"'))
    finally:
        admin.dispose()
    again = ("ledger", "setup-roles", "--owner", roles.owner, "--writer", roles.writer)
    capsys.readouterr()
    assert run_cli(*again) == ExitCode.REFUSED
    message = capsys.readouterr().err
    assert f"role {roles.writer!r} is a member of {roles.owner!r}" in message
    assert "revoke that membership first" in message
