"""Helpers of the run engine's tests: test actions in place of real ones."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from webmg_ops.actions import registry
from webmg_ops.actions.base import Action, ActionOutcome

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"


#: An inventory whose one host, ``local1``, is this machine, run with this interpreter.
LOCAL_INVENTORY = yaml.safe_dump(
    {
        "all": {
            "hosts": {
                "local1": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                }
            }
        }
    }
)


def install_test_action(monkeypatch: pytest.MonkeyPatch, action: str, playbook: str) -> None:
    """Make ACTION run the test playbook PLAYBOOK (a changing action keeps its governance)."""
    real = registry._action

    def make_outcome(result: Any, preflight: Mapping[str, Any], before: Any) -> ActionOutcome:
        return ActionOutcome(evidence={"hosts": dict(result.evidence)}, summary="test action")

    test_action = Action(action, str(PLAYBOOKS / playbook), make_outcome=make_outcome)
    monkeypatch.setattr(
        registry, "_action", lambda name: test_action if name == action else real(name)
    )


def add_unreachable_client(
    inventories: Path, name: str, change: Callable[[dict[str, Any]], None] | None = None
) -> Path:
    """Add a client NAME, a copy of atelier-nord's contract whose one host is a loopback
    port nothing listens on, whose windows are all closed and which has no health
    check, then changed by ``change`` if given; return its folder.

    A run of it writes its lock, ledger entries and run folder, then fails at its
    preflight (a client's inventory may not choose a local connection); without
    ``--emergency`` it is refused for the closed window.
    """
    folder = inventories / name
    folder.mkdir()
    contract = yaml.safe_load((inventories / "atelier-nord" / "client.yml").read_text())
    contract["name"] = name
    contract["windows"] = [w for w in contract["windows"] if not w.get("always")]
    contract.pop("health_checks", None)
    if change is not None:
        change(contract)
    (folder / "client.yml").write_text(yaml.safe_dump(contract, sort_keys=False))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    host = {"ansible_host": "127.0.0.1", "ansible_port": port}
    (folder / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"web": {"hosts": {"local1": host}}}}})
    )
    return folder
