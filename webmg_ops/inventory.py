"""Reading a client's Ansible inventory: which hosts, where, in which groups.

The inventory is parsed by Ansible itself (``InventoryManager`` and
``DataLoader``), so that what webmg-ops reads is what ``ansible-playbook``
will see. Variables are not templated: ``ansible_host``, ``ansible_port``
and ``ansible_user`` are read as written.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from webmg_ops.errors import BadInput

#: The file names tried, in this order, in a client's folder.
INVENTORY_FILE_NAMES = ("hosts.yml", "hosts.yaml", "hosts.ini", "hosts")
#: The rehearsal lab's range (198.18.0.0/15 is reserved for test networks).
LAB_NETWORK = ipaddress.IPv4Network("198.18.0.0/24")
#: Groups every host belongs to implicitly; not reported.
IMPLICIT_GROUPS = frozenset({"all", "ungrouped"})
DEFAULT_SSH_PORT = 22


@dataclass(frozen=True)
class InventoryHost:
    """One host of a client's inventory, as Ansible will connect to it."""

    name: str
    address: str
    port: int
    user: str | None
    groups: tuple[str, ...]


def find_inventory_file(client_dir: Path) -> Path:
    """Given a client's folder, return its inventory file.

    Raise ``BadInput`` if it has none.
    """
    for name in INVENTORY_FILE_NAMES:
        candidate = client_dir / name
        if candidate.is_file():
            return candidate
    tried = ", ".join(INVENTORY_FILE_NAMES)
    raise BadInput(f"{client_dir}: no inventory file (looked for {tried})")


def _port(value: object, host: str, path: Path) -> int:
    if value is None:
        return DEFAULT_SSH_PORT
    try:
        port = int(str(value))
    except ValueError:
        raise BadInput(f"{path}: host {host}: ansible_port {value!r} is not a number") from None
    if not 0 < port < 65536:
        raise BadInput(f"{path}: host {host}: ansible_port {port} is out of range")
    return port


def _first_warning(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("[WARNING]:"):
            return line.removeprefix("[WARNING]:").strip()
    return "neither YAML nor INI that Ansible can read"


def read_inventory_hosts(client_dir: Path) -> list[InventoryHost]:
    """Given a client's folder, return the hosts of its inventory, sorted by name.

    Reads ``hosts.yml``, ``hosts.yaml``, ``hosts.ini`` or ``hosts`` (YAML or
    INI) with Ansible's own parser. Raise ``BadInput`` naming the file if it
    is missing or cannot be parsed.
    """
    path = find_inventory_file(client_dir)
    # Ansible is imported here: it is slow to import and most commands need none of it.
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    manager = InventoryManager(loader=DataLoader(), sources=[], parse=False)
    # Ansible reports parse failures as warnings on stderr; they become one clear error.
    warnings = io.StringIO()
    try:
        with contextlib.redirect_stderr(warnings):
            parsed = manager.parse_source(str(path.absolute()))
    except AnsibleError as error:
        raise BadInput(f"{path}: not a valid inventory: {error}") from error
    if not parsed:
        raise BadInput(f"{path}: not a valid inventory: {_first_warning(warnings.getvalue())}")
    manager.reconcile_inventory()
    hosts = []
    for host in manager.get_hosts():
        variables = host.get_vars()
        name = str(host.get_name())
        address = variables.get("ansible_host") or name
        user = variables.get("ansible_user")
        groups = sorted(
            str(group.get_name())
            for group in host.get_groups()
            if group.get_name() not in IMPLICIT_GROUPS
        )
        hosts.append(
            InventoryHost(
                name=name,
                address=str(address),
                port=_port(variables.get("ansible_port"), name, path),
                user=None if user is None else str(user),
                groups=tuple(groups),
            )
        )
    return sorted(hosts, key=lambda host: host.name)


def is_lab_address(address: str) -> bool:
    """Given a host address, return whether it lies in the rehearsal lab's range."""
    try:
        return ipaddress.ip_address(address) in LAB_NETWORK
    except ValueError:
        return False
