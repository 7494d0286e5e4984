"""Benchmark the command line's start: ``webmg-ops --help`` beside a bare interpreter.

Run: ``.venv/bin/python bench/startup.py [--rounds 7]``. Times, in alternating
rounds, a bare ``python -c pass`` (the floor every command pays), ``webmg-ops
--help`` and ``webmg-ops schema`` (a command that loads its modules: pydantic and
the contract), each as a whole process. Prints the medians (min, max) and the
ratios to the bare interpreter; the issue's target is ``--help`` under 0.3 s.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CASES: dict[str, list[str]] = {
    "bare interpreter": [sys.executable, "-c", "pass"],
    "webmg-ops --help": [sys.executable, "-m", "webmg_ops.cli.main", "--help"],
    "webmg-ops schema": [sys.executable, "-m", "webmg_ops.cli.main", "schema"],
}


def timed(argv: list[str]) -> float:
    """Run ARGV to its end (output discarded); return its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    """Time each case in alternating rounds and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    for argv in CASES.values():
        timed(argv)  # warm the file cache: every round then reads the same
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(rounds):
        for name, argv in CASES.items():
            times[name].append(timed(argv))
    floor = statistics.median(times["bare interpreter"])
    print(f"command line start, median of {rounds} alternating rounds (min, max):")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name:18} {median:6.3f} s ({min(values):.3f}, {max(values):.3f})"
            f"  {median / floor:5.2f}x the bare interpreter"
        )
    help_s = statistics.median(times["webmg-ops --help"])
    print(
        f"  --help target: under 0.300 s; {'met' if help_s < 0.3 else 'not met'} ({help_s:.3f} s)"
    )


if __name__ == "__main__":
    main()
