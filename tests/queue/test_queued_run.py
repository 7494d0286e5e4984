"""A queued run's arguments, read back by a worker, and the queue's database URL.

The queue's database is shared by every controller: a worker checks what a job asks
before it runs anything, and builds the run's command line so that no value can pass
for an option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from webmg_ops.cli.report import report_command
from webmg_ops.cli.runs import run_command
from webmg_ops.errors import BadInput
from webmg_ops.queue.app import QUEUE_URL_VARIABLE, queue_conninfo
from webmg_ops.queue.jobs import QueuedRun
from webmg_ops.settings import Settings

GOOD: dict[str, Any] = {
    "client": "atelier-nord",
    "action": "update",
    "actor": "Ana Lima",
    "revision": "0123456789ab",
}


def test_the_arguments_come_back_as_the_same_request() -> None:
    request = QueuedRun(**GOOD, reason="monthly", ticket="T-1", limit="web*", check=True)
    assert QueuedRun.from_arguments(request.arguments()) == request


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shell": "rm -rf /"}, "unknown fields: shell"),
        ({"client": ""}, "needs client"),
        ({"actor": 7}, "needs actor"),
        ({"action": "reboot"}, "unknown action: 'reboot'"),
        ({"check": "yes"}, "check must be true or false"),
        ({"reason": ["a"]}, "reason must be text"),
        ({"limit": {"hosts": "all"}}, "limit must be text"),
        ({"publish": "yes"}, "publish must be true or false"),
        ({"publish": True}, "only a report"),
    ],
)
def test_a_request_a_worker_cannot_trust_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        QueuedRun.from_arguments({**GOOD, **change})


def test_missing_fields_are_refused() -> None:
    without_revision = {key: value for key, value in GOOD.items() if key != "revision"}
    with pytest.raises(BadInput, match="needs revision"):
        QueuedRun.from_arguments(without_revision)


def _parsed(argv: list[str]) -> dict[str, Any]:
    """Given a run's command line, return what ``run`` would read from it."""
    assert Path(argv[0]).name == "webmg-ops" and argv[1] == "run"
    context = run_command.make_context("run", argv[2:])
    return dict(context.params)


def test_every_value_reaches_run_as_itself_never_as_an_option() -> None:
    request = QueuedRun(
        **{**GOOD, "client": "--check"},
        reason="--emergency",
        ticket="-v",
        incident="INC-4",
        limit="--limit=all",
        change="--json",
    )
    params = _parsed(request.run_argv(12))
    assert params["client"] == "--check"
    assert params["action"] == "update"
    assert params["reason"] == "--emergency"
    assert params["ticket"] == "-v"
    assert params["incident"] == "INC-4"
    assert params["limit"] == "--limit=all"
    assert params["change"] == "--json"
    assert params["job"] == 12
    assert params["check"] is False and params["emergency"] is False
    assert params["as_json"] is True


def test_flags_and_absent_values_reach_run_as_asked() -> None:
    params = _parsed(QueuedRun(**GOOD, check=True, emergency=True, reason="outage").run_argv(3))
    assert params["check"] is True and params["emergency"] is True
    assert params["ticket"] is None and params["limit"] is None and params["change"] is None


def _settings(url: str) -> Settings:
    return Settings(inventories=Path("inventories"), ledger_url=url, var_dir=Path("var"))


def test_the_queue_lives_in_the_ledgers_postgresql_unless_told_otherwise() -> None:
    ledger = "postgresql+psycopg://webmg:secret@db.example:5432/webmg"
    assert (
        queue_conninfo(_settings(ledger), {}) == "postgresql://webmg:secret@db.example:5432/webmg"
    )
    own = "postgresql://queue@127.0.0.1/jobs"
    assert queue_conninfo(_settings(ledger), {QUEUE_URL_VARIABLE: own}) == own


def test_a_sqlite_ledger_or_queue_url_is_refused_and_no_password_is_shown() -> None:
    with pytest.raises(BadInput, match="needs PostgreSQL, and the ledger is 'sqlite:///"):
        queue_conninfo(_settings("sqlite:///var/ledger.db"), {})
    with pytest.raises(BadInput) as refused:
        queue_conninfo(_settings("sqlite:///x.db"), {QUEUE_URL_VARIABLE: "mysql://u:hunter2@h/q"})
    assert QUEUE_URL_VARIABLE in str(refused.value)
    assert "hunter2" not in str(refused.value)
    assert "u:***@h" in str(refused.value)


def test_a_queued_report_is_written_by_report_for_its_client_alone() -> None:
    request = QueuedRun(**{**GOOD, "action": "report", "client": "--publish"}, reason="due")
    argv = request.run_argv(5)
    assert Path(argv[0]).name == "webmg-ops"
    assert argv[1:] == ["report", "--json", "--", "--publish"]


def test_a_queued_report_to_publish_is_published_by_report_for_its_client_alone() -> None:
    request = QueuedRun(
        **{**GOOD, "action": "report", "client": "--period=2020-01"}, reason="due", publish=True
    )
    assert QueuedRun.from_arguments(request.arguments()) == request
    argv = request.run_argv(5)
    assert Path(argv[0]).name == "webmg-ops" and argv[1] == "report"
    params = report_command.make_context("report", argv[2:]).params
    assert params["client"] == "--period=2020-01"
    assert params["publish"] is True and params["period"] is None
    # Not asked: not published.
    unpublished = QueuedRun(**{**GOOD, "action": "report"}, reason="due").run_argv(5)
    assert report_command.make_context("report", unpublished[2:]).params["publish"] is False
