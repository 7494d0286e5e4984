"""Preflight: is each host fit for a run, before any task touches it?

Over SSH with paramiko and the client's known_hosts (RejectPolicy), each
host is checked for reachability, its host key, free disk space, a held
apt/dpkg lock and a pending reboot. A host that fails is excluded from
the run, with the reason recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from webmg_ops.ansible.connection import Connection

#: Free space on / below which a host is not fit for changes.
MIN_FREE_MB = 200

# One round trip per host: free space on / in MiB, whether a reboot is
# pending, and whether dpkg's lock is held (fcntl locks, as dpkg takes them).
_PROBE = (
    "df -Pm / | awk 'NR==2 {print $4}'; "
    "test -e /var/run/reboot-required && echo reboot-required || echo no-reboot; "
    "sudo -n python3 -c 'import fcntl,sys\n"
    'for p in ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"):\n'
    "    try:\n"
    '        f = open(p, "a")\n'
    "    except OSError:\n"
    "        continue\n"
    "    try:\n"
    "        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    "    except OSError:\n"
    '        print("apt-locked"); sys.exit(0)\n'
    'print("apt-free")\' || echo sudo-failed'
)


class HostCheck(StrEnum):
    """Outcome of preflight on one host."""

    READY = "ready"
    UNREACHABLE = "unreachable"
    HOST_KEY_UNKNOWN = "host-key-unknown"
    HOST_KEY_CHANGED = "host-key-changed"
    LOW_DISK = "low-disk"
    APT_LOCKED = "apt-locked"
    NO_SUDO = "no-sudo"


@dataclass(frozen=True)
class HostPreflight:
    """What preflight found on one host."""

    host: str
    check: HostCheck
    message: str
    free_mb: int | None = None
    reboot_pending: bool = False

    @property
    def ready(self) -> bool:
        """Return whether the host may take part in the run."""
        return self.check is HostCheck.READY

    @property
    def host_key_problem(self) -> bool:
        """Return whether the host was refused for its SSH host key."""
        return self.check in (HostCheck.HOST_KEY_UNKNOWN, HostCheck.HOST_KEY_CHANGED)


def _parse_probe(host: str, output: str, min_free_mb: int) -> HostPreflight:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    try:
        free_mb = int(lines[0])
    except (IndexError, ValueError):
        free_mb = None
    reboot = "reboot-required" in lines
    if "sudo-failed" in lines:
        return HostPreflight(
            host, HostCheck.NO_SUDO, "the maintenance account cannot use sudo", free_mb, reboot
        )
    if free_mb is not None and free_mb < min_free_mb:
        return HostPreflight(
            host,
            HostCheck.LOW_DISK,
            f"only {free_mb} MiB free on / (at least {min_free_mb} MiB needed)",
            free_mb,
            reboot,
        )
    if "apt-locked" in lines:
        return HostPreflight(
            host,
            HostCheck.APT_LOCKED,
            "the apt/dpkg lock is held by another process",
            free_mb,
            reboot,
        )
    note = "ready" + ("; a reboot is pending" if reboot else "")
    return HostPreflight(host, HostCheck.READY, note, free_mb, reboot)


def check_host(connection: Connection, min_free_mb: int = MIN_FREE_MB) -> HostPreflight:
    """Given a host's connection settings, return its preflight result (never raises)."""
    # Imported to reach a host: the actions name a preflight's result, and plan, which
    # reaches none, need not load the SSH library (a tenth of its start).
    from webmg_ops.remote.ssh import HostKeyProblem, Unreachable, open_session, run_command

    try:
        client = open_session(connection)
    except HostKeyProblem as problem:
        check = HostCheck.HOST_KEY_CHANGED if problem.changed else HostCheck.HOST_KEY_UNKNOWN
        return HostPreflight(connection.host, check, str(problem))
    except Unreachable as error:
        return HostPreflight(connection.host, HostCheck.UNREACHABLE, str(error))
    try:
        result = run_command(client, _PROBE)
    except (OSError, EOFError) as error:
        return HostPreflight(connection.host, HostCheck.UNREACHABLE, f"session lost: {error}")
    finally:
        client.close()
    return _parse_probe(connection.host, result.stdout, min_free_mb)


def run_preflight(
    connections: Mapping[str, Connection], hosts: Iterable[str], min_free_mb: int = MIN_FREE_MB
) -> dict[str, HostPreflight]:
    """Given connection settings and a run's hosts, return each host's preflight (in parallel)."""
    chosen = list(hosts)
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(chosen)))) as pool:
        results = pool.map(lambda host: check_host(connections[host], min_free_mb), chosen)
        return dict(zip(chosen, results, strict=True))
