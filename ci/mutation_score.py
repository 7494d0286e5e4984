"""Print the mutation score of each module `make mutants` mutates; fail under the floor.

Reads ``mutmut results --all true`` on stdin (``NAME: STATUS`` per mutant)
and ``ci/equivalent-mutants.txt`` (one ``NAME  reason`` per line: mutants
that change no behaviour, left out of the score with the reason said).
Exit 1 if a module scores under ``FLOOR`` percent.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

FLOOR = 90.0
EQUIVALENT = Path(__file__).with_name("equivalent-mutants.txt")


def module_of(mutant: str) -> str:
    """Given a mutant's name (``pkg.module.x_function__mutmut_3``, or
    ``pkg.module.xǁClassǁmethod__mutmut_3`` for a method), return its module."""
    return re.split(r"\.x(?:_|ǁ)", mutant, maxsplit=1)[0]


def main() -> int:
    equivalent = {
        line.split()[0]
        for line in EQUIVALENT.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for line in sys.stdin:
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        counts[module_of(name)]["equivalent" if name in equivalent else status] += 1
    failed = False
    print(
        f"{'module':34} {'killed':>7} {'survived':>9} {'no tests':>9} {'other':>6} "
        f"{'unrun':>6} {'score':>7}"
    )
    for module, count in sorted(counts.items()):
        # Equivalent mutants are left out; so are those not run yet (an interrupted run),
        # which are shown so that a partial score is never taken for a whole one.
        scored = sum(count.values()) - count["equivalent"] - count["not checked"]
        score = 100.0 * count["killed"] / scored if scored else 0.0
        other = scored - count["killed"] - count["survived"] - count["no tests"]
        failed |= score < FLOOR or count["not checked"] > 0
        shown = f"{score:6.1f}%" if scored else "      -"
        print(
            f"{module:34} {count['killed']:7} {count['survived']:9} {count['no tests']:9} "
            f"{other:6} {count['not checked']:6} {shown}"
        )
    if not counts:
        print("no mutant was run", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
