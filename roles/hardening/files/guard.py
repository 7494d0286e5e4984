"""Lock-out guard of one risky change on this host (run by roles/hardening).

    guard.py arm UNIT SECONDS AREA FILE...   save FILEs (and the live firewall), start a timer
    guard.py restore UNIT                    put the saved state back, reload if applied (the timer)
    guard.py disarm UNIT                     stop the timer and forget the saved state

The timer lives on the host because a host that refuses SSH cannot be
repaired over SSH. Its state sits in /run: it goes with the timer at reboot.
Prints one JSON object: {"changed": bool, "unit": UNIT, ...}.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

STATE = Path("/run/webmg-guard")
UNIT_NAME = re.compile(r"^webmg-guard-[a-z]+-[0-9]{14}-[0-9a-f]{8}$")
RULESET = "ruleset.nft"
MANIFEST = "manifest.json"
#: Written by the role just before the service reloads the change.
APPLIED = "applied"

#: How each area is reloaded once its files are back; {state} is the unit's folder.
RELOAD: dict[str, tuple[tuple[str, ...], ...]] = {
    # reload-or-restart also brings back an sshd that stopped.
    "ssh": (("systemctl", "reload-or-restart", "ssh"),),
    "firewall": (("nft", "-f", "{state}/" + RULESET),),
}


def folder_of(unit: str) -> Path:
    """Given a guard's unit name, return its state folder. Raise SystemExit if the name is not
    a guard's (it ends up in paths and unit names).
    """
    if not UNIT_NAME.match(unit):
        raise SystemExit(f"not a guard unit name: {unit!r}")
    return STATE / unit


def save_live_ruleset(folder: Path) -> None:
    """Given the state folder, save the firewall ruleset loaded now, as one atomic reload."""
    listed = subprocess.run(
        ("nft", "list", "ruleset"), capture_output=True, text=True, check=True
    ).stdout
    (folder / RULESET).write_text("flush ruleset\n" + listed)


def arm(unit: str, seconds: int, area: str, files: list[str]) -> dict[str, object]:
    """Given a unit name, a deadline, an area and its files, save them and start the timer
    that restores them; return the report.
    """
    if area not in RELOAD:
        raise SystemExit(f"unknown area {area!r}")
    folder = folder_of(unit)
    folder.mkdir(parents=True, mode=0o700)
    saved: dict[str, str | None] = {}
    for index, name in enumerate(files):
        if Path(name).exists():
            copy = folder / f"file-{index}"
            shutil.copy2(name, copy)
            saved[name] = str(copy)
        else:
            saved[name] = None
    if area == "firewall":
        save_live_ruleset(folder)
    shutil.copy2(__file__, folder / "guard.py")
    (folder / MANIFEST).write_text(json.dumps({"area": area, "files": saved}))
    subprocess.run(
        (
            "systemd-run",
            f"--unit={unit}",
            "--collect",
            f"--on-active={seconds}",
            # The default accuracy (one minute) would let the deadline slip.
            "--timer-property=AccuracySec=1s",
            sys.executable,
            str(folder / "guard.py"),
            "restore",
            unit,
        ),
        capture_output=True,
        check=True,
    )
    return {"changed": True, "unit": unit, "saved": saved}


def restore(unit: str) -> dict[str, object]:
    """Given a unit name, put back the files it saved, reload the area and forget the state;
    return the report (unchanged when there was nothing left to restore).
    """
    folder = folder_of(unit)
    manifest_file = folder / MANIFEST
    if not manifest_file.is_file():
        return {"changed": False, "unit": unit}
    manifest = json.loads(manifest_file.read_text())
    for name, copy in manifest["files"].items():
        if copy is None:
            Path(name).unlink(missing_ok=True)
        else:
            shutil.copy2(copy, name)
    # Reloaded only if the change reached the service: a change refused before that
    # (validation) must not make the service read anything else that waits on disk.
    if (folder / APPLIED).exists():
        for argv in RELOAD[manifest["area"]]:
            subprocess.run([part.format(state=folder) for part in argv], check=True)
    shutil.rmtree(folder)
    return {"changed": True, "unit": unit, "restored": sorted(manifest["files"])}


def disarm(unit: str) -> dict[str, object]:
    """Given a unit name, stop its timer and forget the saved state; return the report."""
    folder = folder_of(unit)
    subprocess.run(("systemctl", "stop", f"{unit}.timer"), capture_output=True, check=False)
    existed = folder.is_dir()
    shutil.rmtree(folder, ignore_errors=True)
    return {"changed": existed, "unit": unit}


#: The commands: name -> what runs, given the unit and the remaining arguments.
COMMANDS: dict[str, Callable[[str, list[str]], dict[str, object]]] = {
    "arm": lambda unit, rest: arm(unit, int(rest[0]), rest[1], rest[2:]),
    "restore": lambda unit, rest: restore(unit),
    "disarm": lambda unit, rest: disarm(unit),
}


def main(argv: list[str]) -> int:
    """Given the command line, run one command and print its report; return the exit code."""
    os.umask(0o077)
    command, unit, *rest = argv
    if command not in COMMANDS:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(COMMANDS[command](unit, rest)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
