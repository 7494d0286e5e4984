"""Incidents detected by the monitor, on a real service on loopback and a real ledger
(SQLite and PostgreSQL): the policy's number of failures in a row opens exactly one
availability incident, with the check's criticality, through the incident flow; a
flapping check opens no second one; the recovery stops the restore clock. Failures
during a recorded run or inside a maintenance window are planned and open nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.http_services import Route, Service, serve
from support.service import append_as_engine, ledger_url, service_postgres

from webmg_ops.config.contract import Level
from webmg_ops.config.policy import LEVEL_DEFAULTS, SEVERITY_DEFAULTS
from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.ledger.samples import read_samples

# Fixtures of the service tests: every test here runs on SQLite and on PostgreSQL.
__all__ = ["ledger_url", "service_postgres"]

Cli = Callable[..., Any]
CHECK = "citizen portal"
#: The institutional-sla level opens incidents on its own, after this many failures.
FAILURES_TO_OPEN = LEVEL_DEFAULTS[Level.INSTITUTIONAL_SLA]["monitoring.failures_to_open"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def window_closed_now() -> dict[str, Any]:
    """Return a maintenance window that is certainly not open now (three days ahead)."""
    day = (datetime.now(UTC) + timedelta(days=3)).weekday()
    return {
        "name": "later",
        "weekdays": [WEEKDAYS[day]],
        "start": "02:00",
        "duration": "1h",
        "timezone": "UTC",
    }


def window_open_now() -> dict[str, Any]:
    """Return a maintenance window open now: it opened an hour ago, for three hours."""
    opened = datetime.now(UTC) - timedelta(hours=1)
    return {
        "name": "right now",
        "weekdays": [WEEKDAYS[opened.weekday()]],
        "start": opened.strftime("%H:%M"),
        "duration": "3h",
        "timezone": "UTC",
    }


@pytest.fixture
def portal(edit_contract: Callable[..., Any]) -> Iterator[Service]:
    """Serve riverton's portal on loopback; its contract's only check probes it, as a
    critical service, and its only window is closed now."""
    with serve({"/health": Route()}) as service:

        def point(data: dict[str, Any]) -> None:
            data["health_checks"] = [
                {
                    "name": CHECK,
                    "url": service.url("/health"),
                    "max_latency_ms": 2000,
                    "criticality": "critical",
                }
            ]
            data["windows"] = [window_closed_now()]

        edit_contract("riverton", point)
        yield service


def probe_once(cli: Cli, client: str = "riverton") -> dict[str, Any]:
    """Run ``monitor CLIENT --once --json``; return its document."""
    done = cli("monitor", client, "--once", "--json")
    assert done.code == ExitCode.OK, done
    document: dict[str, Any] = json.loads(done.out)
    return document


def incidents(cli: Cli, client: str = "riverton") -> list[dict[str, Any]]:
    """Return the client's incidents as ``incident list --json`` prints them."""
    done = cli("incident", "list", client, "--json")
    assert done.code == ExitCode.OK, done
    found: list[dict[str, Any]] = json.loads(done.out)
    return found


def test_failures_in_a_row_open_one_incident_and_recovery_stops_the_restore_clock(
    cli: Cli, portal: Service, ledger_url: str
) -> None:
    portal.routes["/health"] = Route(status=503, body=b"down")
    for _ in range(FAILURES_TO_OPEN - 1):
        probe_once(cli)
    assert incidents(cli) == []
    opened = probe_once(cli)
    assert opened["incidents_opened"] == [f"riverton/{CHECK}"]
    # More failures while it is open: still the one incident.
    for _ in range(2):
        assert probe_once(cli)["incidents_opened"] == []
    (incident,) = incidents(cli)
    assert incident["impact"] == "availability"
    assert incident["criticality"] == "critical"
    assert incident["severity"] == SEVERITY_DEFAULTS[Level.INSTITUTIONAL_SLA]["availability"][0]
    assert incident["state"] == "triage"
    with open_ledger(ledger_url, create=False) as ledger:
        (opening,) = list(ledger.entries(kinds=["incident-opened"]))
    assert opening.payload["check"] == CHECK and opening.payload["detected_by"] == "monitor"

    portal.routes["/health"] = Route()
    recovered = probe_once(cli)
    assert recovered["recoveries"] == [f"riverton/{CHECK}"]
    recovery_at = datetime.fromisoformat(recovered["samples"][0]["at"])
    shown = json.loads(cli("incident", "show", incident["id"], "--json").out)
    restore = shown["clocks"]["restore"]
    assert restore["state"] == "met"
    assert datetime.fromisoformat(restore["stopped_at"]) == recovery_at
    # Nobody acknowledged yet: the response clock still runs.
    assert shown["clocks"]["response"]["state"] == "running"
    assert probe_once(cli)["recoveries"] == []  # recorded once

    # Acknowledged after the recovery: mitigation is already done, next is the fix.
    assert cli("incident", "ack", incident["id"]).code == ExitCode.OK
    assert json.loads(cli("incident", "show", incident["id"], "--json").out)["state"] == "fix"

    # The check flaps while its incident is open: no storm of incidents.
    portal.routes["/health"] = Route(status=500)
    for _ in range(FAILURES_TO_OPEN + 1):
        assert probe_once(cli)["incidents_opened"] == []
    assert len(incidents(cli)) == 1


def test_failures_during_a_recorded_run_are_planned_and_open_nothing(
    cli: Cli, portal: Service, ledger_url: str
) -> None:
    # A run of riverton started (by another controller, so nothing reconciles it) and
    # not finished: its failures are planned work.
    started = append_as_engine(
        ledger_url,
        "run-started",
        "riverton",
        {
            "run_id": "r-planned",
            "action": "update",
            "controller": "controller-b",
            "pid": 1,
            "hosts": [],
        },
    )
    portal.routes["/health"] = Route(status=502)
    for _ in range(FAILURES_TO_OPEN + 1):
        assert probe_once(cli)["incidents_opened"] == []
    assert incidents(cli) == []
    with open_ledger(ledger_url) as ledger:
        samples = read_samples(ledger, "riverton", check=CHECK)
    assert samples and all(s.planned and s.planned_by == "run r-planned" for s in samples)

    # Once the run is finished, failures are outages again, counted afresh.
    append_as_engine(
        ledger_url,
        "run-finished",
        "riverton",
        {
            "run_id": "r-planned",
            "action": "update",
            "outcome": "succeeded",
            "started_seq": started.seq,
        },
    )
    documents = [probe_once(cli) for _ in range(FAILURES_TO_OPEN)]
    assert [bool(d["incidents_opened"]) for d in documents] == [False] * (FAILURES_TO_OPEN - 1) + [
        True
    ]


def test_failures_inside_a_maintenance_window_are_planned(
    cli: Cli, portal: Service, edit_contract: Callable[..., Any]
) -> None:
    edit_contract("riverton", lambda data: data.update(windows=[window_open_now()]))
    portal.routes["/health"] = Route(status=503)
    for _ in range(FAILURES_TO_OPEN):
        document = probe_once(cli)
        (sample,) = document["samples"]
        assert sample["planned"] and sample["planned_by"] == "window right now"
    assert incidents(cli) == []


def test_a_level_without_automatic_incidents_only_records_samples(
    cli: Cli, edit_contract: Callable[..., Any], ledger_url: str
) -> None:
    # continuous-evolution probes every 5 minutes but opens no incident on its own.
    assert not LEVEL_DEFAULTS[Level.CONTINUOUS_EVOLUTION]["monitoring.auto_incidents"]
    with serve({"/health": Route(status=500)}) as service:
        edit_contract(
            "terre-solidaire",
            lambda data: data.update(
                health_checks=[{"name": "donations", "url": service.url("/health")}],
                windows=[window_closed_now()],
            ),
        )
        for _ in range(FAILURES_TO_OPEN + 1):
            probe_once(cli, "terre-solidaire")
    assert incidents(cli, "terre-solidaire") == []
    with open_ledger(ledger_url) as ledger:
        stored = read_samples(ledger, "terre-solidaire")
    assert [s.up for s in stored] == [False] * (FAILURES_TO_OPEN + 1)
