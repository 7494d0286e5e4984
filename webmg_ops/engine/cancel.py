"""Stopping a run on request: SIGINT and SIGTERM set a flag the run polls."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class CancelFlag:
    """Set by SIGINT/SIGTERM while a run is under way; polled by the runner."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        """Ask the run to stop."""
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


@contextmanager
def cancel_on_signals(flag: CancelFlag) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM set ``flag`` instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(_signum: int, _frame: Any) -> None:
        flag.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
