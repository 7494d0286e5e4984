"""``webmg-ops run CLIENT deploy --change CHG-n`` up to the hosts, on a real ledger (SQLite
and PostgreSQL): what refuses a deploy, what it consumes, and what it records.

- A level that may not deploy (stability-security: ``changes.deploy_allowed: no``) is
  refused by policy: exit 3, one ``run-refused`` entry (what the engine records for any
  refused run), even in an emergency.
- A deploy without a usable change is bad input: exit 2, nothing written (no change, an
  unknown one, another client's, one naming no version, one not scheduled).
- A change the policy requires approved and is not, or a run outside every window, is
  refused: exit 3, one ``run-refused``.
- A deploy that starts consumes the change's approval, whatever its outcome: one whose
  hosts cannot be reached fails, records no ``change-deployed``, and leaves the change
  scheduled, to be approved again.
- A deploy that succeeded is recorded ``change-deployed`` (run and versions), after which
  the client's acceptance is taken.

The hosts of the demo clients are lab hosts; the one test that starts a deploy points
them at a closed port on loopback, so that the run ends at preflight.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.service import (
    append_as_engine,
    ledger_entries,
    ledger_url,
    output,
    service_postgres,
    settings,
)

from webmg_ops.config.clients import load_client
from webmg_ops.engine.deploy import deployed_entry
from webmg_ops.engine.governance import check_governance
from webmg_ops.errors import BadInput, ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.runs.records import RunRequest

__all__ = ["ledger_url", "service_postgres", "settings"]

Cli = Callable[..., Any]
EditContract = Callable[[str, Callable[[dict[str, Any]], None]], Path]
ALWAYS_OPEN = [{"name": "rehearsal", "always": True, "timezone": "UTC"}]
#: An item of each client's contracted scope, for the change's scope.
SCOPE_ITEM = {
    "alpenhof": "booking site",
    "terre-solidaire": "donation platform",
    "riverton": "citizen portal",
}
DEPLOYS = "webmg-demo-app=1.1"


def always_open(data: dict[str, Any]) -> None:
    # Every test is in a window, whatever the day: no window or freeze depends on the date.
    data["windows"] = ALWAYS_OPEN
    data["freezes"] = []


def diagnosed(url: str, client: str) -> None:
    """Record a successful diagnostic of CLIENT, as the engine would: changes wait for one."""
    append_as_engine(
        url,
        "run-finished",
        client,
        {"run_id": f"diagnose-{client}", "action": "diagnose", "outcome": "succeeded"},
    )


def change(
    cli: Cli, client: str, *, deploys: str | None = DEPLOYS, until: str = "scheduled"
) -> str:
    """Return a new change of CLIENT naming ``deploys``, taken through the flow up to
    ``until`` (estimated, scheduled or approved)."""
    args = ("--deploys", deploys) if deploys else ()
    done = cli(
        "change", "request", client, "--title", "App 1.1", "--description", "d", *args, "--json"
    )
    assert done.code == ExitCode.OK, done
    change_id: str = output(done.out)["id"]
    steps = [
        ("estimated", ("scope", change_id, "--in", SCOPE_ITEM[client])),
        ("estimated", ("estimate", change_id, "--hours", "2", "--risk", "low")),
        ("scheduled", ("schedule", change_id, "--window", "rehearsal")),
        ("approved", ("approve", change_id, "--by", "Marcus Reed (CIO)")),
    ]
    order = ["estimated", "scheduled", "approved"]
    for needed, step in steps:
        if order.index(needed) > order.index(until):
            break
        taken = cli("change", *step, "--json")
        assert taken.code == ExitCode.OK, taken
    return change_id


@pytest.fixture
def open_windows(edit_contract: EditContract) -> None:
    for client in SCOPE_ITEM:
        edit_contract(client, always_open)


def deploy(cli: Cli, client: str, *args: str) -> Any:
    return cli("run", client, "deploy", "--reason", "release", *args)


@pytest.mark.usefixtures("open_windows")
@pytest.mark.parametrize("emergency", [(), ("--emergency",)])
def test_a_level_that_may_not_deploy_is_refused_by_policy(
    cli: Cli, ledger_url: str, emergency: tuple[str, ...]
) -> None:
    """stability-security keeps the application as it is: exit 3, the refusal recorded,
    nothing else written; an emergency does not override it."""
    diagnosed(ledger_url, "alpenhof")
    change_id = change(cli, "alpenhof")
    before = ledger_entries(ledger_url)
    refused = deploy(cli, "alpenhof", "--change", change_id, *emergency)
    assert refused.code == ExitCode.REFUSED, refused
    assert "alpenhof may not deploy" in refused.err
    assert "changes.deploy_allowed: no, from the level stability-security" in refused.err
    (entry,) = ledger_entries(ledger_url)[len(before) :]
    assert (entry.kind, entry.payload["refusal"], entry.payload["action"]) == (
        "run-refused",
        "level",
        "deploy",
    )


@pytest.mark.usefixtures("open_windows")
def test_a_contract_that_turns_deploys_off_is_refused(
    cli: Cli, ledger_url: str, edit_contract: EditContract
) -> None:
    diagnosed(ledger_url, "terre-solidaire")
    change_id = change(cli, "terre-solidaire")
    edit_contract("terre-solidaire", lambda data: data.update(changes={"deploy_allowed": False}))
    refused = deploy(cli, "terre-solidaire", "--change", change_id)
    assert refused.code == ExitCode.REFUSED, refused
    assert "from the contract" in refused.err
    assert ledger_entries(ledger_url)[-1].payload["refusal"] == "level"


@pytest.mark.usefixtures("open_windows")
@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        ("scheduled", (), "deploy needs --change CHG-n"),
        ("scheduled", ("--change", "CHG-999"), "unknown change CHG-999"),
        ("scheduled", ("--change", "CHG-x"), "'CHG-x' is not a change id"),
        ("scheduled", ("--change", "INC-1"), "'INC-1' is not a change id"),
        ("other", ("--change", "{id}"), "{id} is a change of riverton, not of terre-solidaire"),
        ("no version", ("--change", "{id}"), "{id} names no version to deploy"),
        (
            "estimated",
            ("--change", "{id}"),
            "{id} is estimated: deploy needs a change that is scheduled or approved",
        ),
        (
            "scheduled",
            ("--change", "{id}", "-e", "updates_approved_versions={}"),
            "come from the contract and policy",
        ),
        ("scheduled", ("--change", "{id}", "-e", "updates_mode=all"), "updates_mode come from"),
    ],
)
def test_a_deploy_without_a_usable_change_is_bad_input(
    cli: Cli, ledger_url: str, make: str, args: tuple[str, ...], message: str
) -> None:
    """Exit 2 with the reason, nothing written, whatever else would refuse the run."""
    diagnosed(ledger_url, "terre-solidaire")
    if make == "other":
        change_id = change(cli, "riverton")
    elif make == "no version":
        change_id = change(cli, "terre-solidaire", deploys=None)
    else:
        change_id = change(cli, "terre-solidaire", until=make)
    before = ledger_entries(ledger_url)
    done = deploy(cli, "terre-solidaire", *(arg.replace("{id}", change_id) for arg in args))
    assert done.code == ExitCode.BAD_INPUT, done
    assert message.replace("{id}", change_id) in done.err
    assert "Traceback" not in done.err
    assert ledger_entries(ledger_url) == before
    # A plan refuses what the run would refuse.
    planned = cli(
        "plan", "terre-solidaire", "deploy", *(a.replace("{id}", change_id) for a in args)
    )
    assert planned.code == ExitCode.BAD_INPUT, planned
    assert ledger_entries(ledger_url) == before


@pytest.mark.usefixtures("open_windows")
def test_governance_itself_refuses_a_deploy_of_no_change_or_of_another_clients(
    cli: Cli, ledger_url: str, inventories: Path
) -> None:
    """The governance gate does not rely on the request having been read first: asked
    directly, it refuses a deploy naming no change, or a change of another client, even
    one the policy would otherwise let through."""
    diagnosed(ledger_url, "terre-solidaire")
    theirs = change(cli, "riverton")
    client = load_client(inventories, "terre-solidaire")
    at = datetime.now(UTC)
    with open_ledger(ledger_url) as ledger:
        for named, message in (
            (None, "deploy needs --change CHG-n: the change naming the version it installs"),
            (theirs, f"unknown change {theirs}"),
        ):
            with pytest.raises(BadInput) as refused:
                check_governance(
                    client,
                    "deploy",
                    check=False,
                    emergency=False,
                    reason="release",
                    at=at,
                    ledger=ledger,
                    change=named,
                )
            assert refused.value.message == message


def test_change_is_only_for_a_deploy(cli: Cli, ledger_url: str) -> None:
    done = cli("run", "terre-solidaire", "update", "--change", "CHG-1")
    assert done.code == ExitCode.BAD_INPUT, done
    assert "--change names the change a deploy installs; update takes none" in done.err
    assert ledger_entries(ledger_url) == []


@pytest.mark.usefixtures("open_windows")
def test_a_change_the_policy_requires_approved_is_refused_until_it_is(
    cli: Cli, ledger_url: str, inventories: Path
) -> None:
    """riverton (institutional-sla, government): exit 3, the refusal recorded, until
    ``change approve``; an approval recorded for the action does not count."""
    diagnosed(ledger_url, "riverton")
    change_id = change(cli, "riverton")
    before = ledger_entries(ledger_url)
    refused = deploy(cli, "riverton", "--change", change_id)
    assert refused.code == ExitCode.REFUSED, refused
    assert f"requires an approval before {change_id} is deployed" in refused.err
    assert f"webmg-ops change approve {change_id}" in refused.err
    (entry,) = ledger_entries(ledger_url)[len(before) :]
    assert (entry.kind, entry.payload["refusal"]) == ("run-refused", "approval")
    # The user is shown the refusal's own log, which says what was refused and why.
    (log_line,) = [line for line in refused.err.splitlines() if line.startswith("run log: ")]
    refusal_log = Path(log_line.removeprefix("run log: "))
    assert f"requires an approval before {change_id} is deployed" in refusal_log.read_text()
    # A dry run changes nothing: it looks at the change without its approval.
    with open_ledger(ledger_url) as ledger:
        dry = check_governance(
            load_client(inventories, "riverton"),
            "deploy",
            check=True,
            emergency=False,
            reason="release",
            at=datetime.now(UTC),
            ledger=ledger,
            change=change_id,
        )
    assert dry.approval_seq is None
    # The run-level approve command does not approve a change's deploy.
    generic = cli("approve", "riverton", "deploy", "--by", "M. Reed", "--note", "n")
    assert generic.code == ExitCode.BAD_INPUT
    approved = cli("change", "approve", change_id, "--by", "Marcus Reed (CIO)", "--json")
    assert approved.code == ExitCode.OK
    planned = output(cli("plan", "riverton", "deploy", "--change", change_id, "--json").out)
    assert planned["would_be_refused"] is False
    assert planned["approval_seq"] == output(approved.out)["approval_seq"]


def test_a_deploy_outside_every_window_is_refused(
    cli: Cli, ledger_url: str, edit_contract: EditContract
) -> None:
    """Scheduled in a window, deployed outside one: exit 3, the refusal recorded."""
    edit_contract("terre-solidaire", always_open)
    diagnosed(ledger_url, "terre-solidaire")
    change_id = change(cli, "terre-solidaire")
    # A window on another weekday than today's: closed now.
    other_day = (datetime.now(UTC) + timedelta(days=3)).strftime("%a").lower()

    def closed(data: dict[str, Any]) -> None:
        data["windows"] = [
            {
                "name": "later",
                "weekdays": [other_day],
                "start": "12:00",
                "duration": "1h",
                "timezone": "UTC",
            }
        ]

    edit_contract("terre-solidaire", closed)
    before = ledger_entries(ledger_url)
    refused = deploy(cli, "terre-solidaire", "--change", change_id)
    assert refused.code == ExitCode.REFUSED, refused
    assert "outside its maintenance windows" in refused.err
    (entry,) = ledger_entries(ledger_url)[len(before) :]
    assert (entry.kind, entry.payload["refusal"]) == ("run-refused", "window")


@pytest.mark.usefixtures("open_windows")
def test_the_plan_shows_what_a_deploy_installs_in_which_batches(cli: Cli, ledger_url: str) -> None:
    diagnosed(ledger_url, "terre-solidaire")
    change_id = change(cli, "terre-solidaire")
    before = ledger_entries(ledger_url)
    done = cli("plan", "terre-solidaire", "deploy", "--change", change_id, "--json")
    assert done.code == ExitCode.OK, done
    plan = output(done.out)
    assert plan["change"] == change_id
    assert plan["deploys"] == {"webmg-demo-app": "1.1"}
    # The canary first, then half of the three hosts (one) per batch: the update's batches.
    assert plan["batches"] == [["terre-web1"], ["terre-web2"], ["terre-db1"]]
    assert plan["playbook"].endswith("playbooks/update.yml")
    assert ledger_entries(ledger_url) == before


def test_plan_names_the_deploys_window_diagnostic_and_change_approval(
    cli: Cli, ledger_url: str, edit_contract: EditContract
) -> None:
    """A scheduled change of riverton (approvals required), not approved, deployed outside
    its windows before any diagnostic: plan names the three reasons, the change's approval
    last, and writes nothing."""
    edit_contract("riverton", always_open)
    change_id = change(cli, "riverton")
    other_day = (datetime.now(UTC) + timedelta(days=3)).strftime("%a").lower()
    edit_contract(
        "riverton",
        lambda data: data.update(
            windows=[
                {
                    "name": "later",
                    "weekdays": [other_day],
                    "start": "12:00",
                    "duration": "1h",
                    "timezone": "UTC",
                }
            ]
        ),
    )
    before = ledger_entries(ledger_url)
    done = cli("plan", "riverton", "deploy", "--change", change_id, "--json")
    assert done.code == ExitCode.REFUSED, done
    refusals = output(done.out)["refusals"]
    assert [refused["kind"] for refused in refusals] == ["window", "diagnostic", "approval"]
    assert f"{change_id}" in refusals[2]["message"]
    assert ledger_entries(ledger_url) == before


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


#: Open every day, all day: an always-open window is for lab-only clients.
ALL_DAY = [
    {
        "name": "all day",
        "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": "00:00",
        "duration": "24h",
        "timezone": "UTC",
    }
]


def _unreachable(inventories: Path, client: str) -> None:
    """Point every host of CLIENT at a closed port on loopback (preflight cannot reach it),
    with a window open all day (its hosts are no longer lab hosts)."""
    contract = inventories / client / "client.yml"
    terms = yaml.safe_load(contract.read_text())
    terms["windows"] = ALL_DAY
    contract.write_text(yaml.safe_dump(terms, sort_keys=False))
    file = inventories / client / "hosts.yml"
    data = yaml.safe_load(file.read_text())
    port = _free_port()
    for group in data["all"]["children"].values():
        for host in group["hosts"].values():
            host.update(ansible_host="127.0.0.1", ansible_port=port)
    file.write_text(yaml.safe_dump(data))


@pytest.mark.usefixtures("open_windows")
def test_a_failed_deploy_consumes_the_approval_and_leaves_the_change_scheduled(
    cli: Cli, ledger_url: str, inventories: Path
) -> None:
    """The approval is consumed by the run that starts under it, whatever its outcome, as
    every run's approval: a second deploy needs a new ``change approve``."""
    diagnosed(ledger_url, "riverton")
    change_id = change(cli, "riverton", until="approved")
    approval_seq = output(cli("change", "show", change_id, "--json").out)["approval_seq"]
    _unreachable(inventories, "riverton")
    failed = deploy(cli, "riverton", "--change", change_id, "--json")
    assert failed.code == ExitCode.FAILED, failed
    report = json.loads(failed.out)
    assert report["outcome"] == "failed"
    assert report["change"] is None
    kinds = [entry.kind for entry in ledger_entries(ledger_url)]
    assert "change-deployed" not in kinds
    (started,) = [e for e in ledger_entries(ledger_url) if e.kind == "run-started"]
    assert (started.payload["change"], started.payload["approval_seq"]) == (
        change_id,
        approval_seq,
    )
    shown = output(cli("change", "show", change_id, "--json").out)
    assert (shown["state"], shown["approval_seq"]) == ("scheduled", None)
    assert shown["deploy_runs"] == [report["run_id"]]
    again = deploy(cli, "riverton", "--change", change_id)
    assert again.code == ExitCode.REFUSED, again
    assert "requires an approval" in again.err
    reapproved = cli("change", "approve", change_id, "--by", "Marcus Reed (CIO)", "--json")
    assert reapproved.code == ExitCode.OK, reapproved
    plan = output(cli("plan", "riverton", "deploy", "--change", change_id, "--json").out)
    assert plan["would_be_refused"] is False
    assert plan["approval_seq"] == output(reapproved.out)["approval_seq"] != approval_seq


@pytest.mark.usefixtures("open_windows")
def test_a_deploy_that_succeeded_is_recorded_and_then_accepted(
    cli: Cli, ledger_url: str, inventories: Path
) -> None:
    """The engine drafts ``change-deployed`` from a successful deploy's ``run-finished``
    over every host of the client (never from a failed one, a dry run or a run limited to
    some hosts); the change is then deployed, and the client's acceptance, refused before,
    is taken."""
    change_id = change(cli, "terre-solidaire")
    early = cli("change", "accept", change_id, "--by", "Claire Dubois")
    assert early.code == ExitCode.BAD_INPUT
    assert "accept needs a change that is deployed" in early.err
    client = load_client(inventories, "terre-solidaire")
    request = RunRequest(
        "terre-solidaire", "deploy", change=change_id, deploys={"webmg-demo-app": "1.1"}
    )
    versions = {
        "terre-web1": {"webmg-demo-app": {"before": "1.0", "after": "1.1"}},
        "terre-db1": {"webmg-demo-app": {"before": None, "after": None}},
    }
    every_host = ("terre-web1", "terre-web2", "terre-db1")
    finished: dict[str, Any] = {
        "run_id": "r1",
        "outcome": "succeeded",
        "hosts": [{"host": host, "status": "ok"} for host in every_host],
        "evidence": {"deployment": {"packages": {"webmg-demo-app": "1.1"}, "hosts": versions}},
    }
    with open_ledger(ledger_url) as ledger:
        assert deployed_entry(ledger, client, request, {**finished, "outcome": "failed"}) is None
        dry_run = RunRequest("terre-solidaire", "deploy", check=True, change=change_id)
        assert deployed_entry(ledger, client, dry_run, finished) is None
        # A deploy limited to some hosts leaves the others on the old version: not deployed.
        limited = {**finished, "hosts": finished["hosts"][:1]}
        assert deployed_entry(ledger, client, request, limited) is None
        drafted = deployed_entry(ledger, client, request, finished)
        assert drafted is not None
        (entry,) = ledger.append_many([drafted])
    assert (entry.kind, entry.client) == ("change-deployed", "terre-solidaire")
    assert entry.payload == {
        "change": change_id,
        "run_id": "r1",
        "packages": {"webmg-demo-app": "1.1"},
        "hosts": versions,
    }
    shown = output(cli("change", "show", change_id, "--json").out)
    assert (shown["state"], shown["deployed_run"]) == ("deployed", "r1")
    accepted = cli("change", "accept", change_id, "--by", "Claire Dubois", "--json")
    assert accepted.code == ExitCode.OK, accepted
    assert output(accepted.out)["state"] == "accepted"
