"""One control group per host, so that hosts never share the cgroups their systemd makes.

Where the controller runs no systemd, ``systemd-nspawn --keep-unit`` places
each host under the cgroup it was started in; hosts started from one place
would then share ``payload/system.slice/...`` and their systemd would see
each other's units. Each host's supervisor therefore joins a cgroup of its
own (``webmg-lab/<host>``, under its current cgroup, in the unified hierarchy
and in the named ``systemd`` one when present) before it starts nspawn. The
lab records these folders and removes them once the host is down.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

LAB_CGROUP = "webmg-lab"


def _current_paths() -> dict[str, str]:
    # /proc/self/cgroup lines: "0::/path" (unified), "N:name=systemd:/path" (named v1).
    paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers in ("", "name=systemd"):
            paths[controllers] = path
    return paths


def _hierarchy_mounts() -> dict[str, Path]:
    mounts: dict[str, Path] = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        if fields[2] == "cgroup2":
            mounts.setdefault("", Path(fields[1]))
        elif fields[2] == "cgroup" and "name=systemd" in fields[3].split(","):
            mounts.setdefault("name=systemd", Path(fields[1]))
    return mounts


def host_cgroups(name: str) -> list[Path]:
    """Given a host name, return the cgroup folders its supervisor should join."""
    current = _current_paths()
    return [
        mount / current[hierarchy].lstrip("/") / LAB_CGROUP / name
        for hierarchy, mount in _hierarchy_mounts().items()
        if hierarchy in current
    ]


def join(folders: list[Path]) -> None:
    """Given cgroup folders, create them and move this process into each."""
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cgroup.procs").write_text(f"{os.getpid()}\n")


def remove(folders: list[Path]) -> None:
    """Given a host's cgroup folders, remove them and the empty cgroups under them.

    Folders that still hold processes (or are already gone) are left alone.
    """
    for folder in folders:
        if not folder.is_dir():
            continue
        for parent, children, _ in os.walk(folder, topdown=False):
            for child in children:
                with contextlib.suppress(OSError):
                    (Path(parent) / child).rmdir()
        with contextlib.suppress(OSError):
            folder.rmdir()
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.parent.rmdir()
