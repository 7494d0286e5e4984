"""Two processes appending at once must queue on the write lock, not fork the chain; a
decision read from the ledger is read under that lock."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from support.ledger import BACKENDS, backend_url
from support.waiting import wait_until

from webmg_ops.ledger import Entry, NewEntry, open_ledger, verify_ledger

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


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_decision_read_from_the_ledger_waits_for_the_one_being_taken(
    backend: str, tmp_path: Path
) -> None:
    """Two steps deciding from the same history (two approvals of one change, say) must
    not both pass: the second reads the history only once the first is appended."""
    first_is_deciding = threading.Event()
    first_may_finish = threading.Event()
    seen_by_second: list[list[int]] = []

    def first(history: Sequence[Entry]) -> list[NewEntry]:
        first_is_deciding.set()
        first_may_finish.wait(60)
        return [NewEntry("note", "alpenhof", {"n": len(history) + 1})]

    def second(history: Sequence[Entry]) -> list[NewEntry]:
        seen_by_second.append([entry.payload["n"] for entry in history])
        return [NewEntry("note", "alpenhof", {"n": len(history) + 1})]

    def decide(derive: Callable[[Sequence[Entry]], list[NewEntry]]) -> None:
        with open_ledger(url) as ledger:
            ledger.append_derived("alpenhof", ["note"], derive)

    with backend_url(backend, tmp_path) as url:
        with open_ledger(url) as ledger:
            ledger.append("note", "alpenhof", {"n": 1})
        deciding = threading.Thread(target=decide, args=(first,))
        deciding.start()
        assert first_is_deciding.wait(60)
        waiting = threading.Thread(target=decide, args=(second,))
        waiting.start()
        try:
            # Had the second read the history at once, it would have done so by now.
            assert not wait_until(lambda: bool(seen_by_second), 1.0)
        finally:
            first_may_finish.set()
            deciding.join(60)
            waiting.join(60)
        assert seen_by_second == [[1, 2]]
        with open_ledger(url, create=False) as ledger:
            assert [entry.payload["n"] for entry in ledger.entries()] == [1, 2, 3]
            assert verify_ledger(ledger).ok
