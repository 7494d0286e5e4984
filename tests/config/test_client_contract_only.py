"""Reading a client's contract alone (``tick`` reads a hundred clients every minute):
the same contract and policy as the full load, and the full load's report for a
contract that fails validation, so that no invalid contract is acted on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from webmg_ops.config.clients import ContractInvalid, load_client, load_client_contract

EditContract = Callable[[str, Callable[[dict[str, Any]], None]], Path]


@pytest.mark.parametrize("client", ["alpenhof", "atelier-nord", "riverton", "terre-solidaire"])
def test_the_contract_alone_gives_the_full_loads_contract_and_policy(
    inventories: Path, client: str
) -> None:
    full = load_client(inventories, client)
    alone = load_client_contract(inventories, client)
    assert (alone.name, alone.folder) == (full.name, full.folder)
    assert alone.contract == full.contract
    assert alone.policy == full.policy
    assert alone.hosts == ()  # the inventory is not read


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda data: data["escalation"][0].update(notify=["ftp://x.example/y"]),
            "notification URL scheme ftp:// is not supported",
        ),
        (
            lambda data: data.update(cadences={"drill": "30d"}),
            "cadences.drill: 30d is looser than the level institutional-sla default of 7d",
        ),
        (lambda data: data.update(name="elsewhere"), "differs from the folder name"),
        (lambda data: data.pop("business_owner"), "a contract with a level needs a business_owner"),
        (lambda data: data.update(unknown_key=1), "unknown key"),
    ],
)
def test_an_invalid_contract_raises_the_full_loads_report(
    inventories: Path,
    edit_contract: EditContract,
    change: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    edit_contract("riverton", change)
    with pytest.raises(ContractInvalid) as raised:
        load_client_contract(inventories, "riverton")
    assert message in str(raised.value)
    assert "client.yml:" in str(raised.value)  # located by file and line, as load_client does
