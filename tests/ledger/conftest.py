"""Ledger tests run on SQLite and on a PostgreSQL server started for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.consoles import widen_consoles
from support.ledger import Run, Runner
from support.postgres_server import session_postgres

from webmg_ops.cli.main import main
from webmg_ops.ledger import ranges


@pytest.fixture(scope="session", autouse=True)
def postgres_url() -> Iterator[str]:
    """Point the PostgreSQL tests at a server: the one given, or one started here."""
    with session_postgres() as url:
        yield url


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Runner:
    """Return a function that runs ``webmg-ops ARGS`` in-process."""
    widen_consoles(monkeypatch, 250)
    monkeypatch.delenv("WEBMG_LEDGER_URL", raising=False)

    def run_command(*args: str) -> Run:
        capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            main(list(args))
        captured = capsys.readouterr()
        return Run(int(done.value.code or 0), captured.out, captured.err)

    return run_command


@pytest.fixture(params=["in-one-pass", "in-ranges"])
def both_ways_of_verifying(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify every ledger of the test in one pass, then again in three ranges at once.

    Ledgers here are short, far below the length that is split by itself: the
    split is forced, so that each forgery is also met by the ranges' check.
    """
    count = 1 if request.param == "in-one-pass" else 3
    monkeypatch.setattr(ranges, "ranges_worth_forking", lambda _entries: count)
    # Idle servers earlier tests of this process left behind do not keep it to one pass.
    monkeypatch.setattr(ranges, "other_threads_running", lambda: False)
