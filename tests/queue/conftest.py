"""The queue's tests: the ledger and the queue share one PostgreSQL database per test, on
a server started for the session (or the one given in WEBMG_TEST_POSTGRES_URL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.ledger import postgres_database
from support.postgres_server import session_postgres


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """Return the URL of the session's PostgreSQL server."""
    with session_postgres() as url:
        yield url


@pytest.fixture
def ledger_url(postgres_server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Return the URL of a new, empty PostgreSQL database for the ledger and the queue
    (the shared ``cli`` fixture passes it as --ledger), with an operator named; dropped
    afterwards."""
    with postgres_database() as url:
        monkeypatch.setenv("WEBMG_OPERATOR", "Ana Lima")
        monkeypatch.delenv("WEBMG_QUEUE_URL", raising=False)
        yield url
