"""Mounts the lab makes: the hosts' overlays, and how they are safely undone.

A folder is only ever removed after every mount under it is gone, so that a
mount left by a killed run (an overlay, or the ``/proc`` of an interrupted
build) can never lead to removing files outside the lab.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from webmg_ops.errors import Failed
from webmg_ops.lab import execute


def _unescape(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mount_points() -> list[Path]:
    """Return the mount points of this mount namespace, in mount order."""
    lines = Path("/proc/self/mounts").read_text().splitlines()
    return [Path(_unescape(line.split()[1])) for line in lines if len(line.split()) > 2]


def is_mounted(path: Path) -> bool:
    """Given a path, return whether something is mounted on it."""
    return path in mount_points()


def mounts_under(path: Path) -> list[Path]:
    """Given a folder, return the mount points on or under it, deepest first."""
    found = [point for point in mount_points() if point == path or path in point.parents]
    return sorted(set(found), key=lambda point: len(point.parts), reverse=True)


def mount_overlay(lowers: Sequence[Path], upper: Path, work: Path, merged: Path) -> None:
    """Given lower layers (topmost first), an upper, a work and a target folder, mount an overlay.

    Raise ``Failed`` if the mount fails.
    """
    for folder in (upper, work, merged):
        folder.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={':'.join(str(lower) for lower in lowers)},upperdir={upper},workdir={work}"
    execute.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)])


def unmount(path: Path) -> bool:
    """Given a mount point, unmount it if mounted; return whether it was.

    Raise ``Failed`` if it stays mounted.
    """
    if not is_mounted(path):
        return False
    result = execute.run(["umount", str(path)], check=False)
    if result.returncode != 0:
        # Busy (a process still has a file open): detach it now, freed when released.
        execute.run(["umount", "--lazy", str(path)])
    return True


def remove_tree(path: Path) -> None:
    """Given a folder of the lab's, unmount everything under it, then remove it.

    Raise ``Failed`` if something under it cannot be unmounted.
    """
    for point in mounts_under(path):
        unmount(point)
    if mounts_under(path):
        raise Failed(f"{path} still has mounts under it; not removing it")
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
