"""What the lab needs from the machine: root, and the tools it drives.

Each check raises :class:`~webmg_ops.errors.EnvironmentProblem` (exit 4)
with what to do about it.
"""

from __future__ import annotations

import os
import shutil

from webmg_ops.errors import EnvironmentProblem

#: The programs the lab runs, and the Debian package of each.
REQUIRED_TOOLS: dict[str, str] = {
    "apt-ftparchive": "apt-utils",
    "dpkg-deb": "dpkg",
    "dpkg-scanpackages": "dpkg-dev",
    "gpg": "gnupg",
    "gpgconf": "gnupg",
    "ip": "iproute2",
    "mmdebstrap": "mmdebstrap",
    "mount": "mount",
    "nsenter": "util-linux",
    "ssh": "openssh-client",
    "systemd-nspawn": "systemd-container",
    "tar": "tar",
    "useradd": "passwd",
    "zstd": "zstd",
}


def check_root(euid: int | None = None) -> None:
    """Given an effective user id (default: this process's), check that it is root.

    Raise ``EnvironmentProblem`` if it is not.
    """
    if (os.geteuid() if euid is None else euid) != 0:
        raise EnvironmentProblem(
            "the rehearsal lab needs root (it makes a bridge, mounts and containers); "
            "run it as root"
        )


def missing_tools() -> dict[str, str]:
    """Return the required programs that are not on PATH, with their Debian packages."""
    return {tool: package for tool, package in REQUIRED_TOOLS.items() if not shutil.which(tool)}


def check_tools() -> None:
    """Check that every program the lab runs is installed.

    Raise ``EnvironmentProblem`` naming the missing programs and their packages.
    """
    missing = missing_tools()
    if missing:
        packages = " ".join(sorted(set(missing.values())))
        raise EnvironmentProblem(
            f"missing {', '.join(sorted(missing))}: install the Debian packages "
            f"{packages} (make setup does)"
        )
