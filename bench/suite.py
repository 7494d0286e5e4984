"""Where the suite's time goes: the last ``make test`` of this checkout, phase by phase.

Run: ``.venv/bin/python bench/suite.py [--results build/tests]``. ``make test``
leaves one JUnit file per phase (``not-lab.xml``: the tests that need no lab,
one worker per core; ``lab.xml``: the lab's tests, one at a time). This prints
each phase's wall time and test count, the whole suite against its target
(15 minutes on two cores), and the modules that took longest. The suite is not
run here (it takes most of an hour): a checkout where ``make test`` has not run
says so. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHASES = ("not-lab", "lab")
TARGET_MINUTES = 15.0


@dataclass(frozen=True)
class Phase:
    """One phase's figures, read from its JUnit file."""

    name: str
    wall_s: float
    tests: int
    failed: int
    skipped: int
    test_s_by_module: dict[str, float]


def read_phase(path: Path) -> Phase:
    """Given a JUnit file written by pytest, return its phase's figures.

    The wall time is the session's (pytest writes it on the ``testsuite``); a
    module's time is the sum of its tests' times. Raise OSError or ParseError if
    the file cannot be read.
    """
    suite = ElementTree.parse(path).getroot()
    if suite.tag == "testsuites":
        suite = suite[0]
    by_module: defaultdict[str, float] = defaultdict(float)
    for case in suite.iter("testcase"):
        by_module[case.get("classname", "?").split("::")[0]] += float(case.get("time", 0))
    return Phase(
        name=path.stem,
        wall_s=float(suite.get("time", 0)),
        tests=int(suite.get("tests", 0)),
        failed=int(suite.get("failures", 0)) + int(suite.get("errors", 0)),
        skipped=int(suite.get("skipped", 0)),
        test_s_by_module=dict(by_module),
    )


def main() -> None:
    """Print the last ``make test``'s phases, the whole against its target, the slowest modules."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=REPO / "build" / "tests")
    parser.add_argument("--modules", type=int, default=8, help="slowest modules listed")
    args = parser.parse_args()

    found = [args.results / f"{name}.xml" for name in PHASES]
    if not all(path.is_file() for path in found):
        print(f"whole suite: not measured (no make test has finished here: {args.results})")
        return
    phases = [read_phase(path) for path in found]
    cores = os.cpu_count() or 1
    print(f"whole suite, the last make test of this checkout ({cores} cores):")
    for phase in phases:
        print(
            f"  {phase.name:<8} {phase.wall_s / 60:6.1f} min  {phase.tests:5d} tests"
            f"  ({phase.failed} failed, {phase.skipped} skipped)"
        )
    total_min = sum(phase.wall_s for phase in phases) / 60
    verdict = "met" if total_min <= TARGET_MINUTES else "not met"
    print(f"  whole    {total_min:6.1f} min  target <= {TARGET_MINUTES:.0f} min: {verdict}")
    modules: defaultdict[str, float] = defaultdict(float)
    for phase in phases:
        for module, seconds in phase.test_s_by_module.items():
            modules[module] += seconds
    print("  slowest modules (test time):")
    slowest = sorted(modules.items(), key=lambda item: item[1], reverse=True)[: args.modules]
    for module, seconds in slowest:
        print(f"    {seconds / 60:6.1f} min  {module}")


if __name__ == "__main__":
    main()
