"""Helpers of the run engine's tests: test actions, contract edits, in-process CLI."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

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


@contextlib.contextmanager
def edited_contract(
    inventories: Path, client: str, change: Callable[[dict[str, Any]], None]
) -> Iterator[Path]:
    """Within the block, the client's contract carries ``change``; restored afterwards."""
    file = inventories / client / "client.yml"
    original = file.read_text()
    data = yaml.safe_load(original)
    change(data)
    file.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        yield file
    finally:
        file.write_text(original)


@contextlib.contextmanager
def edited_file(file: Path, text: str) -> Iterator[Path]:
    """Within the block, FILE holds TEXT; its original content (or absence) comes back."""
    original = file.read_text() if file.exists() else None
    file.write_text(text)
    try:
        yield file
    finally:
        if original is None:
            file.unlink()
        else:
            file.write_text(original)
