"""``webmg-ops approve`` accepts only an action whose runs consume an approval under the
client's policy: any other exits 2 with the list of actions that do, and writes nothing.

The expected lists are the rule stated independently: riverton (institutional-sla,
government) requires approvals, and the actions that change hosts under a window
(update, harden) consume one; alpenhof (stability-security, hotel) requires none. A
deploy consumes the approval of the change it deploys (``change approve``), never one
recorded for the action.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from support.service import ledger_entries

from webmg_ops.errors import ExitCode

Cli = Callable[..., Any]


@pytest.mark.parametrize("action", ["update", "harden"])
def test_an_action_that_consumes_an_approval_is_approved(
    cli: Cli, ledger_url: str, action: str
) -> None:
    done = cli("approve", "riverton", action, "--by", "M. Reed (CIO)", "--note", "CHG-7", "--json")
    assert done.code == ExitCode.OK, done
    (entry,) = ledger_entries(ledger_url)
    assert json.loads(done.out) == {
        "seq": entry.seq,
        "client": "riverton",
        "action": action,
        "by": "M. Reed (CIO)",
        "note": "CHG-7",
    }
    assert (entry.kind, entry.client, entry.payload) == (
        "approval",
        "riverton",
        {"action": action, "by": "M. Reed (CIO)", "note": "CHG-7"},
    )


@pytest.mark.parametrize(
    ("client", "action", "message"),
    [
        (
            "riverton",
            "backup",
            "a run of backup for riverton consumes no approval under its policy; "
            "actions that do: harden, update",
        ),
        ("riverton", "check", "actions that do: harden, update"),
        ("riverton", "drill", "actions that do: harden, update"),
        (
            "alpenhof",
            "update",
            "a run of update for alpenhof consumes no approval: its policy asks for none",
        ),
        ("alpenhof", "harden", "actions that do: none"),
        (
            "riverton",
            "deploy",
            "a run of deploy consumes the approval of the change it deploys, not one recorded "
            "for the action: webmg-ops change approve CHG-n --by WHO",
        ),
        ("terre-solidaire", "deploy", "webmg-ops change approve CHG-n"),
    ],
)
def test_an_action_that_consumes_no_approval_is_refused_and_nothing_is_written(
    cli: Cli, ledger_url: str, client: str, action: str, message: str
) -> None:
    done = cli("approve", client, action, "--by", "M. Reed", "--note", "n")
    assert done.code == ExitCode.BAD_INPUT, done
    assert message in done.err
    assert "Traceback" not in done.err
    assert ledger_entries(ledger_url) == []
    as_json = cli("approve", client, action, "--by", "M. Reed", "--note", "n", "--json")
    assert as_json.code == ExitCode.BAD_INPUT
    assert message in json.loads(as_json.err)["error"]
    assert ledger_entries(ledger_url) == []


def test_approve_for_an_unknown_client_is_bad_input(cli: Cli, ledger_url: str) -> None:
    done = cli("approve", "nowhere", "update", "--by", "M. Reed", "--note", "n")
    assert done.code == ExitCode.BAD_INPUT
    assert "unknown client 'nowhere'" in done.err
    assert ledger_entries(ledger_url) == []


def test_a_prospect_consumes_no_approval(cli: Cli, ledger_url: str, edit_contract: Any) -> None:
    """A government prospect's policy asks for approvals, but it may run none of the
    actions that consume one: nothing can be approved for it."""
    edit_contract("riverton", lambda data: data.pop("level"))
    done = cli("approve", "riverton", "update", "--by", "M. Reed", "--note", "n")
    assert done.code == ExitCode.BAD_INPUT, done
    assert "actions that do: none" in done.err
    assert ledger_entries(ledger_url) == []
