"""Two processes appending at once must queue on the write lock, not fork the chain."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from support.ledger import BACKENDS, backend_url

from webmg_ops.ledger import open_ledger, verify_ledger

PER_PROCESS = 200


def append_entries(url: str, writer: str, start: multiprocessing.synchronize.Event) -> None:
    """Given a ledger URL and a writer's name, append PER_PROCESS entries one by one."""
    with open_ledger(url) as ledger:
        start.wait(timeout=60)
        for n in range(PER_PROCESS):
            ledger.append("note", "alpenhof", {"writer": writer, "n": n}, actor=writer)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_appending_at_once_keep_one_chain(backend: str, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with backend_url(backend, tmp_path) as url:
        start = context.Event()
        writers = [
            context.Process(target=append_entries, args=(url, name, start))
            for name in ("first", "second")
        ]
        for process in writers:
            process.start()
        start.set()
        for process in writers:
            process.join(timeout=300)
        assert [process.exitcode for process in writers] == [0, 0]

        with open_ledger(url, create=False) as ledger:
            report = verify_ledger(ledger)
            entries = list(ledger.entries())
        assert report.ok, report
        assert report.entries_checked == 2 * PER_PROCESS
        assert [entry.seq for entry in entries] == list(range(1, 2 * PER_PROCESS + 1))
        for writer in ("first", "second"):
            mine = [entry.payload["n"] for entry in entries if entry.actor == writer]
            assert mine == list(range(PER_PROCESS))
