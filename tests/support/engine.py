"""Helpers of the run engine's tests: test actions in place of real ones."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from webmg_ops.actions import registry
from webmg_ops.actions.base import Action, ActionOutcome

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"


def install_test_action(monkeypatch: pytest.MonkeyPatch, action: str, playbook: str) -> None:
    """Make ACTION run the test playbook PLAYBOOK (a changing action keeps its governance)."""
    real = registry._actions()

    def make_outcome(result: Any, preflight: Mapping[str, Any], before: Any) -> ActionOutcome:
        return ActionOutcome(evidence={"hosts": dict(result.evidence)}, summary="test action")

    test_action = Action(action, str(PLAYBOOKS / playbook), make_outcome=make_outcome)
    monkeypatch.setattr(registry, "_actions", lambda: {**real, action: test_action})
