"""The rehearsal lab, brought up once per test session and taken down at its end.

Tests marked ``lab`` share one lab (real hosts, real SSH): a test that
changes a host resets it with :meth:`Lab.reset`. The lab runs on a private
copy of the demo inventories and a private lab directory; the base root
file system is cached across sessions. Without root (or a tool the lab
needs), lab tests are skipped, except under ``CI=true``, where a missing
capability is a failure.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_testing import Lab, require_lab_capabilities

from webmg_ops.lab import mounts

REPO = Path(__file__).resolve().parents[2]
DEMO_INVENTORIES = REPO / "inventories"
UP_TIMEOUT_SECONDS = 900
#: Tests that take the lab down run after every other lab test.
LAST_TEST_PREFIX = "test_down"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that take the lab down after every other test."""
    here = Path(__file__).parent
    items.sort(key=lambda item: item.path.parent == here and item.name.startswith(LAST_TEST_PREFIX))


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Bring the lab up once for the session; take it down and remove its folder at the end."""
    require_lab_capabilities()
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(
        DEMO_INVENTORIES,
        root / "inventories",
        ignore=shutil.ignore_patterns("ssh", "known_hosts"),
    )
    running = Lab(root)
    done = running.cli("lab", "up", timeout=UP_TIMEOUT_SECONDS)
    try:
        assert done.returncode == 0, f"lab up failed ({done.returncode}): {done.stderr}"
        yield running
    finally:
        running.end_ssh_masters()
        running.cli("lab", "down")
        # The lab's folder holds extracted root file systems: do not leave them in /tmp.
        mounts.remove_tree(running.lab_dir)
