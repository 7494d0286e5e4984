"""Which hosts the lab makes: those the clients' inventories name with lab addresses.

The agency's own folder (its backup target) is read like a client's. A host
named by several folders is made once. Its role comes from its groups,
through :data:`ROLE_BY_GROUP`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from webmg_ops.ansible.inventory import InventoryHost, is_lab_address, read_inventory_hosts
from webmg_ops.errors import BadInput
from webmg_ops.lab import network

#: Groups that give a host its role, strongest first; other hosts are plain.
ROLE_BY_GROUP: tuple[tuple[str, str], ...] = (("db", "db"), ("web", "web"))
PLAIN_ROLE = "plain"


@dataclass(frozen=True)
class LabHost:
    """One lab host: its name, address, role and the clients that name it."""

    name: str
    address: str
    role: str
    clients: tuple[str, ...]


def client_dirs(inventories: Path) -> list[Path]:
    """Given the inventories folder, return the clients' folders, sorted.

    Raise ``BadInput`` if the folder does not exist.
    """
    if not inventories.is_dir():
        raise BadInput(f"{inventories}: no such inventories folder")
    return sorted(path for path in inventories.iterdir() if path.is_dir())


def lab_clients(inventories: Path) -> dict[str, list[InventoryHost]]:
    """Given the inventories folder, return the clients whose hosts are all lab hosts.

    Raise ``BadInput`` if an inventory cannot be read.
    """
    clients = {}
    for folder in client_dirs(inventories):
        hosts = read_inventory_hosts(folder)
        if hosts and all(is_lab_address(host.address) for host in hosts):
            clients[folder.name] = hosts
    return clients


def role_of(groups: tuple[str, ...]) -> str:
    """Given a host's groups, return its lab role."""
    return next((role for group, role in ROLE_BY_GROUP if group in groups), PLAIN_ROLE)


def lab_hosts(inventories: Path) -> list[LabHost]:
    """Given the inventories folder, return the lab hosts the clients name, sorted by name.

    Raise ``BadInput`` if two clients give one name different addresses, two
    names share an address, or a lab host uses the controller's address or a
    port other than 22.
    """
    names: dict[str, InventoryHost] = {}
    groups: dict[str, set[str]] = {}
    clients: dict[str, list[str]] = {}
    for folder in client_dirs(inventories):
        for host in read_inventory_hosts(folder):
            if not is_lab_address(host.address):
                continue
            known = names.setdefault(host.name, host)
            if known.address != host.address:
                raise BadInput(
                    f"{folder.name}: host {host.name} is at {host.address}, "
                    f"but another client has it at {known.address}"
                )
            if host.port != 22:
                raise BadInput(f"{folder.name}: lab host {host.name} must use SSH port 22")
            groups.setdefault(host.name, set()).update(host.groups)
            clients.setdefault(host.name, []).append(folder.name)
    by_address: dict[str, str] = {}
    for name, host in names.items():
        other = by_address.setdefault(host.address, name)
        if other != name:
            raise BadInput(f"hosts {other} and {name} share the lab address {host.address}")
        if host.address in (
            network.CONTROLLER_ADDRESS,
            str(network.LAB_NETWORK.network_address),
            str(network.LAB_NETWORK.broadcast_address),
        ):
            raise BadInput(f"host {name}: {host.address} is reserved in the lab network")
    return [
        LabHost(
            name=name,
            address=names[name].address,
            role=role_of(tuple(sorted(groups[name]))),
            clients=tuple(sorted(clients[name])),
        )
        for name in sorted(names)
    ]


def select_hosts(hosts: list[LabHost], wanted: list[str] | None) -> list[LabHost]:
    """Given the lab's hosts and wanted names (None for all), return the wanted hosts.

    Raise ``BadInput`` naming any unknown host.
    """
    if not wanted:
        return hosts
    known = {host.name: host for host in hosts}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise BadInput(
            f"no lab host named {', '.join(unknown)} (lab hosts: {', '.join(sorted(known))})"
        )
    return [known[name] for name in dict.fromkeys(wanted)]
