"""The suite runs in a shuffled order whose seed is printed and replays the same order."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: A module of at least 30 independent tests, collected on its own by a child pytest.
MODULE = "tests/config/test_policy_rules.py"
PYTEST = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only")
SEED_LINE = re.compile(r"^Test order shuffled with --randomly-seed=(\d+)$", re.MULTILINE)


def _collect(*options: str) -> str:
    """Return what ``pytest -q --collect-only MODULE OPTIONS`` prints: the tests in the
    order a run would take them, then the summary."""
    done = subprocess.run(
        [*PYTEST, MODULE, *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _order(output: str) -> list[str]:
    return re.findall(r"^(tests/\S+::.+)$", output, re.MULTILINE)


def test_the_seed_is_printed_under_q_and_replays_the_order() -> None:
    first = _collect()
    (seed,) = SEED_LINE.findall(first)
    replayed = _collect(f"--randomly-seed={seed}")
    assert SEED_LINE.findall(replayed) == [seed]
    assert _order(replayed) == _order(first) and len(_order(first)) >= 30
    # Another seed, another order of the same tests (two seeds agree on the order of
    # 30 tests or more about once in 10**32).
    other = _collect(f"--randomly-seed={int(seed) + 1}")
    assert sorted(_order(other)) == sorted(_order(first))
    assert _order(other) != _order(first)
