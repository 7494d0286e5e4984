"""A lab host's life: its overlay, its identity files, its boot and its stop.

Each host is an overlay (one upper folder per host over its role's layer and
the shared base) booted by ``systemd-nspawn -b`` on the lab's bridge, under
a detached supervisor that boots it again after a reboot. Its identity (host
key, machine id), its address and the lab's keys are written into the
overlay before it boots, so nothing needs to be done inside a running host.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from webmg_ops.errors import Failed
from webmg_ops.lab import base, cgroups, execute, keys, mounts, network
from webmg_ops.lab.paths import LabPaths
from webmg_ops.lab.state import (
    HostRecord,
    HostRuntime,
    ProcessRecord,
    is_running,
    load_runtime,
    record_process,
    signal_process,
    stop_processes,
)
from webmg_ops.lab.topology import LabHost

STOP_TIMEOUT_SECONDS = 15.0
SYSTEMCTL_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class HostFiles:
    """The folders and files of one host under the lab directory."""

    folder: Path

    @property
    def upper(self) -> Path:
        """The overlay's upper folder: everything the host changed."""
        return self.folder / "upper"

    @property
    def work(self) -> Path:
        """The overlay's work folder."""
        return self.folder / "work"

    @property
    def merged(self) -> Path:
        """The mounted overlay: the host's root file system."""
        return self.folder / "root"

    @property
    def runtime(self) -> Path:
        """The supervisor's record of the boot in progress."""
        return self.folder / "runtime.json"

    @property
    def console_log(self) -> Path:
        """The host's console output."""
        return self.folder / "console.log"


def host_files(paths: LabPaths, name: str) -> HostFiles:
    """Given a host name, return its folders and files."""
    return HostFiles(paths.host_dir(name))


def _write(path: Path, text: str, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    shutil.chown(path, owner[0], owner[1])


def _account_ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise LookupError(f"no {user} account in {root}")


def network_unit_text(address: str) -> str:
    """Given a host's address, return its systemd-networkd configuration of the lab interface."""
    return (
        "[Match]\n"
        f"Name={network.HOST_INTERFACE}\n\n"
        "[Network]\n"
        f"Address={address}/{network.LAB_NETWORK.prefixlen}\n"
        "LinkLocalAddressing=no\n"
        "IPv6AcceptRA=no\n"
    )


def hosts_file_text(host: LabHost, neighbours: Sequence[LabHost]) -> str:
    """Given a host and the lab's hosts, return its /etc/hosts (the lab has no DNS)."""
    lines = [
        "127.0.0.1\tlocalhost",
        f"127.0.1.1\t{host.name}",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{network.CONTROLLER_ADDRESS}\twebmg-lab-controller",
    ]
    lines += [f"{other.address}\t{other.name}" for other in neighbours if other.name != host.name]
    return "\n".join(lines) + "\n"


def provision(
    root: Path,
    host: LabHost,
    identity: keys.HostIdentity,
    lab_public_key: str,
    archive_public_key: str,
    neighbours: Sequence[LabHost],
) -> None:
    """Given a host's mounted root, write its identity, address and the lab's keys into it."""
    _write(root / "etc/hostname", host.name + "\n")
    _write(root / "etc/hosts", hosts_file_text(host, neighbours))
    _write(root / "etc/machine-id", identity.machine_id + "\n", 0o444)
    _write(root / "etc/systemd/network/10-webmg-lab.network", network_unit_text(host.address))
    host_key = root / "etc/ssh" / keys.HOST_KEY_NAME
    _write(host_key, identity.private_key.read_text(), 0o600)
    _write(host_key.with_name(keys.HOST_KEY_NAME + ".pub"), identity.public_key + "\n")
    _write(root / base.LAB_KEYRING_FILE, archive_public_key)
    authorized = lab_public_key + "\n"
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    _write(root / "root/.ssh/authorized_keys", authorized, 0o600)
    owner = _account_ids(root, base.MAINTENANCE_USER)
    ssh_dir = root / "home" / base.MAINTENANCE_USER / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    shutil.chown(ssh_dir, owner[0], owner[1])
    _write(ssh_dir / "authorized_keys", authorized, 0o600, owner)


def nspawn_argv(host: LabHost, root: Path) -> list[str]:
    """Given a host and its mounted root, return the command that boots it on the bridge."""
    return [
        "systemd-nspawn",
        "--quiet",
        "--boot",
        f"--directory={root}",
        f"--machine={host.name}",
        # Both are needed where the controller runs no systemd (no system bus).
        "--register=no",
        "--keep-unit",
        f"--network-bridge={network.BRIDGE_NAME}",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        "--console=read-only",
    ]


def new_record(paths: LabPaths, host: LabHost, lowers: Sequence[Path]) -> HostRecord:
    """Given a host and its lower layers, return its record before anything is made."""
    files = host_files(paths, host.name)
    return HostRecord(
        name=host.name,
        address=host.address,
        role=host.role,
        layers=[str(lower) for lower in lowers],
        upper=str(files.upper),
        work=str(files.work),
        merged=str(files.merged),
        cgroups=[str(folder) for folder in cgroups.host_cgroups(host.name)],
    )


def mount_root(record: HostRecord) -> None:
    """Given a host's record, mount its overlay. Raise ``Failed`` if the mount fails."""
    mounts.mount_overlay(
        [Path(lower) for lower in record.layers],
        Path(record.upper),
        Path(record.work),
        Path(record.merged),
    )


def start_supervisor(paths: LabPaths, record: HostRecord, host: LabHost) -> ProcessRecord:
    """Given a provisioned host and its record, boot it under a detached supervisor.

    Return the supervisor's process record.
    """
    files = host_files(paths, host.name)
    files.runtime.unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "webmg_ops.lab.supervise",
        str(files.runtime),
        *record.cgroups,
        "--",
        *nspawn_argv(host, files.merged),
    ]
    pid = execute.start_detached(argv, log_path=files.console_log, cwd=paths.lab_dir)
    return record_process(pid, f"supervise {host.name}")


def runtime_of(paths: LabPaths, name: str) -> HostRuntime | None:
    """Given a host name, return what its supervisor recorded, or None."""
    return load_runtime(host_files(paths, name).runtime)


def is_host_running(record: HostRecord, runtime: HostRuntime | None) -> bool:
    """Given a host's record and runtime, return whether its supervisor and init are running."""
    return (
        record.supervisor is not None
        and is_running(record.supervisor)
        and runtime is not None
        and runtime.leader is not None
        and is_running(runtime.leader)
    )


def stop_hosts(paths: LabPaths, records: Sequence[HostRecord]) -> None:
    """Given hosts' records, shut them down together and unmount their overlays.

    SIGTERM goes to each supervisor and nspawn (nspawn shuts its host down
    cleanly); the container's init is only killed if still running after the
    timeout. Upper folders are kept.
    """
    terminate: list[ProcessRecord] = []
    follow: list[ProcessRecord] = []
    runtimes = {record.name: runtime_of(paths, record.name) for record in records}
    for record in records:
        runtime = runtimes[record.name]
        if record.supervisor is not None:
            terminate.append(record.supervisor)
        if runtime is None or runtime.leader is None:
            continue
        if runtime.nspawn is not None and is_running(runtime.nspawn):
            terminate.append(runtime.nspawn)
            follow.append(runtime.leader)
        else:
            # An init whose nspawn was killed has no one to shut it down cleanly.
            signal_process(runtime.leader, signal.SIGKILL)
            follow.append(runtime.leader)
    stop_processes(terminate, STOP_TIMEOUT_SECONDS, also_wait=follow)
    for record in records:
        runtime = runtimes[record.name]
        veths = [*record.veths, *([runtime.veth] if runtime and runtime.veth else [])]
        for veth in dict.fromkeys(veths):
            network.delete_veth(veth)
        mounts.unmount(Path(record.merged))
        record.mounted = False
        cgroups.remove([Path(folder) for folder in record.cgroups])


def wipe_host(paths: LabPaths, name: str) -> None:
    """Given a stopped host's name, remove its overlay folders (keeping its identity)."""
    mounts.remove_tree(host_files(paths, name).folder)


def wait_for_ssh(addresses: Sequence[str], timeout: float) -> list[str]:
    """Given addresses and a timeout in seconds, return those whose sshd did not answer in time."""
    deadline = time.monotonic() + timeout
    waiting = list(addresses)
    while waiting and time.monotonic() < deadline:
        waiting = [address for address in waiting if network.read_ssh_banner(address) is None]
        if waiting:
            time.sleep(0.2)
    return waiting


def _in_host(leader: ProcessRecord, argv: Sequence[str]) -> list[str]:
    return [
        "nsenter",
        f"--target={leader.pid}",
        "--mount",
        "--uts",
        "--ipc",
        "--net",
        "--pid",
        "--",
        *argv,
    ]


def systemd_state(runtime: HostRuntime | None, wait_seconds: float = 0.0) -> str:
    """Given a host's runtime, return ``systemctl is-system-running`` inside it.

    With ``wait_seconds``, wait up to that long for the boot to finish.
    Return ``down`` if the host is not running and ``unknown`` if systemd
    does not answer.
    """
    if runtime is None or runtime.leader is None or not is_running(runtime.leader):
        return "down"
    argv = ["systemctl", "is-system-running"]
    if wait_seconds:
        argv += ["--wait"]
    try:
        result = execute.run(
            _in_host(runtime.leader, argv),
            check=False,
            timeout=wait_seconds + SYSTEMCTL_TIMEOUT_SECONDS,
        )
    except Failed:
        return "unknown"
    return result.stdout.decode().strip() or "unknown"


def failed_units(runtime: HostRuntime | None) -> list[str]:
    """Given a host's runtime, return the names of its failed systemd units."""
    if runtime is None or runtime.leader is None or not is_running(runtime.leader):
        return []
    result = execute.run(
        _in_host(runtime.leader, ["systemctl", "--failed", "--plain", "--no-legend"]),
        check=False,
        timeout=SYSTEMCTL_TIMEOUT_SECONDS,
    )
    return [line.split()[0] for line in result.stdout.decode().splitlines() if line.strip()]
