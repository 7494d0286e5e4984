"""``submit``, ``queue``, ``cancel`` and ``worker --drain`` on a real PostgreSQL.

Every test has its own database, shared by the ledger and the queue as on a team's
controllers. What the ledger holds is read back through the ledger's own reader;
what the queue holds, through ``queue --json``. No test here reaches a host: the
runs a worker starts are refused by the engine before any SSH (a closed window), or
refused by the worker itself (another revision).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli_result import CliResult

from webmg_ops.ansible.revision import project_revision
from webmg_ops.errors import ExitCode
from webmg_ops.ledger import Entry, open_ledger
from webmg_ops.queue.app import open_queue
from webmg_ops.queue.jobs import new_request, submit
from webmg_ops.queue.worker import register_tasks
from webmg_ops.settings import Settings

pytestmark = pytest.mark.tools

CLIENT = "atelier-nord"
WORKER_TIMEOUT_S = 120

Cli = Callable[..., CliResult]


def _entries(url: str, kind: str) -> list[Entry]:
    with open_ledger(url) as ledger:
        return [entry for entry in ledger.entries() if entry.kind == kind]


def _all_entries(url: str) -> list[Entry]:
    with open_ledger(url, create=False, missing_ok=True) as ledger:
        return list(ledger.entries())


def _queue(cli: Cli) -> dict[int, dict[str, Any]]:
    done = cli("queue", "--json")
    assert done.code == ExitCode.OK, done.err
    return {job["id"]: job for job in json.loads(done.out)}


def test_a_submitted_run_is_queued_and_recorded_with_who_asked(cli: Cli, ledger_url: str) -> None:
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    done = cli(
        "submit",
        CLIENT,
        "update",
        "--at",
        at.isoformat(),
        "--reason",
        "monthly updates",
        "--ticket",
        "T-42",
        "--limit",
        "atelier-web1",
        "--json",
    )
    assert done.code == ExitCode.OK, done.err
    job = json.loads(done.out)["job"]
    queued = _queue(cli)
    assert queued[job]["status"] == "queued"
    assert (queued[job]["client"], queued[job]["action"], queued[job]["by"]) == (
        CLIENT,
        "update",
        "Ana Lima",
    )
    assert datetime.fromisoformat(queued[job]["scheduled_at"]) == at
    (requested,) = _entries(ledger_url, "run-requested")
    assert requested.client == CLIENT
    assert requested.actor == "Ana Lima"
    assert requested.payload["job"] == job
    assert requested.payload["reason"] == "monthly updates"
    assert requested.payload["ticket"] == "T-42"
    assert requested.payload["limit"] == "atelier-web1"
    assert requested.payload["revision"] == project_revision() != "unknown"
    assert datetime.fromisoformat(requested.payload["at"]) == at
    assert cli("ledger", "verify").code == ExitCode.OK


def test_the_same_run_is_not_queued_twice_but_another_action_or_mode_is(
    cli: Cli, ledger_url: str
) -> None:
    first = cli("submit", CLIENT, "check", "--json")
    assert first.code == ExitCode.OK, first.err
    job = json.loads(first.out)["job"]
    again = cli("submit", CLIENT, "check", "--reason", "other words, same run")
    assert again.code == ExitCode.REFUSED
    assert f"check for {CLIENT} is already queued (job {job})" in again.err
    # Another action, or the same in check mode, is another run.
    assert cli("submit", CLIENT, "drill").code == ExitCode.OK
    assert cli("submit", CLIENT, "harden", "--check").code == ExitCode.OK
    assert cli("submit", CLIENT, "harden").code == ExitCode.OK
    dry_again = cli("submit", CLIENT, "harden", "--check")
    assert dry_again.code == ExitCode.REFUSED
    assert f"harden (check) for {CLIENT} is already queued" in dry_again.err
    queued = sorted((job["action"], job["check"]) for job in _queue(cli).values())
    assert queued == [("check", False), ("drill", False), ("harden", False), ("harden", True)]
    assert len(_entries(ledger_url, "run-requested")) == 4


def test_a_queued_run_is_canceled_and_recorded_once(cli: Cli, ledger_url: str) -> None:
    job = json.loads(cli("submit", CLIENT, "check", "--json").out)["job"]
    done = cli("cancel", str(job))
    assert done.code == ExitCode.OK, done.err
    assert f"job {job}: canceled" in done.err
    assert _queue(cli)[job]["status"] == "canceled"
    (canceled,) = _entries(ledger_url, "run-request-canceled")
    assert canceled.payload == {"job": job, "action": "check"}
    again = cli("cancel", str(job))
    assert again.code == ExitCode.REFUSED
    assert f"job {job} is already canceled" in again.err
    assert len(_entries(ledger_url, "run-request-canceled")) == 1
    # Canceled, it no longer holds the client and action: the same run may be queued again.
    assert cli("submit", CLIENT, "check").code == ExitCode.OK


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("cancel", "999"), ExitCode.BAD_INPUT, "no job 999 in the queue"),
        (("submit", "nobody", "check"), ExitCode.BAD_INPUT, "nobody"),
        (("submit", CLIENT, "check", "--at", "2030-01-01T09:00"), ExitCode.BAD_INPUT, "offset"),
        (("submit", CLIENT, "update", "--emergency"), ExitCode.BAD_INPUT, "needs --reason"),
        (("submit", CLIENT, "reboot"), ExitCode.BAD_INPUT, "reboot"),
        (("submit", CLIENT, "check", "--publish"), ExitCode.BAD_INPUT, "--publish is for a report"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_queues_nothing(
    cli: Cli, ledger_url: str, args: tuple[str, ...], code: ExitCode, message: str
) -> None:
    done = cli(*args)
    assert done.code == code, (done.out, done.err)
    assert message in done.err
    assert "Traceback" not in done.err
    assert _queue(cli) == {}
    assert [entry.kind for entry in _all_entries(ledger_url)] == []


def test_without_an_operator_nothing_is_queued(
    cli: Cli, ledger_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WEBMG_OPERATOR")
    # No git user either: a home of its own, no global git configuration.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    done = cli("submit", CLIENT, "check")
    assert done.code == ExitCode.BAD_INPUT
    assert "no operator to record" in done.err
    assert _queue(cli) == {}


def test_a_sqlite_ledger_has_no_queue(
    capsys: pytest.CaptureFixture[str], inventories: Path, tmp_path: Path
) -> None:
    from webmg_ops.cli.main import main

    ledger = tmp_path / "ledger.db"
    with pytest.raises(SystemExit) as done:
        main(["--inventories", str(inventories), "--ledger", f"sqlite:///{ledger}", "queue"])
    assert done.value.code == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "the job queue needs PostgreSQL" in err
    assert "WEBMG_QUEUE_URL" in err


def _worker(inventories: Path, ledger_url: str, *options: str) -> subprocess.CompletedProcess[str]:
    """Run ``webmg-ops worker --drain`` (and OPTIONS) as its own process, as an engineer
    would."""
    env = dict(os.environ, WEBMG_INVENTORIES=str(inventories), WEBMG_LEDGER_URL=ledger_url)
    env.pop("WEBMG_OPERATOR", None)
    return subprocess.run(
        [str(Path(sys.executable).with_name("webmg-ops")), "worker", "--drain", *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_S,
        check=False,
    )


def test_a_worker_refuses_a_job_of_another_revision(
    cli: Cli, ledger_url: str, inventories: Path
) -> None:
    settings = Settings(
        inventories=inventories, ledger_url=ledger_url, var_dir=Path(os.environ["WEBMG_VAR"])
    )
    request = new_request(settings, CLIENT, "check", reason="from an older checkout")
    older = replace(request, revision="0123456789ab")
    with open_queue(settings, register_tasks) as app:
        job = submit(settings, app, older, None)
    done = _worker(inventories, ledger_url)
    assert done.returncode == ExitCode.OK, done.stderr
    assert _queue(cli)[job]["status"] == "failed"
    (refused,) = _entries(ledger_url, "run-request-refused")
    assert refused.payload["job"] == job
    assert "0123456789ab" in refused.payload["reason"]
    assert project_revision() in refused.payload["reason"]
    assert refused.payload["reason"] in done.stderr
    assert _entries(ledger_url, "run-started") == []
    assert _entries(ledger_url, "run-refused") == []


def _closed_window(file: Path) -> None:
    data = yaml.safe_load(file.read_text())
    # A window that is certainly not open now: three days from today, at night.
    day = (datetime.now(UTC) + timedelta(days=3)).strftime("%a").lower()
    data["windows"] = [{"weekdays": [day], "start": "03:00", "duration": "1h", "timezone": "UTC"}]
    file.write_text(yaml.safe_dump(data, sort_keys=False))


def test_a_worker_runs_the_job_through_the_engine_as_the_submitter(
    cli: Cli, ledger_url: str, inventories: Path
) -> None:
    _closed_window(inventories / CLIENT / "client.yml")
    job = json.loads(cli("submit", CLIENT, "harden", "--reason", "quarterly", "--json").out)["job"]
    done = _worker(inventories, ledger_url)
    assert done.returncode == ExitCode.OK, done.stderr
    # The engine's governance refused the run, as it refuses one started by hand.
    (refused,) = _entries(ledger_url, "run-refused")
    assert refused.payload["refusal"] == "window"
    assert refused.actor == "Ana Lima"
    assert refused.payload["reason"] == "quarterly"
    assert _queue(cli)[job]["status"] == "failed"
    assert f"job {job}: harden for {CLIENT} ended with status {ExitCode.REFUSED}" in done.stderr
    assert "outside its maintenance windows" in done.stderr


def test_a_worker_writes_a_queued_report_as_the_submitter(
    cli: Cli, ledger_url: str, inventories: Path
) -> None:
    job = json.loads(cli("submit", CLIENT, "report", "--json").out)["job"]
    done = _worker(inventories, ledger_url)
    assert done.returncode == ExitCode.OK, done.stderr
    assert _queue(cli)[job]["status"] == "done"
    (written,) = _entries(ledger_url, "report-written")
    assert written.client == CLIENT
    assert written.actor == "Ana Lima"
    assert _entries(ledger_url, "run-started") == []


def test_a_draining_worker_waits_for_a_job_its_own_run_holds_back(
    cli: Cli, ledger_url: str, inventories: Path
) -> None:
    """Two jobs of one client: the second waits for the client's lock, held by the first
    one's run on this very worker; draining, the worker runs it once that run ends
    instead of stopping because nothing could be taken at that moment."""
    _closed_window(inventories / CLIENT / "client.yml")
    first = json.loads(cli("submit", CLIENT, "harden", "--reason", "q", "--json").out)["job"]
    second = json.loads(cli("submit", CLIENT, "report", "--json").out)["job"]
    done = _worker(inventories, ledger_url, "--concurrency", "2")
    assert done.returncode == ExitCode.OK, done.stderr
    queue = _queue(cli)
    assert queue[first]["status"] == "failed"  # refused: the window is closed
    assert queue[second]["status"] == "done", done.stderr
    (written,) = _entries(ledger_url, "report-written")
    assert written.client == CLIENT
