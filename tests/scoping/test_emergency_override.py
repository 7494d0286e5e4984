"""An emergency run past the diagnostic gate records what it overrode.

Until a client has a diagnostic on record, and while its contract says it is
not stabilized, a change is refused (exit 3, ``run-refused``); only
``--emergency --reason`` goes past, and the run's ``run-started`` entry then
names the gate it overrode, with the reason given. Each test is a real
``webmg-ops run update`` on a real ledger, for a client whose one host is a
loopback port nothing listens on: the run is opened in the ledger, then fails
at its preflight without touching any host. The client's window is open at
the time of the run, so the diagnostic gate is the only rule the emergency
goes past: what the entry names cannot come from the window.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.engine import add_unreachable_client
from support.governance import record_diagnostic

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import Entry, open_ledger
from webmg_ops.runs.records import RUN_FINISHED, RUN_REFUSED, RUN_STARTED

CLIENT = "local-emergency"
#: The name of the client's one window, open whenever a test runs.
OPEN_WINDOW = "open now"
REASON = "exploited flaw in the shop's TLS library"


def _window_open_now() -> dict[str, Any]:
    """Return a window that opened an hour ago and closes in two (in UTC, across midnight
    if need be): open for the whole of a test."""
    start = datetime.now(UTC) - timedelta(hours=1)
    return {
        "name": OPEN_WINDOW,
        "weekdays": [start.strftime("%a").lower()],
        "start": start.strftime("%H:%M"),
        "duration": "3h",
        "timezone": "UTC",
    }


@pytest.fixture
def edit_client(inventories: Path, var: Path) -> Callable[[Callable[[dict[str, Any]], None]], None]:
    """Add the client (atelier-nord's contract, an open window, one unreachable host);
    return a function that changes its contract."""

    def reaching_nothing(contract: dict[str, Any]) -> None:
        contract["windows"] = [_window_open_now()]
        # Nothing of the run may leave this machine: no offsite copy, no restore check.
        contract["backup"].pop("offsite", None)
        contract["backup"].pop("restore_check", None)

    file = add_unreachable_client(inventories, CLIENT, reaching_nothing) / "client.yml"

    def edit(change: Callable[[dict[str, Any]], None]) -> None:
        contract = yaml.safe_load(file.read_text())
        change(contract)
        file.write_text(yaml.safe_dump(contract, sort_keys=False))

    return edit


def _entries(ledger_url: str, kind: str) -> list[Entry]:
    with open_ledger(ledger_url, create=False) as ledger:
        return list(ledger.entries(client=CLIENT, kinds=(kind,)))


def _not_stabilized(contract: dict[str, Any]) -> None:
    contract["fit"]["stabilized"] = False


@pytest.mark.parametrize(
    ("gap", "diagnosed", "change"),
    [
        ("has no diagnostic on record", False, lambda _contract: None),
        ("is not stabilized", True, _not_stabilized),
    ],
    ids=["no-diagnostic", "not-stabilized"],
)
def test_an_emergency_past_the_diagnostic_gate_names_the_gate_and_the_reason(
    cli: Callable[..., Any],
    edit_client: Callable[[Callable[[dict[str, Any]], None]], None],
    ledger_url: str,
    gap: str,
    diagnosed: bool,
    change: Callable[[dict[str, Any]], None],
) -> None:
    edit_client(change)
    if diagnosed:
        with open_ledger(ledger_url) as ledger:
            record_diagnostic(ledger, CLIENT)

    # Without an emergency, the gate holds the change back, inside its window.
    refused = cli("run", CLIENT, "update", "--reason", "monthly updates")
    assert refused.code == ExitCode.REFUSED, refused
    assert f"{CLIENT} {gap}" in refused.err
    (refusal,) = _entries(ledger_url, RUN_REFUSED)
    assert refusal.payload["refusal"] == "diagnostic"
    assert _entries(ledger_url, RUN_STARTED) == []

    ran = cli("run", CLIENT, "update", "--emergency", "--reason", REASON, "--json")
    # Past the gate, the run starts; its one host has no SSH server, so it fails there.
    assert ran.code == ExitCode.FAILED, ran
    run_id = json.loads(ran.out)["run_id"]
    (started,) = _entries(ledger_url, RUN_STARTED)
    assert started.payload["run_id"] == run_id
    assert started.payload["emergency"] is True
    assert started.payload["reason"] == REASON
    assert started.payload["overridden"] == "diagnostic first"
    # The window was open: the gate is named even so, and only the gate.
    assert started.payload["window"] == OPEN_WINDOW
    (finished,) = _entries(ledger_url, RUN_FINISHED)[-1:]
    assert finished.payload["run_id"] == run_id
    assert [host["status"] for host in finished.payload["hosts"]] == ["unreachable"]
