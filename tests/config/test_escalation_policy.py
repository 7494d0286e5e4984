"""The escalation rows of the policy and the notification targets of the contract.

Promises proved here: the escalation thresholds are a policy row per level, shown by
``policy``, that a contract may tighten (add thresholds) and never loosen (drop one);
an escalation step's notification URLs are checked at contract validation: an
unsupported scheme is exit 2 with the reason, and a URL's secret is masked when shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from webmg_ops.config.clients import load_client
from webmg_ops.config.notify_targets import mask_url, resolve_url, vault_names
from webmg_ops.errors import ExitCode

Cli = Callable[..., Any]
EditContract = Callable[[str, Callable[[dict[str, Any]], None]], Path]

# Written out by hand: the thresholds each level promises, in percent of a budget.
EXPECTED_THRESHOLDS = {
    "alpenhof": [50, 100],  # stability-security
    "atelier-nord": [50, 100],  # continuous-evolution
    "riverton": [50, 75, 100],  # institutional-sla
}


@pytest.mark.parametrize("client", sorted(EXPECTED_THRESHOLDS))
def test_policy_shows_the_escalation_thresholds_of_each_level(cli: Cli, client: str) -> None:
    """``policy --json`` lists ``escalation.thresholds`` with its level as source."""
    done = cli("policy", client, "--json")
    assert done.code == ExitCode.OK, done
    row = json.loads(done.out)["settings"]["escalation.thresholds"]
    assert row["value"] == EXPECTED_THRESHOLDS[client]
    assert row["source"].startswith("level ")
    assert "escalation" in row["description"]
    shown = cli("policy", client)
    # The table is printed on stderr (the console of people); wide enough not to wrap.
    assert "escalation.thresholds" in shown.err, shown


def test_a_contract_may_add_thresholds(inventories: Path, edit_contract: EditContract) -> None:
    """Adding a warning at 25 % keeps the level's 50 % and 100 %: tighter, accepted."""
    edit_contract(
        "alpenhof",
        lambda data: data.update(incidents={"escalation_thresholds": [25, 50, 100]}),
    )
    value = load_client(inventories, "alpenhof").policy.values["escalation.thresholds"]
    assert (tuple(value.value), value.source) == ((25, 50, 100), "contract")


def test_a_contract_dropping_a_threshold_is_refused(
    cli: Cli, edit_contract: EditContract, ledger_url: str
) -> None:
    """Dropping the 75 % warning of institutional-sla loosens it: exit 2 with the reason."""
    edit_contract(
        "riverton", lambda data: data.update(incidents={"escalation_thresholds": [50, 100]})
    )
    done = cli("validate", "riverton")
    assert done.code == ExitCode.BAD_INPUT, done
    assert (
        "incidents.escalation_thresholds: 50%, 100% is looser than the level "
        "institutional-sla default of 50%, 75%, 100%"
    ) in done.err
    assert "a contract may only tighten its level" in done.err


def _notify(urls: list[str]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["escalation"][0]["notify"] = urls

    return change


@pytest.mark.parametrize(
    "url",
    [
        "ftp://files.example/drop",
        "slack://T000/B000/XXXX",
        "https://hooks.example/escalate",
        "no-scheme-at-all",
    ],
)
def test_an_unsupported_notification_scheme_is_refused_at_validation(
    cli: Cli, edit_contract: EditContract, ledger_url: str, url: str
) -> None:
    """Only e-mail (mailto, mailtos) and webhooks (json, jsons, form, forms): exit 2,
    the reason names the scheme and the supported ones; no ledger is written."""
    edit_contract("alpenhof", _notify([url]))
    done = cli("validate", "alpenhof")
    assert done.code == ExitCode.BAD_INPUT, done
    assert "escalation[0].notify[0]: Value error, notification URL scheme" in done.err
    assert "is not supported (supported: mailto://, mailtos://, json://, jsons://" in done.err
    assert "Traceback" not in done.err
    assert not Path(ledger_url.removeprefix("sqlite:///")).exists()


def test_supported_schemes_and_vault_references_are_accepted(
    inventories: Path, edit_contract: EditContract
) -> None:
    urls = [
        "mailto://ops:{vault:webmg_smtp_password}@mail.example?to=anna@alpenhof.example",
        "mailtos://mail.example?to=anna@alpenhof.example",
        "json://127.0.0.1:8080/escalate",
        "jsons://hooks.example/escalate?token={vault:webmg_hook_token}",
        "form://127.0.0.1/escalate",
        "forms://hooks.example/escalate",
    ]
    edit_contract("alpenhof", _notify(urls))
    assert load_client(inventories, "alpenhof").contract.escalation[0].notify == urls


def test_a_malformed_vault_reference_is_refused(
    cli: Cli, edit_contract: EditContract, ledger_url: str
) -> None:
    edit_contract("alpenhof", _notify(["json://127.0.0.1/hook?token={vault:bad name}"]))
    done = cli("validate", "alpenhof")
    assert done.code == ExitCode.BAD_INPUT, done
    assert "a vault reference in a notification URL is written {vault:NAME}" in done.err


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "mailto://ops:{vault:webmg_smtp_password}@127.0.0.1:8025?to=a@b.example",
            "mailto://ops:********@127.0.0.1:8025?to=a@b.example",
        ),
        (
            "mailtos://ops:Literal-Pass-9@mail.example?to=a@b.example",
            "mailtos://ops:********@mail.example?to=a@b.example",
        ),
        (
            "json://127.0.0.1:8080/hook?token=abcdef123&mode=x",
            "json://127.0.0.1:8080/hook?token=********&mode=x",
        ),
        (
            "form://127.0.0.1/hook?api_key={vault:key}",
            "form://127.0.0.1/hook?api_key=********",
        ),
        ("jsons://hooks.example/escalate", "jsons://hooks.example/escalate"),
    ],
)
def test_a_target_is_shown_with_its_secrets_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_vault_references_resolve_from_the_vault_and_name_what_is_missing() -> None:
    url = "mailto://ops:{vault:smtp_pw}@h?to=a@b.example&pass={vault:other}"
    assert vault_names(url) == ["smtp_pw", "other"]
    assert (
        resolve_url(url, {"smtp_pw": "s3cret", "other": "x"})
        == "mailto://ops:s3cret@h?to=a@b.example&pass=x"
    )
    with pytest.raises(KeyError, match="other"):
        resolve_url(url, {"smtp_pw": "s3cret"})
