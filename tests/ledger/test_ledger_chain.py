"""Appending to the chain, reading it back, verifying it, corrections and actors."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from support.ledger import (
    BACKENDS,
    backend_url,
    clients,
    flip_one_char,
    kinds,
    payloads,
    read_row,
    sqlite_url,
    tamper,
)

from webmg_ops.errors import BadInput, EnvironmentProblem
from webmg_ops.ledger import (
    GENESIS_HASH,
    Ledger,
    NewEntry,
    canonical_entry,
    chain_hash,
    make_correction,
    open_ledger,
    resolve_actor,
    verify_ledger,
)
from webmg_ops.ledger.migrate import HEAD_REVISION, find_head_revision, is_at_head

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """Return a new, empty, writable ledger on each backend."""
    with backend_url(request.param, tmp_path) as url, open_ledger(url) as opened:
        yield opened


drafts = st.lists(
    st.builds(NewEntry, kind=kinds, client=clients, payload=payloads, actor=st.just("ana")),
    min_size=1,
    max_size=12,
)
columns = st.sampled_from(["kind", "client", "at", "actor", "payload", "prev_hash", "hash"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(drafts, min_size=1, max_size=3), data=st.data())
def test_any_appends_verify_and_any_corrupted_entry_is_named(
    batches: list[list[NewEntry]], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db_file = Path(folder) / "ledger.db"
        with open_ledger(sqlite_url(db_file)) as ledger:
            appended = [entry for batch in batches for entry in ledger.append_many(batch)]
            report = verify_ledger(ledger)
            assert report.ok, report
            assert report.entries_checked == len(appended)
            assert report.head == appended[-1].checkpoint == ledger.head()
            assert [entry.seq for entry in appended] == list(range(1, len(appended) + 1))
            assert list(ledger.entries()) == appended

            seq = data.draw(st.integers(min_value=1, max_value=len(appended)), label="seq")
            column = data.draw(columns, label="column")
            stored = read_row(db_file, seq)[column]
            altered = flip_one_char(stored or "acme", data.draw(st.integers(0, 200)))
            tamper(
                db_file, (f"UPDATE ledger_entries SET {column} = ? WHERE seq = ?", (altered, seq))
            )

            broken = verify_ledger(ledger)
            assert not broken.ok
            assert broken.first_bad_seq == seq, broken
            assert broken.entries_checked == seq - 1


def test_entries_are_chained_from_genesis(ledger: Ledger) -> None:
    first = ledger.append("run-started", "alpenhof", {"action": "backup"}, actor="ana", at=T0)
    second = ledger.append("run-finished", "alpenhof", {"action": "backup"}, actor="ana", at=T0)
    assert first.seq == 1 and first.prev_hash == GENESIS_HASH
    assert second.seq == 2 and second.prev_hash == first.hash
    expected = chain_hash(
        GENESIS_HASH,
        canonical_entry(
            1,
            "run-started",
            "alpenhof",
            "2025-03-01T08:00:00.000000Z",
            "ana",
            '{"action":"backup"}',
        ),
    )
    assert first.hash == expected
    assert first.at == T0
    assert first.payload == {"action": "backup"}


def test_entries_read_back_with_filters(ledger: Ledger) -> None:
    ledger.append_many(
        [
            NewEntry("run-started", "alpenhof", {"n": 1}, at=T0),
            NewEntry("run-finished", "alpenhof", {"n": 2}, at=T0 + timedelta(hours=1)),
            NewEntry("note", None, {"n": 3}, at=T0 + timedelta(hours=2)),
            NewEntry("run-started", "riverton", {"n": 4}, at=T0 + timedelta(hours=3)),
        ]
    )
    assert [e.payload["n"] for e in ledger.entries()] == [1, 2, 3, 4]
    assert [e.payload["n"] for e in ledger.entries(client="alpenhof")] == [1, 2]
    assert [e.payload["n"] for e in ledger.entries(kinds=["run-started"])] == [1, 4]
    assert [e.payload["n"] for e in ledger.entries(since=T0 + timedelta(minutes=90))] == [3, 4]
    assert [e.payload["n"] for e in ledger.entries(after_seq=2)] == [3, 4]
    both = ledger.entries(clients=["riverton", "alpenhof"], kinds=["run-started"])
    assert [e.payload["n"] for e in both] == [1, 4]
    assert list(ledger.entries(clients=[])) == []
    third = ledger.get(3)
    assert third is not None and third.client is None
    assert ledger.get(9) is None
    with pytest.raises(BadInput):
        list(ledger.entries(since=datetime(2025, 1, 1)))  # naive


def test_append_many_writes_all_or_nothing(ledger: Ledger) -> None:
    ledger.append("note", None, {"n": 1})
    with pytest.raises(BadInput):
        ledger.append_many([NewEntry("note", None, {"n": 2}), NewEntry("Bad Kind", None, {"n": 3})])
    with pytest.raises(BadInput):
        ledger.append_many(
            [NewEntry("note", None, {"n": 2}), NewEntry("note", None, {"corrects": 5})]
        )
    assert [entry.seq for entry in ledger.entries()] == [1]
    assert verify_ledger(ledger).ok


@pytest.mark.parametrize(
    ("kind", "client", "payload", "actor", "at"),
    [
        ("Run", "acme", {}, "ana", None),
        ("note", "", {}, "ana", None),
        ("note", "acme corp", {}, "ana", None),
        ("note", "x" * 129, {}, "ana", None),
        ("note", "acme", {}, "", None),
        ("note", "acme", {}, "ana\n", None),
        ("note", "acme", {}, "ana", datetime(2025, 1, 1)),
        ("note", "acme", {"x": float("nan")}, "ana", None),
        ("note", "acme", ["not", "an", "object"], "ana", None),
        ("note", "acme", {"corrects": True}, "ana", None),
    ],
)
def test_invalid_entries_are_bad_input(
    ledger: Ledger, kind: str, client: str, payload: Any, actor: str, at: datetime | None
) -> None:
    with pytest.raises(BadInput):
        ledger.append(kind, client, payload, actor=actor, at=at)
    assert ledger.head() is None


def test_a_correction_names_the_seq_it_corrects(ledger: Ledger) -> None:
    ok = {"action": "backup", "outcome": "succeeded"}
    ledger.append("run-finished", "alpenhof", ok)
    original = ledger.append("run-finished", "alpenhof", {**ok, "run": 2})
    correction = ledger.correct(
        original.seq, {**ok, "outcome": "failed", "run": 2}, reason="restore test failed"
    )
    assert correction.seq == 3
    assert correction.kind == "run-finished" and correction.client == "alpenhof"
    assert correction.corrects == original.seq
    assert correction.payload["reason"] == "restore test failed"
    assert ledger.get(original.seq) == original  # the original stays, unchanged
    with pytest.raises(BadInput):
        ledger.correct(99, ok, reason="no such entry")
    with pytest.raises(BadInput):
        make_correction(original, ok, reason="  ")
    with pytest.raises(BadInput):
        make_correction(original, {"corrects": 1}, reason="clash")
    assert verify_ledger(ledger).ok


def test_latest_finds_the_last_successful_run_as_corrected(ledger: Ledger) -> None:
    def succeeded(action: str) -> Any:
        return lambda p: p.get("action") == action and p.get("outcome") == "succeeded"

    ok = {"action": "backup", "outcome": "succeeded"}
    first = ledger.append("run-finished", "alpenhof", {**ok, "run": 1})
    second = ledger.append("run-finished", "alpenhof", {**ok, "run": 2})
    ledger.append("run-finished", "alpenhof", {"action": "update", "outcome": "succeeded"})
    ledger.append("run-finished", "riverton", {**ok, "run": 3})
    assert ledger.latest("run-finished", "alpenhof", succeeded("backup")) == second
    ledger.correct(second.seq, {**ok, "outcome": "failed", "run": 2}, reason="bad snapshot")
    assert ledger.latest("run-finished", "alpenhof", succeeded("backup")) == first
    assert ledger.latest("run-finished", "alpenhof", succeeded("drill")) is None
    assert ledger.latest("run-started", "alpenhof") is None
    ledger.append("note", None, {"text": "global"})
    latest_note = ledger.latest("note", None)
    assert latest_note is not None and latest_note.payload == {"text": "global"}


def test_the_actor_is_the_operator(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBMG_OPERATOR", "  Ana  Lima ")
    assert ledger.append("note", None, {}).actor == "Ana Lima"
    assert ledger.append("note", None, {}, actor="ci").actor == "ci"


def test_the_actor_falls_back_to_git_then_login(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert resolve_actor({"WEBMG_OPERATOR": "ana"}) == "ana"
    fake_git = tmp_path / "bin" / "git"
    fake_git.parent.mkdir()
    fake_git.write_text("#!/bin/sh\necho 'Git User'\n")
    fake_git.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_git.parent))
    assert resolve_actor({}) == "Git User"
    fake_git.write_text("#!/bin/sh\nexit 1\n")
    monkeypatch.setenv("LOGNAME", "login-name")
    assert resolve_actor({}) == "login-name"
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert resolve_actor({}) == "login-name"


def test_schema_is_made_by_alembic_on_first_open(tmp_path: Path) -> None:
    db_file = tmp_path / "deep" / "var" / "ledger.db"
    with open_ledger(sqlite_url(db_file)):
        pass
    with closing(sqlite3.connect(db_file)) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == find_head_revision()
    with open_ledger(sqlite_url(db_file)) as again:  # a second open migrates nothing
        assert again.head() is None


def test_the_head_revision_kept_for_the_quick_check_is_alembics(tmp_path: Path) -> None:
    # A new migration script moves the head: HEAD_REVISION moves with it.
    assert find_head_revision() == HEAD_REVISION
    db_file = tmp_path / "ledger.db"
    engine = create_engine(sqlite_url(db_file))
    with engine.connect() as connection:
        assert not is_at_head(connection)  # no version table yet
    with open_ledger(sqlite_url(db_file)):
        pass
    with engine.connect() as connection:
        assert is_at_head(connection)
        connection.execute(text("UPDATE alembic_version SET version_num = '0002_entry_format'"))
        assert not is_at_head(connection)
    engine.dispose()


def test_read_only_open_of_a_missing_ledger_creates_nothing(tmp_path: Path) -> None:
    db_file = tmp_path / "var" / "ledger.db"
    with open_ledger(sqlite_url(db_file), create=False, missing_ok=True) as ledger:
        assert ledger.head() is None
        assert list(ledger.entries()) == []
        assert ledger.latest("note", None) is None
        assert verify_ledger(ledger).ok
        with pytest.raises(EnvironmentProblem, match="read-only"):
            ledger.append("note", None, {})
    assert not (tmp_path / "var").exists()


def test_read_only_open_of_a_file_without_schema_is_empty(tmp_path: Path) -> None:
    db_file = tmp_path / "ledger.db"
    sqlite3.connect(db_file).close()
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        assert ledger.head() is None
        assert verify_ledger(ledger).entries_checked == 0


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("bogus://", BadInput),
        ("not a url", BadInput),
        ("mysql://ana:hunter2@db.invalid/ledger", BadInput),
        ("postgresql+nodriver://ana:hunter2@localhost/ledger", EnvironmentProblem),
    ],
)
def test_unusable_urls_are_refused_with_password_masked(
    url: str, problem: type[BadInput | EnvironmentProblem]
) -> None:
    with pytest.raises(problem) as raised:
        open_ledger(url)
    assert type(raised.value) is problem
    assert "hunter2" not in raised.value.message


def test_a_missing_sqlite_ledger_is_refused_unless_missing_is_ok(tmp_path: Path) -> None:
    db_file = tmp_path / "var" / "ledger.db"
    with pytest.raises(BadInput, match=f"no ledger yet at {db_file}"):
        open_ledger(sqlite_url(db_file), create=False)
    with open_ledger(sqlite_url(db_file), create=False, missing_ok=True) as ledger:
        assert ledger.head() is None
    assert not (tmp_path / "var").exists()


def test_an_unwritable_path_is_an_environment_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(EnvironmentProblem, match="cannot create the folder"):
        open_ledger(sqlite_url(blocker / "var" / "ledger.db"))


def test_a_file_that_is_not_a_database_is_an_environment_problem(tmp_path: Path) -> None:
    junk = tmp_path / "ledger.db"
    junk.write_bytes(b"this is not a database" * 100)
    for create in (True, False):
        with pytest.raises(EnvironmentProblem, match="unusable"):
            open_ledger(sqlite_url(junk), create=create)
