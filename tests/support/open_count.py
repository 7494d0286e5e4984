"""Running the command line while counting how often this process opens one file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.lab import COMMAND_TIMEOUT_SECONDS, Lab

#: The command line under an audit hook that counts every open of one file by this
#: process (``open``, ``Path.read_bytes``, ``os.open``...), written to a tally at exit.
_COUNTING = """
import atexit, os, sys
watched = os.path.realpath(sys.argv[1])
tally = sys.argv[2]
opens = []

def count(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        if os.path.realpath(os.fsdecode(args[0])) == watched:
            opens.append(args[0])

def write_tally():
    with open(tally, "w") as file:
        file.write(str(len(opens)))

atexit.register(write_tally)
sys.addaudithook(count)
from webmg_ops.cli.main import main
main(sys.argv[3:])
"""


def cli_counting_opens(
    lab: Lab, watched: Path, tally: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``webmg-ops ARGS`` on the lab; return how it went and how many times the
    command's own process opened WATCHED (the programs it starts are not counted)."""
    done = subprocess.run(
        [sys.executable, "-c", _COUNTING, str(watched), str(tally), *args],
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    return done, int(tally.read_text())
