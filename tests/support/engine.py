"""Helpers of the run engine's tests: test actions in place of real ones."""

from __future__ import annotations

import sys
from collections.abc import Mapping
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
    real = registry._actions()

    def make_outcome(result: Any, preflight: Mapping[str, Any], before: Any) -> ActionOutcome:
        return ActionOutcome(evidence={"hosts": dict(result.evidence)}, summary="test action")

    test_action = Action(action, str(PLAYBOOKS / playbook), make_outcome=make_outcome)
    monkeypatch.setattr(registry, "_actions", lambda: {**real, action: test_action})
