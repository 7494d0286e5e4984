"""A host's supervisor: runs its ``systemd-nspawn`` and starts it again after a reboot.

``systemd-nspawn -b`` exits with 133 when the container asks for a reboot;
the supervisor then boots it again on the same overlay, so that Ansible's
``reboot`` module sees a server come back. Any other exit ends the
supervisor. SIGTERM is passed on to nspawn, which shuts the host down
cleanly. After each start the supervisor records, in the host's runtime
file, the PIDs, network namespace and veth of the boot in progress.

Run as ``python -m webmg_ops.lab.supervise RUNTIME_FILE [CGROUP...] --
NSPAWN_ARGV...``, started detached by the lab; it first joins the given
cgroup folders, so that its host has cgroups of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from webmg_ops.lab import cgroups, network
from webmg_ops.lab.state import HostRuntime, record_process, save_runtime

REBOOT_EXIT_STATUS = 133
#: A host rebooting more often than this within a minute is left down.
MAX_REBOOTS_PER_MINUTE = 10
LEADER_WAIT_SECONDS = 10.0


def find_leader(nspawn_pid: int) -> int | None:
    """Given nspawn's PID, return the PID of the container's init, or None if not yet there."""
    own_namespace = Path(f"/proc/{nspawn_pid}/ns/pid").readlink()
    try:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
        for child in children:
            if Path(f"/proc/{child}/ns/pid").readlink() != own_namespace:
                return int(child)
    except OSError:
        return None
    return None


def _record_boot(runtime_file: Path, runtime: HostRuntime, nspawn_pid: int, machine: str) -> None:
    deadline = time.monotonic() + LEADER_WAIT_SECONDS
    leader = None
    veth = None
    while time.monotonic() < deadline:
        try:
            leader = find_leader(nspawn_pid)
        except OSError:
            return
        veth = network.host_veth(machine)
        if leader is not None and veth is not None:
            break
        time.sleep(0.05)
    if leader is not None:
        runtime.leader = record_process(leader, "container init")
        try:
            runtime.netns = str(Path(f"/proc/{leader}/ns/net").readlink())
        except OSError:
            runtime.netns = None
    runtime.veth = veth
    save_runtime(runtime_file, runtime)


def supervise(runtime_file: Path, argv: list[str]) -> int:
    """Given the runtime file and nspawn's argv, run the host until it stops; return its status."""
    machine = next(arg.split("=", 1)[1] for arg in argv if arg.startswith("--machine="))
    runtime = HostRuntime(supervisor=record_process(os.getpid(), "supervise"))
    current: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(number: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in current:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    reboots: list[float] = []
    status = 0
    while not stopping:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        current[:] = [child]
        if stopping:
            child.send_signal(signal.SIGTERM)
        runtime.boots += 1
        runtime.nspawn = record_process(child.pid, "systemd-nspawn")
        runtime.leader = None
        save_runtime(runtime_file, runtime)
        _record_boot(runtime_file, runtime, child.pid, machine)
        status = child.wait()
        current.clear()
        runtime.last_exit = status
        save_runtime(runtime_file, runtime)
        now = time.monotonic()
        reboots = [moment for moment in reboots if now - moment < 60] + [now]
        if status != REBOOT_EXIT_STATUS or len(reboots) > MAX_REBOOTS_PER_MINUTE:
            break
    runtime.stopped = True
    save_runtime(runtime_file, runtime)
    return status


def main() -> None:
    """Parse ``RUNTIME_FILE [CGROUP...] -- ARGV...``, join the cgroups and supervise."""
    arguments = sys.argv[1:]
    if "--" not in arguments or arguments.index("--") < 1:
        sys.exit("usage: python -m webmg_ops.lab.supervise RUNTIME_FILE [CGROUP...] -- ARGV...")
    separator = arguments.index("--")
    cgroups.join([Path(folder) for folder in arguments[1:separator]])
    sys.exit(supervise(Path(arguments[0]), arguments[separator + 1 :]))


if __name__ == "__main__":
    main()
