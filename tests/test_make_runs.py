"""``make run``, ``make update`` and ``make harden`` pass a ticket, an emergency and a
limit on to ``webmg-ops run``: the command line each builds, read with ``make -n``."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _built_command(target: str, *assignments: str) -> list[str]:
    """Return the arguments ``make -n TARGET`` would give ``webmg-ops``, as the shell splits
    them."""
    done = subprocess.run(
        ["make", "-n", "-C", str(REPO), target, *assignments],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [line for line in done.stdout.splitlines() if "/webmg-ops " in line]
    assert len(lines) == 1, done.stdout
    return shlex.split(lines[0].split("/webmg-ops ", 1)[1])


@pytest.mark.parametrize(
    ("target", "assignments", "head"),
    [
        ("run", ("ACTION=update",), ["run", "acme", "update"]),
        ("update", (), ["run", "acme", "update"]),
        ("harden", (), ["run", "acme", "harden"]),
    ],
)
def test_ticket_emergency_and_limit_reach_the_run(
    target: str, assignments: tuple[str, ...], head: list[str]
) -> None:
    built = _built_command(
        target,
        "CLIENT=acme",
        *assignments,
        "TICKET=T-12",
        "EMERGENCY=1",
        "LIMIT=web*:!web3",
        "REASON=exploited flaw",
    )
    assert built == [
        *head,
        "--reason",
        "exploited flaw",
        "--ticket",
        "T-12",
        "--emergency",
        "--limit",
        "web*:!web3",
    ]


@pytest.mark.parametrize("target", ["update", "harden"])
def test_without_them_the_run_gets_none(target: str) -> None:
    assert _built_command(target, "CLIENT=acme") == ["run", "acme", target]
    assert _built_command(target, "CLIENT=acme", "CHECK=1") == ["run", "acme", target, "--check"]
