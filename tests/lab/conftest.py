"""Lab tests: the lab itself. The session's ``lab`` fixture is in ``tests/conftest.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Tests that take the lab down run after every other test of the session.
LAST_TEST_PREFIX = "test_down"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that take the lab down after every other test."""
    here = Path(__file__).parent
    items.sort(key=lambda item: item.path.parent == here and item.name.startswith(LAST_TEST_PREFIX))
