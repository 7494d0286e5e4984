"""A worker whose PostgreSQL stops: it stops taking jobs and exits 4 with one clear message.

The server is the test's own scratch server (the session's is shared), stopped with
``pg_ctl`` while the worker waits for jobs. The worker notices within two looks at the
database (five seconds apart), or sooner through the queue's own connections, and exits;
it never prints a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.postgres_server import pg_ctl

from webmg_ops.backups.scratchdb import scratch_server
from webmg_ops.errors import ExitCode

pytestmark = pytest.mark.tools

STARTED = "worker on "
EXIT_TIMEOUT_S = 90


def test_a_worker_that_loses_its_database_stops_cleanly(tmp_path: Path) -> None:
    with scratch_server(listen_tcp=True) as server:
        env = dict(
            os.environ,
            WEBMG_LEDGER_URL=server.url,
            WEBMG_VAR=str(tmp_path / "var"),
            WEBMG_OPERATOR="Ana Lima",
        )
        env.pop("WEBMG_QUEUE_URL", None)
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("webmg-ops")), "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        started = threading.Event()

        def read() -> None:
            assert worker.stderr is not None
            for line in worker.stderr:
                lines.append(line)
                if STARTED in line:
                    started.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert started.wait(EXIT_TIMEOUT_S), "".join(lines)
            pg_ctl(server, "stop")
            code = worker.wait(timeout=EXIT_TIMEOUT_S)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        reader.join(timeout=10)
    err = "".join(lines)
    assert code == ExitCode.ENVIRONMENT, err
    assert "the job queue's PostgreSQL could not be reached" in err
    assert "stopped taking jobs" in err
    assert "Traceback" not in err
