"""Helpers for the service's tests: a ledger on each backend, and what the ledger holds.

A test module imports :func:`ledger_url` to run every test that uses the ``cli``
or ``settings`` fixtures on SQLite and on PostgreSQL (a PostgreSQL case is a
``tools`` test: it starts a server, or uses WEBMG_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from support.capability import missing
from support.ledger import BACKENDS, POSTGRES_VARIABLE, backend_url
from support.postgres_server import postgres_server
from support.run_entries import ACTOR, make_entry
from webmg_ops.config.clients import load_client
from webmg_ops.ledger import Entry, NewEntry, open_ledger
from webmg_ops.ledger.canonical import canonical_json
from webmg_ops.service import changes
from webmg_ops.service.incidents import IncidentRules, rules_for
from webmg_ops.settings import Settings


@pytest.fixture(scope="session")
def service_postgres() -> Iterator[None]:
    """Make WEBMG_TEST_POSTGRES_URL name a server for the session: the one given, or one
    started here (a missing PostgreSQL fails the test, see :mod:`support.capability`)."""
    if os.environ.get(POSTGRES_VARIABLE):
        yield
        return
    with postgres_server() as url:
        if url is None:
            missing("PostgreSQL binaries not found: run `make setup`")
        os.environ[POSTGRES_VARIABLE] = str(url)
        try:
            yield
        finally:
            os.environ.pop(POSTGRES_VARIABLE, None)


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Return the URL of a private, empty ledger on each backend."""
    if request.param == "postgresql":
        request.getfixturevalue("service_postgres")
    with backend_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def settings(inventories: Path, ledger_url: str, tmp_path: Path) -> Settings:
    """Return settings on the private inventories and ledger."""
    return Settings(inventories=inventories, ledger_url=ledger_url, var_dir=tmp_path / "var")


def ledger_entries(url: str) -> list[Entry]:
    """Given a ledger's URL, return every entry it holds (none when it does not exist)."""
    with open_ledger(url, create=False, missing_ok=True) as ledger:
        return list(ledger.entries())


def kinds_in(url: str) -> list[str]:
    """Given a ledger's URL, return the kinds of its entries, oldest first."""
    return [entry.kind for entry in ledger_entries(url)]


def output(text: str) -> Any:
    """Given a command's stdout under --json, return the document."""
    return json.loads(text)


def stored(drafts: Sequence[NewEntry], first_seq: int, at: datetime) -> list[Entry]:
    """Given drafts of entries, the seq of the first and when, return them as the ledger
    would store them (consecutive seqs, the drafts' actor or the tests' operator)."""
    return [
        make_entry(
            first_seq + offset,
            draft.kind,
            dict(draft.payload),
            draft.at or at,
            client=draft.client or "",
            actor=draft.actor or ACTOR,
        )
        for offset, draft in enumerate(drafts)
    ]


def append_as_engine(url: str, kind: str, client: str, payload: dict[str, Any]) -> Entry:
    """Given a ledger, append one entry the way the engine does (its own writer, not the
    service's), e.g. a run's ``run-finished`` or a deploy's ``change-deployed``."""
    with open_ledger(url) as ledger:
        return ledger.append(kind, client, payload)


class EntryList:
    """Entries as the ledger would hand them back (a seq each, in order), for the tests
    of the pure decision modules: no database, no hash chain."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self._seq = itertools.count(1)

    def add(self, draft: NewEntry, at: datetime | None = None) -> Entry:
        """Given a drafted entry (and its instant, when the draft has none), return it as
        stored: the next seq, its time in UTC."""
        when = draft.at or at
        assert when is not None and when.tzinfo is not None
        entry = Entry(
            seq=next(self._seq),
            kind=draft.kind,
            client=draft.client,
            at=when.astimezone(UTC),
            actor=draft.actor or "operator",
            payload_json=canonical_json(dict(draft.payload)),
            prev_hash="0" * 64,
            hash="0" * 64,
        )
        self.entries.append(entry)
        return entry


@pytest.fixture
def rules(inventories: Path) -> Callable[[str], IncidentRules]:
    """Return a function giving a client's incident rules, read from the test inventories."""

    def load(client: str) -> IncidentRules:
        return rules_for(load_client(inventories, client))

    return load


def open_incident(
    cli: Callable[..., Any],
    client: str,
    *,
    title: str = "portal down",
    impact: str = "availability",
    criticality: str = "critical",
) -> dict[str, Any]:
    """Given the cli fixture and a client, open an incident through ``incident open
    --json`` (a P1 by default: availability, critical) and return the document printed."""
    done = cli(
        "incident",
        "open",
        client,
        "--title",
        title,
        "--impact",
        impact,
        "--criticality",
        criticality,
        "--json",
    )
    assert done.code == 0, done
    document: dict[str, Any] = json.loads(done.out)
    return document


#: When a change's story starts by default: a Monday in winter time (CET = UTC+1).
STORY_START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class ChangeStory:
    """A client's entries as the ledger would hold them, appended step by step, a minute
    apart from ``start``; its change is the first one (``CHG-1``)."""

    def __init__(self, start: datetime = STORY_START) -> None:
        self.entries: list[Entry] = []
        self._start = start

    def add(self, drafted: NewEntry | Sequence[NewEntry]) -> list[Entry]:
        """Given one drafted entry or several, store them and return them as stored."""
        drafts = [drafted] if isinstance(drafted, NewEntry) else list(drafted)
        at = self._start + timedelta(minutes=len(self.entries))
        new = stored(drafts, len(self.entries) + 1, at)
        self.entries.extend(new)
        return new

    @property
    def change(self) -> changes.Change:
        """Return the change as derived from the entries so far."""
        return changes.find_change(self.entries, "CHG-1")
