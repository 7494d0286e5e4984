"""Helpers of the run engine's tests: test actions in place of real ones."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from webmg_ops import actions
from webmg_ops.actions import ActionOutcome

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"


def install_test_action(monkeypatch: pytest.MonkeyPatch, action: str, playbook: str) -> None:
    """Make ACTION run the test playbook PLAYBOOK (a changing action keeps its governance)."""
    real = actions._modules()

    def make_outcome(result: Any, preflight: Mapping[str, Any]) -> ActionOutcome:
        return ActionOutcome(evidence={"hosts": dict(result.evidence)}, summary="test action")

    module = SimpleNamespace(PLAYBOOK=str(PLAYBOOKS / playbook), make_outcome=make_outcome)
    monkeypatch.setattr(actions, "_modules", lambda: {**real, action: module})
