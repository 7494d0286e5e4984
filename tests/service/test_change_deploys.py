"""What a change deploys, and what a deploy run does to the change, through the pure module
and on the command line (real ledger, SQLite and PostgreSQL).

A change names the application version it deploys (``--deploys PACKAGE=VERSION`` on its
request or its scope), checked by Debian's rules for package names and versions: a bad
one is exit 2 with the reason, nothing written. A deploy run that starts under the
change's approval consumes it, whatever its outcome: the change is scheduled again until
it is approved again. A dry run consumes nothing. ``change-deployed`` moves the change to
deployed and names its run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.change_runs import run_started
from support.service import (
    STORY_START,
    ChangeStory,
    ledger_entries,
    ledger_url,
    output,
    service_postgres,
    settings,
)

from webmg_ops.config.clients import Client, load_client
from webmg_ops.errors import BadInput, ExitCode
from webmg_ops.service import changes
from webmg_ops.service.changes import ChangeState

__all__ = ["ledger_url", "service_postgres", "settings"]

Cli = Callable[..., Any]
T0 = STORY_START  # where each story starts
CHANGE = "CHG-1"


@pytest.fixture
def alpenhof(inventories: Path) -> Client:
    return load_client(inventories, "alpenhof")


def approved_story(
    client: Client, deploys: tuple[str, ...] = ("webmg-demo-app=1.1",)
) -> ChangeStory:
    """Return a change naming ``deploys``, brought to approved by the flow's steps."""
    story = ChangeStory()
    story.add(
        changes.draft_request(
            "alpenhof", title="Booking app 1.1", description="d", requested_by="A", deploys=deploys
        )
    )
    story.add(
        changes.draft_scope(
            story.entries,
            CHANGE,
            included=["booking site"],
            excluded=[],
            contract_scope=client.contract.scope,
        )
    )
    story.add(
        changes.draft_estimate(
            story.entries, CHANGE, hours=2, risk="low", rollback=None, cap=timedelta(hours=8)
        )
    )
    story.add(
        changes.draft_schedule(
            story.entries,
            CHANGE,
            window_name="tuesday night",
            at=None,
            windows=client.contract.windows,
            freezes=client.policy.freezes,
            now=T0,
        )
    )
    story.add(changes.draft_approval(story.entries, CHANGE, by="Anna", note=""))
    assert story.change.state is ChangeState.APPROVED
    return story


def test_the_request_names_what_the_change_deploys_and_a_scope_may_correct_it(
    alpenhof: Client,
) -> None:
    story = approved_story(alpenhof, ("webmg-demo-app=1.1", "webmg-demo-tools=1:1.1-2+deb12u1"))
    assert story.entries[0].payload["deploys"] == {
        "webmg-demo-app": "1.1",
        "webmg-demo-tools": "1:1.1-2+deb12u1",
    }
    assert story.change.deployment == {
        "webmg-demo-app": "1.1",
        "webmg-demo-tools": "1:1.1-2+deb12u1",
    }
    assert story.change.document()["deploys"] == story.change.deployment
    # A scope without --deploys keeps the request's versions; one with it replaces them.
    second = ChangeStory()
    second.add(changes.draft_request("alpenhof", title="t", description="d", requested_by="A"))
    assert second.change.deployment == {}
    assert "deploys" not in second.entries[0].payload
    second.add(
        changes.draft_scope(
            second.entries,
            CHANGE,
            included=["booking site"],
            excluded=[],
            contract_scope=alpenhof.contract.scope,
            deploys=["webmg-demo-app=1.2"],
        )
    )
    assert second.change.deployment == {"webmg-demo-app": "1.2"}
    second.add(
        changes.draft_scope(
            second.entries,
            CHANGE,
            included=["booking site"],
            excluded=[],
            contract_scope=alpenhof.contract.scope,
        )
    )
    assert second.change.deployment == {"webmg-demo-app": "1.2"}


@pytest.mark.parametrize(
    "version",
    ["1.1", "10", "1:2.3", "2.0~rc1", "1.0-1", "1.0-1-2", "1:2.0-3+deb12u1", "1.2+b1"],
)
def test_debian_versions_are_accepted(version: str) -> None:
    assert changes.parse_deploys([f"webmg-demo-app={version}"]) == {"webmg-demo-app": version}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("webmg-demo-app", "expected PACKAGE=VERSION"),
        ("=1.1", "'' is not a Debian package name"),
        ("a=1.1", "'a' is not a Debian package name"),
        ("Webmg-App=1.1", "'Webmg-App' is not a Debian package name"),
        ("webmg_app=1.1", "'webmg_app' is not a Debian package name"),
        ("-app=1.1", "'-app' is not a Debian package name"),
        ("webmg-demo-app=", "'' is not a Debian version"),
        ("webmg-demo-app=v1.1", "'v1.1' is not a Debian version"),
        ("webmg-demo-app=1.1-", "'1.1-' is not a Debian version"),
        ("webmg-demo-app=x:1.1", "'x:1.1' is not a Debian version"),
        ("webmg-demo-app=1:", "'1:' is not a Debian version"),
        ("webmg-demo-app=1.1 beta", "'1.1 beta' is not a Debian version"),
        ("webmg-demo-app=1_1", "'1_1' is not a Debian version"),
        ("webmg-demo-app=1.0-1_2", "'1.0-1_2' is not a Debian version"),
        # A colon in the upstream part needs an epoch before it.
        ("webmg-demo-app=1.0-2:3", "'1.0-2:3' is not a Debian version"),
    ],
)
def test_bad_package_names_and_versions_are_bad_input(item: str, message: str) -> None:
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace("+", r"\+")):
        changes.parse_deploys([item])


def test_a_package_named_twice_is_bad_input() -> None:
    with pytest.raises(BadInput, match="--deploys names webmg-demo-app twice"):
        changes.parse_deploys(["webmg-demo-app=1.1", "webmg-demo-app=1.2"])


def test_a_deploy_run_consumes_the_changes_approval_whatever_its_outcome(
    alpenhof: Client,
) -> None:
    """The run-started naming the approval uses it up: a failed deploy leaves the change
    scheduled, approvable again; a dry run or another approval's run consumes nothing."""
    story = approved_story(alpenhof)
    approval = story.change.approval_seq
    assert approval is not None
    story.add(run_started("dry", None, check=True))
    story.add(run_started("other", approval - 1))
    assert story.change.state is ChangeState.APPROVED
    assert story.change.deploy_runs == ("other",)
    story.add(run_started("first", approval))
    consumed = story.change
    assert (consumed.state, consumed.approval_seq, consumed.approved_by) == (
        ChangeState.SCHEDULED,
        None,
        None,
    )
    assert consumed.deploy_runs == ("other", "first")
    with pytest.raises(BadInput, match="CHG-1 names no version"):
        changes.deployment_of(approved_story(alpenhof, ()).change, check=True)
    # Approved again, deployed by the second attempt.
    story.add(changes.draft_approval(story.entries, CHANGE, by="Anna", note="second try"))
    assert story.change.state is ChangeState.APPROVED
    story.add(run_started("second", story.change.approval_seq))
    versions = {"web1": {"webmg-demo-app": {"before": "1.0", "after": "1.1"}}}
    (deployed,) = story.add(
        changes.draft_deployed(story.change, run_id="second", versions=versions)
    )
    assert deployed.payload == {
        "change": CHANGE,
        "run_id": "second",
        "packages": {"webmg-demo-app": "1.1"},
        "hosts": versions,
    }
    assert (story.change.state, story.change.deployed_run) == (ChangeState.DEPLOYED, "second")
    assert [kind for _seq, kind, _at, _actor in story.change.history][-3:] == [
        "approval",
        "run-started",
        "change-deployed",
    ]


def test_deployment_of_needs_a_version_and_a_deployable_state(alpenhof: Client) -> None:
    story = approved_story(alpenhof)
    assert changes.deployment_of(story.change, check=False) == {"webmg-demo-app": "1.1"}
    requested = ChangeStory()
    requested.add(
        changes.draft_request(
            "alpenhof", title="t", description="d", requested_by="A", deploys=["webmg-app=2.0"]
        )
    )
    with pytest.raises(BadInput, match="CHG-1 is requested: deploy needs a change that is"):
        changes.deployment_of(requested.change, check=False)
    # A dry run changes nothing: it may look at a change not yet scheduled.
    assert changes.deployment_of(requested.change, check=True) == {"webmg-app": "2.0"}


def test_the_cli_records_what_a_change_deploys(cli: Cli, ledger_url: str) -> None:
    done = cli(
        "change",
        "request",
        "terre-solidaire",
        "--title",
        "Donation form 1.1",
        "--description",
        "d",
        "--deploys",
        "webmg-demo-app=1.1",
        "--json",
    )
    assert done.code == ExitCode.OK, done
    change_id = output(done.out)["id"]
    assert output(done.out)["deploys"] == {"webmg-demo-app": "1.1"}
    scoped = cli(
        "change",
        "scope",
        change_id,
        "--in",
        "donation platform",
        "--deploys",
        "webmg-demo-app=1.2",
        "--json",
    )
    assert scoped.code == ExitCode.OK, scoped
    (_request, scope) = ledger_entries(ledger_url)
    assert scope.payload["deploys"] == {"webmg-demo-app": "1.2"}
    shown = cli("change", "show", change_id)
    # The human-readable output goes to the console (stderr); --json alone to stdout.
    assert "deploys: webmg-demo-app 1.2" in shown.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--deploys", "webmg-demo-app"), "expected PACKAGE=VERSION"),
        (("--deploys", "Webmg=1.1"), "'Webmg' is not a Debian package name"),
        (("--deploys", "webmg-demo-app=latest"), "'latest' is not a Debian version"),
        (
            ("--deploys", "webmg-demo-app=1.1", "--deploys", "webmg-demo-app=1.2"),
            "--deploys names webmg-demo-app twice",
        ),
    ],
)
def test_a_bad_deploys_item_exits_2_and_writes_nothing(
    cli: Cli, ledger_url: str, args: tuple[str, ...], message: str
) -> None:
    refused = cli(
        "change", "request", "terre-solidaire", "--title", "t", "--description", "d", *args
    )
    assert refused.code == ExitCode.BAD_INPUT, refused
    assert message in refused.err
    assert "Traceback" not in refused.err
    assert ledger_entries(ledger_url) == []
    created = cli(
        "change", "request", "terre-solidaire", "--title", "t", "--description", "d", "--json"
    )
    change_id = output(created.out)["id"]
    before = ledger_entries(ledger_url)
    rescoped = cli("change", "scope", change_id, "--in", "donation platform", *args)
    assert rescoped.code == ExitCode.BAD_INPUT, rescoped
    assert message in rescoped.err
    assert ledger_entries(ledger_url) == before


def test_the_policy_says_which_levels_may_deploy(
    cli: Cli, edit_contract: Callable[..., Any]
) -> None:
    """continuous-evolution and institutional-sla deploy; stability-security does not. A
    contract may turn deploys off, never on where its level has them off."""
    expected = {
        "alpenhof": False,
        "atelier-nord": False,
        "terre-solidaire": True,
        "riverton": True,
    }
    for client, allowed in expected.items():
        row = output(cli("policy", client, "--json").out)["settings"]["changes.deploy_allowed"]
        assert row["value"] is allowed, client
    assert "application versions are deployed" in cli("policy", "terre-solidaire").err
    edit_contract("terre-solidaire", lambda data: data.update(changes={"deploy_allowed": False}))
    tightened = output(cli("policy", "terre-solidaire", "--json").out)["settings"]
    assert tightened["changes.deploy_allowed"]["value"] is False
    assert tightened["changes.deploy_allowed"]["source"] == "contract"
    edit_contract("alpenhof", lambda data: data.update(changes={"deploy_allowed": True}))
    loose = cli("policy", "alpenhof")
    assert loose.code == ExitCode.BAD_INPUT
    assert (
        "changes.deploy_allowed: yes is looser than the level stability-security default of no"
        in loose.err
    )
