"""The lab's commands: ``up``, ``status``, ``reset``, ``ssh`` and ``down``.

Each takes the settings in force and returns a result object; none prints.
Progress goes to an ``on_step`` callback. Everything the lab makes is
recorded in its state file before (or as soon as) it is made; ``down``
removes exactly that, and ``up`` first removes what a killed run left.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from webmg_ops.errors import EnvironmentProblem, Failed
from webmg_ops.lab import (
    apt_repo,
    base,
    environment,
    execute,
    hosts,
    keys,
    layers,
    mounts,
    network,
    s3,
    state,
    topology,
    vault,
)
from webmg_ops.lab.paths import LabPaths, resolve_lab_paths
from webmg_ops.lab.state import LabState, ProcessRecord
from webmg_ops.lab.topology import LabHost
from webmg_ops.ledger.note import ensure_signing_key, public_key_path
from webmg_ops.settings import Settings

LAB_SIGNING_KEY_NAME = "webmg-ops-lab"
"""The name the lab's checkpoint signatures carry."""

Reporter = Callable[[str], None]

SSH_READY_TIMEOUT_SECONDS = 60.0
BOOT_WAIT_SECONDS = 30.0
SERVICE_STOP_SECONDS = 5.0
REPO_SERVICE = "apt-repo"
S3_SERVICE = "s3"


def _quiet(message: str) -> None:
    """Report nothing."""


@dataclass(frozen=True)
class HostStatus:
    """One lab host as ``lab status`` shows it."""

    name: str
    address: str
    role: str
    clients: tuple[str, ...]
    up: bool
    pid: int | None
    init_pid: int | None
    supervisor_pid: int | None
    systemd: str
    failed_units: tuple[str, ...]
    boots: int


@dataclass(frozen=True)
class LabStatus:
    """The lab as ``lab status`` shows it: its hosts and how to reach them."""

    up: bool
    lab_dir: str
    bridge: str
    controller: str
    ssh_user: str
    ssh_key: str
    known_hosts: str
    vault_password_file: str
    apt_repo: str
    apt_repo_up: bool
    s3_endpoint: str
    s3_credentials_file: str
    s3_up: bool
    signing_key: str
    signing_public_key: str
    hosts: tuple[HostStatus, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """Return the status as a JSON-serialisable document."""
        return asdict(self)


def _check(euid: int | None) -> None:
    environment.check_root(euid)
    environment.check_tools()
    s3.rclone_binary()


def _new_state(paths: LabPaths) -> LabState:
    return LabState(lab_dir=str(paths.lab_dir))


def _teardown(paths: LabPaths, recorded: LabState, on_step: Reporter) -> None:
    """Given a recorded state, remove everything in it, then the state file."""
    records = list(recorded.hosts.values())
    if records:
        on_step(f"Stopping {len(records)} host(s)")
        hosts.stop_hosts(paths, records)
        for record in records:
            hosts.wipe_host(paths, record.name)
    services = list(recorded.services.values())
    if services:
        state.stop_processes(services, SERVICE_STOP_SECONDS)
    if recorded.bridge is not None:
        network.delete_bridge()
    mounts.remove_tree(paths.s3_data_dir)
    paths.state_file.unlink(missing_ok=True)


def _recover(paths: LabPaths, on_step: Reporter) -> LabState:
    """Return the state to build on, after removing what a killed or stopped run left."""
    recorded = state.load_state(paths)
    if recorded is None:
        return _new_state(paths)
    bridge = network.find_link(network.BRIDGE_NAME)
    if bridge is None or not network.bridge_is_ours(bridge):
        on_step("Removing what an earlier lab run left behind")
        _teardown(paths, recorded, on_step)
        return _new_state(paths)
    dead = [
        record
        for record in recorded.hosts.values()
        if not hosts.is_host_running(record, hosts.runtime_of(paths, record.name))
    ]
    if dead:
        hosts.stop_hosts(paths, dead)
        for record in dead:
            hosts.wipe_host(paths, record.name)
            del recorded.hosts[record.name]
    for name, process in list(recorded.services.items()):
        if not state.is_running(process):
            del recorded.services[name]
    state.save_state(paths, recorded)
    return recorded


def _write_client_files(
    paths: LabPaths,
    settings: Settings,
    lab_hosts: Sequence[LabHost],
    identities: dict[str, keys.HostIdentity],
) -> None:
    """Write the lab's known_hosts and, for each lab client, its key, known_hosts and vault."""
    lines = {
        host.name: keys.known_hosts_line(host.address, 22, identities[host.name].public_key)
        for host in lab_hosts
    }
    keys.write_known_hosts(paths.known_hosts, lines.values())
    clients = topology.lab_clients(settings.inventories)
    for client, client_hosts in clients.items():
        keys.write_client_files(
            settings.inventories / client,
            paths.ssh_key,
            [lines[host.name] for host in client_hosts],
        )
    credentials = s3.ensure_credentials(paths)
    vault.ensure_client_vaults(
        [settings.inventories / client for client in clients],
        vault.ensure_vault_password(paths),
        # Lab clients reach the lab's S3 endpoint (offsite copies) with its keys.
        {
            "webmg_s3_access_key_id": credentials.access_key_id,
            "webmg_s3_secret_access_key": credentials.secret_access_key,
        },
    )


def _start_service(
    paths: LabPaths,
    recorded: LabState,
    name: str,
    argv: list[str],
    env: dict[str, str] | None = None,
) -> None:
    if name in recorded.services:
        return
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    pid = execute.start_detached(
        argv, log_path=paths.logs_dir / f"{name}.log", env=env, cwd=paths.lab_dir
    )
    recorded.services[name] = state.record_process(pid, name)
    state.save_state(paths, recorded)


def _up(
    settings: Settings,
    paths: LabPaths,
    lab_hosts: list[LabHost],
    selected: list[LabHost],
    on_step: Reporter,
) -> None:
    """Bring up the selected hosts and the lab's services; the lab lock is held."""
    recorded = _recover(paths, on_step)
    if recorded.bridge is None:
        uses = network.foreign_uses_of_range()
        if uses:
            raise EnvironmentProblem(
                f"the lab's range {network.LAB_NETWORK} is already in use: {'; '.join(uses)}"
            )
        existing = network.find_link(network.BRIDGE_NAME)
        if existing is not None and network.bridge_ports():
            # The lab's bridge with hosts on it, but not in this lab's record: another lab
            # folder's lab is running. Its hosts hold the same addresses; never share them.
            raise EnvironmentProblem(
                f"another rehearsal lab is running on {network.BRIDGE_NAME} "
                f"(hosts attached: {', '.join(network.bridge_ports())}); stop it with "
                "`webmg-ops lab down` from its folder (or its WEBMG_LAB_DIR) first"
            )
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    lab_public_key = keys.ensure_lab_key(paths)
    archive_key = apt_repo.ensure_archive_key(paths)
    # The lab's own key for signed ledger checkpoints, kept with its other keys.
    ensure_signing_key(paths.signing_key, LAB_SIGNING_KEY_NAME)
    identities = {host.name: keys.ensure_host_identity(paths, host.name) for host in lab_hosts}
    credentials = s3.ensure_credentials(paths)
    image = base.build_base(paths, on_step)
    base_dir = base.ensure_base_tree(paths, image, on_step)
    apt_repo.ensure_repository(paths, image, archive_key, on_step)
    role_layers = {
        role: layers.ensure_role_layer(paths, role, image, base_dir, archive_key, on_step)
        for role in sorted({host.role for host in selected})
    }
    in_use = {base_dir, *role_layers.values()}
    in_use |= {Path(layer) for record in recorded.hosts.values() for layer in record.layers}
    layers.prune_trees(paths, in_use)
    _write_client_files(paths, settings, lab_hosts, identities)

    if recorded.bridge is None:
        recorded.bridge = network.BRIDGE_NAME
        state.save_state(paths, recorded)
        existing = network.find_link(network.BRIDGE_NAME)
        # A bridge bearing the lab's mark whose record was lost is the lab's own: reuse it.
        if existing is None or not network.bridge_is_ours(existing):
            on_step(f"Creating the bridge {network.BRIDGE_NAME} ({network.CONTROLLER_ADDRESS})")
            network.create_bridge()
    _start_service(paths, recorded, REPO_SERVICE, apt_repo.repo_server_argv(paths))
    s3.prepare(paths)
    _start_service(
        paths, recorded, S3_SERVICE, s3.server_argv(paths), env=s3.server_env(credentials)
    )

    archive_public_key = archive_key.public_file.read_text()
    starting = [host for host in selected if host.name not in recorded.hosts]
    if starting:
        on_step(f"Booting {len(starting)} host(s): {', '.join(h.name for h in starting)}")
    for host in starting:
        record = hosts.new_record(paths, host, [role_layers[host.role], base_dir])
        recorded.hosts[host.name] = record
        state.save_state(paths, recorded)
        hosts.wipe_host(paths, host.name)
        hosts.mount_root(record)
        record.mounted = True
        state.save_state(paths, recorded)
        hosts.provision(
            Path(record.merged),
            host,
            identities[host.name],
            lab_public_key,
            archive_public_key,
            lab_hosts,
        )
        record.supervisor = hosts.start_supervisor(paths, record, host)
        state.save_state(paths, recorded)

    apt_repo.wait_for_repo_server()
    s3.wait_for_server()
    on_step("Waiting for the hosts' SSH servers")
    silent = hosts.wait_for_ssh([host.address for host in selected], SSH_READY_TIMEOUT_SECONDS)
    if silent:
        logs = ", ".join(
            str(hosts.host_files(paths, h.name).console_log)
            for h in selected
            if h.address in silent
        )
        raise Failed(f"no SSH server answered on {', '.join(silent)} (consoles: {logs})")
    on_step("Waiting for the hosts to finish booting")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda host: hosts.systemd_state(
                    hosts.runtime_of(paths, host.name), BOOT_WAIT_SECONDS
                ),
                selected,
            )
        )
    for host in selected:
        record = recorded.hosts[host.name]
        runtime = hosts.runtime_of(paths, host.name)
        if runtime is not None:
            if runtime.veth and runtime.veth not in record.veths:
                record.veths.append(runtime.veth)
            if runtime.netns and runtime.netns not in record.netns:
                record.netns.append(runtime.netns)
    state.save_state(paths, recorded)


def bring_up(
    settings: Settings,
    wanted: list[str] | None = None,
    on_step: Reporter = _quiet,
    euid: int | None = None,
) -> LabStatus:
    """Given the settings and wanted host names (None for all), bring the lab up; return its status.

    Hosts already up stay up. Raise ``BadInput`` for an unknown host or a bad
    inventory, ``EnvironmentProblem`` if not root, a tool is missing or the
    lab's range is used by something else, ``Failed`` if a host does not boot.
    """
    lab_hosts = topology.lab_hosts(settings.inventories)
    selected = topology.select_hosts(lab_hosts, wanted)
    _check(euid)
    paths = resolve_lab_paths(settings)
    with state.lab_lock(paths):
        _up(settings, paths, lab_hosts, selected, on_step)
    return lab_status(settings, euid=euid)


def reset_host(
    settings: Settings, name: str, on_step: Reporter = _quiet, euid: int | None = None
) -> LabStatus:
    """Given a host name, wipe the host's changes and boot it bare again; return the lab's status.

    Its identity and host key are kept, its role's layer provisions it again.
    Raise ``BadInput`` if no lab host has that name, and as :func:`bring_up`.
    """
    lab_hosts = topology.lab_hosts(settings.inventories)
    selected = topology.select_hosts(lab_hosts, [name])
    _check(euid)
    paths = resolve_lab_paths(settings)
    with state.lab_lock(paths):
        recorded = state.load_state(paths)
        if recorded is not None and name in recorded.hosts:
            on_step(f"Stopping {name}")
            hosts.stop_hosts(paths, [recorded.hosts[name]])
            hosts.wipe_host(paths, name)
            del recorded.hosts[name]
            state.save_state(paths, recorded)
        _up(settings, paths, lab_hosts, selected, on_step)
    return lab_status(settings, euid=euid)


def bring_down(settings: Settings, on_step: Reporter = _quiet, euid: int | None = None) -> bool:
    """Given the settings, stop the lab and remove what it made; return whether anything was.

    Keys (lab key, host keys, archive key) and caches are kept. Safe to run
    twice. Raise ``EnvironmentProblem`` if not root.
    """
    environment.check_root(euid)
    paths = resolve_lab_paths(settings)
    if not paths.lab_dir.is_dir():
        return False
    with state.lab_lock(paths):
        recorded = state.load_state(paths)
        if recorded is None:
            return False
        _teardown(paths, recorded, on_step)
    return True


def _host_status(paths: LabPaths, host: LabHost, recorded: LabState | None) -> HostStatus:
    record = recorded.hosts.get(host.name) if recorded else None
    runtime = hosts.runtime_of(paths, host.name) if record else None
    running = record is not None and hosts.is_host_running(record, runtime)
    systemd = hosts.systemd_state(runtime) if running else "down"
    return HostStatus(
        name=host.name,
        address=host.address,
        role=host.role,
        clients=host.clients,
        up=running,
        pid=runtime.nspawn.pid if running and runtime and runtime.nspawn else None,
        init_pid=runtime.leader.pid if running and runtime and runtime.leader else None,
        supervisor_pid=record.supervisor.pid if running and record and record.supervisor else None,
        systemd=systemd,
        failed_units=tuple(hosts.failed_units(runtime)) if systemd == "degraded" else (),
        boots=runtime.boots if runtime else 0,
    )


def _service_up(recorded: LabState | None, name: str) -> bool:
    process: ProcessRecord | None = recorded.services.get(name) if recorded else None
    return process is not None and state.is_running(process)


def lab_status(settings: Settings, euid: int | None = None) -> LabStatus:
    """Given the settings, return the lab's status (every lab host, up or down).

    Raise ``EnvironmentProblem`` if not root, ``BadInput`` for a bad inventory.
    """
    environment.check_root(euid)
    lab_hosts = topology.lab_hosts(settings.inventories)
    paths = resolve_lab_paths(settings)
    recorded = state.load_state(paths)
    bridge = network.find_link(network.BRIDGE_NAME)
    with ThreadPoolExecutor(max_workers=8) as pool:
        host_states = tuple(pool.map(lambda h: _host_status(paths, h, recorded), lab_hosts))
    return LabStatus(
        up=recorded is not None and bridge is not None and network.bridge_is_ours(bridge),
        lab_dir=str(paths.lab_dir),
        bridge=network.BRIDGE_NAME,
        controller=network.CONTROLLER_ADDRESS,
        ssh_user=base.MAINTENANCE_USER,
        ssh_key=str(paths.ssh_key),
        known_hosts=str(paths.known_hosts),
        vault_password_file=str(paths.vault_password),
        apt_repo=network.REPO_URL,
        apt_repo_up=_service_up(recorded, REPO_SERVICE),
        s3_endpoint=network.S3_URL,
        s3_credentials_file=str(paths.s3_credentials),
        s3_up=_service_up(recorded, S3_SERVICE),
        signing_key=str(paths.signing_key),
        signing_public_key=str(public_key_path(paths.signing_key)),
        hosts=host_states,
    )


def ssh_argv(
    settings: Settings, name: str, command: Sequence[str] = (), user: str | None = None
) -> list[str]:
    """Given a host name and an optional command, return the ssh command to it.

    Host keys are checked strictly against the lab's known_hosts. A command
    of several arguments is quoted so that the remote shell sees the same
    arguments; a single argument is passed as a shell command line, as ssh
    does. Raise ``BadInput`` if no lab host has that name, and
    ``EnvironmentProblem`` if the lab has never been started.
    """
    (host,) = topology.select_hosts(topology.lab_hosts(settings.inventories), [name])
    paths = resolve_lab_paths(settings)
    if not (paths.known_hosts.is_file() and paths.ssh_key.is_file()):
        raise EnvironmentProblem(f"the lab has no keys in {paths.lab_dir}: run lab up first")
    ssh = shutil.which("ssh") or "ssh"
    return [
        ssh,
        "-i",
        str(paths.ssh_key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={paths.known_hosts}",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        f"{user or base.MAINTENANCE_USER}@{host.address}",
        *(list(command) if len(command) < 2 else [shlex.join(command)]),
    ]


def run_ssh(
    settings: Settings, name: str, command: Sequence[str] = (), user: str | None = None
) -> int:
    """Given a host name and an optional command, run ssh to it; return ssh's exit status.

    Raise ``BadInput`` if no lab host has that name.
    """
    return execute.run_attached(ssh_argv(settings, name, command, user))
