"""Ledger tests run on SQLite and on a PostgreSQL server started for the session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from support.capability import missing
from support.consoles import widen_consoles
from support.ledger import POSTGRES_VARIABLE, Run, Runner
from support.postgres_server import postgres_server

from webmg_ops.cli.main import main


@pytest.fixture(scope="session", autouse=True)
def postgres_url() -> Iterator[str | None]:
    """Point the PostgreSQL tests at a server: the one given, or one started here.

    A missing PostgreSQL is a failure, not a skip (see :mod:`support.capability`).
    """
    given = os.environ.get(POSTGRES_VARIABLE)
    if given:
        yield given
        return
    with postgres_server() as url:
        if url is None:
            missing("PostgreSQL binaries not found: run `make setup`")
        if url is not None:
            os.environ[POSTGRES_VARIABLE] = url
        try:
            yield url
        finally:
            os.environ.pop(POSTGRES_VARIABLE, None)


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
